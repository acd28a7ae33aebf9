"""The reproduction verdict: its parts by hand, the numbers of verdicts.md, and the rule's
error rates, power and monotonicity measured over simulated suites with a known truth
(one-model and k-seed papers, sigma_seed 0.7 and 2.5, our episode se 0.2)."""
import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.reproduction import (
    OurSide,
    ReportedSide,
    our_side,
    reported_side,
    reproduction,
    shared_test_error,
    variance_model,
    verdict_arrays,
)
from harness.seedplan import (
    VarianceModel,
    reproduction_power,
    seeds_needed,
    smallest_margin,
)
from harness.simulation import Scenario, simulate
from harness.tost import REFUTED, SUPPORTED, conservative_df

ALPHA = 0.05
SUITES = 20_000
ONE_MODEL_SE = 0.61 / 1.96  # a one-model paper's ci95 over 600 episodes (verdicts.md)


def mc_bound(rate: float, n: int) -> float:
    return rate + 2.2 * math.sqrt(rate * (1 - rate) / n)


SCENARIOS = {
    "one-model, sigma 0.7": Scenario(0.7, 0.2, None, ONE_MODEL_SE),
    "one-model, sigma 2.5": Scenario(2.5, 0.2, None, ONE_MODEL_SE),
    "3-seed paper, sigma 0.7": Scenario(0.7, 0.2, 3),
    "3-seed paper, sigma 2.5": Scenario(2.5, 0.2, 3),
    "10-seed paper, sigma 2.5": Scenario(2.5, 0.2, 10),
}


def test_reported_side_by_what_the_pm_covers():
    seeds = reported_side(70.0, 1.2, "std", 4)
    assert (seeds.se, seeds.df, seeds.covers) == (0.6, 3.0, "seeds")
    one = reported_side(70.0, 0.61, "ci95", 600, covers="episodes")
    assert one.se == pytest.approx(0.61 / scipy_stats.t.ppf(0.975, 599)) and one.covers == "episodes"
    with pytest.raises(ValueError, match="covers"):
        reported_side(70.0, 0.61, "ci95", 600, covers="models")


def test_shared_test_error_is_the_mean_cross_seed_covariance_over_n():
    rng = np.random.default_rng(0)
    samples = rng.normal(0, 5, (4, 50)) + rng.normal(0, 3, (1, 50))
    pairs = [np.cov(samples[s], samples[t])[0, 1] for s in range(4) for t in range(4) if s != t]
    variance, df = shared_test_error(samples)
    assert variance == pytest.approx(np.mean(pairs) / 50, rel=1e-12) and df == 49
    # independent units across seeds: negative covariance estimates clip at 0
    assert shared_test_error(rng.normal(0, 5, (2, 40)) * [[1], [-1]] + [[0], [0]])[0] >= 0
    assert shared_test_error(samples[:1]) == (0.0, math.inf)


def test_shared_estimate_on_per_episode_data_is_unbiased_and_below_the_total():
    """Per-episode accuracy = seed effect + episode effect (shared, sd 6) + noise (sd 5)."""
    rng = np.random.default_rng(1)
    n, k = 600, 4
    estimates, totals = [], []
    for _ in range(300):
        x = rng.normal(0, 0.7, (k, 1)) + rng.normal(0, 6, (1, n)) + rng.normal(0, 5, (k, n))
        estimates.append(shared_test_error(x)[0])
        totals.append(np.mean(x.var(axis=1, ddof=1)) / n)
    assert np.mean(estimates) == pytest.approx(36 / n, rel=0.03)
    assert np.mean(totals) == pytest.approx(61 / n, rel=0.03)  # the total over-states it


def test_reproduction_by_hand():
    ours = OurSide(70.0, 3, 0.49, 0.04, 599.0, 600)
    reported = ReportedSide(69.0, ONE_MODEL_SE, 599.0, "episodes", "ci95 / 1.96 over episodes")
    result = reproduction(ours, reported, margin=3.0)
    parts = [(0.49 * (1 / 3 + 1), 2.0), (0.04, 599.0), (ONE_MODEL_SE ** 2, 599.0)]
    se, df = math.sqrt(sum(v for v, _ in parts)), float(conservative_df(parts))
    quantile = scipy_stats.t.ppf(0.95, df)
    assert result.se == pytest.approx(se) and result.df == pytest.approx(df)
    assert (result.low, result.high) == pytest.approx((1.0 - quantile * se, 1.0 + quantile * se))
    expected = "reproduced" if -3 < result.low and result.high < 3 else "inconclusive"
    assert result.verdict == expected
    assert result.p_equivalent == pytest.approx(max(scipy_stats.t.sf((1 + 3) / se, df), scipy_stats.t.cdf((1 - 3) / se, df)))
    # a k-seed paper: our shared test-set estimate stands for the paper's too
    seeds_paper = reproduction(ours, ReportedSide(69.0, 0.3, 2.0, "seeds", "std / sqrt(3)"), margin=3.0)
    assert seeds_paper.se == pytest.approx(math.sqrt(0.49 / 3 + 2 * 0.04 + 0.09))
    assert reproduction(ours, reported, 3.0, same_test_set=True).se == pytest.approx(
        math.sqrt(0.49 * 4 / 3 + ONE_MODEL_SE ** 2))


def test_one_seed_gives_no_verdict_and_the_words_are_the_three():
    one = reproduction(our_side(seed_means=[70.0]), reported_side(70.0, 0.61, "ci95", 600, "episodes"), 3.0)
    assert one.verdict is None and one.note == "one seed: no verdict"
    reported = reported_side(70.0, 0.5, "std", 5)
    words = {reproduction(our_side(seed_means=70 + d + np.array([-0.2, 0.0, 0.2])), reported, 1.0).verdict
             for d in (0.0, 0.6, 5.0)}
    assert words == {"reproduced", "inconclusive", "not reproduced"}


def test_the_floor_and_the_seeds_of_verdicts_md():
    """sigma_seed 0.7, episode se 0.2, a one-model paper with ci95 0.61: se >= 0.79, the
    smallest decidable margin about 2.3 pp, margin 3 needs 5 seeds, margin 2 none."""
    model = VarianceModel(0.49, 1, ((0.04, 599.0), ((0.61 / scipy_stats.t.ppf(0.975, 599)) ** 2, 599.0)))
    assert model.floor()[0] == pytest.approx(0.79, abs=0.005)
    assert smallest_margin(model) == pytest.approx(2.3, abs=0.05)
    assert seeds_needed(3.0, model).seeds == 5
    assert seeds_needed(2.0, model).seeds is None
    assert seeds_needed(3.0, model).normal_seeds == 2  # the normal approximation promises too much
    paper = ReportedSide(69.0, 0.61 / 1.96, 599.0, "episodes", "ci95")
    undecidable = reproduction(OurSide(70.0, 5, 0.49, 0.04, 599.0, 600), paper, margin=1.5)
    assert undecidable.verdict == "inconclusive" and undecidable.cannot_decide
    assert undecidable.note.startswith("cannot be decided at this margin")
    # margin 2 is beyond the estimate's floor, not yet beyond its 90% lower limit's: no seed count is given
    unsure = reproduction(OurSide(70.0, 5, 0.49, 0.04, 599.0, 600), paper, margin=2.0)
    assert not unsure.cannot_decide and unsure.plan.seeds is None


def _rates(scenario: Scenario, margin: float, seeds: int, truth: float, seed: int = 0):
    suites = simulate(replace(scenario, truth=truth), seeds, SUITES, np.random.default_rng(seed))
    codes = verdict_arrays(suites.ours(seeds), suites.reported, margin, ALPHA)[0]
    return np.mean(codes == SUPPORTED), np.mean(codes == REFUTED)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_wrong_verdicts_at_the_margin_stay_at_alpha(name):
    """True difference = margin: "reproduced" is wrong, and so is "not reproduced"."""
    for margin in (1.0, 3.0, 8.0):
        for seeds in (2, 3, 5, 10):
            reproduced, not_reproduced = _rates(SCENARIOS[name], margin, seeds, truth=margin)
            assert reproduced <= mc_bound(ALPHA, SUITES), (margin, seeds)
            assert not_reproduced <= mc_bound(ALPHA, SUITES), (margin, seeds)


def test_a_one_model_paper_without_its_seed_draw_would_be_wrongly_reproduced():
    """The check above has teeth: treating a one-model paper's ± as covering seeds (the
    old rule's mistake) makes "reproduced" wrong far more often than alpha."""
    suites = simulate(replace(SCENARIOS["one-model, sigma 2.5"], truth=8.0), 10, SUITES, np.random.default_rng(5))
    wrong_side = replace(suites.reported, covers="seeds")
    ours = replace(suites.ours(10), shared_variance=suites.shared_variance / 2)  # counted once, as before
    codes = verdict_arrays(ours, wrong_side, 8.0, ALPHA)[0]
    assert np.mean(codes == SUPPORTED) > 0.2


def _model(scenario: Scenario) -> VarianceModel:
    if scenario.paper_seeds is None:
        return VarianceModel(scenario.seed_sd ** 2, 1,
                             ((scenario.shared_se ** 2, 599.0), (scenario.paper_episode_se ** 2, 599.0)))
    k = scenario.paper_seeds
    return VarianceModel(scenario.seed_sd ** 2, 0, ((2 * scenario.shared_se ** 2, 599.0), (scenario.seed_sd ** 2 / k, k - 1.0)))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_power_reaches_eighty_percent_at_the_seeds_the_rule_asks(name):
    """The plan takes the paper's ± as given: the suites are papers with that ±."""
    scenario, checked = SCENARIOS[name], 0
    for margin in (1.5, 2.5, 3.0, 5.0, 8.0, 10.0, 12.0):
        plan = seeds_needed(margin, _model(scenario))
        if plan.seeds is None or plan.seeds > 40:
            continue
        checked += 1
        reproduced, _ = _rates(replace(scenario, paper_pm_given=True), margin, plan.seeds, truth=0.0, seed=1)
        assert reproduced >= 0.8 - 2.2 * math.sqrt(0.16 / SUITES), (margin, plan)
        assert plan.power >= 0.8
        if plan.seeds > 2:  # one seed fewer is not enough (by the exact power)
            assert reproduction_power(margin, plan.seeds - 1, _model(scenario)) < 0.8
    assert checked >= 2


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_an_exact_reproduction_is_never_less_likely_reproduced_with_more_seeds(name):
    scenario = SCENARIOS[name]
    margin = 3.0 if scenario.seed_sd < 1 else 8.0
    suites = simulate(scenario, 16, SUITES, np.random.default_rng(2))
    rates = [np.mean(verdict_arrays(suites.ours(k), suites.reported, margin, ALPHA)[0] == SUPPORTED)
             for k in range(2, 17)]
    slack = 2.2 * math.sqrt(0.25 / SUITES)
    assert all(later >= earlier - slack for earlier, later in itertools.pairwise(rates)), np.round(rates, 3)
    assert rates[-1] > rates[0]


def test_the_rule_on_per_episode_data_keeps_its_error():
    """The full chain from per-episode accuracies (the covariance estimate of the shared
    test set included): 2,000 suites, 4 seeds of 600 episodes, a one-model paper, true
    difference = margin."""
    rng = np.random.default_rng(3)
    suites, k, n, margin = 2000, 4, 600, 2.5
    seed_effect = rng.normal(0, 0.7, (suites, k, 1))
    episodes = rng.normal(0, 6, (suites, 1, n)) + rng.normal(0, 5, (suites, k, n))
    x = margin + seed_effect + episodes
    paper = reported_side(0.0, 0.61, "ci95", 600, covers="episodes")
    paper_values = rng.normal(0, 0.7, suites) + rng.normal(0, paper.se, suites)
    sides = [our_side(samples=row) for row in x]
    ours = OurSide(np.array([s.mean for s in sides]), k, np.array([s.seed_variance for s in sides]),
                   np.array([s.shared_variance for s in sides]), 599.0, n)
    codes = verdict_arrays(ours, replace(paper, value=paper_values), margin, ALPHA)[0]
    assert np.mean(codes == SUPPORTED) <= mc_bound(ALPHA, suites)
    # the same data through the scalar API gives the same verdicts
    for row in range(20):
        one = reproduction(sides[row], replace(paper, value=float(paper_values[row])), margin)
        assert one.verdict == {1: "reproduced", 0: "inconclusive", -1: "not reproduced"}[int(codes[row])]


def test_variance_model_matches_the_parts():
    ours = OurSide(70.0, 4, 0.5, 0.03, 599.0, 600)
    reported = ReportedSide(69.0, 0.2, 4.0, "seeds", "std / sqrt(5)")
    model = variance_model(ours, reported)
    assert sum(v for v, _ in model.parts(4)) == pytest.approx(reproduction(ours, reported, 2.0).se ** 2)


def test_exact_power_matches_the_simulated_rule():
    """The power integral (512 chi-square quantiles) against the rule run on 20,000 suites."""
    for name in ("one-model, sigma 0.7", "3-seed paper, sigma 0.7"):
        scenario = replace(SCENARIOS[name], paper_pm_given=True)
        for seeds in (2, 3, 5, 8):
            for truth in (0.0, 1.0):
                simulated, _ = _rates(scenario, 3.0, seeds, truth=truth, seed=4)
                exact = reproduction_power(3.0, seeds, _model(scenario), truth=truth)
                assert exact == pytest.approx(simulated, abs=3 * math.sqrt(0.25 / SUITES)), (name, seeds, truth)
