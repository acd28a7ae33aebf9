"""Sequential seeds: the reproduction verdict decided after each round of seeds, without
the inflated error of testing again and again at 5%.

Rule (printed under tables): the largest number of seeds K is fixed before the first look;
looks come after k_1 < k_2 < ... <= K seeds, at any times (each at least 2 seeds). Each of
the two one-sided tests of the equivalence verdict spends its alpha along the information
fraction t = k / K by the Lan-DeMets O'Brien-Fleming-type function
alpha(t) = 2 - 2 Phi(z(1 - alpha/2) / sqrt(t)); look j's z boundary c_j solves
P(Z_1 < c_1, ..., Z_{j-1} < c_{j-1}, Z_j >= c_j) = alpha(t_j) - alpha(t_{j-1}) for the
canonical joint normal statistics (corr(Z_i, Z_j) = sqrt(t_i / t_j)), computed by the
numerical integration of Armitage, McPherson and Rowe (1969). At look j the verdict rule
of ``harness.reproduction`` runs at the nominal one-sided level a_j = 1 - Phi(c_j) in
place of alpha: the repeated 1 - 2 a_j interval d +- t(1 - a_j, df) se, the t quantile at
the z boundary's level because the variance is estimated from the seeds so far. Then:
- "reproduced" or "not reproduced": stop with it;
- the margin cannot be decided at any number of seeds (the floor, with the seed
  variance at its 90% lower confidence limit: ``harness.seedplan.floor_forbids``): stop,
  "inconclusive": such a cell gets no more seeds;
- K seeds reached: stop, "inconclusive";
- otherwise run the next round.
Why the error holds: each one-sided test crosses its boundaries with probability at most
alpha when its null is true. Fractions by seeds assume Var(ours - reported) falls as 1/k;
the shared test set and the paper's side do not shrink, which makes successive looks
more correlated than assumed, and a higher correlation only lowers the chance of any
crossing (Slepian's inequality): the boundaries are conservative there. The t quantiles
at the boundaries' levels are an approximation, measured by simulation
(``tests/core/test_sequential.py``, ``benchmarks/verdict_rules.py``).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

from harness.reproduction import (
    WORDS,
    OurSide,
    ReportedSide,
    equivalence_p_values,
    variance_model,
)
from harness.seedplan import floor_forbids
from harness.simulation import Scenario, Suites, simulate
from harness.spending import obrien_fleming_spending
from harness.tost import INCONCLUSIVE, REFUTED, SUPPORTED, t_quantile

DECIDED, FLOOR, MAX_SEEDS, CONTINUE = 0, 1, 2, 3
REASONS = {DECIDED: "decided", FLOOR: "cannot be decided at this margin", MAX_SEEDS: "max seeds reached",
           CONTINUE: "continue"}
GRID_STEP = 12  # grid points per sd of the next increment
GRID_REACH = 8.5  # the grid spans +- this many sd of S_j (the mass beyond is below 1e-16)


def _simpson(lower: float, upper: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Points and Simpson weights on [lower, upper], spacing at most ``step``."""
    count = 2 * max(2, math.ceil((upper - lower) / step / 2)) + 1
    points, spacing = np.linspace(lower, upper, count, retstep=True)
    weights = np.full(count, 2.0)
    weights[1::2] = 4.0
    weights[[0, -1]] = 1.0
    return points, weights * spacing / 3


def _crossing(masses, points, bound_s, sd):
    """P(S_prev + N(0, sd^2) >= bound_s, and no earlier crossing) from the continuation masses."""
    return float(np.sum(masses * special.ndtr((points - bound_s) / sd)))


def _solve_boundary(masses, points, root_t, sd, target) -> float:
    """The z boundary c with crossing probability ``target`` (Newton's method on log
    probability, from the one-look quantile, which lies above the answer)."""
    if target <= 1e-300:
        return math.inf
    c = float(-special.ndtri(target))
    for _ in range(100):
        z = (points - c * root_t) / sd
        probability = float(np.sum(masses * special.ndtr(z)))
        slope = float(np.sum(masses * np.exp(-z * z / 2))) / math.sqrt(2 * math.pi) * root_t / sd
        if probability <= 0 or slope <= 0:
            break
        step = (math.log(probability) - math.log(target)) * probability / slope
        c += step
        if abs(step) < 1e-12:
            break
    return c


def _recursion(fractions, bounds=None, alpha=None):
    """Walk the looks: with ``bounds`` given, the probability of crossing first at each
    look; with ``alpha``, solve the Lan-DeMets boundaries. Returns (bounds, crossings)."""
    fractions = np.asarray(fractions, dtype=float)
    if np.any(np.diff(fractions) <= 0) or fractions[0] <= 0 or fractions[-1] > 1 + 1e-12:
        raise ValueError(f"information fractions must increase within (0, 1], got {fractions.tolist()}")
    spent = obrien_fleming_spending(fractions, alpha) if bounds is None else None
    points, masses = np.zeros(1), np.ones(1)  # S_0 = 0
    previous, solved, crossings = 0.0, [], []
    for j, t in enumerate(fractions):
        sd, root_t = math.sqrt(t - previous), math.sqrt(t)
        if bounds is None:
            target = float(spent[j] - (spent[j - 1] if j else 0.0))
            c = _solve_boundary(masses, points, root_t, sd, target)
        else:
            c = float(bounds[j])
        solved.append(c)
        crossings.append(_crossing(masses, points, c * root_t, sd) if math.isfinite(c) else 0.0)
        if j + 1 < len(fractions):
            step = min(sd, math.sqrt(fractions[j + 1] - t)) / GRID_STEP
            upper = min(c, GRID_REACH) * root_t
            grid, weights = _simpson(-GRID_REACH * root_t, upper, step)
            kernel = np.exp(-0.5 * ((grid[:, None] - points[None, :]) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
            points, masses = grid, weights * (kernel @ masses)
        previous = t
    return np.array(solved), np.array(crossings)


@lru_cache(maxsize=256)
def _boundaries(fractions: tuple, alpha: float) -> tuple:
    return tuple(_recursion(fractions, alpha=alpha)[0])


def boundaries(fractions, alpha: float = 0.05) -> np.ndarray:
    """One-sided z boundaries c_j of the Lan-DeMets O'Brien-Fleming-type spending at the
    given information fractions (increasing, the last at most 1)."""
    return np.array(_boundaries(tuple(float(f) for f in fractions), float(alpha)))


def crossing_probabilities(bounds, fractions) -> np.ndarray:
    """P(the first crossing of the one-sided boundaries is at look j) under the null:
    their sum is the test's error."""
    return _recursion(fractions, bounds=bounds)[1]


def decide(p_support, p_refute, floor_hit, levels, last_is_max: bool):
    """The sequential rule on (suites, looks) arrays of the looks' p-values (NaN where a
    suite has no such look); ``levels``: each look's nominal one-sided level. Returns
    (look index, verdict code, reason code) per suite: the first look that decides, hits
    the floor, or, the last look being K seeds, ends the run; else the last look, CONTINUE."""
    p_support, p_refute = np.atleast_2d(p_support), np.atleast_2d(p_refute)
    floor_hit = np.atleast_2d(np.asarray(floor_hit, dtype=bool))
    suites, looks = p_support.shape
    supported, refuted = p_support <= levels, p_refute <= levels
    stop = supported | refuted | floor_hit
    if last_is_max:
        stop[:, -1] = True
    any_stop = stop.any(axis=1)
    look = np.where(any_stop, np.argmax(stop, axis=1), looks - 1)
    rows = np.arange(suites)
    code = np.where(supported[rows, look], SUPPORTED, np.where(refuted[rows, look], REFUTED, INCONCLUSIVE))
    reason = np.where(code != INCONCLUSIVE, DECIDED, np.where(floor_hit[rows, look], FLOOR,
                      np.where(any_stop, MAX_SEEDS, CONTINUE)))
    return look, code, reason


def look_p_values(ours: OurSide, reported: ReportedSide, margin, alpha, power, same_test_set):
    """(p_support, p_refute, floor hit, se, df) of one look (fields may be arrays)."""
    model = variance_model(ours, reported, same_test_set)
    p_support, p_refute, se, df = equivalence_p_values(ours.mean - reported.value, model, ours.seeds, margin)
    return p_support, p_refute, floor_forbids(margin, model, ours.seeds, alpha, power), se, df


def _check_looks(seeds, max_seeds):
    if any(k < 2 for k in seeds) or any(b <= a for a, b in itertools.pairwise(seeds)) or seeds[-1] > max_seeds:
        raise ValueError(f"looks need increasing seed counts from 2 up to max_seeds {max_seeds}, got {list(seeds)}")


@dataclass(frozen=True)
class SequentialVerdict:
    verdict: str | None  # "reproduced" / "not reproduced" / "inconclusive"; None: run another round
    reason: str  # "decided", "cannot be decided at this margin", "max seeds reached", "continue"
    look: int  # the look that ended it (1-based), else the last look so far
    seeds: int  # the seeds at that look
    looks: tuple  # the seeds at each look
    max_seeds: int
    boundaries: tuple  # each look's z boundary c_j
    levels: tuple  # each look's nominal one-sided level 1 - Phi(c_j)
    difference: float  # ours - reported at that look
    low: float  # the repeated confidence interval at that look: d -+ t(1 - a_j, df) se
    high: float
    p_equivalent: float  # at that look, to compare with its level
    p_different: float


def sequential_reproduction(looks, reported: ReportedSide, margin: float, max_seeds: int, alpha: float = 0.05,
                            power: float = 0.8, same_test_set: bool = False) -> SequentialVerdict:
    """The sequential verdict from ``looks``: our side after each round of seeds so far
    (``OurSide`` of the first k_j seeds, in run order)."""
    seeds = [ours.seeds for ours in looks]
    _check_looks(seeds, max_seeds)
    bounds = boundaries([k / max_seeds for k in seeds], alpha)
    levels = special.ndtr(-bounds)
    values = [look_p_values(ours, reported, margin, alpha, power, same_test_set) for ours in looks]
    p_support, p_refute, floor_hit = (np.array([[float(v[i]) for v in values]]) for i in range(3))
    look, code, reason = (int(x[0]) for x in decide(p_support, p_refute, floor_hit, levels, seeds[-1] == max_seeds))
    difference, se, df = looks[look].mean - reported.value, float(values[look][3]), float(values[look][4])
    half = float(t_quantile(1 - levels[look], df)) * se
    return SequentialVerdict(None if reason == CONTINUE else WORDS[code], REASONS[reason], look + 1, seeds[look],
                             tuple(seeds), max_seeds, tuple(bounds), tuple(levels), difference, difference - half,
                             difference + half, float(p_support[0, look]), float(p_refute[0, look]))


def simulate_sequential(suites: Suites, looks, margin: float, alpha: float = 0.05, power: float = 0.8):
    """The rule on simulated suites: (look index, verdict code, reason code) per suite."""
    max_seeds = suites.seed_means.shape[1]
    _check_looks(list(looks), max_seeds)
    levels = special.ndtr(-boundaries([k / max_seeds for k in looks], alpha))
    values = [look_p_values(suites.ours(k), suites.reported, margin, alpha, power, False) for k in looks]
    p_support, p_refute, floor_hit = (np.stack([np.asarray(v[i]) for v in values], axis=1) for i in range(3))
    return decide(p_support, p_refute, floor_hit, levels, looks[-1] == max_seeds)


@dataclass(frozen=True)
class SequentialPlan:
    looks: tuple
    expected_seeds: float  # mean seeds used over the simulated suites
    worst_case_seeds: int  # the most any simulated suite used (the rule never exceeds max seeds)
    p_reproduced: float
    p_not_reproduced: float
    p_inconclusive: float  # at max seeds or at the floor
    p_floor: float  # stopped because the margin cannot be decided
    suites: int


def plan_sequential(scenario: Scenario, margin: float, looks, alpha: float = 0.05, power: float = 0.8,
                    suites: int = 4000, seed: int = 0) -> SequentialPlan:
    """Expected and worst-case seeds of the sequential rule, by simulating ``suites``
    suites of the scenario (seeded: the same answer every time)."""
    looks = tuple(int(k) for k in looks)
    simulated = simulate(scenario, looks[-1], suites, np.random.default_rng(seed))
    look, code, reason = simulate_sequential(simulated, looks, margin, alpha, power)
    used = np.asarray(looks)[look]
    return SequentialPlan(looks, float(used.mean()), int(used.max()), float(np.mean(code == SUPPORTED)),
                          float(np.mean(code == REFUTED)), float(np.mean(code == INCONCLUSIVE)),
                          float(np.mean(reason == FLOOR)), suites)


def rounds(first: int, step: int, max_seeds: int) -> tuple:
    """Looks after ``first`` seeds, then every ``step`` more, and at ``max_seeds``."""
    looks = list(range(first, max_seeds, step))
    return tuple(looks + [max_seeds])
