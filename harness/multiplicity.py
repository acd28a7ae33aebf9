"""Multiplicity adjustments: Holm's step-down (family-wise error) and Benjamini-Hochberg
(false discovery rate).

They give the same adjusted p-values as ``statsmodels.stats.multitest.multipletests``
(methods "holm" and "fdr_bh") and ``scipy.stats.false_discovery_control`` (tests check
both), in numpy: importing either library costs a report about a second, for a few lines
of arithmetic. NaN p-values (no test) stay NaN and do not count in the family.
"""
from __future__ import annotations

import numpy as np


def _sorted(p_values):
    """The p-values sorted along the last axis (NaN last), the order, and each row's count
    of usable p-values."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, axis=-1, kind="stable")
    return np.take_along_axis(p, order, axis=-1), order, (~np.isnan(p)).sum(axis=-1, keepdims=True)


def _unsort(adjusted, order, p_values) -> np.ndarray:
    result = np.empty_like(adjusted)
    np.put_along_axis(result, order, np.minimum(adjusted, 1.0), axis=-1)
    return np.where(np.isnan(np.asarray(p_values, dtype=float)), np.nan, result)


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values along the last axis (one family per row): sorted ascending,
    p_(i) * (m - i + 1), made non-decreasing by a running maximum, capped at 1. Reject at
    alpha where the adjusted p <= alpha: the family-wise error (the chance of any false
    rejection) is at most alpha under any dependence between the tests."""
    ordered, order, m = _sorted(p_values)
    rank = np.arange(ordered.shape[-1])
    return _unsort(np.fmax.accumulate(ordered * (m - rank), axis=-1), order, p_values)


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) along the last axis: sorted
    ascending, p_(i) * m / i, made non-decreasing by a running minimum from the top,
    capped at 1. Rejecting where q <= level keeps the expected share of false discoveries
    among the rejections at most ``level`` for independent or positively dependent tests."""
    ordered, order, m = _sorted(p_values)
    scaled = ordered * m / np.arange(1, ordered.shape[-1] + 1)
    return _unsort(np.flip(np.fmin.accumulate(np.flip(scaled, -1), axis=-1), -1), order, p_values)
