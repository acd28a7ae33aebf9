"""Confidence intervals and the agreement rule (see notes in the README's report section)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

Z95 = 1.959963984540054


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
    quantile = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    return Interval(mean, quantile * se, se, n)


def reported_se(interval: float | None, kind: str | None, n: int | None) -> tuple[float, str]:
    """Standard error implied by a reported +- value, and how it was derived."""
    se, rule, _ = reported_error(interval, kind, n)
    return se, rule


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
            return interval / float(stats.t.ppf(0.975, n - 1)), f"ci95 / t(0.975, {n - 1})", df
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


@dataclass(frozen=True)
class Agreement:
    difference: float  # ours - reported
    se: float  # sqrt(se_ours^2 + se_reported^2)
    df: float  # Welch-Satterthwaite degrees of freedom (inf: the normal quantile)
    quantile: float  # t(0.975, df)
    bound: float  # quantile * se
    agrees: bool


def agreement(ours: float, reported: float, seed_se: float = math.nan, seed_df: float = math.inf,
              sample_se: float = 0.0, sample_df: float = math.inf, reported_se: float = 0.0,
              reported_df: float = math.inf) -> Agreement:
    """Does our mean agree with a reported number?

    se_ours^2 = seed_se^2 + sample_se^2: the spread of our seed means (k - 1 df), plus the
    sampling error of the test units (episodes) every seed shares, which that spread does
    not contain (the paper's number came from other episodes). Agreement when
    |ours - reported| <= t(0.975, df) * sqrt(se_ours^2 + se_reported^2), df by
    Welch-Satterthwaite over the three parts."""
    parts = [(seed_se ** 2, seed_df), (sample_se ** 2, sample_df), (reported_se ** 2, reported_df)]
    variance = sum(v for v, _ in parts if not math.isnan(v))
    df = welch_satterthwaite(parts)
    quantile = Z95 if math.isinf(df) else float(stats.t.ppf(0.975, df))
    se = math.sqrt(variance)
    difference = ours - reported
    bound = quantile * se
    return Agreement(difference, se, df, quantile, bound, abs(difference) <= bound if se > 0 else difference == 0)
