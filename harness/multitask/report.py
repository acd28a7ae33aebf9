"""Multi-task suites: accuracy AND cost per optimizer, side by side (Kurin et al. 2022).

One table per dataset, one row per cell (dataset, method, other varying axes): each
task's metric and their average, mean over seeds ± the 95% t-interval across seeds (k-1
degrees of freedom); the reproduction verdict against a reported number; the label
against the best of its group (``harness.report.verdicts.judge_best``: within δ of the
best, Holm); time per training step and peak memory, also as ratios to `unitary`
measured in the same suite. With a baseline (``report: {baseline: ...}`` or
``--baseline``): each method's difference in average to it, Holm over the group, paired by
seed where the runs pair (the family's ``paired_by``: the same seed shuffles the same data
the same way), Welch otherwise. The suite's claims. Plots per dataset: the per-task bars
and the cost ratios. Formats: markdown, csv (tidy), latex, json. Built on the shared
cells, columns and renderers of ``harness.report``; the cell model is
``harness.multitask.report_cells``. No torch here.
"""
from __future__ import annotations

import math

from harness.multitask.report_cells import (
    compute,
    datasets,
    task_directions,
    task_names,
)
from harness.report import claims, latex, markdown, plots, selected
from harness.report.collect import counts, report_warnings
from harness.report.columns import (
    REPORTED_COLUMNS,
    VS_BEST,
    Column,
    Table,
    View,
    fields,
    mean_fields,
    mean_json,
)
from harness.report.document import comparison_json
from harness.report.figures import figures_folder, figures_or_warning
from harness.report.generic import resolve_options
from harness.report.model import Report
from harness.report.paired import notes as comparison_notes
from harness.report.shared import (
    arrow,
    comparison_keys,
    dumps,
    latex_escape,
    latex_header,
    latex_label,
    latex_pm,
    pm,
    ratio_text,
    row_labels,
    tidy_csv,
)
from harness.report.tidy import comparison_rows, header

FORMATS = ("markdown", "csv", "latex", "json")


# -- the table's columns ------------------------------------------------------------------


def task_column(name: str, direction: str | None) -> Column:
    header = name + arrow(direction or "higher")
    part = lambda cell: cell.parts[name]
    return Column(name, View(header, lambda c, t: pm(part(c).mean, part(c).half_width)),
                  View(header, lambda c, t: latex_pm(part(c).mean, part(c).half_width), bold=lambda c: name in c.bold))


def _ms(cell) -> str:
    return f"{cell.cost['seconds_per_step'] * 1000:.1f}"


def _figure(name: str, field: str, header: str, text) -> Column:
    """A cost figure (``field`` "cost") or a ratio to unitary ("ratios"): the same text in
    both tables, its value by ``name`` in the CSV and JSON."""
    view = View(header, lambda c, t: text(c))
    value = lambda cell: {name: getattr(cell, field)[name]}
    return Column(name, view, view, tidy=value, json=value)


COLUMNS = [
    Column("average", View("average ± 95% CI", lambda c, t: pm(c.mean, c.ci95, bounds=c.metric.bounds)),
           View("average", lambda c, t: latex_pm(c.mean, c.ci95, bounds=c.metric.bounds),
                bold=lambda c: c.metric.name in c.bold)),
    *REPORTED_COLUMNS,
    VS_BEST,
    Column("seconds_per_step", View("s/step", lambda c, t: _ms(c) + " ms"), View("ms/step", lambda c, t: _ms(c)),
           tidy=lambda c: {"seconds_per_step": c.cost["seconds_per_step"]},
           json=lambda c: {"seconds_per_step": c.cost["seconds_per_step"]}),
    _figure("time_vs_unitary", "ratios", "× unitary", lambda c: ratio_text(c.ratios["time_vs_unitary"])),
    _figure("peak_bytes", "cost", "peak MB", lambda c: f"{c.cost['peak_bytes'] / 2**20:.0f}"),
    _figure("memory_vs_unitary", "ratios", "× unitary (mem)", lambda c: ratio_text(c.ratios["memory_vs_unitary"])),
]
SEEDS = Column("seeds", View("seeds", lambda c, t: c.interval.n), View("seeds", lambda c, t: str(c.interval.n)))


def columns(cells, directions: dict) -> list[Column]:
    return [SEEDS, *(task_column(name, directions.get(name)) for name in task_names(cells)), *COLUMNS]


def notes(cells, metric) -> list[str]:
    """What the table shows: the values, the test set behind them, the cost."""
    lines = ["Metrics: mean over seeds ± half-width of the 95% t-interval across seeds (k-1 degrees of freedom)."]
    if metric.samples and any(cell.samples for cell in cells):
        unit = metric.samples_name.removesuffix("s")
        lines.append(f"Per-{unit} samples: each run records every test {unit}'s score (their mean is its average). The "
                     f"intervals across seeds and the comparisons between methods hold the spread of training seeds "
                     f"on this test set; a verdict against a paper's number adds the error of the test set our seeds "
                     f"share (the mean cross-seed covariance of the per-{unit} scores over n).")
    lines.append("Cost: mean seconds per training step (device synchronised) and peak memory (GPU allocated, else CPU "
                 "RSS), with their ratios to `unitary` in the same suite.")
    return lines


def dataset_table(cells, keys: list[str], metric, directions: dict, margin) -> list[str]:
    """One dataset's markdown table (its tasks are the columns), with the notes."""
    context = Table(metric, cells, keys, comparison_keys(keys))
    return [markdown.table(columns(cells, directions), context), "", *notes(cells, metric),
            *markdown.verdict_notes(context, margin)]


def dataset_latex(suite, cells, keys: list[str], metric, directions: dict, margin) -> list[str]:
    """One dataset's booktabs table: the best of each task column and of the average in
    bold (by the task's direction) per comparison group, where significantly best."""
    dataset, shown_keys = cells[0].key["dataset"], [k for k in keys if k != "dataset"]
    context = Table(metric, cells, keys, comparison_keys(keys))
    caption = latex.caption(suite, context, margin) + latex_escape(
        f" {dataset}: tasks' test metrics as the average; ↓: lower is better. Cost: mean milliseconds per training "
        f"step and peak memory, with their ratios to unitary.")
    return latex.table(columns(cells, directions), context, caption, latex_label(suite.name, dataset), by_group=False,
                       keys=shown_keys)


# -- figures ------------------------------------------------------------------------


def task_figure(cells, keys: list[str], dataset: str, directions: dict, highlight: str, folder) -> dict | None:
    """``<dataset>-tasks.png``: a panel per task (when at most MAX_TASK_COLUMNS) and one for
    the average; per row a bar at the mean over seeds with its 95% interval."""
    panels, labels = [], dict(zip(map(id, cells), row_labels(cells, keys)))
    for name in task_names(cells):
        bars = tuple(plots.Bar(labels[id(c)], c.parts[name].mean, c.parts[name].half_width,
                               c.key["method"] == highlight) for c in cells if name in c.parts)
        panels.append(plots.Panel(name + arrow(directions.get(name) or "higher"), bars, ylabel="test metric"))
    bars = tuple(plots.Bar(labels[id(c)], c.mean, c.ci95, c.key["method"] == highlight) for c in cells)
    panels.append(plots.Panel("average", bars, ylabel="average (%)", bounds=cells[0].metric.bounds if cells else None))
    name = plots.file_name(dataset, "tasks")
    if plots.draw(panels, folder / name, title=f"{dataset}: test metrics, mean over seeds ± 95% t-interval") is None:
        return None
    caption = (f"{dataset}: each task's test metric and the average per optimizer, mean over seeds ± the 95% "
               f"t-interval across seeds" + (f"; hatched: {highlight}" if any(c.key["method"] == highlight for c in cells)
                                             else "") + ".")
    return {"file": name, "alt": f"{dataset} per-task metrics", "caption": caption, "dataset": dataset}


def cost_figure(cells, keys: list[str], dataset: str, highlight: str, folder) -> dict | None:
    """``<dataset>-cost.png``: time per step and peak memory per row, as ratios to unitary
    (a dashed line at 1) when the suite ran unitary, else in seconds and MB."""
    relative = any(cell.ratios["time_vs_unitary"] == cell.ratios["time_vs_unitary"] for cell in cells)
    figures = ((lambda c: c.ratios["time_vs_unitary"], "time per step × unitary", 1.0),
               (lambda c: c.ratios["memory_vs_unitary"], "peak memory × unitary", 1.0)) if relative else (
        (lambda c: c.cost["seconds_per_step"], "seconds per step", None),
        (lambda c: c.cost["peak_bytes"] / 2**20, "peak memory (MB)", None))
    labels = dict(zip(map(id, cells), row_labels(cells, keys)))
    panels = [plots.Panel(title, tuple(plots.Bar(labels[id(c)], float(value(c)), highlight=c.key["method"] == highlight)
                                       for c in cells if math.isfinite(value(c))), reference=reference)
              for value, title, reference in figures]
    name = plots.file_name(dataset, "cost")
    if plots.draw(panels, folder / name, title=f"{dataset}: cost per training step") is None:
        return None
    caption = (f"{dataset}: mean seconds per training step and peak memory per optimizer"
               + (", relative to unitary (dashed line: 1)." if relative else " (no unitary run to compare with)."))
    return {"file": name, "alt": f"{dataset} cost per step", "caption": caption, "dataset": dataset}


def draw_figures(report: Report, folder) -> list[dict]:
    cells, highlight, figures = report.sections[0].cells, report.baseline or "unitary", []
    for dataset in datasets(cells):
        subset = [cell for cell in cells if cell.key["dataset"] == dataset]
        figures += [f for f in (task_figure(subset, report.keys, dataset, task_directions(report.runs, dataset), highlight,
                                            folder), cost_figure(subset, report.keys, dataset, highlight, folder)) if f]
    return figures


# -- the formats ------------------------------------------------------------------------


def render_markdown(report: Report) -> str:
    section, keys = report.sections[0], report.keys
    lines = markdown.header_lines(report.suite, report.runs)
    if not section.cells:
        lines.append("No finished runs yet.")
    for name in datasets(section.cells):
        cells = [cell for cell in section.cells if cell.key["dataset"] == name]
        lines += [f"## {name}", "", *dataset_table(cells, keys, section.metric, task_directions(report.runs, name),
                                                   section.margin), ""]
        if report.baseline:
            mine = [row for row in section.comparisons if row.key["dataset"] == name]
            lines += [f"### Paired comparisons with {report.baseline}", "",
                      *markdown.comparison_table(mine, section.metric, keys), ""]
        for figure in (f for f in report.figures if f["dataset"] == name):
            lines += [f"![{figure['alt']}]({figure['file']})", "", figure["caption"], ""]
    chosen = selected.markdown_lines(report.selection)
    lines += ([""] if lines[-1] else []) + chosen[1:] + [""] if chosen else []
    claimed = claims.markdown_lines(report.claims)
    lines += ([""] if lines[-1] else []) + claimed[1:] + [""] if claimed else []
    return "\n".join(lines + markdown.footer_lines(report.runs, report.scan)) + "\n"


CSV_COLUMNS = ["seed", "metric", "direction", "value", "ci95", "low", "high", "interval", "seeds", "status", "run_id",
               "reported", "diff", "diff_low", "diff_high", "verdict", "verdict_note", "vs_best", "baseline", "n",
               "n_baseline", "wins", "p_value", "p_holm", "seconds_per_step", "time_vs_unitary", "peak_bytes",
               "memory_vs_unitary", "error"]


def run_rows(runs, keys: list[str]) -> list[dict]:
    rows = []
    for run in runs.to_dict("records"):
        common = {"row": "run", **{k: run[k] for k in keys}, "seed": run["seed"], "status": run["status"],
                  "run_id": run["run_id"], "seconds_per_step": run["seconds_per_step"], "peak_bytes": run["peak_bytes"],
                  "error": run["error"]}
        rows.append({**common, "metric": "average", "direction": "higher", "value": run["average"]})
        for name, value in (run["tasks"] or {}).items() if run["status"] == "done" else ():
            rows.append({**common, "metric": name, "direction": run["directions"].get(name), "value": value})
    return rows


def cell_rows(cells, keys: list[str], directions: dict) -> list[dict]:
    """Per cell: a row for the average (with its verdicts) and one per task, with the cost."""
    rows = []
    for cell in cells:
        found = fields(COLUMNS, "tidy", cell)
        common = {"row": "cell", **{k: cell.key[k] for k in keys}, "seeds": cell.interval.n,
                  "interval": "95% t across seeds", **{k: found[k] for k in COST_FIELDS}}
        rows.append({**common, "metric": "average", "direction": "higher", **mean_fields(cell), **found})
        for name, interval in cell.parts.items():
            rows.append({**common, "metric": name, "direction": directions.get(cell.key["dataset"], {}).get(name),
                         "value": interval.mean, "ci95": interval.half_width})
    return rows


COST_FIELDS = ("seconds_per_step", "time_vs_unitary", "peak_bytes", "memory_vs_unitary")


def render_csv(report: Report) -> str:
    """Tidy CSV: ``row`` = run (one row per run and metric: the average and each task),
    cell (mean over seeds ± the 95% interval, the verdicts, cost and its ratios to
    unitary), comparison (the average's difference to the baseline), claim and claim_part."""
    runs, section, keys = report.runs, report.sections[0], report.keys
    if not len(runs):
        return ""
    directions = {name: task_directions(runs, name) for name in runs["dataset"].unique()}
    rows = (run_rows(runs, keys) + cell_rows(section.cells, keys, directions) + comparison_rows(section.comparisons, keys)
            + claims.tidy_rows(report.claims))
    return tidy_csv(rows, header(rows, ["row", *keys, *CSV_COLUMNS]))


def render_latex(report: Report) -> str:
    section, keys = report.sections[0], report.keys
    lines = latex_header(report.suite)
    if not section.cells:
        return "\n".join(lines + ["% No finished runs yet."]) + "\n"
    for name in datasets(section.cells):
        cells = [cell for cell in section.cells if cell.key["dataset"] == name]
        lines += dataset_latex(report.suite, cells, keys, section.metric, task_directions(report.runs, name), section.margin)
        if report.baseline:
            mine = [row for row in section.comparisons if row.key["dataset"] == name]
            lines += latex.comparison_table(report.suite, mine, section.metric, report.baseline, keys)
    lines += claims.latex_lines(report.suite, report.claims)
    return "\n".join(lines + latex.figure_lines(report.figures)).rstrip("\n") + "\n"


def cell_json(cell, keys: list[str], directions: dict) -> dict:
    return {**{k: cell.key[k] for k in keys}, "seeds": cell.interval.n, "average": cell.mean, "ci95": cell.ci95,
            **{k: v for k, v in mean_json(cell).items() if k not in ("mean", "ci95")},
            "per_seed": [{"seed": s.seed, "average": s.value, "ci95": s.within.half_width if s.within else None,
                          "samples": s.within.n if s.within else None} for s in cell.seeds],
            "tasks": {name: {"mean": i.mean, "ci95": i.half_width, "direction": directions.get(name),
                             "significantly_best": name in cell.bold} for name, i in cell.parts.items()},
            **fields(COLUMNS, "json", cell)}


def run_json(run: dict, keys: list[str]) -> dict:
    return {"run_id": run["run_id"], "label": run["label"], "status": run["status"], **{k: run[k] for k in keys},
            "seed": run["seed"], "average": run["average"], "tasks": run["tasks"], "seconds_per_step": run["seconds_per_step"],
            "peak_bytes": run["peak_bytes"], "error": run["error"], "log": run["log"]}


def render_json(report: Report) -> str:
    runs, section, keys = report.runs, report.sections[0], report.keys
    directions = {name: task_directions(runs, name) for name in runs["dataset"].unique()} if len(runs) else {}
    document = {
        "suite": report.suite.name, "family": report.suite.family, "paper": report.suite.paper,
        "description": report.suite.description, "counts": counts(runs), "keys": keys,
        "cells": [cell_json(cell, keys, directions.get(cell.key["dataset"], {})) for cell in section.cells],
        "baseline": report.baseline, "comparisons": [comparison_json(row) for row in section.comparisons],
        "runs": [run_json(run, keys) for run in runs.to_dict("records")], "figures": list(report.figures),
        "notes": notes(section.cells, section.metric) + markdown.verdict_notes(
            Table(section.metric, section.cells, keys, comparison_keys(keys)), section.margin)
        + (comparison_notes(section.comparisons, section.metric, comparison_keys(keys)) if section.comparisons else []),
        "claims": claims.json_entries(report.claims), "claims_rule": claims.RULE,
        **({"selection": selected.json_entry(report.selection)} if report.selection and report.selection.select else {}),
        "warnings": report_warnings(report.scan),
    }
    return dumps(document)


RENDER = {"markdown": render_markdown, "csv": render_csv, "latex": render_latex, "json": render_json}


def build(suite, store, fmt: str = "markdown", options: dict | None = None) -> tuple[str, list[str]]:
    """The report text in the given format, and the store's warnings: one table per dataset.
    ``options`` as ``harness.report.build``'s (plots, baseline, shared_by, specs)."""
    options = resolve_options(suite, fmt, options)
    report = compute(suite, store, options)
    if options["plots"]:
        report.figures, report.problems = figures_or_warning(lambda: draw_figures(report, figures_folder(store, options)))
    return RENDER[fmt](report), report_warnings(report.scan) + report.problems
