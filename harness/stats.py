"""Confidence intervals: the t-interval of a mean, the standard error a reported ± implies,
and the difference of two methods over seeds (paired t or Welch). The verdicts built on
them are ``harness.reproduction``, ``harness.comparisons`` and ``harness.claims``."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

Z95 = 1.959963984540054


@lru_cache(maxsize=4096)
def t_quantile(probability: float, df: float) -> float:
    """The Student t quantile (scipy.special.stdtrit: the same numbers as scipy.stats.t.ppf,
    without importing scipy.stats, which costs a report most of its start-up)."""
    return float(special.stdtrit(df, probability))


def t_two_sided_p(statistic: float, df: float) -> float:
    """2 P(T > |statistic|) for T ~ t(df) (as 2 * scipy.stats.t.sf(|statistic|, df))."""
    return float(2 * special.stdtr(df, -abs(statistic)))


@dataclass(frozen=True)
class Interval:
    mean: float
    half_width: float  # nan when n < 2
    se: float  # standard error of the mean; nan when n < 2
    n: int


def t_interval(values, confidence: float = 0.95) -> Interval:
    """Mean and the half-width of the two-sided t-interval (ddof=1, n-1 degrees of freedom)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(values.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    se = float(values.std(ddof=1) / math.sqrt(n))
    quantile = t_quantile(0.5 + confidence / 2, n - 1)
    return Interval(mean, quantile * se, se, n)


def reported_error(interval: float | None, kind: str | None, n: int | None) -> tuple[float, str, float]:
    """(standard error implied by a reported +- value, how it was derived, its degrees of
    freedom: n - 1 when n is known, else infinite)."""
    df = float(n - 1) if n and n > 1 else math.inf
    if interval is None:
        return 0.0, "no interval reported: se 0", math.inf
    if kind == "sem":
        return interval, "sem", df
    if kind == "ci95":
        if n and n > 1:
            return interval / t_quantile(0.975, n - 1), f"ci95 / t(0.975, {n - 1})", df
        return interval / Z95, "ci95 / 1.96 (n unknown)", math.inf
    if kind == "std":
        if n:
            return interval / math.sqrt(n), f"std / sqrt({n})", df
        return interval, "std taken as se (n unknown)", math.inf
    raise ValueError(f"unknown interval kind {kind!r}")


def welch_satterthwaite(parts) -> float:
    """Degrees of freedom of a sum of independent variance estimates ``(variance, df)``:
    (sum v)^2 / sum(v^2 / df); parts with infinite df add nothing below; inf when all do."""
    parts = [(v, df) for v, df in parts if v > 0 and not math.isnan(v)]
    total = sum(v for v, _ in parts)
    below = sum(v * v / df for v, df in parts if math.isfinite(df))
    return total * total / below if below > 0 else math.inf


# -- differences between two methods (paired comparisons with a baseline) ------------


@dataclass(frozen=True)
class Difference:
    """A difference of means (method - baseline) with its two-sided t-interval.

    ``test`` says how it was obtained, in words ("paired t over seeds", "Welch over
    seeds", ...); ``n`` and ``n_baseline`` are the values behind each side (the pairs,
    for a paired test). ``half_width`` is nan when the data cannot give an interval."""

    difference: float
    half_width: float
    se: float
    df: float
    p_value: float
    n: int
    n_baseline: int
    paired: bool
    test: str

    @property
    def low(self) -> float:
        return self.difference - self.half_width

    @property
    def high(self) -> float:
        return self.difference + self.half_width


def _difference(difference, variance, df, n, n_baseline, paired, test, confidence) -> Difference:
    if math.isnan(variance) or math.isnan(df):
        return Difference(difference, math.nan, math.nan, df, math.nan, n, n_baseline, paired, test)
    se = math.sqrt(variance)
    if se == 0:  # every pair differs by the same amount: no spread to test against
        return Difference(difference, 0.0, 0.0, df, 1.0 if difference == 0 else 0.0, n, n_baseline, paired, test)
    quantile = t_quantile(0.5 + confidence / 2, df)
    p_value = t_two_sided_p(difference / se, df)
    return Difference(difference, quantile * se, se, df, p_value, n, n_baseline, paired, test)


def paired_difference(values, baseline, confidence: float = 0.95, test: str = "paired t") -> Difference:
    """The paired t-interval of values[i] - baseline[i] (n - 1 degrees of freedom): the
    interval of ``scipy.stats.ttest_rel(values, baseline)``."""
    values, baseline = np.asarray(values, dtype=float), np.asarray(baseline, dtype=float)
    if values.shape != baseline.shape:
        raise ValueError(f"paired values need equal lengths, got {len(values)} and {len(baseline)}")
    n = len(values)
    differences = values - baseline
    mean = float(differences.mean()) if n else math.nan
    if n < 2:
        return _difference(mean, math.nan, math.nan, n, n, True, test, confidence)
    return _difference(mean, float(differences.var(ddof=1)) / n, float(n - 1), n, n, True, test, confidence)


def welch_difference(values, baseline, confidence: float = 0.95, test: str = "Welch t") -> Difference:
    """mean(values) - mean(baseline) with Welch's interval: variance s1²/n1 + s2²/n2,
    Welch-Satterthwaite degrees of freedom (the interval of
    ``scipy.stats.ttest_ind(values, baseline, equal_var=False)``)."""
    values, baseline = np.asarray(values, dtype=float), np.asarray(baseline, dtype=float)
    n, m = len(values), len(baseline)
    mean = float(values.mean() - baseline.mean()) if n and m else math.nan
    if n < 2 or m < 2:
        return _difference(mean, math.nan, math.nan, n, m, False, test, confidence)
    parts = [(float(values.var(ddof=1)) / n, float(n - 1)), (float(baseline.var(ddof=1)) / m, float(m - 1))]
    variance = sum(v for v, _ in parts)
    return _difference(mean, variance, welch_satterthwaite(parts), n, m, False, test, confidence)


def compare_by_seed(values: dict, baseline: dict, paired: bool, why_not: str = "") -> Difference:
    """A method's per-seed values against the baseline's (``{seed: value}``).

    ``paired`` (the runs of one seed share what the seed fixes, e.g. their data order)
    and at least 2 seeds in common: the paired t-interval over the common seeds of
    value[s] - baseline[s] (k - 1 df). Otherwise Welch over all seeds of each;
    ``why_not`` says why it was not paired."""
    common = sorted(set(values) & set(baseline))
    if paired and len(common) >= 2:
        return paired_difference([values[s] for s in common], [baseline[s] for s in common], test="paired t over seeds")
    reason = why_not or ("seeds not shared" if paired else "")
    return welch_difference(list(values.values()), list(baseline.values()),
                            test="Welch over seeds" + (f" (not paired: {reason})" if reason else ""))
