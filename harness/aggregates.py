"""Aggregates of run x task scores for reinforcement-learning benchmarks (Agarwal et al.
2021, "Deep RL at the edge of the statistical precipice"), with stratified bootstrap
intervals.

Scores come per task: a sequence of 1-D arrays, one per task, each holding that task's
runs (one score per run: e.g. success averaged over the last evaluations); the runs of a
task may be fewer or more than another's. A stratified bootstrap resamples the runs
within each task, with replacement, keeping the tasks: ``scipy.stats.bootstrap`` with
one sample per task does exactly that. Intervals are percentile (default) or BCa; they
lie within the range of the resampled statistics, hence within the metric's bounds,
which they are clipped to besides. scipy.stats is imported only when called (it costs a
report about a second to import).
- IQM: the interquartile mean of all run x task scores (the mean of the middle 50%,
  ``scipy.stats.trim_mean(scores, 0.25)``); mean: the plain mean;
- probability of improvement P(X > Y): per task, the share of run pairs (x, y) with
  x > y, ties counting one half (the Mann-Whitney U statistic / (n m)), averaged over
  tasks; its bootstrap resamples each method's runs within each task;
- performance profile: at each threshold tau, the fraction of runs scoring above tau,
  averaged over tasks, with pointwise bands.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


def _tasks(scores) -> tuple:
    """Per-task 1-D arrays of run scores; a 2-D array is (runs, tasks)."""
    if isinstance(scores, np.ndarray) and scores.ndim == 2:
        scores = list(scores.T)
    tasks = tuple(np.asarray(task, dtype=float).ravel() for task in scores)
    if not tasks or any(len(task) == 0 for task in tasks):
        raise ValueError("scores need at least one task, each with at least one run")
    return tasks


@dataclass(frozen=True)
class Aggregate:
    statistic: str  # "IQM", "mean" or "P(X > Y)"
    value: float
    low: float  # the bootstrap interval, within the bounds
    high: float
    confidence: float
    method: str  # "percentile", "BCa" or "percentile (BCa degenerate)"
    resamples: int
    runs: int  # run x task scores behind it (both methods' for P(X > Y))
    tasks: int


def _trim_mean(values, axis=-1):
    from scipy import stats

    return stats.trim_mean(values, 0.25, axis=axis)


def _statistic(name: str):
    if name not in ("iqm", "mean"):
        raise ValueError(f"statistic must be 'iqm' or 'mean', got {name!r}")

    def statistic(*tasks, axis=-1):
        joined = np.concatenate(tasks, axis=axis)
        return _trim_mean(joined, axis) if name == "iqm" else joined.mean(axis=axis)
    return statistic


def _bootstrap(samples: tuple, statistic, confidence, method, resamples, seed):
    """(observed, low, high, the method used): BCa falls back to percentile where its
    acceleration cannot be estimated (a statistic constant under the jackknife, as the IQM
    of mostly 0/100 scores)."""
    from scipy import stats

    if method not in ("percentile", "BCa"):
        raise ValueError(f"method must be 'percentile' or 'BCa', got {method!r}")
    observed = statistic(*samples)
    if all(np.ptp(sample) == 0 for sample in samples):  # no spread: every resample gives the same
        return observed, observed, observed, method
    for used in dict.fromkeys((method, "percentile")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            result = stats.bootstrap(samples, statistic, n_resamples=resamples, vectorized=True, axis=-1,
                                     confidence_level=confidence, method=used,
                                     random_state=np.random.default_rng(seed))
        low, high = result.confidence_interval
        if not (np.isnan(low).any() or np.isnan(high).any()):
            break
    return observed, low, high, used if used == method else "percentile (BCa degenerate)"


def _clip(value, bounds):
    low, high = bounds
    return np.clip(value, -np.inf if low is None else low, np.inf if high is None else high)


def aggregate(scores, statistic: str = "iqm", confidence: float = 0.95, method: str = "percentile",
              resamples: int = 2000, seed: int = 0, bounds=(None, None)) -> Aggregate:
    """The IQM (or mean) of all run x task scores with its stratified bootstrap interval;
    ``bounds``: the metric's range (e.g. (0, 100)), which the interval never leaves."""
    tasks = _tasks(scores)
    value, low, high, used = _bootstrap(tasks, _statistic(statistic), confidence, method, resamples, seed)
    low, high = _clip(low, bounds), _clip(high, bounds)
    return Aggregate("IQM" if statistic == "iqm" else "mean", float(value), float(low), float(high), confidence,
                     used, resamples, sum(len(t) for t in tasks), len(tasks))


def _improvement(count: int):
    def statistic(*samples, axis=-1):
        xs, ys = samples[:count], samples[count:]
        shares = [np.mean((x[..., :, None] > y[..., None, :]) + 0.5 * (x[..., :, None] == y[..., None, :]),
                          axis=(-2, -1)) for x, y in zip(xs, ys)]
        return np.mean(shares, axis=0)
    return statistic


def probability_of_improvement(x_scores, y_scores, confidence: float = 0.95, method: str = "percentile",
                               resamples: int = 2000, seed: int = 0) -> Aggregate:
    """P(X > Y): X's runs against Y's, task by task (the same tasks in the same order),
    averaged over tasks; in [0, 1], 0.5 when neither is ahead."""
    xs, ys = _tasks(x_scores), _tasks(y_scores)
    if len(xs) != len(ys):
        raise ValueError(f"X and Y need the same tasks, got {len(xs)} and {len(ys)}")
    value, low, high, used = _bootstrap(xs + ys, _improvement(len(xs)), confidence, method, resamples, seed)
    return Aggregate("P(X > Y)", float(value), float(_clip(low, (0, 1))), float(_clip(high, (0, 1))), confidence,
                     used, resamples, sum(len(t) for t in xs + ys), len(xs))


@dataclass(frozen=True)
class Profile:
    thresholds: np.ndarray
    fraction: np.ndarray  # the fraction of runs above each threshold, averaged over tasks
    low: np.ndarray  # pointwise bootstrap band
    high: np.ndarray
    confidence: float


def performance_profile(scores, thresholds, confidence: float = 0.95, resamples: int = 2000,
                        seed: int = 0) -> Profile:
    """The run-score distribution: at each threshold tau, the fraction of runs scoring
    above tau (averaged over tasks), with pointwise percentile bands from the stratified
    bootstrap; fractions and bands stay within [0, 1]."""
    tasks, thresholds = _tasks(scores), np.asarray(thresholds, dtype=float)

    def statistic(*samples, axis=-1):
        above = [np.mean(sample[..., None, :] > thresholds[:, None], axis=-1) for sample in samples]
        return np.moveaxis(np.mean(above, axis=0), -1, 0)  # thresholds first, resamples last

    value, low, high, _ = _bootstrap(tasks, statistic, confidence, "percentile", resamples, seed)
    return Profile(thresholds, np.asarray(value), _clip(np.asarray(low), (0, 1)), _clip(np.asarray(high), (0, 1)),
                   confidence)
