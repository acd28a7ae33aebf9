"""Comparisons over seeds: paired t against scipy, Holm over a baseline's family, labels
against the empirical best, and compare's cell verdicts with their false discovery rate,
each rule's errors measured over simulated suites."""
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.comparisons import (
    NOT_SHOWN,
    WITHIN,
    CellPair,
    against_best,
    change_verdicts,
    compare_cells,
    seed_difference,
    with_baseline,
)
from harness.multiplicity import holm
from harness.stats import welch_satterthwaite
from harness.tost import conservative_df, outside_margin_p

ALPHA = 0.05


def bound(rate: float, n: int) -> float:
    return rate + 2.2 * math.sqrt(rate * (1 - rate) / n)


def seeded(values) -> dict:
    return dict(enumerate(float(v) for v in values))


def test_paired_difference_is_scipy_ttest_rel():
    rng = np.random.default_rng(0)
    a = rng.normal(70, 1, 8)
    b = a - 0.4 + rng.normal(0, 0.3, 8)
    ours = seed_difference(seeded(a), seeded(b), paired=True)
    theirs = scipy_stats.ttest_rel(a, b)
    low, high = theirs.confidence_interval(0.95)
    assert ours.paired and ours.p_value == pytest.approx(theirs.pvalue)
    assert (ours.low, ours.high) == pytest.approx((low, high))


def test_welch_difference_keeps_scipy_estimate_with_conservative_df():
    rng = np.random.default_rng(1)
    a, b = rng.normal(70, 1, 3), rng.normal(69, 3, 4)
    ours = seed_difference(seeded(a), {s + 10: v for s, v in seeded(b).items()}, paired=True)
    theirs = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert not ours.paired and ours.difference == pytest.approx(a.mean() - b.mean())
    assert ours.difference / ours.se == pytest.approx(theirs.statistic)
    parts = [(a.var(ddof=1) / 3, 2), (b.var(ddof=1) / 4, 3)]
    assert ours.df == pytest.approx(float(conservative_df(parts)))
    assert ours.df != pytest.approx(welch_satterthwaite(parts))
    assert ours.p_value == pytest.approx(2 * scipy_stats.t.sf(abs(theirs.statistic), ours.df))


def test_baseline_family_is_holm_adjusted_with_wins():
    rng = np.random.default_rng(2)
    shared = rng.normal(0, 1, 10)
    values = {"unitary": seeded(70 + shared)}
    for name, gain in [("nash", 0.6), ("graddrop", 0.1), ("rlw", -0.2)]:
        values[name] = seeded(70 + gain + shared + rng.normal(0, 0.3, 10))
    rows = with_baseline(values, "unitary", paired=True)
    p = [row.p_value for row in rows]
    assert [row.p_holm for row in rows] == pytest.approx(list(holm(p)))
    nash = rows[0]
    assert nash.verdict == "better" and nash.pairs == 10
    assert nash.wins == sum(values["nash"][s] > values["unitary"][s] for s in range(10))
    lower = with_baseline({"a": {0: 1.0, 1: 2.0}, "b": {0: 3.0, 1: 4.1}}, "b", paired=True, direction="lower")
    assert lower[0].verdict in ("better", "indistinguishable") and lower[0].wins == 2
    one = with_baseline({"a": {0: 1.0}, "b": {0: 2.0}}, "b", paired=True)
    assert one[0].verdict == "no verdict"


def simulated_methods(rng, means, seeds=5, seed_sd=1.0, noise=0.4):
    """Runs of one seed share a seed effect (pairing correlation about 0.86)."""
    shared = rng.normal(0, seed_sd, seeds)
    return {name: seeded(mean + shared + rng.normal(0, noise, seeds)) for name, mean in means.items()}


def test_within_delta_of_the_best_labels_keep_the_family_wise_error():
    """True means A = 0, B = C = -delta: B and C are NOT within delta of the best (on the
    edge); the empirical best is often B or C, against which the other looks fine."""
    rng, suites, margin = np.random.default_rng(3), 2000, 0.3
    wrong = 0
    for _ in range(suites):
        ranking = against_best(simulated_methods(rng, {"A": 0.0, "B": -margin, "C": -margin}), margin, paired=True)
        wrong += any(row.label == WITHIN and row.method != "A" for row in ranking.rows)
    assert wrong / suites <= bound(ALPHA, suites)


def test_within_delta_of_the_best_has_power_and_never_says_approximately_best():
    rng = np.random.default_rng(4)
    labels = [row.label for _ in range(200) for row in
              against_best(simulated_methods(rng, {"A": 0.0, "B": 0.0}, seeds=10), 1.0, paired=True).rows[1:]]
    assert np.mean([label == WITHIN for label in labels]) > 0.9
    far = against_best(simulated_methods(rng, {"A": 0.0, "B": -3.0}), 0.5, paired=True)
    assert far.best == "A" and far.rows[1].label == NOT_SHOWN and far.significantly_best
    assert against_best({"A": {0: 1.0}, "B": {0: 0.5}}, 0.5, paired=True).rows[1].label == "no verdict"


def test_significantly_best_keeps_its_error_when_all_are_equal():
    rng, suites = np.random.default_rng(5), 2000
    bold = sum(bool(against_best(simulated_methods(rng, {"A": 0.0, "B": 0.0, "C": 0.0}), 0.3,
                                 paired=True).significantly_best) for _ in range(suites))
    assert bold / suites <= bound(ALPHA, suites)


def paired_cells(rng, truths, seeds=3, sd=1.0):
    """(estimate, se, df) of B - A per cell, paired over ``seeds`` seeds, one row per suite."""
    differences = np.asarray(truths)[..., None] + sd * rng.standard_normal((*np.shape(truths), seeds))
    return differences.mean(-1), differences.std(-1, ddof=1) / math.sqrt(seeds), np.full(np.shape(truths), seeds - 1.0)


def test_compare_false_moved_stays_at_the_fdr_over_120_null_cells():
    rng, suites, margin = np.random.default_rng(6), 2000, 1.0
    truths = np.full((suites, 120), margin)  # on the edge of "unchanged within the margin"
    estimate, se, df = paired_cells(rng, truths)
    words = change_verdicts(estimate, se, df, margin, np.zeros_like(truths, bool))[0]
    assert np.mean((words == "moved").any(axis=1)) <= bound(ALPHA, suites)
    assert np.mean(words == "unchanged") <= bound(ALPHA, words.size)
    # without the correction, a false "moved" in almost every suite
    assert np.mean((outside_margin_p(estimate, se, df, margin) <= ALPHA).any(axis=1)) > 0.9


def test_compare_false_discovery_proportion_with_real_moves():
    rng, suites, margin = np.random.default_rng(7), 2000, 1.0
    truths = np.concatenate([rng.uniform(-margin, margin, (suites, 100)), np.full((suites, 20), 6 * margin)], axis=1)
    estimate, se, df = paired_cells(rng, truths, seeds=5)
    words = change_verdicts(estimate, se, df, margin, np.zeros_like(truths, bool))[0]
    moved = words == "moved"
    false = moved[:, :100].sum(axis=1)
    proportion = np.where(moved.sum(axis=1) > 0, false / np.maximum(moved.sum(axis=1), 1), 0.0)
    assert proportion.mean() <= ALPHA
    assert moved[:, 100:].mean() > 0.5


def test_compare_cells_api_runs_the_rule():
    rng = np.random.default_rng(8)
    a = seeded(70 + rng.normal(0, 1, 4))
    cells = [CellPair(a, {s: v + 5 for s, v in a.items()}, 1.0),
             CellPair(a, {s: v + 0.01 * s for s, v in a.items()}, 1.0),
             CellPair(a, a, 1.0, identical=True),
             CellPair({0: 70.0}, {0: 75.0}, 1.0)]
    changes = compare_cells(cells)
    assert [c.verdict for c in changes] == ["moved", "unchanged", "identical", "no verdict"]
    estimate = [c.difference.difference for c in changes[:2]]
    se, df = [c.difference.se for c in changes[:2]], [c.difference.df for c in changes[:2]]
    words, _, q_moved, _ = change_verdicts(np.array(estimate), np.array(se), np.array(df), 1.0, [False, False])
    assert list(words) == ["moved", "unchanged"]
    assert changes[0].q_moved == pytest.approx(q_moved[0])  # the identical and the one-seed cell stay out of BH
