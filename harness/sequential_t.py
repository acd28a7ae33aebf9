"""The group-sequential levels of a one-sample t-test (a claim's paired parts), where the
z boundaries of ``harness.sequential`` would be liberal.

Comparing the t p-value of look j (df k_j - 1) with the z boundary's nominal level
1 - Phi(c_j) keeps each look's marginal error exact, but the t statistics of successive
looks are less correlated than the canonical sqrt(k_i / k_j): each look re-estimates the
variance from few seeds. Less overlap between the looks' rejections means more first
crossings, and the spending function's increments are exceeded: measured over 40,000
suites, one part on its margin, 5.5-5.6% instead of 5% with looks every seed from 2 or 3
seeds (5.1-5.3% with rounds of 2 or 5 seeds).

Here the spending is done on the t statistics themselves. Under a null on the region's
edge the sequence T_1, ..., T_J of paired t statistics is pivotal: its law depends on the
seed counts k_j only, not on the variance. Look j's critical value c_j solves
    P(T_j >= c_j, no earlier crossing) = alpha(t_j) - alpha(t_{j-1}),
written as P(T_j >= c_j) - P(T_j >= c_j, an earlier crossing): the first term is the
exact t(k_j - 1) tail, the second (the overlap, zero up to Monte Carlo error while the
levels are tiny) is counted on ``PATHS`` simulated null sequences drawn from a fixed
seed, so the levels are the same on every run. The look's nominal level is the t tail
at c_j: a p-value at most it crosses.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import optimize, special

from harness.spending import obrien_fleming_spending

PATHS = 200_000  # simulated null sequences: the overlap's Monte Carlo s.e. is below 4e-4 per look
SEED = 20240519


def _critical(statistics: np.ndarray, crossed: np.ndarray, df: float, target: float) -> float:
    """c with P(T >= c) - (share of the simulated paths crossed earlier with T >= c) = target."""
    if target <= 0:
        return math.inf
    earlier = np.sort(statistics[crossed])
    paths = len(statistics)

    def first_crossing(c: float) -> float:
        overlap = (len(earlier) - np.searchsorted(earlier, c, side="left")) / paths
        return float(special.stdtr(df, -c)) - overlap - target

    plain = -float(special.stdtrit(df, target))  # the t quantile without overlap (precise for tiny targets)
    if first_crossing(plain) >= 0:
        return plain
    step = 0.25  # the overlap lowers the critical value: bracket below the plain quantile
    while first_crossing(plain - step) <= 0:
        step *= 2
    return float(optimize.brentq(first_crossing, plain - step, plain, xtol=1e-10))


@lru_cache(maxsize=256)
def _levels(looks: tuple, max_seeds: int, alpha: float) -> tuple:
    spent = obrien_fleming_spending(np.asarray(looks, dtype=float) / max_seeds, alpha)
    rng = np.random.default_rng(SEED)
    total, squares = np.zeros(PATHS), np.zeros(PATHS)
    crossed = np.zeros(PATHS, dtype=bool)
    levels, previous = [], 0
    for j, k in enumerate(looks):
        new = rng.standard_normal((PATHS, k - previous))
        total += new.sum(axis=1)
        squares += (new * new).sum(axis=1)
        mean = total / k
        sd = np.sqrt(np.maximum(squares - k * mean * mean, 0.0) / (k - 1))
        statistic = mean / (sd / math.sqrt(k))
        c = _critical(statistic, crossed, k - 1.0, float(spent[j] - (spent[j - 1] if j else 0.0)))
        levels.append(float(special.stdtr(k - 1.0, -c)))
        crossed |= statistic >= c
        previous = k
    return tuple(levels)


def t_levels(looks, max_seeds: int, alpha: float = 0.05) -> np.ndarray:
    """Each look's nominal one-sided level for the p-value of a paired t-test on the
    k_j seeds of look j (``looks``: increasing seed counts from 2 up to ``max_seeds``),
    spending alpha by the Lan-DeMets O'Brien-Fleming-type function over k_j / max_seeds."""
    looks = tuple(int(k) for k in looks)
    if looks[0] < 2 or any(b <= a for a, b in zip(looks, looks[1:])) or looks[-1] > max_seeds:
        raise ValueError(f"looks need increasing seed counts from 2 up to max_seeds {max_seeds}, got {list(looks)}")
    return np.array(_levels(looks, int(max_seeds), float(alpha)))


def sequential_holm(p_values: list, seeds: list, at: list, max_seeds: int, alpha: float = 0.05) -> np.ndarray:
    """Holm over a family of sequentially tested claims (Maurer and Bretz's graphical
    procedure with equal weights). Claim i's p-values ``p_values[i]`` (suites, its looks)
    come at its looks with ``seeds[i]`` seeds, taken at the family's looks ``at[i]``
    (increasing integers). At each of the family's looks, a claim not yet rejected is
    rejected when its p is at most its look's level under the spending of alpha / (the
    claims not yet rejected); rejecting one raises the others' share, and the look is
    tested again. A first wrong rejection needs some true claim to cross its boundary at
    alpha / (the number of true claims) or less, so the family-wise error stays at alpha.
    (Holm applied afresh at each look, the levels of alpha divided instead of the
    spending of alpha / m, would not hold it: 5.6-6.3% measured with 5-10 claims.)
    Returns (suites, claims): the index of the claim's own look where it is rejected, -1 never."""
    claims = len(p_values)
    suites = np.asarray(p_values[0]).shape[0] if claims else 1
    rejected = np.full((suites, claims), -1)
    levels = {}
    for look in sorted({g for family_looks in at for g in family_looks}):
        while True:
            remaining = np.maximum((rejected < 0).sum(axis=1), 1)
            crossing = np.zeros((suites, claims), dtype=bool)
            for i in range(claims):
                if look not in at[i]:
                    continue
                j = list(at[i]).index(look)
                for count in np.unique(remaining):
                    if (i, count) not in levels:
                        levels[i, count] = t_levels(seeds[i], max_seeds, alpha / count)
                    share = remaining == count
                    crossing[share, i] = np.asarray(p_values[i])[share, j] <= levels[i, count][j]
            crossing &= rejected < 0
            if not crossing.any():
                break
            rejected[crossing] = [list(at[i]).index(look) for i in np.nonzero(crossing)[1]]
    return rejected
