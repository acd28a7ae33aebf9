"""The verdicts of a cell: against the paper's number (the agreement rule,
``harness.stats.agreement``) and against the best cell of its group (Welch's t-test of
the seeds' values). Each sets fields of the cells (``harness.report.model``); the
renderers show them. The comparison with a baseline is ``harness.report.paired``.
"""
from __future__ import annotations

from harness.report.cells import grouped
from harness.report.model import Cell, Reported
from harness.stats import agreement, reported_error


def reported_for(suite, metric: str, config: dict):
    """The most specific reported entry for ``metric`` whose values the config has."""
    matching = [entry for entry in suite.reported if entry.metric == metric and entry.matches(config)]
    return max(matching, key=lambda entry: len(entry.cell)) if matching else None


def source_text(entry) -> str:
    return f"{entry.paper}, {entry.table}" if entry.table else entry.paper


def judge_reported(suite, cells: list[Cell]) -> None:
    """Set each cell's reported number (the suite's most specific entry for the config of
    its first seed's run) and the agreement of its mean with it."""
    for cell in cells:
        first = next(row for row in cell.runs if row["run_id"] == cell.seeds[0].run_id)
        entry = reported_for(suite, cell.metric.name, first["config"])
        if entry is None:
            continue
        se, rule, df = reported_error(entry.interval, entry.kind, entry.seeds or entry.samples)
        cell.reported = Reported(entry.value, entry.interval, entry.kind, se, rule, df, source_text(entry))
        sample_se, sample_df = cell.sample_error
        cell.agreement = agreement(cell.mean, entry.value, seed_se=cell.interval.se, seed_df=float(cell.interval.n - 1),
                                   sample_se=sample_se, sample_df=sample_df, reported_se=se, reported_df=df)


def same_as_best(ours: list, best: list) -> bool | None:
    """Whether ``ours`` (seed values) is statistically indistinguishable from ``best``'s:
    Welch's t-test, two-sided, 5%; None with fewer than 2 values a side."""
    if ours is best or ours == best:
        return True
    if len(ours) < 2 or len(best) < 2:
        return None
    from scipy import (
        stats as scipy_stats,  # only where a verdict is needed: it is slow to import
    )

    return bool(scipy_stats.ttest_ind(ours, best, equal_var=False).pvalue > 0.05)


def judge_best(cells: list[Cell], by: list[str]) -> None:
    """Set each cell's ``vs_best``: ``best`` for the cell of highest mean in its group (the
    cells equal on ``by``; the first of ties), else ``indistinguishable``, ``worse`` or
    ``n/a`` by ``same_as_best`` against it."""
    words = {True: "indistinguishable", False: "worse", None: "n/a"}
    for _, group in grouped(cells, by):
        best = max(group, key=lambda cell: cell.mean)
        for cell in group:
            cell.vs_best = "best" if cell is best else words[same_as_best(cell.values, best.values)]
