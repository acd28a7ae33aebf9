"""Claims: each primitive against scipy / statsmodels, and the verdicts' errors over
simulated suites (a suite's family under Holm, claims over several cells, Welch claims
with few seeds)."""
import importlib
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness import claims

ALPHA = 0.05


def bound(n: int) -> float:
    return ALPHA + 2.2 * math.sqrt(ALPHA * (1 - ALPHA) / n)


def seeded(values) -> dict:
    return dict(enumerate(float(v) for v in values))


def test_primitives_against_scipy_and_statsmodels():
    rng = np.random.default_rng(0)
    a = rng.normal(70, 1, 6)
    b = a - 0.3 + rng.normal(0, 0.4, 6)
    A, B = seeded(a), seeded(b)
    tost = scipy_stats.ttest_1samp(a - b, -1.0, alternative="greater").pvalue, scipy_stats.ttest_1samp(
        a - b, 1.0, alternative="less").pvalue
    assert claims.equivalent(A, B, 1.0).p_value == pytest.approx(max(tost))
    shifted = scipy_stats.ttest_1samp(a - b + 0.5, 0, alternative="greater").pvalue
    assert claims.not_worse(A, B, 0.5).p_value == pytest.approx(shifted)
    assert claims.better(A, B).p_value == pytest.approx(scipy_stats.ttest_rel(a, b, alternative="greater").pvalue)
    lower = claims.better(A, B, direction="lower")  # lower is better: A is behind
    assert lower.p_value == pytest.approx(scipy_stats.ttest_rel(a, b, alternative="less").pvalue)
    refuted = claims.better(B, A, margin=0.0)
    assert refuted.p_refute == pytest.approx(scipy_stats.ttest_rel(b, a, alternative="less").pvalue)


def test_equivalence_matches_statsmodels_ttost_paired():
    weightstats = importlib.import_module("statsmodels.stats.weightstats")  # a reference (test extra), not a dependency
    rng = np.random.default_rng(6)
    a = rng.normal(70, 1, 6)
    b = a - 0.3 + rng.normal(0, 0.4, 6)
    ours = claims.equivalent(seeded(a), seeded(b), 1.0).p_value
    assert ours == pytest.approx(weightstats.ttost_paired(a, b, -1.0, 1.0)[0])


def test_cost_ratio_is_a_test_on_log_costs():
    rng = np.random.default_rng(1)
    a, b = 100 * np.exp(rng.normal(0, 0.1, 5)), 60 * np.exp(rng.normal(0, 0.1, 5))
    claim = claims.cost_ratio(seeded(a), seeded(b), 2.0)
    logs = np.log(a) - np.log(b)
    assert claim.estimate == pytest.approx(math.exp(logs.mean()))
    assert claim.p_value == pytest.approx(
        scipy_stats.ttest_1samp(logs, math.log(2.0), alternative="less").pvalue)
    assert claim.verdict == "supported" and claim.region == (0.0, 2.0)
    assert claims.cost_ratio(seeded(a), seeded(b), 1.1).verdict == "refuted"
    assert claims.cost_ratio({0: 1.0}, {0: 2.0}, 2.0).verdict == "no verdict"


def boundary_suite(rng, margin=0.5, ratio=1.5, seeds=5):
    """Six claims whose truth sits on the edge of their region (each would be wrongly
    supported about alpha of the time)."""
    def pair(gap, sd=0.6):
        shared = rng.normal(0, 1, seeds)
        return seeded(70 + gap + shared + rng.normal(0, sd, seeds)), seeded(70 + shared + rng.normal(0, sd, seeds))

    costs = np.exp(rng.normal(0, 0.2, seeds))
    cost_a, cost_b = seeded(100 * ratio * costs * np.exp(rng.normal(0, 0.1, seeds))), seeded(100 * costs)
    return [claims.equivalent(*pair(margin), margin), claims.equivalent(*pair(-margin), margin),
            claims.not_worse(*pair(-margin), margin), claims.better(*pair(0.0)), claims.better(*pair(0.0)),
            claims.cost_ratio(cost_a, cost_b, ratio)]


def test_holm_holds_the_family_wise_error_of_a_suites_claims():
    rng, suites = np.random.default_rng(2), 2000
    raw, adjusted = 0, 0
    for _ in range(suites):
        suite = boundary_suite(rng)
        raw += any(c.verdict == "supported" for c in suite)
        adjusted += any(c.verdict == "supported" for c in claims.family(suite))
    assert adjusted / suites <= bound(suites)
    assert raw / suites > 0.15  # unadjusted, some claim is wrongly supported far more often


def cell_claims(rng, truths, seeds=5, sd=0.5, margin=1.0):
    claims_of_cells = []
    for truth in truths:
        a = rng.normal(0, sd, seeds)
        claims_of_cells.append(claims.equivalent(seeded(a + truth), seeded(np.zeros(seeds)), margin))
    return claims_of_cells


def test_a_claim_over_cells_is_supported_only_when_every_cell_is():
    """Seven cells truly equivalent and one on the margin's edge: the claim over all eight
    is false and must be supported at most alpha of the time; refuted likewise when every
    cell (of four) sits on the edge inside."""
    rng, suites = np.random.default_rng(3), 2000
    supported = refuted = 0
    for _ in range(suites):
        supported += claims.in_every_cell(cell_claims(rng, [0.0] * 7 + [1.0], sd=0.1)).verdict == "supported"
        refuted += claims.in_every_cell(cell_claims(rng, [1.0] * 4)).verdict == "refuted"
    assert supported / suites <= bound(suites)
    assert refuted / suites <= bound(suites)
    eight = claims.in_every_cell(cell_claims(rng, [0.0] * 8, sd=0.1))
    assert eight.verdict == "supported" and len(eight.parts) == 8
    assert eight.p_value == pytest.approx(max(part.p_value for part in eight.parts))


def test_welch_claims_with_few_seeds_keep_their_error():
    """Unpaired runs, 3 seeds a side, unequal spreads, true difference on the margin."""
    rng, suites, margin = np.random.default_rng(4), 4000, 2.0
    wrong = 0
    for _ in range(suites):
        a, b = rng.normal(margin, 0.5, 3), rng.normal(0, 2.0, 3)
        claim = claims.equivalent(seeded(a), {s + 3: float(v) for s, v in enumerate(b)}, margin)
        wrong += claim.verdict == "supported"
    assert wrong / suites <= bound(suites)


def test_not_worse_than_every_other_method():
    rng = np.random.default_rng(5)
    shared = rng.normal(0, 1, 8)
    a = seeded(70 + shared + rng.normal(0, 0.1, 8))
    others = {"B": seeded(70.2 + shared + rng.normal(0, 0.1, 8)), "C": seeded(69 + shared + rng.normal(0, 0.1, 8))}
    claim = claims.not_worse_than_all(a, others, 0.5)
    assert claim.verdict == "supported" and claim.parts[0].claim.startswith("A not worse than B")
    others["D"] = seeded(73 + shared + rng.normal(0, 0.1, 8))
    assert claims.not_worse_than_all(a, others, 0.5).verdict == "refuted"
