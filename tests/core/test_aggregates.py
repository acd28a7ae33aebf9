"""RL aggregates: IQM by hand, the stratified bootstrap against exact enumeration on a
tiny case, bounds kept on 0/100 data, P(X > Y) against Mann-Whitney, profiles by hand."""
import itertools

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.aggregates import (
    aggregate,
    performance_profile,
    probability_of_improvement,
)
from harness.stats import t_interval


def test_iqm_is_the_mean_of_the_middle_half():
    scores = np.array([[0, 10, 20, 30], [40, 50, 60, 1000], [70, 80, 90, -500]], dtype=float)  # (runs, tasks)
    middle = np.sort(scores.ravel())[3:9]
    result = aggregate(scores, "iqm", resamples=200)
    assert result.value == pytest.approx(middle.mean()) and result.tasks == 4 and result.runs == 12
    assert result.value == pytest.approx(scipy_stats.trim_mean(scores.ravel(), 0.25))
    assert aggregate(scores, "mean", resamples=200).value == pytest.approx(scores.mean())


def _exact_stratified(tasks):
    """Every equally likely stratified resample of a tiny data set: the bootstrap's exact
    distribution of the mean over all run x task scores."""
    per_task = [[np.mean(task[list(pick)]) for pick in itertools.product(range(len(task)), repeat=len(task))]
                for task in tasks]
    return np.array([np.mean(combo) for combo in itertools.product(*per_task)])


def test_stratified_bootstrap_matches_exact_enumeration():
    tasks = [np.array([0.0, 10.0, 50.0]), np.array([60.0, 90.0, 100.0])]
    exact = _exact_stratified(tasks)
    result = scipy_stats.bootstrap(tasks, lambda *t, axis=-1: np.concatenate(t, axis=axis).mean(axis=axis), n_resamples=20_000,
                       vectorized=True, axis=-1, method="percentile", random_state=np.random.default_rng(0))
    drawn = result.bootstrap_distribution
    assert drawn.mean() == pytest.approx(exact.mean(), abs=0.2)
    assert drawn.std() == pytest.approx(exact.std(), rel=0.02)
    pooled = np.concatenate(tasks)  # resampling runs across tasks would give a wider distribution
    assert exact.std() < 0.7 * pooled.std() / np.sqrt(len(pooled))
    ours = aggregate(tasks, "mean", resamples=20_000)
    low, high = np.quantile(exact, [0.025, 0.975])
    assert ours.low == pytest.approx(low, abs=2.0) and ours.high == pytest.approx(high, abs=2.0)


def test_intervals_of_bounded_scores_stay_in_bounds():
    rng = np.random.default_rng(1)
    success = rng.choice([0.0, 100.0], size=(3, 10), p=[0.9, 0.1])  # 3 runs of 10 tasks
    assert t_interval(success[:, 0]).half_width > 50 or np.ptp(success[:, 0]) == 0
    for method in ("percentile", "BCa"):
        for statistic in ("iqm", "mean"):
            result = aggregate(success, statistic, method=method, bounds=(0, 100), resamples=1000)
            assert 0 <= result.low <= result.value <= result.high <= 100
            assert result.method.startswith(method) or result.method == "percentile (BCa degenerate)"
    saturated = aggregate(np.full((3, 4), 100.0), bounds=(0, 100))
    assert (saturated.low, saturated.value, saturated.high) == (100.0, 100.0, 100.0)


def test_probability_of_improvement_is_mann_whitney_averaged_over_tasks():
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 5, (4, 6)).astype(float), rng.integers(0, 4, (5, 6)).astype(float)  # ties included
    result = probability_of_improvement(x, y, resamples=1000)
    by_hand = np.mean([scipy_stats.mannwhitneyu(x[:, t], y[:, t]).statistic / 20 for t in range(6)])
    assert result.value == pytest.approx(by_hand)
    assert 0 <= result.low <= result.value <= result.high <= 1
    assert probability_of_improvement(y, x, resamples=200).value == pytest.approx(1 - by_hand)
    assert probability_of_improvement(x, x, resamples=200).value == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same tasks"):
        probability_of_improvement(x, y[:, :3])


def test_performance_profile_by_hand_with_unequal_runs():
    tasks = [np.array([10.0, 60.0]), np.array([20.0, 40.0, 80.0, 90.0])]
    profile = performance_profile(tasks, [0, 50, 85, 100], resamples=500)
    assert profile.fraction == pytest.approx([1.0, (0.5 + 0.5) / 2, (0 + 0.25) / 2, 0.0])
    assert np.all(np.diff(profile.fraction) <= 0)
    assert np.all((0 <= profile.low) & (profile.low <= profile.fraction) & (profile.fraction <= profile.high)
                  & (profile.high <= 1))
