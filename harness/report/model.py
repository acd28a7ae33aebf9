"""The cell model: what one report computes once (``harness.report.cells``,
``harness.report.verdicts``, ``harness.report.paired``) and every renderer only reads.

A ``Cell`` is one (cell key, metric): the runs that differ only by seed, their per-seed
values (and, with per-unit samples, each seed's own interval), the interval across
seeds, the reported number and the verdict against it, cost figures, per-part intervals
(a multi-task run's tasks), ratios to a reference method, the verdict against the best
cell of its group and the comparison with the baseline. A ``Section`` holds one metric's
cells and comparisons; a ``Report`` a whole report's sections, runs, figures and store
scan. A new statistic is a new field here, filled by its module, and a new column
(``harness.report.columns``) that shows it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.stats import Agreement, Interval


@dataclass(frozen=True)
class Reported:
    """The paper's number for a cell, with its ± and the standard error derived from it."""

    value: float
    interval: float | None
    kind: str | None  # ci95, std or sem: what the ± is
    se: float
    se_rule: str  # how ``se`` was derived from the ±
    df: float  # its degrees of freedom (inf: unknown n)
    source: str  # "paper, table"


@dataclass(frozen=True)
class Seed:
    """One seed's run of a cell."""

    seed: int
    run_id: str
    value: float
    within: Interval | None = None  # over the run's own samples (its test episodes), when the metric has them


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
    p_value: float
    verdict: str  # better, worse, indistinguishable, n/a
    test: str  # the test used, in words (with why the runs were not paired)
    paired: bool


@dataclass
class Cell:
    key: dict  # the report's keys -> this cell's values
    metric: object  # the family's ``Metric``
    runs: tuple  # its done runs (rows of the runs frame), in the frame's order
    seeds: tuple  # ``Seed`` per run, in the order the report lists them
    interval: Interval  # across seeds: mean, half-width of the 95% t-interval, se, n
    sample_error: tuple = (0.0, math.inf)  # (se, df) of the test units every seed shares
    reported: Reported | None = None
    agreement: Agreement | None = None
    cost: dict = field(default_factory=dict)  # cost figure -> mean per run (seconds, GPU-hours, bytes...)
    parts: dict = field(default_factory=dict)  # part (a task) -> Interval across seeds
    ratios: dict = field(default_factory=dict)  # ratio name -> cost figure / the reference method's
    vs_best: str | None = None  # best, indistinguishable, worse or n/a within its group
    comparison: Comparison | None = None  # with the baseline, when there is one and this is not it

    @property
    def values(self) -> list[float]:
        return [seed.value for seed in self.seeds]

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
    def agrees(self) -> bool | None:
        """Whether the cell agrees with its reported number (None: no number, or no error to judge by)."""
        if self.agreement is None or not self.agreement.se > 0:
            return None
        return bool(self.agreement.agrees)


@dataclass
class Section:
    """One metric's cells, in order of first appearance, and their comparisons, in group order."""

    metric: object
    cells: list
    comparisons: list = field(default_factory=list)


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

    @property
    def done(self) -> bool:
        return any(section.cells for section in self.sections)
