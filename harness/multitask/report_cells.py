"""The multi-task report's cell model: a run as a row of the runs frame, and per cell
(dataset, method, other varying axes) the average's interval across seeds (with each
run's per-image samples where it recorded them), each task's, the cost per training
step and peak memory with their ratios to `unitary` of the same comparison group, the
reproduction verdicts against reported numbers, the labels against the group's best,
the comparisons with a baseline and the suite's claims (paired by seed where the runs
pair: the family's ``paired_by``). No torch here.
"""
from __future__ import annotations

from harness import families
from harness.report import claims, selected
from harness.report.cells import build as build_cells
from harness.report.cells import done_rows, frame_mean, parts, ratios_to, training_hours
from harness.report.collect import collect, cost_fields, first_line
from harness.report.generic import resolve_options
from harness.report.model import Report, Section
from harness.report.paired import Pairing, compare
from harness.report.shared import comparison_keys, group_keys
from harness.report.verdicts import judge_best, judge_reported, suite_margin

MAX_TASK_COLUMNS = 6  # beyond this (CelebA's 40 tasks) only the average is shown; the CSV has all


def run_row(suite):
    """A multi-task run as a row of the runs frame."""
    axes = [axis for axis in suite.axes if axis not in ("dataset", "method", "seed")]
    family = families.get(suite.family)
    samples = family.headline.samples
    costs = cost_fields(suite)

    def row(spec, state) -> dict:
        record = state.record or {}
        metrics, timing, memory = (record.get(k) or {} for k in ("metrics", "timing", "memory"))
        return {
            "dataset": spec.config["dataset"], "method": spec.config["method"], **{axis: spec.config[axis] for axis in axes},
            "seed": spec.config["seed"], "run_id": spec.run_id, "label": spec.label(), "status": state.status,
            "config": spec.config, "directions": (record.get("details") or {}).get("directions") or {},
            "average": metrics.get("average"), "tasks": metrics.get("tasks"),
            "average:samples": metrics.get(samples) if samples else None,
            "seconds_per_step": timing.get("seconds_per_step"),
            "peak_bytes": memory.get("gpu_peak_allocated_bytes") or memory.get("cpu_peak_rss_bytes"),
            **costs(spec.config, record),
            "error": first_line((record.get("error") or {}).get("message")) or None,
            "log": record.get("log"),
        }

    return row


def cells_of(suite, runs, keys: list[str], metric, pairing) -> list:
    """The cells of the average, with each task's interval, the cost per step and its ratios
    to unitary (of the same comparison group), the reproduction verdicts, and the labels
    against the group's best (each shown task's best bold only when significantly best)."""
    cells = build_cells(done_rows(runs), keys, metric)
    for cell in cells:
        cell.parts = parts(cell, "tasks")
        cell.cost = {name: frame_mean(row[name] for row in cell.runs) for name in ("seconds_per_step", "peak_bytes")}
        cell.cost.update(training_hours(cell.runs))
    judge_reported(suite, cells)
    for name in datasets(cells):
        subset = [cell for cell in cells if cell.key["dataset"] == name]
        directions = task_directions(runs, name)
        judge_best(subset, comparison_keys(keys), pairing, suite_margin(suite, metric),
                   {task: directions.get(task) for task in task_names(subset)})
    ratios_to(cells, "unitary", {"time_vs_unitary": "seconds_per_step", "memory_vs_unitary": "peak_bytes"},
              [comparison_keys(keys)])
    return cells


def compute(suite, store, options: dict | None = None) -> Report:
    """The report's model: the runs frame, the cells, the comparisons with the baseline, the claims."""
    options = resolve_options(suite, "markdown", options)
    runs, scan = collect(suite, store, run_row(suite), options.get("specs"))
    family = families.get(suite.family)
    chosen = selected.apply(suite, runs, group_keys(suite), store, options.get("oracle", False))
    keys, metric = chosen.keys, family.headline
    pairing = Pairing.of(family, metric, options.get("shared_by"))
    cells = cells_of(suite, chosen.runs, keys, metric, pairing)
    compared = compare(cells, keys, options["baseline"], pairing)
    tested = claims.evaluate(suite, {metric.name: cells}, {metric.name: pairing}, keys) if suite.claims else []
    return Report(suite, keys, runs, scan, [Section(metric, cells, compared, suite_margin(suite, metric))],
                  options["baseline"], claims=tested, selection=chosen)


def task_directions(runs, dataset: str) -> dict:
    """Task -> "higher" or "lower", as the dataset's finished runs recorded them."""
    done = runs[(runs["dataset"] == dataset) & (runs["status"] == "done")]
    return {k: v for d in done["directions"] for k, v in d.items()}


def datasets(cells) -> list[str]:
    return list(dict.fromkeys(cell.key["dataset"] for cell in cells))


def task_names(cells) -> list[str]:
    """The tasks shown as columns: those of the first cell, when at most MAX_TASK_COLUMNS."""
    names = list(cells[0].parts)
    return names if len(names) <= MAX_TASK_COLUMNS else []
