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
    if interval is None:
        return 0.0, "no interval reported: se 0"
    if kind == "sem":
        return interval, "sem"
    if kind == "ci95":
        if n and n > 1:
            return interval / float(stats.t.ppf(0.975, n - 1)), f"ci95 / t(0.975, {n - 1})"
        return interval / Z95, "ci95 / 1.96 (n unknown)"
    if kind == "std":
        if n:
            return interval / math.sqrt(n), f"std / sqrt({n})"
        return interval, "std taken as se (n unknown)"
    raise ValueError(f"unknown interval kind {kind!r}")


def agreement(ours: float, se_ours: float, reported: float, se_reported: float) -> tuple[float, float, bool]:
    """(difference, bound, agrees): agrees when |ours - reported| <= 1.96 sqrt(se_ours^2 + se_reported^2)."""
    difference = ours - reported
    bound = Z95 * math.sqrt(se_ours ** 2 + se_reported ** 2)
    return difference, bound, abs(difference) <= bound
