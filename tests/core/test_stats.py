"""Statistics: intervals against scipy and hand computation, the reported-se rules."""
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.stats import Z95, reported_error, t_interval


def test_t_interval_matches_scipy():
    values = np.random.default_rng(0).normal(70, 8, size=37)
    ours = t_interval(values)
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values))
    assert ours.mean == pytest.approx(values.mean())
    assert ours.half_width == pytest.approx((high - low) / 2, rel=1e-12)
    assert ours.se == pytest.approx(scipy_stats.sem(values), rel=1e-12)
    assert ours.n == 37


def test_t_interval_by_hand():
    # values 1, 2, 3: mean 2, sample std 1, se 1/sqrt(3), t(0.975, 2) = 4.302652729749464
    ours = t_interval([1.0, 2.0, 3.0])
    assert ours.mean == 2.0
    assert ours.half_width == pytest.approx(4.302652729749464 / math.sqrt(3), rel=1e-12)


def test_t_interval_single_value_has_no_width():
    one = t_interval([5.0])
    assert one.mean == 5.0 and math.isnan(one.half_width) and one.n == 1
    assert t_interval([]).n == 0


@pytest.mark.parametrize("interval, kind, n, expected", [
    (0.5, "sem", None, 0.5),
    (1.96, "ci95", None, 1.96 / Z95),
    (2.0, "ci95", 5, 2.0 / 2.7764451051977987),  # t(0.975, 4)
    (0.3, "std", 9, 0.1),
    (0.3, "std", None, 0.3),  # n unknown: the std itself, the conservative choice
    (None, None, None, 0.0),
])
def test_reported_se_rules(interval, kind, n, expected):
    se, rule, _ = reported_error(interval, kind, n)
    assert se == pytest.approx(expected, rel=1e-12)
    assert rule


def test_reported_error_degrees_of_freedom():
    assert reported_error(1.0, "ci95", 600)[2] == 599
    assert reported_error(1.0, "sem", None)[2] == math.inf
    assert reported_error(0.3, "std", 10)[2] == 9
