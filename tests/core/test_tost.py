"""The interval rule behind every verdict, Holm and Benjamini-Hochberg: against
statsmodels / scipy and hand computation, and the conservative degrees of freedom's error
measured by exact integration."""
import importlib
import math

import numpy as np
import pytest
from scipy import special
from scipy import stats as scipy_stats

from harness.multiplicity import benjamini_hochberg, holm
from harness.stats import welch_satterthwaite
from harness.tost import (
    INCONCLUSIVE,
    REFUTED,
    SUPPORTED,
    conservative_df,
    outside_margin_p,
    region_p_values,
    two_sided_interval,
    verdict_codes,
    welch_df,
)


def statsmodels(module: str):
    """statsmodels is a reference the tests compare with (the test extra installs it), not a
    dependency of harness."""
    return importlib.import_module(f"statsmodels.stats.{module}")


def test_tost_matches_statsmodels_paired():
    weightstats = statsmodels("weightstats")
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.normal(70, 1, 6)
        b = a + rng.normal(0.3, 0.5, 6)
        d = a - b
        se = d.std(ddof=1) / math.sqrt(len(d))
        p_support, _ = region_p_values(d.mean(), se, len(d) - 1, -1.0, 1.0)
        assert p_support == pytest.approx(weightstats.ttost_paired(a, b, -1.0, 1.0)[0], rel=1e-10)


def test_tost_matches_statsmodels_independent_at_its_degrees_of_freedom():
    weightstats = statsmodels("weightstats")
    rng = np.random.default_rng(1)
    for _ in range(20):
        a, b = rng.normal(70, 1, 5), rng.normal(70.2, 2, 7)
        va, vb = a.var(ddof=1) / 5, b.var(ddof=1) / 7
        df = welch_df([(va, 4), (vb, 6)])
        p_support, _ = region_p_values(a.mean() - b.mean(), math.sqrt(va + vb), df, -2.0, 2.0)
        expected = weightstats.ttost_ind(a, b, -2.0, 2.0, usevar="unequal")[0]
        assert p_support == pytest.approx(expected, rel=1e-10)
        assert float(df) == pytest.approx(welch_satterthwaite([(va, 4), (vb, 6)]))


def test_verdicts_follow_the_ninety_percent_interval_by_hand():
    # d = 0.5, se = 0.4, df = 10: t(0.95, 10) = 1.8124611228107335 -> interval [-0.225, 1.225]
    low, high = two_sided_interval(0.5, 0.4, 10, 0.05)
    assert (float(low), float(high)) == pytest.approx((0.5 - 0.7249844491, 0.5 + 0.7249844491))
    for margin, expected in [(1.3, SUPPORTED), (1.2, INCONCLUSIVE)]:
        assert verdict_codes(*region_p_values(0.5, 0.4, 10, -margin, margin), 0.05) == expected
    # entirely outside a narrow margin, a few se away: refuted
    assert verdict_codes(*region_p_values(3.0, 0.4, 10, -0.5, 0.5), 0.05) == REFUTED
    # one-sided claims: theta > 0 supported when the lower 95% one-sided bound is above 0
    p_support, p_refute = region_p_values(0.8, 0.4, 10, 0.0, math.inf)
    assert p_support == pytest.approx(scipy_stats.t.sf(2.0, 10)) and p_refute == pytest.approx(scipy_stats.t.cdf(2.0, 10))


def test_refutation_of_a_narrow_region_is_exact_at_its_edge():
    """The interval-outside rule alone would refute theta = margin up to 2 alpha of the time
    when the margin is small against se; the exact interval-null p keeps alpha."""
    margin, se, df = 0.1, 1.0, math.inf
    cut = scipy_stats.norm.ppf(0.95)
    naive = scipy_stats.norm.sf(cut) + scipy_stats.norm.cdf(-2 * margin / se - cut)
    assert naive > 0.08
    draws = margin + se * np.random.default_rng(2).standard_normal(200_000)
    refuted = region_p_values(draws, se, df, -margin, margin)[1] <= 0.05
    assert abs(refuted.mean() - 0.05) < 0.003
    # outside_margin_p at margin 0 is the usual two-sided t p-value
    assert float(outside_margin_p(1.3, 0.5, 7, 0.0)) == pytest.approx(2 * scipy_stats.t.sf(2.6, 7))


def test_exact_estimates_and_missing_intervals():
    assert region_p_values(0.5, 0.0, 3, -1, 1) == (0.0, 1.0)
    p_support, p_refute = region_p_values(0.5, math.nan, math.nan, -1, 1)
    assert math.isnan(p_support) and math.isnan(p_refute)
    assert verdict_codes(math.nan, math.nan, 0.05) == INCONCLUSIVE


def _worst_size(nu, df_rule, grid=8_000):
    """The largest error over the seeds' share rho of a one-sided 5% t-test whose variance
    is rho * chi2(nu)/nu plus a known part 1 - rho (exact integration over chi2)."""
    u = special.chdtri(nu, (np.arange(grid) + 0.5) / grid) / nu
    worst = 0.0
    for rho in np.linspace(0.04, 1, 25):
        variance = rho * u + 1 - rho
        df = df_rule([(rho * u, nu), (1 - rho, math.inf)])
        worst = max(worst, float(np.mean(special.ndtr(-special.stdtrit(df, 0.95) * np.sqrt(variance)))))
    return worst


@pytest.mark.parametrize("nu", [1, 2, 3, 6])
def test_conservative_df_keeps_the_error_where_plain_welch_does_not(nu):
    plain, conservative = _worst_size(nu, welch_df), _worst_size(nu, conservative_df)
    assert conservative <= 0.0501
    if nu <= 3:
        assert plain > 0.055
    # a single part keeps its own df
    assert float(conservative_df([(2.0, nu)])) == pytest.approx(nu)


def test_holm_by_hand():
    # verdicts.md: 0.014 and 0.006 among 11 comparisons with unitary
    assert holm([0.006, 0.014, 0.001, 0.0001] + [0.5] * 7)[:2] == pytest.approx([0.054, 0.112])
    rows = holm(np.array([[0.01, 0.04, np.nan], [0.03, 0.02, 0.2]]))
    assert rows[0, :2] == pytest.approx([0.02, 0.04]) and math.isnan(rows[0, 2])
    assert rows[1] == pytest.approx([0.06, 0.06, 0.2])


def test_holm_matches_statsmodels():
    multitest = statsmodels("multitest")
    rng = np.random.default_rng(3)
    # every family size from 1 to 14 once, and ties (multipletests takes ~70 ms a call)
    for p in [rng.uniform(size=size) ** 3 for size in range(1, 15)] + [np.array([0.01, 0.01, 0.04, 0.04, 0.5])]:
        assert np.allclose(holm(p), multitest.multipletests(p, method="holm")[1])
    p = rng.uniform(size=30) ** 2
    assert np.allclose(benjamini_hochberg(p), multitest.multipletests(p, method="fdr_bh")[1])


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(4)
    for _ in range(100):
        p = rng.uniform(size=rng.integers(1, 40)) ** 2
        assert np.allclose(benjamini_hochberg(p), scipy_stats.false_discovery_control(p))
    with_gap = benjamini_hochberg([0.01, np.nan, 0.04])
    assert with_gap[[0, 2]] == pytest.approx([0.02, 0.04]) and math.isnan(with_gap[1])
