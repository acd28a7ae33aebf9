"""RL suites: success rate AND cost per multi-task optimizer (Kurin et al. 2022, Meta-World).

One table per benchmark, one row per cell (method, other varying axes but seed): the
final success rate, mean over seeds ± the 95% t-interval across seeds (k-1 degrees of
freedom); whether the row is statistically indistinguishable from the benchmark's best
(``harness.report.verdicts.judge_best``, as the multi-task report); seconds per update
and env steps per second with their ratios to ``unitary`` in the same suite; wall-clock
per run. ``options={"per_task": True}`` adds each task's success. With a baseline: each
method's success against it, paired by seed (the same seed fixes the same goals). The
evaluation curves go to ``curves.png`` beside REPORT.md (``harness.rl.curves``). Built
on the shared cells, columns and renderers of ``harness.report``; no torch here.
"""
from __future__ import annotations

import pandas as pd

from harness import families
from harness.report import markdown
from harness.report.cells import build as build_cells
from harness.report.cells import done_rows, frame_mean, parts, ratios_to
from harness.report.collect import collect, report_warnings
from harness.report.columns import Column, Table, View
from harness.report.generic import resolve_options
from harness.report.model import Report, Section
from harness.report.paired import compare, shared_keys
from harness.report.shared import (
    VS_BEST,
    comparison_keys,
    group_keys,
    missing,
    pm,
    ratio_text,
    row_label,
    seconds,
)
from harness.report.verdicts import judge_best
from harness.rl import curves
from harness.tables import markdown_table

FORMATS = ("markdown", "csv")
CURVES = "curves.png"
# Runs of one seed share their environments' goals (drawn from the seed) when these agree:
# the report pairs them by seed, else compares by Welch.
SHARED_BY = ("dataset", "horizon", "reward_function_version", "task_one_hot")
COSTS = ("seconds_per_update", "env_steps_per_second", "wall_seconds", "steps")


def cell_keys(suite) -> list[str]:
    """The keys naming a row: the benchmark, the method and every other varying axis."""
    return ["dataset", "method"] + [axis for axis in suite.axes if axis not in ("dataset", "method", "seed")]


def run_row(suite):
    """An RL run as a row of the runs frame: the keys of its row and of its comparisons
    (the generic keys: ``steps`` too), its success, tasks, curve and timing."""
    keys = list(dict.fromkeys(cell_keys(suite) + group_keys(suite)))

    def row(spec, state) -> dict:
        record = state.record or {}
        metrics, timing = record.get("metrics") or {}, record.get("timing") or {}
        return {
            **{k: spec.config[k] for k in keys}, "seed": spec.config["seed"], "run_id": spec.run_id, "label": spec.label(),
            "status": state.status, "config": spec.config,
            "success": metrics.get("success"), "tasks": metrics.get("tasks"), "curve": metrics.get("curve"),
            "seconds_per_update": timing.get("seconds_per_update"), "env_steps_per_second": timing.get("env_steps_per_second"),
            "wall_seconds": (timing.get("train_seconds") or 0.0) + (timing.get("eval_seconds") or 0.0),
            "steps_done": timing.get("steps"),
            "error": ((record.get("error") or {}).get("message") or "").strip().split("\n")[0] or None,
            "log": record.get("log"),
        }

    return row


def cells_of(runs, keys: list[str], metric) -> list:
    """The cells of the success rate, with each task's interval, the cost figures and their
    ratios to unitary (the benchmark's, with the same other axes when there is one), and
    the verdict against the benchmark's best."""
    cells = build_cells(done_rows(runs), keys, metric)
    for cell in cells:
        cell.parts = parts(cell, "tasks")
        cell.cost = {name: frame_mean(row["steps_done" if name == "steps" else name] for row in cell.runs) for name in COSTS}
    judge_best(cells, ["dataset"])
    ratios_to(cells, "unitary", {"update_vs_unitary": "seconds_per_update", "env_vs_unitary": "env_steps_per_second"},
              [comparison_keys(keys), ["dataset"]])
    return cells


def compute(suite, store, options: dict | None = None) -> Report:
    """The report's model; its comparisons are keyed by the generic keys (``steps`` too)."""
    options = resolve_options(suite, "markdown", options)
    family = families.get(suite.family)
    runs, scan = collect(suite, store, run_row(suite), options.get("specs"))
    keys, metric = cell_keys(suite), family.headline
    compared = compare(build_cells(done_rows(runs), group_keys(suite), metric), group_keys(suite), options["baseline"],
                       shared_keys(family, metric, SHARED_BY))
    return Report(suite, keys, runs, scan, [Section(metric, cells_of(runs, keys, metric), compared)], options["baseline"])


def _milliseconds(value) -> str:
    return "" if missing(value) else f"{value * 1000:.1f} ms"


def _count(value) -> str:
    return "" if missing(value) else f"{value:,.0f}"


COLUMNS = [
    Column("seeds", View("seeds", lambda c, t: c.interval.n)),
    Column("success", View("success % ± 95% CI", lambda c, t: pm(c.mean, c.ci95, 1))),
    Column("vs_best", View("vs best", lambda c, t: VS_BEST[c.vs_best])),
    Column("seconds_per_update", View("s/update", lambda c, t: _milliseconds(c.cost["seconds_per_update"]))),
    Column("update_vs_unitary", View("× unitary", lambda c, t: ratio_text(c.ratios["update_vs_unitary"]))),
    Column("env_steps_per_second", View("env steps/s", lambda c, t: _count(c.cost["env_steps_per_second"]))),
    Column("env_vs_unitary", View("× unitary (env)", lambda c, t: ratio_text(c.ratios["env_vs_unitary"]))),
    Column("wall_seconds", View("wall-clock / run", lambda c, t: seconds(c.cost["wall_seconds"]))),
]

NOTES = [
    ("Success: the final evaluation's mean over tasks of the share of episodes with `info['success']` at any step "
     "(deterministic actions); mean over seeds ± half-width of the 95% t-interval across seeds (k-1 degrees of "
     "freedom). `vs best`: Welch's t-test of the seeds' success rates against the benchmark's best row, two-sided "
     "at 5%: `≈ best` when the difference is not significant."),
    ("Cost: mean seconds per update (sampling and the whole SAC update, device synchronised) and env steps per "
     "second of the training envs, with their ratios to `unitary` of the same benchmark; wall-clock = training "
     "and evaluation per run."),
]


def benchmark_lines(cells: list, keys: list[str], metric, per_task: bool) -> list[str]:
    """One benchmark's table (no benchmark column) and, ``per_task``, its tasks' success."""
    lines = [markdown.table(COLUMNS, Table(metric, cells, keys[1:])), ""]
    if per_task:
        names = [row_label(cell.key, keys) for cell in cells]
        rows = [[task] + [pm(cell.parts[task].mean, cell.parts[task].half_width, 1) if task in cell.parts else ""
                          for cell in cells] for task in cells[0].parts]
        lines += ["Success per task (%, mean over seeds ± 95% CI):", "",
                  markdown_table(rows, ["task"] + names), ""]
    return lines


def render_markdown(report: Report, folder, per_task: bool) -> str:
    """The page; it also draws the curves PNG into ``folder`` and links it."""
    section, keys = report.sections[0], report.keys
    lines = markdown.header_lines(report.suite, report.runs)
    benchmarks = list(dict.fromkeys(cell.key["dataset"] for cell in section.cells))
    if not section.cells:
        lines.append("No finished runs yet.")
    else:
        panels = {name: {row_label(cell.key, keys): [row["curve"] for row in cell.runs] for cell in section.cells
                         if cell.key["dataset"] == name} for name in benchmarks}
        if curves.plot(panels, folder / CURVES):
            lines += [f"Evaluation curves (mean over seeds, 95% band): [{CURVES}]({CURVES})", "", f"![evaluation curves]({CURVES})", ""]
        for name in benchmarks:
            cells = [cell for cell in section.cells if cell.key["dataset"] == name]
            lines += [f"## {name}", "", *benchmark_lines(cells, keys, section.metric, per_task), ""]
        for note in NOTES:
            lines += [note, ""]
        if report.baseline:
            lines += ["", f"## Paired comparisons with {report.baseline}", "",
                      *markdown.comparison_table(section.comparisons, section.metric, group_keys(report.suite)), ""]
    return "\n".join(lines + markdown.footer_lines(report.runs, report.scan)) + "\n"


def render_csv(report: Report) -> str:
    """One row per cell: its keys, success and interval, cost, vs best and ratios, each task."""
    cells = report.sections[0].cells
    if not cells:
        return ""
    rows = []
    for cell in cells:
        row = {**cell.key, "seeds": cell.interval.n, "success": cell.mean, "ci95": cell.ci95, **cell.cost,
               "best": cell.vs_best == "best", "indistinguishable": {"worse": False, "n/a": None}.get(cell.vs_best, True),
               **cell.ratios}
        rows.append(row)
    names = list(dict.fromkeys(name for cell in cells for name in cell.parts))
    for row, cell in zip(rows, cells):
        for name in names:
            row[f"task:{name}"] = cell.parts[name].mean if name in cell.parts else None
            row[f"task:{name}:ci95"] = cell.parts[name].half_width if name in cell.parts else None
    return pd.DataFrame(rows).to_csv(index=False)


def build(suite, store, fmt: str = "markdown", options: dict | None = None) -> tuple[str, list[str]]:
    """The report text in the given format and the store's warnings; the markdown one also
    writes the curves PNG beside REPORT.md and links it."""
    options = resolve_options(suite, fmt, options)
    report = compute(suite, store, options)
    text = render_csv(report) if fmt == "csv" else render_markdown(report, store.dir, bool(options.get("per_task")))
    return text, report_warnings(report.scan)
