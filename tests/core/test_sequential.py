"""Sequential seeds: the Lan-DeMets boundaries against published values and scipy's
multivariate normal, and the sequential rule's wrong verdicts over simulated suites."""
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.reproduction import OurSide, ReportedSide, our_side, reported_side
from harness.sequential import (
    CONTINUE,
    FLOOR,
    boundaries,
    crossing_probabilities,
    decide,
    look_p_values,
    obrien_fleming_spending,
    plan_sequential,
    rounds,
    sequential_reproduction,
    simulate_sequential,
)
from harness.simulation import Scenario, simulate
from harness.tost import REFUTED, SUPPORTED

ALPHA = 0.05
SUITES = 4000
EQUAL_FIVE = np.arange(1, 6) / 5


def test_boundaries_match_published_lan_demets_obrien_fleming():
    # Jennison & Turnbull (2000): 5 equal looks, two-sided 5% (one-sided 2.5% per side)
    published = [4.877, 3.357, 2.680, 2.290, 2.031]
    assert boundaries(EQUAL_FIVE, 0.025) == pytest.approx(published, abs=1.5e-3)
    assert obrien_fleming_spending(1.0, 0.05) == pytest.approx(0.05)


def test_crossing_probabilities_of_classic_designs():
    classic_obf = [4.562, 3.226, 2.634, 2.281, 2.040]
    assert crossing_probabilities(classic_obf, EQUAL_FIVE).sum() == pytest.approx(0.025, abs=3e-4)
    assert crossing_probabilities([2.413] * 5, EQUAL_FIVE).sum() == pytest.approx(0.025, abs=3e-4)  # Pocock
    # five looks at a fixed one-sided 1.96: 7.1% (Armitage et al.: 14% two-sided), not 2.5%
    assert crossing_probabilities([1.96] * 5, EQUAL_FIVE).sum() == pytest.approx(0.0709, abs=1e-3)


def test_boundaries_at_unequal_looks_agree_with_scipy_multivariate_normal():
    fractions = np.array([0.2, 0.3, 0.5, 0.7, 1.0])
    bounds = boundaries(fractions, ALPHA)
    correlation = np.sqrt(np.minimum.outer(fractions, fractions) / np.maximum.outer(fractions, fractions))
    never = scipy_stats.multivariate_normal.cdf(bounds, np.zeros(5), correlation, abseps=1e-7, releps=1e-7,
                                                rng=np.random.default_rng(0))
    assert 1 - never == pytest.approx(ALPHA, abs=3e-4)
    spent = np.cumsum(crossing_probabilities(bounds, fractions))
    assert spent == pytest.approx(obrien_fleming_spending(fractions, ALPHA), abs=1e-6)
    with pytest.raises(ValueError):
        boundaries([0.5, 0.4, 1.0])


SCENARIOS = {
    "one-model, sigma 0.7, margin 3": (Scenario(0.7, 0.2, None, 0.61 / 1.96), 3.0),
    "one-model, sigma 2.5, margin 8": (Scenario(2.5, 0.2, None, 0.61 / 1.96), 8.0),
    "3-seed paper, sigma 0.7, margin 2.5": (Scenario(0.7, 0.2, 3), 2.5),
    "5-seed paper, sigma 2.5, margin 5": (Scenario(2.5, 0.2, 5), 5.0),
    "10-seed paper, sigma 2.5, margin 3": (Scenario(2.5, 0.2, 10), 3.0),
}
SCHEDULES = [rounds(2, 1, 10), rounds(3, 2, 10), rounds(2, 2, 20)]


def bound(n: int) -> float:
    return ALPHA + 2.2 * math.sqrt(ALPHA * (1 - ALPHA) / n)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sequential_wrong_verdicts_stay_at_alpha(name):
    scenario, margin = SCENARIOS[name]
    for looks in SCHEDULES:
        suites = simulate(replace(scenario, truth=margin), looks[-1], SUITES, np.random.default_rng(7))
        _, code, _ = simulate_sequential(suites, looks, margin, ALPHA)
        assert np.mean(code == SUPPORTED) <= bound(SUITES), looks
        assert np.mean(code == REFUTED) <= bound(SUITES), looks


def test_looking_at_five_percent_after_every_round_would_not():
    """The same looks tested at a fixed 5% each time: "reproduced" wrong far too often."""
    scenario, margin = SCENARIOS["3-seed paper, sigma 0.7, margin 2.5"]
    looks = rounds(2, 1, 20)
    suites = simulate(replace(scenario, truth=margin), 20, SUITES, np.random.default_rng(8))
    values = [look_p_values(suites.ours(k), suites.reported, margin, ALPHA, 0.8, False) for k in looks]
    p_support, p_refute, floor_hit = (np.stack([v[i] for v in values], axis=1) for i in range(3))
    _, naive, _ = decide(p_support, p_refute, floor_hit, np.full(len(looks), ALPHA), True)
    assert np.mean(naive == SUPPORTED) > 0.07


def test_an_exact_reproduction_is_mostly_decided_early_with_fewer_seeds_than_the_fixed_rule():
    scenario, margin = SCENARIOS["3-seed paper, sigma 0.7, margin 2.5"]
    plan = plan_sequential(scenario, margin, rounds(2, 1, 10), suites=SUITES)
    assert plan.p_reproduced > 0.75 and plan.expected_seeds < 7 and plan.worst_case_seeds == 10
    assert plan.p_reproduced + plan.p_not_reproduced + plan.p_inconclusive == pytest.approx(1)
    assert plan == plan_sequential(scenario, margin, rounds(2, 1, 10), suites=SUITES)  # seeded


def test_a_margin_no_seed_count_can_decide_gets_no_more_seeds():
    scenario = Scenario(2.5, 0.2, None, 0.61 / 1.96)  # smallest decidable margin about 7.4
    plan = plan_sequential(scenario, 3.0, rounds(3, 1, 10), suites=SUITES)
    assert plan.p_floor > 0.8 and plan.expected_seeds < 4


def test_decision_function_matches_the_simulated_rule():
    scenario, margin = SCENARIOS["one-model, sigma 0.7, margin 3"]
    looks = rounds(2, 1, 10)
    suites = simulate(scenario, 10, 200, np.random.default_rng(9))
    look, code, reason = simulate_sequential(suites, looks, margin)
    words = {SUPPORTED: "reproduced", REFUTED: "not reproduced", 0: "inconclusive"}
    paper = suites.reported
    for row in range(60):
        history = []
        for k in looks:
            ours = suites.ours(k)
            history.append(OurSide(float(ours.mean[row]), k, float(ours.seed_variance[row]),
                                   float(ours.shared_variance[row]), ours.shared_df, ours.units))
            verdict = sequential_reproduction(
                history, ReportedSide(float(paper.value[row]), float(paper.se[row]), paper.df, paper.covers, ""),
                margin, 10)
            if verdict.verdict is not None:
                break
        assert verdict.look == look[row] + 1 and verdict.seeds == looks[look[row]]
        assert verdict.verdict == words[int(code[row])]
        assert (verdict.reason == "cannot be decided at this margin") == (reason[row] == FLOOR)
        assert len(verdict.boundaries) == verdict.look


def test_sequential_reproduction_reports_its_boundary_and_continues():
    paper = reported_side(70.0, 0.5, "std", 5)
    rng = np.random.default_rng(10)
    means = 70 + rng.normal(0, 0.7, 10)
    first = sequential_reproduction([our_side(seed_means=means[:3])], paper, margin=2.0, max_seeds=10)
    assert first.verdict is None and first.reason == "continue" and first.look == 1
    assert first.levels[0] == pytest.approx(scipy_stats.norm.sf(first.boundaries[0]))
    assert first.boundaries[0] == pytest.approx(boundaries([0.3], ALPHA)[0])
    last = sequential_reproduction([our_side(seed_means=means[:k]) for k in (3, 6, 10)], paper, 0.05, 10)
    assert last.verdict == "inconclusive" and last.reason in ("max seeds reached", "cannot be decided at this margin")
    with pytest.raises(ValueError, match="looks"):
        sequential_reproduction([our_side(seed_means=means[:1])], paper, 2.0, 10)


def test_decide_keeps_undecided_suites_going():
    _, code, reason = decide(np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]]), np.array([[False, False]]),
                             np.array([0.001, 0.01]), last_is_max=False)
    assert code[0] == 0 and reason[0] == CONTINUE


def test_benchmark_prints_one_row_per_setting_and_schedule():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "verdict_rules.py"), "--suites", "300"],
                          capture_output=True, text=True, check=True, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)})
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "paper" in line]
    assert len(rows) == 15 and all(row.count("|") == 11 for row in rows)
