"""Building the cells of a report from its runs frame: grouping the done runs by the
report's keys (in order of first appearance), each seed's value and interval over its
own samples, the interval across seeds, the test units' shared error (once per cell,
when asked for), and the cost figures every family reports (means per run, GPU-hours),
per-part intervals and ratios to a reference method. Plain Python over the runs' rows, not pandas per cell: a
10,000-run report has a thousand cells.
"""
from __future__ import annotations

import math

import numpy as np

from harness.report.model import Cell, Seed
from harness.reproduction import shared_test_error
from harness.stats import t_interval


def done_rows(runs) -> list[dict]:
    """The done runs of a runs frame as rows (dicts), in the frame's order."""
    return runs[runs["status"] == "done"].to_dict("records") if len(runs) else []


def _key_value(value):
    return None if isinstance(value, float) and math.isnan(value) else value  # a null axis value read back as NaN


def grouped(rows, keys: list[str]) -> list[tuple[tuple, list]]:
    """(values of ``keys``, rows) per group, in order of first appearance; ``rows`` are
    dicts, or cells and comparisons (whose ``key`` holds the values)."""
    groups: dict[tuple, list] = {}
    for row in rows:
        values = row.key if hasattr(row, "key") else row
        groups.setdefault(tuple(_key_value(values[k]) for k in keys), []).append(row)
    return list(groups.items())


def build(rows: list[dict], keys: list[str], metric, by_seed: bool = False) -> list[Cell]:
    """One cell per group of ``rows`` (done runs) for ``metric``: each seed's value, its
    t-interval over the run's samples when it recorded them, and the interval across
    seeds. ``by_seed``: list a cell's seeds in seed order (else in the rows' order)."""
    cells = []
    column = f"{metric.name}:samples" if metric.samples else None
    for key, group in grouped(rows, keys):
        ordered = sorted(group, key=lambda row: row["seed"]) if by_seed else group
        seeds = tuple(Seed(row["seed"], row["run_id"], float(row[metric.name]), within(row.get(column)) if column else None)
                      for row in ordered)
        cells.append(Cell(dict(zip(keys, key)), metric, tuple(group), seeds, t_interval([seed.value for seed in seeds])))
    return cells


def within(samples):
    """A run's interval over its own samples; None when it recorded none (a metric with
    ``samples_required=False``: Cityscapes' mIoU is no mean over units)."""
    return t_interval(samples) if samples is not None and len(samples) else None


def shared_error(cell: Cell) -> tuple:
    """(variance, df) of the error of the test units every seed of ``cell`` shares
    (``harness.reproduction.shared_test_error``: the mean cross-seed covariance of the
    per-unit values over n), computed once per cell; () when some seed has no samples or
    the seeds' units differ in number (then what the cell says is conditional on its
    test set). One seed: (0, inf), nothing to estimate it from."""
    if cell.shared is None:
        column = f"{cell.metric.name}:samples" if cell.metric.samples else None
        samples = [row.get(column) for row in cell.runs] if column else []
        if not samples or any(s is None or not len(s) for s in samples) or len({len(s) for s in samples}) > 1:
            cell.shared = ()
        else:
            cell.shared = shared_test_error(np.asarray(samples, dtype=float))
    return cell.shared


def parts(cell: Cell, column: str) -> dict:
    """Part (a task) -> its interval across the cell's seeds, from each run's ``column``
    (a dict part -> value), for the parts of the cell's first run."""
    first = cell.runs[0][column]
    return {name: t_interval([row[column][name] for row in cell.runs]) for name in first}


# -- cost figures -----------------------------------------------------------------------


def _number(value) -> float:
    """A timing field as a float: NaN when missing (None, NaN, not a number)."""
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def mean_of(values) -> float:
    """The mean of the numbers among ``values`` (NaN when there are none), summed exactly."""
    numbers = [v for v in map(_number, values) if not math.isnan(v)]
    return math.fsum(numbers) / len(numbers) if numbers else math.nan


def frame_mean(values) -> float:
    """The mean of the numbers among ``values`` as pandas' ``Series.mean`` gives it (a
    missing value adds 0 to numpy's sum and is not counted); NaN when there are none."""
    numbers = np.array([_number(v) for v in values], dtype=float)
    present = ~np.isnan(numbers)
    return float(np.where(present, numbers, 0.0).sum() / present.sum()) if present.any() else math.nan


def _on_gpu(row) -> bool:
    return str(row.get("device") or "").startswith("cuda")


def gpu_hours(rows) -> float:
    """GPUs asked for x wall-clock, summed over the runs (rows) that ran on a GPU."""
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
    return math.fsum(v for v in (_number(r["total_seconds"]) * r["gpus"] for r in rows if _on_gpu(r))
                     if not math.isnan(v)) / 3600


def training_hours(rows) -> dict:
    """Mean training cost per run: GPU-hours (GPUs asked for x training seconds, 0 for a run
    that did not run on a GPU) and CPU core-hours (cores asked for x training seconds)."""
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
    gpu = [_number(r["train_seconds"]) * (r["gpus"] if _on_gpu(r) else 0) for r in rows]
    cpu = [_number(r["train_seconds"]) * r["cpus"] for r in rows]
    return {"train_gpu_hours": mean_of(gpu) / 3600, "train_cpu_hours": mean_of(cpu) / 3600}


def run_costs(rows) -> dict:
    """The generic report's cost figures of a cell's runs: mean train and eval seconds per
    run, GPU-hours over all its runs, and the mean training GPU- and CPU-hours per run."""
    return {"train_seconds": mean_of(row["train_seconds"] for row in rows),
            "eval_seconds": mean_of(row["eval_seconds"] for row in rows),
            "gpu_hours": gpu_hours(rows), **training_hours(rows)}


def ratios_to(cells: list[Cell], method: str, figures: dict, tiers: list[list[str]]) -> None:
    """Set each cell's ``ratios[name] = cost[figure] / the reference cell's`` for each
    ``name: figure`` of ``figures``. The reference: the first cell of ``method`` that
    has the cell's values of the keys of the first of ``tiers`` where there is one (none:
    the ratios are NaN)."""
    for cell in cells:
        reference = next((other for tier in tiers for other in cells if other.key["method"] == method
                          and all(other.key[k] == cell.key[k] for k in tier)), None)
        for name, figure in figures.items():
            with np.errstate(divide="ignore", invalid="ignore"):
                cell.ratios[name] = (float(np.float64(cell.cost[figure]) / reference.cost[figure])
                                     if reference is not None else math.nan)
