"""The multi-task report's cell model: a run as a row of the runs frame, and per cell
(dataset, method, other varying axes) the average's interval across seeds, each task's,
the cost per training step and peak memory with their ratios to `unitary` of the same
comparison group, the verdict against the group's best, and the comparisons with a
baseline (paired by seed when the runs share their data order). No torch here.
"""
from __future__ import annotations

from harness import families
from harness.report.cells import build as build_cells
from harness.report.cells import done_rows, frame_mean, parts, ratios_to
from harness.report.collect import collect
from harness.report.generic import resolve_options
from harness.report.model import Report, Section
from harness.report.paired import compare, shared_keys
from harness.report.shared import comparison_keys, group_keys
from harness.report.verdicts import judge_best

# What fixes the order in which a seed's run sees the training data (the trainer shuffles
# with the run's seed): runs that agree on these and share a seed are paired.
DATA_ORDER_KEYS = ("dataset", "batch_size", "train_images")

MAX_TASK_COLUMNS = 6  # beyond this (CelebA's 40 tasks) only the average is shown; the CSV has all


def run_row(suite):
    """A multi-task run as a row of the runs frame."""
    axes = [axis for axis in suite.axes if axis not in ("dataset", "method", "seed")]

    def row(spec, state) -> dict:
        record = state.record or {}
        metrics, timing, memory = (record.get(k) or {} for k in ("metrics", "timing", "memory"))
        return {
            "dataset": spec.config["dataset"], "method": spec.config["method"], **{axis: spec.config[axis] for axis in axes},
            "seed": spec.config["seed"], "run_id": spec.run_id, "label": spec.label(), "status": state.status,
            "config": spec.config, "directions": (record.get("details") or {}).get("directions") or {},
            "average": metrics.get("average"), "tasks": metrics.get("tasks"),
            "seconds_per_step": timing.get("seconds_per_step"),
            "peak_bytes": memory.get("gpu_peak_allocated_bytes") or memory.get("cpu_peak_rss_bytes"),
            "error": ((record.get("error") or {}).get("message") or "").strip().split("\n")[0] or None,
            "log": record.get("log"),
        }

    return row


def cells_of(runs, keys: list[str], metric) -> list:
    """The cells of the average, with each task's interval, the cost per step and its ratios
    to unitary (of the same comparison group), and the verdict against the group's best."""
    cells = build_cells(done_rows(runs), keys, metric)
    for cell in cells:
        cell.parts = parts(cell, "tasks")
        cell.cost = {name: frame_mean(row[name] for row in cell.runs) for name in ("seconds_per_step", "peak_bytes")}
    judge_best(cells, comparison_keys(keys))
    ratios_to(cells, "unitary", {"time_vs_unitary": "seconds_per_step", "memory_vs_unitary": "peak_bytes"},
              [comparison_keys(keys)])
    return cells


def compute(suite, store, options: dict | None = None) -> Report:
    """The report's model: the runs frame, the cells, the comparisons with the baseline."""
    options = resolve_options(suite, "markdown", options)
    runs, scan = collect(suite, store, run_row(suite), options.get("specs"))
    family = families.get(suite.family)
    keys, metric = group_keys(suite), family.headline
    cells = cells_of(runs, keys, metric)
    compared = compare(cells, keys, options["baseline"], shared_keys(family, metric, options.get("shared_by", DATA_ORDER_KEYS)))
    return Report(suite, keys, runs, scan, [Section(metric, cells, compared)], options["baseline"])


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
