"""Was a reported number reproduced? The three-way verdict with a margin (TOST).

Rule (printed under tables): with a margin delta fixed before the runs, in the metric's
units, and theta = E[ours] - E[reported]:
- "reproduced" when the 90% interval of ours - reported, d +- t(0.95, df) se, lies inside
  (-delta, +delta) (two one-sided t-tests at 5%: wrong at most 5% of the time when
  |theta| = delta);
- "not reproduced" when the data show |theta| > delta at 5%: P(|D| >= |d|) <= 5% at
  |theta| = delta; when delta is more than a few se, the 90% interval lies entirely
  outside [-delta, +delta];
- "inconclusive" otherwise, with the seeds that would decide it (80% power when theta = 0),
  or "cannot be decided at this margin" when the paper's own uncertainty (and the test set
  we share) alone forbid it at any number of seeds, even with the seed variance at its
  90% lower confidence limit (``harness.seedplan.floor_forbids``);
- one seed: no verdict (nothing estimates the seed variance).
se^2 is the sum of the parts below; df their Welch-Satterthwaite combination with each
estimated variance at its 80% upper confidence limit (``harness.tost.conservative_df``:
plain Welch-Satterthwaite errs up to 8% instead of 5% with 2 seeds):
- our seeds: s^2 / k, s^2 the variance of our k seed means (k - 1 df);
- a paper that reports ONE trained model (its ± over test episodes): + s^2, the seed
  variance its ± does not cover (one draw of it), estimated by our seeds (the same
  estimate: one part, k - 1 df);
- the test set our seeds share, when the paper used another one: the mean over seed pairs
  s != t of cov(x_s, x_t) over the per-unit samples (episodes), divided by the number of
  units n (clipped at 0; n - 1 df). A paper whose ± is over seeds has the same kind of
  error from its own test set, which its ± does not cover: our estimate counts twice;
- the reported ±: its standard error by its kind (``harness.stats.reported_error``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.seedplan import SeedPlan, VarianceModel, floor_forbids, seeds_needed
from harness.stats import reported_error
from harness.tost import (
    INCONCLUSIVE,
    REFUTED,
    SUPPORTED,
    conservative_df,
    region_p_values,
    two_sided_interval,
    verdict_codes,
)

REPRODUCED, NOT_REPRODUCED, UNDECIDED = "reproduced", "not reproduced", "inconclusive"
WORDS = {SUPPORTED: REPRODUCED, REFUTED: NOT_REPRODUCED, INCONCLUSIVE: UNDECIDED}
CANNOT = "cannot be decided at this margin"


@dataclass(frozen=True)
class ReportedSide:
    """A paper's number and the standard error its ± implies."""

    value: float
    se: float
    df: float  # inf when the count behind the ± is unknown
    covers: str  # "seeds" (a spread over the paper's seeds) or "episodes" (ONE model's test episodes)
    rule: str  # how se was derived, in words


def reported_side(value: float, interval: float | None, kind: str | None, n: int | None = None,
                  covers: str = "seeds") -> ReportedSide:
    """``interval`` is the ± as printed, ``kind`` "ci95", "std" or "sem", ``n`` the count it
    is over (the paper's seeds, or its test episodes when ``covers`` is "episodes")."""
    if covers not in ("seeds", "episodes"):
        raise ValueError(f"covers must be 'seeds' or 'episodes', got {covers!r}")
    se, rule, df = reported_error(interval, kind, n)
    return ReportedSide(float(value), se, df, covers, f"{rule} over {covers}")


@dataclass(frozen=True)
class OurSide:
    """Our k seed means and the test-set error they share."""

    mean: float  # mean of the seed means
    seeds: int
    seed_variance: float  # s^2 of the seed means (k - 1 df); nan with one seed
    shared_variance: float  # se^2 of the shared test-set error; 0 without per-unit samples
    shared_df: float
    units: int  # per-unit samples per seed (0: none given)


def shared_test_error(samples) -> tuple[float, float]:
    """(variance, df) of the error of the test units every seed shares: the mean over seed
    pairs s != t of cov(x_s, x_t) (ddof 1, over the n units), divided by n, clipped at 0;
    n - 1 df. ``samples``: one row per seed, the same units in the same order. The seeds'
    own noise on the units is independent across seeds and drops out of the covariance,
    unlike each seed's total per-unit variance, which over-states the shared part."""
    x = np.asarray(samples, dtype=float)
    k, n = x.shape
    if k < 2 or n < 2:
        return 0.0, math.inf
    centred = x - x.mean(axis=1, keepdims=True)
    total = float(np.sum(centred.sum(axis=0) ** 2)) / (n - 1)  # sum of all k^2 covariances
    own = float(np.sum(centred ** 2)) / (n - 1)  # the k variances
    cross = (total - own) / (k * (k - 1))
    return max(cross, 0.0) / n, float(n - 1)


def our_side(seed_means=None, samples=None) -> OurSide:
    """From per-seed per-unit ``samples`` (rows of equal length: the same test units), or
    from ``seed_means`` alone (then no shared test-set error is known: 0)."""
    if samples is not None:
        rows = [np.asarray(row, dtype=float) for row in samples]
        if len({len(row) for row in rows}) > 1:
            raise ValueError("per-seed samples must cover the same units (equal lengths)")
        means = np.array([row.mean() for row in rows])
        shared, shared_df = shared_test_error(np.stack(rows)) if rows else (0.0, math.inf)
        units = len(rows[0]) if rows else 0
    else:
        means = np.asarray(seed_means, dtype=float)
        shared, shared_df, units = 0.0, math.inf, 0
    k = len(means)
    if k == 0:
        raise ValueError("our side needs at least one seed")
    variance = float(means.var(ddof=1)) if k > 1 else math.nan
    return OurSide(float(means.mean()), k, variance, shared, shared_df, units)


@dataclass(frozen=True)
class VariancePart:
    name: str
    variance: float
    df: float


def variance_parts(ours: OurSide, reported: ReportedSide, same_test_set: bool = False) -> list[VariancePart]:
    """The named parts of Var(ours - reported) (see the module's rule): our seeds (with
    the paper's one model's draw), the shared test set, the reported ±. Parts may be 0;
    the fields may be arrays (one row per simulated suite)."""
    one_model = reported.covers == "episodes"
    seeds = "our seeds s²/k + the paper's one model s²" if one_model else "our seeds s²/k"
    shared = "test set shared by our seeds" + ("" if one_model else " (and by the paper's, estimated by ours)")
    return [VariancePart(seeds, ours.seed_variance * (1 / ours.seeds + one_model), ours.seeds - 1.0),
            VariancePart(shared, 0.0 * ours.shared_variance if same_test_set else
                         ours.shared_variance * (1 + (not one_model)), ours.shared_df),
            VariancePart(f"reported ±: {reported.rule}", reported.se ** 2, reported.df)]


def variance_model(ours: OurSide, reported: ReportedSide, same_test_set: bool = False) -> VarianceModel:
    """The parts as a function of the number of seeds, for planning."""
    fixed = tuple((p.variance, p.df) for p in variance_parts(ours, reported, same_test_set)[1:])
    return VarianceModel(ours.seed_variance, int(reported.covers == "episodes"), fixed)


def equivalence_p_values(difference, model: VarianceModel, seeds, margin):
    """(p_support, p_refute, se, df) of ours - reported in (-margin, margin) with ``seeds``
    seeds; arrays broadcast (one row per simulated suite in the tests)."""
    parts = model.parts(seeds)
    se = np.sqrt(sum(np.asarray(v, dtype=float) for v, _ in parts))
    df = conservative_df(parts)
    p_support, p_refute = region_p_values(difference, se, df, -margin, margin)
    return p_support, p_refute, se, df


def verdict_arrays(ours: OurSide, reported: ReportedSide, margin: float, alpha: float = 0.05,
                   same_test_set: bool = False):
    """(codes, p_support, p_refute, se, df): the verdict rule on sides whose fields may be
    arrays (``harness.tost`` codes: SUPPORTED = reproduced, REFUTED = not reproduced)."""
    model = variance_model(ours, reported, same_test_set)
    p_support, p_refute, se, df = equivalence_p_values(ours.mean - reported.value, model, ours.seeds, margin)
    return verdict_codes(p_support, p_refute, alpha), p_support, p_refute, se, df


@dataclass(frozen=True)
class Reproduction:
    verdict: str | None  # "reproduced" / "not reproduced" / "inconclusive"; None with one seed
    difference: float  # ours - reported
    low: float  # the (1 - 2 alpha) interval of the difference
    high: float
    se: float
    df: float
    margin: float
    alpha: float
    p_equivalent: float  # TOST p: max of the two one-sided p's (small: reproduced)
    p_different: float  # min one-sided p of lying beyond a margin (small: not reproduced)
    seeds: int
    parts: tuple  # VariancePart, ...
    plan: SeedPlan | None  # inconclusive: the seeds for 80% power at a true difference 0 (else None)
    cannot_decide: bool  # the floor: no number of seeds can decide this margin
    note: str  # "one seed: no verdict", "cannot be decided at this margin", "N seeds would decide it"


def reproduction(ours: OurSide, reported: ReportedSide, margin: float, alpha: float = 0.05,
                 power: float = 0.8, same_test_set: bool = False) -> Reproduction:
    """The verdict on one reported cell. ``same_test_set``: the paper scored on the very
    test units we use (then no shared test-set part on either side)."""
    if not margin > 0:
        raise ValueError(f"the margin must be positive, got {margin!r}")
    difference = ours.mean - reported.value
    parts = tuple(part for part in variance_parts(ours, reported, same_test_set) if part.variance != 0)
    if ours.seeds < 2:
        return Reproduction(None, difference, math.nan, math.nan, math.nan, math.nan, margin, alpha, math.nan,
                            math.nan, ours.seeds, parts, None, False, "one seed: no verdict")
    code, p_support, p_refute, se, df = verdict_arrays(ours, reported, margin, alpha, same_test_set)
    low, high = two_sided_interval(difference, se, df, alpha)
    model = variance_model(ours, reported, same_test_set)
    cannot = bool(floor_forbids(margin, model, ours.seeds, alpha, power))
    plan = seeds_needed(margin, model, alpha, power) if code == INCONCLUSIVE else None
    if code != INCONCLUSIVE:
        note = ""
    elif cannot:
        note = f"{CANNOT} (the smallest margin any number of seeds can decide: {plan.smallest_margin:.3g})"
    elif plan.seeds is None:
        note = f"{plan.reason} would decide it"
    else:
        note = f"{plan.seeds} seeds would decide it ({power:.0%} power at a true difference 0)"
    return Reproduction(WORDS[int(code)], difference, float(low), float(high), float(se), float(df), margin, alpha,
                        float(p_support), float(p_refute), ours.seeds, parts, plan, cannot, note)
