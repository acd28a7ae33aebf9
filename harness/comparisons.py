"""Methods compared over seeds: with a baseline (Holm over the family), against the
empirical best (non-inferiority with a margin), and two result sets cell by cell
(``compare``: identical / moved / unchanged, false discoveries held by Benjamini-Hochberg).

Values are ``{seed: value}`` per method (one number per run, e.g. a seed's mean
accuracy). The difference of two methods is the paired t over their common seeds when
the runs of one seed are paired (they share what the seed fixes) and at least 2 seeds are
common (``scipy.stats.ttest_rel``), else Welch's over all seeds of each, its df at the
80% upper limits (``harness.tost.conservative_df``). One seed a side: no verdict.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from harness.multiplicity import benjamini_hochberg, holm
from harness.stats import Difference, compare_by_seed, t_quantile, t_two_sided_p
from harness.tost import conservative_df, outside_margin_p, region_p_values

NO_VERDICT = "no verdict"


def seed_difference(values, baseline, paired: bool, confidence: float = 0.95, why_not: str = "",
                    extra=()) -> Difference:
    """values - baseline over seeds (see the module), with its two-sided interval.
    ``why_not``: why the runs are not paired, in words (shown in the test's name);
    ``extra``: further independent (variance, df) parts of an unpaired difference (the
    errors of two different test sets, one per side), added to Welch's variance and df."""
    difference = compare_by_seed(values, baseline, paired, why_not)
    extra = [(float(v), float(df)) for v, df in extra if v > 0]
    if difference.paired or math.isnan(difference.se) or (difference.se == 0 and not extra):
        return difference
    a, b = np.asarray(list(values.values()), float), np.asarray(list(baseline.values()), float)
    parts = [(a.var(ddof=1) / len(a), len(a) - 1.0), (b.var(ddof=1) / len(b), len(b) - 1.0), *extra]
    se = math.sqrt(sum(v for v, _ in parts))
    df = float(conservative_df(parts))
    test = difference.test.replace("Welch over seeds", "Welch over seeds + test-set errors", 1) if extra else difference.test
    return replace(difference, se=se, df=df, half_width=t_quantile(0.5 + confidence / 2, df) * se,
                   p_value=t_two_sided_p(difference.difference / se, df) if se > 0 else difference.p_value,
                   test=test + ", df at 80% limits")


def _sign(direction: str) -> float:
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    return 1.0 if direction == "higher" else -1.0


# -- with a baseline --------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineComparison:
    method: str
    baseline: str
    difference: Difference  # method - baseline, 95% interval, the test in words
    p_value: float  # two-sided
    p_holm: float  # Holm-adjusted over the methods compared with this baseline
    wins: int | None  # seeds where the method is ahead by the metric's direction (paired only)
    pairs: int  # common seeds (0 when not paired)
    verdict: str  # "better" / "worse" (Holm-adjusted p <= alpha) / "indistinguishable" / "no verdict"


def with_baseline(values: dict, baseline: str, paired: bool, direction: str = "higher",
                  alpha: float = 0.05, difference=None) -> list[BaselineComparison]:
    """Every method of ``values`` ({method: {seed: value}}) but the baseline against it.
    ``difference(m, j)``: the ``Difference`` m - j where the pairing differs pair by pair
    (default: ``seed_difference`` with ``paired``)."""
    sign = _sign(direction)
    difference = difference or (lambda m, j: seed_difference(values[m], values[j], paired))
    methods = [m for m in values if m != baseline]
    differences = [difference(m, baseline) for m in methods]
    adjusted = holm([d.p_value for d in differences])
    rows = []
    for method, difference, p_holm in zip(methods, differences, adjusted):
        common = sorted(set(values[method]) & set(values[baseline])) if difference.paired else []
        wins = sum(sign * (values[method][s] - values[baseline][s]) > 0 for s in common) if common else None
        if math.isnan(p_holm):
            word = NO_VERDICT
        elif p_holm <= alpha:
            word = "better" if sign * difference.difference > 0 else "worse"
        else:
            word = "indistinguishable"
        rows.append(BaselineComparison(method, baseline, difference, difference.p_value, float(p_holm), wins,
                                       len(common), word))
    return rows


# -- against the empirical best ---------------------------------------------------------

BEST, WITHIN, NOT_SHOWN = "best", "within δ of the best", "not shown within δ of the best"


@dataclass(frozen=True)
class BestComparison:
    method: str
    best: str
    difference: Difference | None  # method - best (None for the best itself)
    p_value: float  # non-inferiority: the largest over every other method j of the one-sided p of "worse than j by >= margin"
    p_holm: float  # Holm-adjusted over the methods
    label: str  # "best", "within δ of the best", "not shown within δ of the best", "no verdict"


@dataclass(frozen=True)
class BestRanking:
    best: str  # the highest mean (by the metric's direction)
    margin: float
    rows: list  # BestComparison per method, the best first
    significantly_best: bool | None  # the best beats every other (one-sided, Holm-adjusted); None: no verdict
    p_best: float  # the largest Holm-adjusted p of those tests


def against_best(values: dict, margin: float, paired: bool, direction: str = "higher",
                 alpha: float = 0.05, difference=None) -> BestRanking:
    """Each method against the empirical best, picked after looking at the data.

    A method m is "within δ of the best" when it is shown not worse than EVERY other
    method by δ or more: one-sided paired (else Welch) tests of mu_m - mu_j <= -δ for all
    j != m, combined by the intersection-union (the largest p), so the label holds against
    whichever method is truly best; Holm over the methods holds the family-wise error at
    alpha. Otherwise "not shown within δ of the best" (never "≈ best"). The best is
    "significantly best" (bold in LaTeX) when its one-sided test of beating each other
    method rejects after Holm over those tests. A NaN margin: no labels, the best and
    whether it is significantly best only. ``difference(m, j)``: as ``with_baseline``'s."""
    sign = _sign(direction)
    difference = difference or (lambda m, j: seed_difference(values[m], values[j], paired))
    methods = list(values)
    means = {m: np.mean(list(values[m].values())) for m in methods}
    best = max(methods, key=lambda m: sign * means[m])
    others = [m for m in methods if m != best]
    pair = {}
    for i, m in enumerate(methods):  # j - m is m - j mirrored: each pair's test is run once
        for j in methods[i + 1:]:
            d = pair[m, j] = difference(m, j)
            pair[j, m] = replace(d, difference=-d.difference, n=d.n_baseline, n_baseline=d.n)
    order = list(pair)  # every (m, j) tested at once, for the margin and for 0
    estimate, se, df = (np.array([getattr(pair[k], name) for k in order], dtype=float) for name in ("difference", "se", "df"))
    p_low = dict(zip(order, region_p_values(sign * estimate, se, df, -margin, math.inf)[0]))
    p_zero = dict(zip(order, region_p_values(sign * estimate, se, df, 0.0, math.inf)[0]))

    p_within = [float(np.max([p_low[m, j] for j in methods if j != m])) for m in others]
    adjusted = holm(p_within)
    rows = [BestComparison(best, best, None, math.nan, math.nan, BEST)]
    for m, p, p_holm in zip(others, p_within, adjusted):
        label = NO_VERDICT if math.isnan(p_holm) else WITHIN if p_holm <= alpha else NOT_SHOWN
        rows.append(BestComparison(m, best, pair[(m, best)], p, float(p_holm), label))
    beats = holm([float(p_zero[best, j]) for j in others])
    significant = None if np.isnan(beats).any() or not others else bool(np.all(beats <= alpha))
    return BestRanking(best, margin, rows, significant, float(np.max(beats)) if others else math.nan)


# -- two result sets, cell by cell ------------------------------------------------------

IDENTICAL, MOVED, UNCHANGED, UNDECIDED = "identical", "moved", "unchanged", "inconclusive"


@dataclass(frozen=True)
class CellPair:
    a: dict  # {seed: value} on side A
    b: dict  # on side B
    margin: float  # the change that matters, in the metric's units
    identical: bool = False  # the records are bit-identical


@dataclass(frozen=True)
class CellChange:
    verdict: str  # "identical", "moved", "unchanged", "inconclusive", "no verdict"
    difference: Difference | None  # B - A (None when identical)
    p_moved: float  # p of |B - A| <= margin (small: moved beyond the margin)
    q_moved: float  # Benjamini-Hochberg adjusted over the cells
    p_unchanged: float  # TOST p of |B - A| >= margin (small: unchanged within the margin)


def change_verdicts(estimate, se, df, margin, identical, alpha: float = 0.05, fdr: float = 0.05):
    """The compare rule on arrays (last axis: the cells of one comparison): returns
    (verdict words, p_moved, q_moved, p_unchanged). Identical cells and cells without an
    interval take no part in the false discovery rate's family."""
    identical = np.asarray(identical, dtype=bool)
    p_moved = np.where(identical, np.nan, outside_margin_p(estimate, se, df, margin))
    q_moved = benjamini_hochberg(p_moved)
    p_unchanged = np.where(identical, np.nan, region_p_values(estimate, se, df, -np.asarray(margin), margin)[0])
    words = np.where(identical, IDENTICAL, np.where(np.isnan(p_moved), NO_VERDICT,
                     np.where(q_moved <= fdr, MOVED, np.where(p_unchanged <= alpha, UNCHANGED, UNDECIDED))))
    return words, p_moved, q_moved, p_unchanged


def compare_cells(cells: list, paired: bool = True, alpha: float = 0.05, fdr: float = 0.05) -> list[CellChange]:
    """Each ``CellPair`` of two result sets (B - A): "identical" when the records are;
    "moved" when B - A is shown outside [-margin, +margin] (``harness.tost.outside_margin_p``)
    with the false discovery rate over the cells held at ``fdr`` by Benjamini-Hochberg;
    "unchanged" when the 90% interval lies inside (-margin, +margin) (TOST at alpha);
    "inconclusive" otherwise; "no verdict" with one seed a side. Paired by seed when the
    seeds are shared (``paired``), else Welch."""
    differences = [None if cell.identical else seed_difference(cell.b, cell.a, paired) for cell in cells]
    nan = math.nan
    estimate = [nan if d is None else d.difference for d in differences]
    se = [nan if d is None else d.se for d in differences]
    df = [nan if d is None else d.df for d in differences]
    words, p_moved, q_moved, p_unchanged = change_verdicts(
        np.array(estimate), np.array(se), np.array(df), np.array([c.margin for c in cells], dtype=float),
        [c.identical for c in cells], alpha, fdr)
    return [CellChange(str(w), d, float(p), float(q), float(u))
            for w, d, p, q, u in zip(words, differences, p_moved, q_moved, p_unchanged)]
