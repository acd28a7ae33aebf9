"""Claims: a small typed vocabulary of statements about methods, each tested against the
runs and given a verdict "supported", "refuted" or "inconclusive" with the numbers
behind it.

Each claim puts a quantity theta in a region (``harness.tost``): supported when the 90%
interval of theta lies inside it (p_value <= alpha), refuted when the data put theta
outside it (p_refute <= alpha), inconclusive otherwise; one seed a side: "no verdict".
- ``equivalent(a, b, margin)``: |mu_a - mu_b| < margin (TOST);
- ``not_worse(a, b, margin)``: a not worse than b by margin or more (non-inferiority);
- ``better(a, b)``: a better than b (one-sided; by more than ``margin`` when given);
- ``cost_ratio(a, b, ratio)``: a's cost at most ``ratio`` times b's: the geometric mean
  ratio, the test on the difference of log costs per run;
- ``not_worse_than_all(a, others, margin)``: a not worse than any of ``others`` (hence than
  the best of them, whichever it truly is) by margin or more.
A claim over several cells (``in_every_cell``) or several comparisons is the intersection
of its parts: supported when every part is (p = the largest part's p, the
intersection-union test, no correction needed), refuted when some part is refuted after
Holm over the parts, inconclusive otherwise. A suite's claims together: ``family`` holds
the family-wise error of their verdicts at alpha by Holm (over the support p's and,
separately, over the refute p's).
Values are ``{seed: value}``; paired by seed as in ``harness.comparisons``, or the
difference of the two sides given (``difference``: a ``harness.stats.Difference`` a - b,
where the caller decides the pairing and adds the errors of different test sets).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from harness.comparisons import NO_VERDICT, seed_difference
from harness.multiplicity import holm
from harness.tost import (
    INCONCLUSIVE,
    REFUTED,
    SUPPORTED,
    region_p_values,
    two_sided_interval,
    verdict_codes,
)

WORDS = {SUPPORTED: "supported", REFUTED: "refuted", INCONCLUSIVE: "inconclusive"}


@dataclass(frozen=True)
class Claim:
    claim: str  # the statement in words
    verdict: str  # "supported" / "refuted" / "inconclusive" / "no verdict"
    p_value: float  # small: supported (after ``family``: Holm-adjusted)
    p_refute: float  # small: refuted (after ``family``: Holm-adjusted)
    estimate: float  # the quantity the claim is about (a difference, or a cost ratio)
    low: float  # its 90% interval (at alpha 5%)
    high: float
    region: tuple  # where the claim puts the quantity: (low, high), ends may be infinite
    test: str  # how the quantity was estimated
    parts: tuple = ()  # the claims this one is the intersection of


def _word(p_value, p_refute, alpha) -> str:
    if math.isnan(p_value):
        return NO_VERDICT
    return WORDS[int(verdict_codes(p_value, p_refute, alpha))]


def region_claim(text: str, estimate: float, se: float, df: float, low: float, high: float, alpha: float,
                 test: str, transform=None) -> Claim:
    """The claim "theta in (low, high)" from an estimate of theta; ``transform`` maps theta
    and its interval to the reported scale (exp for a log ratio)."""
    p_value, p_refute = (float(p) for p in region_p_values(estimate, se, df, low, high))
    lo, hi = (float(x) for x in two_sided_interval(estimate, se, df, alpha))
    shown = transform or (lambda x: x)
    return Claim(text, _word(p_value, p_refute, alpha), p_value, p_refute, shown(estimate), shown(lo), shown(hi),
                 (shown(low), shown(high)), test)


def _sign(direction: str) -> float:
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    return 1.0 if direction == "higher" else -1.0


def equivalent(a: dict, b: dict, margin: float, paired: bool = True, alpha: float = 0.05,
               names=("A", "B"), difference=None) -> Claim:
    d = difference or seed_difference(a, b, paired)
    return region_claim(f"{names[0]} equivalent to {names[1]} within {margin:g}", d.difference, d.se, d.df,
                        -margin, margin, alpha, d.test)


def not_worse(a: dict, b: dict, margin: float, paired: bool = True, direction: str = "higher",
              alpha: float = 0.05, names=("A", "B"), difference=None) -> Claim:
    """The quantity is a - b in the metric's direction (positive: a is better)."""
    d, sign = difference or seed_difference(a, b, paired), _sign(direction)
    return region_claim(f"{names[0]} not worse than {names[1]} by {margin:g} or more", sign * d.difference, d.se,
                        d.df, -margin, math.inf, alpha, d.test)


def better(a: dict, b: dict, paired: bool = True, direction: str = "higher", alpha: float = 0.05,
           margin: float = 0.0, names=("A", "B"), difference=None) -> Claim:
    d, sign = difference or seed_difference(a, b, paired), _sign(direction)
    by = f" by more than {margin:g}" if margin else ""
    return region_claim(f"{names[0]} better than {names[1]}{by}", sign * d.difference, d.se, d.df, margin,
                        math.inf, alpha, d.test)


def cost_ratio(a_costs: dict, b_costs: dict, ratio: float, paired: bool = True, alpha: float = 0.05,
               names=("A", "B"), why_not: str = "") -> Claim:
    """a's cost per run (training seconds, GPU-hours) at most ``ratio`` times b's, as the
    ratio of geometric means exp(mean log a - mean log b), tested on log costs."""
    logs = [{seed: math.log(value) for seed, value in costs.items()} for costs in (a_costs, b_costs)]
    d = seed_difference(logs[0], logs[1], paired, why_not=why_not)
    return region_claim(f"{names[0]}'s cost at most {ratio:g} x {names[1]}'s", d.difference, d.se, d.df, -math.inf,
                        math.log(ratio), alpha, d.test + " of log costs", transform=math.exp)


def intersection(text: str, parts, alpha: float = 0.05) -> Claim:
    """The claim that holds when every part does: p = the largest part's p_value
    (intersection-union), p_refute = the smallest Holm-adjusted part's p_refute. A part
    without a test (one seed a side) cannot be shown to hold (its p counts as 1) and stays
    out of Holm's family, so another part may still refute the claim; no part tested: no
    verdict."""
    parts = tuple(parts)
    supports = np.array([p.p_value for p in parts], dtype=float)
    refutes = holm([p.p_refute for p in parts])
    tested = ~np.isnan(supports)
    p_value = float(np.max(np.where(tested, supports, 1.0))) if tested.any() else math.nan
    p_refute = float(np.nanmin(refutes)) if tested.any() else math.nan
    return Claim(text, _word(p_value, p_refute, alpha), p_value, p_refute, math.nan, math.nan, math.nan,
                 parts[0].region if parts else (math.nan, math.nan), "intersection of the parts", parts)


def not_worse_than_all(a: dict, others: dict, margin: float, paired: bool = True, direction: str = "higher",
                       alpha: float = 0.05, name: str = "A") -> Claim:
    """a not worse than any of ``others`` ({name: {seed: value}}) by margin or more."""
    parts = [not_worse(a, values, margin, paired, direction, alpha, (name, other)) for other, values in others.items()]
    return intersection(f"{name} not worse than the best of {', '.join(others)} by {margin:g} or more", parts, alpha)


def in_every_cell(claims, alpha: float = 0.05, text: str | None = None) -> Claim:
    """One claim over several cells (e.g. every dataset x shots): supported when it holds
    in every cell, refuted when refuted in some cell (Holm over the cells)."""
    claims = tuple(claims)
    return intersection(text or f"{claims[0].claim} in all {len(claims)} cells", claims, alpha)


def family(claims, alpha: float = 0.05) -> list[Claim]:
    """A suite's claims with their p's Holm-adjusted over the family and verdicts redone:
    the chance that any claim is wrongly supported (or wrongly refuted) is at most alpha."""
    claims = list(claims)
    supported, refuted = holm([c.p_value for c in claims]), holm([c.p_refute for c in claims])
    return [replace(c, p_value=float(p), p_refute=float(r), verdict=_word(float(p), float(r), alpha))
            for c, p, r in zip(claims, supported, refuted)]
