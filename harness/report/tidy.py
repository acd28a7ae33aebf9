"""The tidy CSV report (``report.csv``): one row per run, per cell, per comparison, per
claim and per part of a claim (a ``row`` column says which: run, cell, comparison, claim,
claim_part), named columns, no packed fields. The columns of the cell and
comparison rows come from their declarations (``harness.report.columns``).
"""
from __future__ import annotations

from harness.report import claims
from harness.report.columns import CELL_COLUMNS, COMPARISON_COLUMNS, fields
from harness.report.shared import tidy_csv

CSV_COLUMNS = ["seed", "metric", "value", "ci95", "low", "high", "interval", "seeds", "samples", "status", "run_id",
               "reported", "reported_interval", "reported_kind", "reported_over", "reported_count", "reported_se",
               "source", "margin", "diff", "diff_low", "diff_high", "verdict", "verdict_note", "seeds_to_decide",
               "vs_best", "baseline", "n", "n_baseline", "wins", "p_value", "p_holm", "train_seconds", "eval_seconds",
               "gpu_hours", "train_gpu_hours", "train_cpu_hours", "error"]


def header(rows: list[dict], known: list[str]) -> list[str]:
    """``known`` (the columns in the order of earlier reports), then any other column of
    ``rows`` in the order they first appear."""
    columns = dict.fromkeys(known)
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def run_rows(report, section) -> list[dict]:
    """One row per planned run: its status, value and the interval over its own samples."""
    metric = section.metric
    within = {seed.run_id: seed.within for cell in section.cells for seed in cell.seeds}
    rows = []
    for run in report.runs.to_dict("records"):
        row = {"row": "run", **{k: run[k] for k in report.keys}, "seed": run["seed"], "metric": metric.name,
               "status": run["status"], "run_id": run["run_id"], "train_seconds": run["train_seconds"],
               "eval_seconds": run["eval_seconds"], "error": run["error"]}
        if run["status"] == "done":
            row["value"] = float(run[metric.name])
            interval = within.get(run["run_id"])
            if interval is not None:
                row.update({"ci95": interval.half_width, "samples": interval.n,
                            "interval": f"95% t over {metric.samples_name}"})
        rows.append(row)
    return rows


def cell_rows(section, keys: list[str]) -> list[dict]:
    return [{"row": "cell", **{k: cell.key[k] for k in keys}, "metric": section.metric.name,
             **fields(CELL_COLUMNS, "tidy", cell)} for cell in section.cells]


def comparison_rows(comparisons: list, keys: list[str]) -> list[dict]:
    return [{"row": "comparison", **{k: row.key[k] for k in keys}, "metric": row.metric,
             **fields(COMPARISON_COLUMNS, "tidy", row)} for row in comparisons]


def render(report) -> str:
    """The generic report's CSV: every metric's run rows, then cell rows, comparisons, claims."""
    if not len(report.runs):
        return ""
    runs, cells, comparisons = [], [], []
    for section in report.sections:
        runs += run_rows(report, section)
        cells += cell_rows(section, report.keys)
        comparisons += comparison_rows(section.comparisons, report.keys)
    rows = runs + cells + comparisons + claims.tidy_rows(report.claims)
    return tidy_csv(rows, header(rows, ["row", *report.keys, *CSV_COLUMNS]))
