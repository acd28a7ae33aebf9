"""How many seeds a reproduction verdict needs: the variance of ours - reported as a
function of our number of seeds k, the power of the equivalence test, and its floor.

    Var(ours - reported | k) = sigma^2 * (1/k + paper_draws) + sum of the fixed parts

sigma^2 is the variance of one seed's mean (estimated by our seeds' s^2, k - 1 df);
paper_draws is 1 when the paper reports ONE trained model (one draw of seed variance its
± does not cover), else 0; the fixed parts (the test-set error our seeds share, the
reported ±) do not shrink with more seeds. They put a floor under the standard error: a
margin below (t(1 - alpha, df_floor) + z(1 - beta/2)) * se_floor cannot be decided at
power 1 - beta by any number of seeds (TOST at a true difference 0 decides "reproduced"
with power about 2 Phi(delta/se - t) - 1).

The seeds needed are the smallest k whose power reaches the target, the power computed
exactly under this model (not by the normal approximation, which promises 80% at k where
the t-test, with few seeds' df, has far less): the seed variance estimate follows
sigma^2 chi2(k-1)/(k-1) and is integrated over on a grid of its quantiles; the fixed
parts are taken at their values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

from harness.tost import conservative_df, t_quantile

QUANTILE_GRID = 512  # midpoints of the chi-square quantiles: power to about 1e-3 (tested)


@lru_cache(maxsize=2048)
def _chi2_over_df(df: int) -> np.ndarray:
    """chi2(df) / df at the midpoints of QUANTILE_GRID equal-probability bins."""
    return special.chdtri(df, (np.arange(QUANTILE_GRID) + 0.5) / QUANTILE_GRID) / df


@dataclass(frozen=True)
class VarianceModel:
    """Var(ours - reported) as a function of our seeds (see the module)."""

    seed_variance: float  # sigma^2 of one seed's mean (our s^2)
    paper_draws: int = 0  # 1 for a one-model paper
    fixed: tuple = ()  # (variance, df) parts that more seeds do not shrink

    def parts(self, seeds, seed_variance=None) -> list:
        """The (variance, df) parts with ``seeds`` seeds (arrays broadcast); the seeds'
        part, ours and the paper's draw, is ONE estimate with seeds - 1 df."""
        variance = self.seed_variance if seed_variance is None else seed_variance
        seeds = np.asarray(seeds, dtype=float)
        return [(variance * (1 / seeds + self.paper_draws), seeds - 1), *self.fixed]

    def floor(self):
        """(se, df) with infinitely many seeds: what the paper's side and the shared test
        set leave (plus sigma^2 for a one-model paper, then known exactly). Arrays when
        the fields are."""
        parts = [(self.seed_variance * self.paper_draws, math.inf), *self.fixed]
        return np.sqrt(sum(np.asarray(v, dtype=float) for v, _ in parts)), conservative_df(parts)


def smallest_margin(model: VarianceModel, alpha: float = 0.05, power: float = 0.8):
    """The smallest margin any number of seeds can decide with the target power:
    (t(1 - alpha, df_floor) + z(1 - beta/2)) * se_floor (an array when the model's fields are)."""
    se, df = model.floor()
    return (t_quantile(1 - alpha, df) + special.ndtri(1 - (1 - power) / 2)) * se


def reproduction_power(margin: float, seeds: int, model: VarianceModel, truth: float = 0.0,
                       alpha: float = 0.05) -> float:
    """P(the (1 - 2 alpha) interval of ours - reported lies inside (-margin, margin)) with
    ``seeds`` seeds when the true difference is ``truth``: exact under the model for
    normal seed means (the seed mean and s^2 are independent; s^2 is integrated over)."""
    return region_power(-margin, margin, seeds, model, truth, alpha)


def region_power(low: float, high: float, seeds: int, model: VarianceModel, truth: float = 0.0,
                 alpha: float = 0.05) -> float:
    """P(the (1 - 2 alpha) interval lies inside (low, high)), either end possibly infinite:
    the power of any claim of ``harness.tost`` (a one-sided claim has one infinite end)."""
    if seeds < 2:
        return 0.0
    sigma2 = model.seed_variance
    s2 = sigma2 * _chi2_over_df(int(seeds) - 1) if sigma2 > 0 else np.zeros(1)
    parts = model.parts(seeds, s2)
    se_hat = np.sqrt(sum(v for v, _ in parts))
    half = t_quantile(1 - alpha, conservative_df(parts)) * se_hat
    sd = math.sqrt(sum(float(v) for v, _ in model.parts(seeds)))
    if sd == 0:
        return float(np.mean((truth - half > low) & (truth + half < high)))
    inside = special.ndtr((high - half - truth) / sd) - special.ndtr((low + half - truth) / sd)
    return float(np.mean(np.maximum(inside, 0.0)))


def seeds_for_region(low: float, high: float, model: VarianceModel, truth: float = 0.0, alpha: float = 0.05,
                     power: float = 0.8, max_seeds: int = 1000) -> int | None:
    """The smallest k >= 2 (seeds a side) whose ``region_power`` at ``truth`` reaches
    ``power``; None when ``truth`` is not inside the region or more than ``max_seeds``
    would be needed (the power is non-decreasing in k: a doubling search, then bisection)."""
    if not low < truth < high:
        return None

    def enough(k):
        return region_power(low, high, k, model, truth, alpha) >= power

    low_k, high_k = 1, 2
    while not enough(high_k):
        if high_k == max_seeds:
            return None
        low_k, high_k = high_k, min(2 * high_k, max_seeds)
    while high_k - low_k > 1:
        middle = (low_k + high_k) // 2
        low_k, high_k = (low_k, middle) if enough(middle) else (middle, high_k)
    return high_k


FLOOR_CONFIDENCE = 0.9


def floor_forbids(margin, model: VarianceModel, seeds, alpha: float = 0.05, power: float = 0.8):
    """True where no number of seeds can decide the margin: the smallest decidable margin
    exceeds it even with the seed variance at its 90% LOWER confidence limit
    s^2 (k - 1) / chi2(k - 1, 0.9) (it matters for a one-model paper, whose floor holds a
    seed draw). On the point estimate, a cell with 2 seeds (1 df) would often be given up
    wrongly: measured, a one-model paper (sigma 0.7, margin 3) stopped at the floor 29% of
    the time with the point estimate, 4% with the 90% limit. Arrays broadcast."""
    seeds = np.asarray(seeds, dtype=float)
    lower = model.seed_variance * (seeds - 1) / special.chdtri(seeds - 1, 1 - FLOOR_CONFIDENCE)
    return smallest_margin(VarianceModel(lower, model.paper_draws, model.fixed), alpha, power) > margin


@dataclass(frozen=True)
class SeedPlan:
    """The seeds that decide "reproduced" with the target power when the truth is 0."""

    seeds: int | None  # None: no number up to max_seeds (see reason)
    power: float  # at ``seeds`` (nan when None)
    normal_seeds: int | None  # the normal approximation's answer (a lower bound)
    floor_se: float  # the se with infinitely many seeds
    smallest_margin: float  # the smallest margin any number of seeds can decide
    reason: str  # "" when seeds is set, else why not (no number of seeds at the estimated variance, or more than N)


def seeds_needed(margin: float, model: VarianceModel, alpha: float = 0.05, power: float = 0.8,
                 max_seeds: int = 1000) -> SeedPlan:
    """The smallest k >= 2 whose ``reproduction_power`` at a true difference 0 reaches
    ``power``. The normal approximation (delta / se(k) >= z(1 - alpha) + z(1 - beta/2),
    se(k) with the true sigma) gives a lower bound to start from; the exact power is
    non-decreasing in k (tested), so the search doubles, then bisects."""
    floor_se = float(model.floor()[0])
    smallest = float(smallest_margin(model, alpha, power))
    z_sum = float(special.ndtri(1 - alpha)) + float(special.ndtri(1 - (1 - power) / 2))
    room = (margin / z_sum) ** 2 - floor_se ** 2
    if room <= 0 or margin < smallest:
        return SeedPlan(None, math.nan, None, floor_se, smallest, "no number of seeds at the estimated seed variance")
    normal = max(2, math.ceil(model.seed_variance / room)) if model.seed_variance > 0 else 2

    def enough(k):
        return reproduction_power(margin, k, model, alpha=alpha) >= power

    low, high = min(normal, max_seeds), min(normal, max_seeds)
    while not enough(high):  # doubling from the normal answer brackets the exact one
        if high == max_seeds:
            return SeedPlan(None, math.nan, normal, floor_se, smallest, f"more than {max_seeds} seeds")
        low, high = high, min(2 * high, max_seeds)
    while high - low > 1:  # power(low) < target <= power(high), unless low == high
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return SeedPlan(high, reproduction_power(margin, high, model, alpha=alpha), normal, floor_se, smallest, "")
