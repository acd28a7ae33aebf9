"""The verdicts of a cell: against the paper's number (``harness.reproduction``: reproduced,
not reproduced or inconclusive with a margin) and against the best cell of its group
(``harness.comparisons.against_best``: within δ of the best, Holm over the group). Each
sets fields of the cells (``harness.report.model``); the renderers show them. The
comparison with a baseline is ``harness.report.paired``.
"""
from __future__ import annotations

import math

import numpy as np

from harness.comparisons import NO_VERDICT, against_best
from harness.report.cells import grouped, shared_error
from harness.report.model import Cell, Reported
from harness.report.shared import NO_MARGIN_BEST
from harness.reproduction import OurSide, reported_side, reproduction


def reported_for(suite, metric: str, config: dict):
    """The most specific reported entry for ``metric`` whose values the config has."""
    matching = [entry for entry in suite.reported if entry.metric == metric and entry.matches(config)]
    return max(matching, key=lambda entry: len(entry.cell)) if matching else None


def source_text(entry) -> str:
    return f"{entry.paper}, {entry.table}" if entry.table else entry.paper


def suite_margin(suite, metric) -> float | None:
    """The suite's margin δ for ``metric`` (``report: {margin: ...}``), None when it sets none."""
    return (suite.report_options.get("margin") or {}).get(metric.name)


def our_side(cell: Cell) -> OurSide:
    """Our seed means and the test-set error they share (none without per-unit samples)."""
    values = np.asarray(cell.values, dtype=float)
    k = len(values)
    shared = shared_error(cell) if k > 1 else ()
    variance, df = shared or (0.0, math.inf)
    return OurSide(float(values.mean()), k, float(values.var(ddof=1)) if k > 1 else math.nan, variance, df,
                   cell.samples or 0)


def judge_reported(suite, cells: list[Cell]) -> None:
    """Set each cell's reported number (the suite's most specific entry for the config of
    its first seed's run) and, with a margin, the reproduction verdict of its seeds."""
    default = suite_margin(suite, cells[0].metric) if cells else None  # the cells are one metric's
    for cell in cells:
        first = next(row for row in cell.runs if row["run_id"] == cell.seeds[0].run_id)
        entry = reported_for(suite, cell.metric.name, first["config"])
        if entry is None:
            continue
        margin = entry.margin if entry.margin is not None else default
        count = entry.seeds if entry.over == "seeds" else entry.samples
        side = reported_side(entry.value, entry.interval, entry.kind, count, entry.over)
        cell.reported = Reported(entry.value, entry.interval, entry.kind, entry.over, count, side.se, side.rule, side.df,
                                 source_text(entry), margin, entry.cost)
        if margin is not None:
            cell.reproduction = reproduction(our_side(cell), side, margin)


def judge_best(cells: list[Cell], by: list[str], pairing, margin: float | None, parts: dict | None = None,
               column: str = "tasks") -> None:
    """Set each cell's ``vs_best`` in its group (the cells equal on ``by``, at least two):
    "best" for the highest mean (by the metric's direction), else "within δ of the best"
    or "not shown within δ of the best" (``harness.comparisons.against_best``; "no margin"
    without one, "no verdict" with one seed), and mark the best bold (``cell.bold``) only
    when it is significantly best. ``parts``: part name -> direction, each run's part
    values in its ``column`` (a dict), whose own best is marked bold the same way (a
    multi-task table's task columns)."""
    for _, group in grouped(cells, by):
        if len(group) < 2:
            continue
        metric = group[0].metric
        ranking = best_ranking(group, pairing, margin, metric.direction)
        by_method = {row.method: row for row in ranking.rows}  # the ranking lists the best first
        for i, cell in enumerate(group):
            label = by_method[i].label
            cell.vs_best = NO_MARGIN_BEST if margin is None and label == NO_VERDICT else label
            cell.best_p = by_method[i].p_holm
        if ranking.significantly_best:
            group[ranking.best].bold.add(metric.name)
        for name, direction in (parts or {}).items():
            if all(name in cell.parts for cell in group):
                values = [{row["seed"]: row[column][name] for row in cell.runs} for cell in group]
                found = best_ranking(group, pairing, None, direction or "higher", values)
                if found.significantly_best:
                    group[found.best].bold.add(name)


def best_ranking(group: list[Cell], pairing, margin, direction: str, values=None):
    """``against_best`` over the group's cells (by index), the pairing decided per pair of
    cells; ``values``: the cells' {seed: value} when not their metric values."""
    def difference(m, j):
        return pairing.difference(group[m], group[j], None if values is None else (values[m], values[j]))

    return against_best(dict(enumerate(values or [cell.by_seed for cell in group])),
                        math.nan if margin is None else margin, paired=True, direction=direction, difference=difference)
