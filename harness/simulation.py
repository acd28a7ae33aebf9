"""Simulated reproductions with a known truth: the suites on which the verdict rules'
error rates are measured (the tests, ``benchmarks/verdict_rules.py``) and from which the
sequential rule's expected seeds come.

A simulated suite: the paper's number and its ±, our seed means in the order they would be
run, and the estimate of our shared test-set error. Seed means are normal around their
side's mean with sd ``seed_sd``; each side's seeds share one test-set error (sd
``shared_se``); a one-model paper adds one seed draw and its test-episode error (its ±, a
95% interval over ``episodes`` episodes); a k_p-seed paper reports the mean of its seeds
with their std as its ± (or, ``paper_pm_given``, with the ± a plan assumes: under
normality the mean and the std of the seeds are independent, so these are the suites of
papers whose ± has that value). The suites are turned into the same ``OurSide`` /
``ReportedSide`` objects as real data (fields holding one value per suite), so the rule
that decides them is the report's own code.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.reproduction import OurSide, ReportedSide


@dataclass(frozen=True)
class Scenario:
    seed_sd: float  # sd of one seed's mean (ours and the paper's)
    shared_se: float  # sd of the test-set error a side's seeds share
    paper_seeds: int | None = None  # k_p; None: the paper reports one trained model
    paper_episode_se: float = 0.0  # one-model paper: the se of its mean over its test episodes
    episodes: int = 600  # test episodes (df of the shared estimate, n of a one-model ±)
    truth: float = 0.0  # E[ours] - E[reported]
    paper_pm_given: bool = False  # a k_p-seed paper's ± fixed at seed_sd / sqrt(k_p), as a plan takes it


@dataclass(frozen=True)
class Suites:
    """Simulated suites: one row each."""

    scenario: Scenario
    seed_means: np.ndarray  # (suites, max seeds), in run order
    shared_variance: np.ndarray  # (suites,) our estimate of the shared test-set error's variance
    reported: ReportedSide  # fields of shape (suites,)

    def ours(self, seeds: int) -> OurSide:
        """Our side after the first ``seeds`` seeds."""
        means = self.seed_means[:, :seeds]
        variance = means.var(axis=1, ddof=1) if seeds > 1 else np.full(len(means), np.nan)
        df = float(self.scenario.episodes - 1)
        return OurSide(means.mean(axis=1), seeds, variance, self.shared_variance, df, self.scenario.episodes)


def simulate(scenario: Scenario, seeds: int, suites: int, rng: np.random.Generator) -> Suites:
    s = scenario
    ours = s.truth + s.seed_sd * rng.standard_normal((suites, seeds)) + s.shared_se * rng.standard_normal((suites, 1))
    # the cross-seed covariance estimate of the shared variance: about chi2(n - 1) / (n - 1)
    df = s.episodes - 1
    shared = s.shared_se ** 2 * rng.chisquare(df, suites) / df
    if s.paper_seeds is None:
        value = s.seed_sd * rng.standard_normal(suites) + s.paper_episode_se * rng.standard_normal(suites)
        reported = ReportedSide(value, np.full(suites, s.paper_episode_se), float(df), "episodes",
                                f"ci95 / t(0.975, {df}) over episodes")
    else:
        k = s.paper_seeds
        theirs = s.seed_sd * rng.standard_normal((suites, k))
        value = theirs.mean(axis=1) + s.shared_se * rng.standard_normal(suites)
        spread = np.full(suites, s.seed_sd) if s.paper_pm_given else theirs.std(axis=1, ddof=1)
        reported = ReportedSide(value, spread / np.sqrt(k), float(k - 1), "seeds", f"std / sqrt({k}) over seeds")
    return Suites(scenario, ours, shared, reported)
