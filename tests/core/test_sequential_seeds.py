"""What the runner of sequential seeds adds to the rule of harness/sequential.py (whose own
tests are tests/core/test_sequential.py): the same spending applied to claims (their p-values at
each look, ``harness.decision_cost.simulate_claim``), measured on simulated suites, the
expected seeds at the null and at the alternative printed (`pytest -s`), and the replay on
the committed Multi-MNIST records (benchmarks/sequential_replay.py).

Measured (20,000 suites, a one-part not-worse claim, truth on the margin): with the z
boundaries' nominal levels each one-sided error was 5.2-5.9% (looks every 1 or 2 seeds from
2 or 3 seeds); with the levels spent on the t statistics (``harness.sequential_t``)
4.7-5.2%. Five claims on their margins: Holm afresh at each look 5.6%, the sequential Holm
4.8%. Looking at a fixed 5% after every round instead: 11-18%.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from harness import claims
from harness.decision_cost import simulate_claim
from harness.sequential import boundaries, decide, rounds
from harness.sequential_t import sequential_holm, t_levels
from harness.tost import REFUTED, SUPPORTED, region_p_values

SUITES = 20000
MARGIN = 1.0
ALPHA = 0.05
SCHEDULES = [rounds(3, 1, 10), rounds(3, 2, 10), rounds(2, 2, 20), rounds(5, 5, 20)]
BOUND = ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / SUITES)  # alpha and two Monte Carlo s.e.


def claim_draws(truth: float, seeds: int, parts: int = 1, seed: int = 0, shared: float = 0.0):
    """(suites, seeds, parts) per-seed differences of a claim's parts (sd 1), the parts
    sharing ``shared`` of their variance (one side common to all, as unitary is)."""
    rng = np.random.default_rng(seed)
    common = rng.standard_normal((SUITES, seeds, 1))
    own = rng.standard_normal((SUITES, seeds, parts))
    return truth + math.sqrt(shared) * common + math.sqrt(1 - shared) * own


def replay_module():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "sequential_replay.py"
    spec = importlib.util.spec_from_file_location("sequential_replay", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_expected_seeds_at_the_null_and_the_alternative_are_below_max_seeds(capsys):
    lines = replay_module().expected_seeds_table(SCHEDULES, 4000)
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    for line, looks in zip(lines[1:], SCHEDULES):
        figures = [float(x) for part in line.split("|")[1:] for x in part.split(",")]
        assert all(looks[0] <= figure <= looks[-1] for figure in figures)
        assert figures[3] < looks[-1] - 1  # a true claim mostly stops early
        assert figures[3] < figures[2]  # sooner than at its margin


@pytest.mark.parametrize("looks", SCHEDULES + [rounds(2, 1, 10)], ids=lambda looks: "-".join(map(str, looks)))
def test_a_claim_on_its_margin_is_wrongly_decided_at_most_alpha_of_the_time(looks):
    _, code, _ = simulate_claim(claim_draws(-MARGIN, looks[-1], seed=len(looks)), looks, -MARGIN, math.inf)
    assert np.mean(code == SUPPORTED) <= BOUND and np.mean(code == REFUTED) <= BOUND
    # several parts, one on its margin, all sharing a side: supported wrongly no more often
    draws = claim_draws(0.0, looks[-1], parts=4, seed=7, shared=0.5)
    draws[:, :, 0] -= MARGIN
    _, code, _ = simulate_claim(draws, looks, -MARGIN, math.inf)
    assert np.mean(code == SUPPORTED) <= BOUND


def test_the_z_boundaries_levels_were_liberal_for_a_paired_t_with_few_seeds():
    """What ``harness.sequential_t`` fixes: the same claim against the z boundaries' nominal levels."""
    looks = rounds(2, 1, 10)
    draws = claim_draws(-MARGIN, 10, seed=len(looks))[:, :, 0]
    p_support = np.stack([region_p_values(draws[:, :k].mean(axis=1), draws[:, :k].std(axis=1, ddof=1) / math.sqrt(k),
                                          k - 1.0, -MARGIN, math.inf)[0] for k in looks], axis=1)
    z_levels = special.ndtr(-boundaries([k / 10 for k in looks], ALPHA))
    _, code, _ = decide(p_support, np.ones_like(p_support), np.zeros_like(p_support, dtype=bool), z_levels, True)
    assert np.mean(code == SUPPORTED) > BOUND
    _, code, _ = decide(p_support, np.ones_like(p_support), np.zeros_like(p_support, dtype=bool),
                        t_levels(looks, 10), True)
    assert np.mean(code == SUPPORTED) <= BOUND


def test_claims_on_their_margins_share_alpha_by_the_sequential_holm():
    looks, claims_count = rounds(3, 1, 10), 5
    p_support = [np.stack([region_p_values(d[:, :k].mean(axis=1), d[:, :k].std(axis=1, ddof=1) / math.sqrt(k),
                                           k - 1.0, -MARGIN, math.inf)[0] for k in looks], axis=1)
                 for d in (claim_draws(-MARGIN, 10, seed=100 + i)[:, :, 0] for i in range(claims_count))]
    at = [tuple(range(len(looks)))] * claims_count
    rejected = sequential_holm(p_support, [looks] * claims_count, at, 10, ALPHA)
    assert np.mean((rejected >= 0).any(axis=1)) <= BOUND
    # a true claim (far inside its region) is supported, and its alpha passes to the others
    p_support[0] = np.zeros_like(p_support[0])
    rejected = sequential_holm(p_support, [looks] * claims_count, at, 10, ALPHA)
    assert np.all(rejected[:, 0] == 0) and np.mean((rejected[:, 1:] >= 0).any(axis=1)) <= BOUND


def test_looking_at_a_fixed_five_percent_after_every_round_would_not_hold_it():
    looks = rounds(3, 1, 10)
    draws = claim_draws(-MARGIN, 10, seed=3)[:, :, 0]
    p_support = np.stack([region_p_values(draws[:, :k].mean(axis=1), draws[:, :k].std(axis=1, ddof=1) / math.sqrt(k),
                                          k - 1.0, -MARGIN, math.inf)[0] for k in looks], axis=1)
    _, naive, _ = decide(p_support, np.ones_like(p_support), np.zeros_like(p_support, dtype=bool),
                         np.full(len(looks), 0.05), True)
    assert np.mean(naive == SUPPORTED) > 0.1
    _, code, _ = simulate_claim(draws[:, :, None], looks, -MARGIN, math.inf)
    assert np.mean(code == SUPPORTED) < np.mean(naive == SUPPORTED) / 1.5


def test_the_simulated_claim_tests_each_look_as_the_reports_claims_do():
    draws = claim_draws(-0.3, 8, parts=2, seed=11)[:40]
    for row in draws:
        for k in (3, 8):
            parts = [claims.not_worse({s: float(row[s, j]) for s in range(k)}, {s: 0.0 for s in range(k)}, MARGIN)
                     for j in range(2)]
            whole = claims.intersection("both", parts)
            x = row[None, :k]
            p_support, p_refute = region_p_values(x.mean(axis=1), x.std(axis=1, ddof=1) / math.sqrt(k), k - 1.0,
                                                  -MARGIN, math.inf)
            assert whole.p_value == pytest.approx(p_support.max(), rel=1e-9)
            assert whole.p_refute == pytest.approx(min(1.0, 2 * p_refute.min()), rel=1e-9)


def test_the_replay_on_the_committed_multi_mnist_records_agrees_with_all_ten_seeds(capsys):
    replay_module().main(["--first", "3", "--step", "1", "--expected-suites", "0"])
    out = capsys.readouterr().out
    assert "Replay of 120 committed runs" in out
    assert out.count(": the same") == 2 and "DIFFERENT" not in out
    assert "unitary-matches-or-beats-the-smtos (12 cells, 11 parts, 1 claim cell: multi_mnist): supported" in out
    assert "runs: 96 of 120 (24 saved, 20%)" in out
