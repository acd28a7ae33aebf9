"""The cell model: what one report computes once (``harness.report.cells``,
``harness.report.verdicts``, ``harness.report.paired``, ``harness.report.claims``) and
every renderer only reads.

A ``Cell`` is one (cell key, metric): the runs that differ only by seed, their per-seed
values (and, with per-unit samples, each seed's own interval), the interval across
seeds, the error of the test set the seeds share, the reported number and the
reproduction verdict against it, cost figures, per-part intervals (a multi-task run's
tasks), ratios to a reference method, the label against the best cell of its group and
the comparison with the baseline. A ``Section`` holds one metric's cells and
comparisons; a ``Report`` a whole report's sections, claims, runs, figures and store
scan. A new statistic is a new field here, filled by its module, and a new column
(``harness.report.columns``) that shows it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.report.shared import NO_MARGIN
from harness.stats import Interval


@dataclass(frozen=True)
class Reported:
    """The paper's number for a cell, with its ±, what the ± covers and the standard error
    derived from it, the margin of its verdict, and the paper's training cost when given."""

    value: float
    interval: float | None
    kind: str | None  # ci95, std or sem: what the ± is
    over: str  # "seeds" (a mean over the paper's seeds) or "episodes" (ONE trained model, ± over its test units)
    count: int | None  # the seeds or test units the ± is over (None: the paper does not say)
    se: float
    se_rule: str  # how ``se`` was derived from the ±
    df: float  # its degrees of freedom (inf: unknown n)
    source: str  # "paper, table"
    margin: float | None  # δ of the verdict: the entry's own, else the suite's for the metric; None: no verdict
    cost: dict | None = None  # {"train_gpu_hours", "hardware"}: the paper's training cost per run


@dataclass(frozen=True)
class Seed:
    """One seed's run of a cell."""

    seed: int
    run_id: str
    value: float
    within: Interval | None = None  # over the run's own samples (its test units), when it recorded them


@dataclass(frozen=True)
class Comparison:
    """A cell against the baseline's cell of its group (method - baseline)."""

    key: dict
    metric: str
    baseline: str
    n: int  # the pairs (paired tests) or the values behind the method's side (Welch)
    n_baseline: int
    difference: float
    ci95: float  # half-width of the 95% interval of the difference
    p_value: float  # two-sided
    p_holm: float  # Holm-adjusted over the comparisons of its group
    wins: int | None  # seeds where the method is ahead (paired only)
    verdict: str  # better, worse (Holm-adjusted p <= 5%), indistinguishable, no verdict
    test: str  # the test used, in words (with why the runs were not paired)
    paired: bool


@dataclass
class Cell:
    key: dict  # the report's keys -> this cell's values
    metric: object  # the family's ``Metric``
    runs: tuple  # its done runs (rows of the runs frame), in the frame's order
    seeds: tuple  # ``Seed`` per run, in the order the report lists them
    interval: Interval  # across seeds: mean, half-width of the 95% t-interval, se, n
    # (variance, df) of the error of the test units every seed shares, from the per-unit
    # samples (``cells.shared_error``); None: not computed yet, () : no samples to compute it from
    shared: tuple | None = None
    reported: Reported | None = None
    reproduction: object | None = None  # harness.reproduction.Reproduction
    cost: dict = field(default_factory=dict)  # cost figure -> mean per run (seconds, GPU-hours, bytes...)
    parts: dict = field(default_factory=dict)  # part (a task) -> Interval across seeds
    ratios: dict = field(default_factory=dict)  # ratio name -> cost figure / the reference method's
    vs_best: str | None = None  # best, within δ of the best, not shown within δ of the best, no verdict, no margin
    best_p: float = float("nan")  # the Holm-adjusted p behind ``vs_best``
    bold: set = field(default_factory=set)  # the columns (metric or part names) where it is significantly best
    comparison: Comparison | None = None  # with the baseline, when there is one and this is not it
    aggregates: dict = field(default_factory=dict)  # name -> harness.aggregates.Aggregate (RL: IQM, mean, P(X > Y))

    @property
    def values(self) -> list[float]:
        return [seed.value for seed in self.seeds]

    @property
    def by_seed(self) -> dict:
        return {seed.seed: seed.value for seed in self.seeds}

    @property
    def mean(self) -> float:
        return self.interval.mean

    @property
    def ci95(self) -> float:
        return self.interval.half_width

    @property
    def samples(self) -> int | None:
        """The fewest samples behind one seed's value (None without samples)."""
        sizes = [seed.within.n for seed in self.seeds if seed.within is not None]
        return int(min(sizes)) if sizes else None

    @property
    def without_samples(self) -> bool:
        """Some run of a metric with samples recorded none (its intervals are conditional on the test set)."""
        return bool(self.metric.samples) and any(seed.within is None for seed in self.seeds)

    @property
    def verdict(self) -> str | None:
        """reproduced, not reproduced, inconclusive; None without one."""
        return None if self.reproduction is None else self.reproduction.verdict

    @property
    def verdict_note(self) -> str:
        """Why there is no verdict (one seed, no margin), or what would decide an inconclusive one."""
        if self.reported is None:
            return ""
        if self.reported.margin is None:
            return NO_MARGIN
        return self.reproduction.note


@dataclass
class Section:
    """One metric's cells, in order of first appearance, and their comparisons, in group order."""

    metric: object
    cells: list
    comparisons: list = field(default_factory=list)
    margin: float | None = None  # the suite's margin for the metric (vs best, the reproduction default)


@dataclass
class Report:
    suite: object
    keys: list  # the keys naming a cell
    runs: object  # the runs frame (one row per planned run)
    scan: object  # the store scan it came from
    sections: list
    baseline: str | None = None
    figures: list = field(default_factory=list)  # {"file", "alt", "caption", ...} per figure
    problems: list = field(default_factory=list)  # warnings about the figures
    claims: list = field(default_factory=list)  # harness.report.claims.ClaimResult per suite claim
    selection: object = None  # harness.report.selected.Selected: how the cells' runs were chosen (select:)

    @property
    def done(self) -> bool:
        return any(section.cells for section in self.sections)
