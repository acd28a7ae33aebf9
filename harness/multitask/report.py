"""Multi-task suites: accuracy AND cost per optimizer, side by side (Kurin et al. 2022).

One row per (dataset, method, other varying axes): each task's metric and their
average, mean over seeds ± the 95% t-interval across seeds (k-1 degrees of
freedom); whether the method is statistically indistinguishable from the best one
(Welch's t-test on the seeds' averages, two-sided, 5% level); time per training
step and peak memory, also as ratios to `unitary` measured in the same suite.
With a baseline (``report: {baseline: ...}`` or ``--baseline``): each method's
difference in average to it, paired by seed (the runs of one seed share their data
order when they agree on ``DATA_ORDER_KEYS``), Welch otherwise. Plots per dataset:
the per-task bars and the cost ratios. Formats: markdown, csv (tidy), latex, json.
No torch here.
"""
from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from harness import families, plots
from harness.report import (best_mask, bold, compare_cells, comparison_keys, comparison_latex, comparison_notes,
                            comparison_rows, comparison_table, counts, dumps, figures_or_warning, footer_lines, groups_by,
                            header_lines, latex_escape, latex_figures, latex_header, latex_label, latex_pm, latex_table,
                            report_warnings, resolve_options, tidy_csv)
from harness.spec import expand
from harness.stats import t_interval

FORMATS = ("markdown", "csv", "latex", "json")
# What fixes the order in which a seed's run sees the training data (the trainer shuffles
# with the run's seed): runs that agree on these and share a seed are paired.
DATA_ORDER_KEYS = ("dataset", "batch_size", "train_images")

MAX_TASK_COLUMNS = 6  # beyond this (CelebA's 40 tasks) only the average is shown; the CSV has all


def runs_frame(specs, scan, axes) -> pd.DataFrame:
    rows = []
    for spec in specs:
        state = scan.states[spec.run_id]
        record = state.record or {}
        metrics, timing, memory = (record.get(k) or {} for k in ("metrics", "timing", "memory"))
        rows.append({
            "dataset": spec.config["dataset"], "method": spec.config["method"],
            **{axis: spec.config[axis] for axis in axes if axis not in ("dataset", "method", "seed")},
            "seed": spec.config["seed"], "run_id": spec.run_id, "label": spec.label(), "status": state.status,
            "config": spec.config, "directions": (record.get("details") or {}).get("directions") or {},
            "average": metrics.get("average"), "tasks": metrics.get("tasks"),
            "seconds_per_step": timing.get("seconds_per_step"),
            "peak_bytes": memory.get("gpu_peak_allocated_bytes") or memory.get("cpu_peak_rss_bytes"),
            "error": ((record.get("error") or {}).get("message") or "").strip().split("\n")[0] or None,
            "log": record.get("log"),
        })
    return pd.DataFrame(rows)


def summarize(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    done = runs[runs["status"] == "done"] if len(runs) else runs
    cells = []
    for key, group in done.groupby(keys, sort=False):
        average = t_interval(group["average"].astype(float))
        tasks = {}
        for name in group["tasks"].iloc[0]:
            tasks[name] = t_interval([t[name] for t in group["tasks"]])
        cells.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                      "seeds": average.n, "average": average.mean, "ci95": average.half_width,
                      "seed_averages": list(group["average"].astype(float)), "seed_list": list(group["seed"]),
                      "tasks": tasks,
                      "seconds_per_step": group["seconds_per_step"].mean(), "peak_bytes": group["peak_bytes"].mean()})
    frame = pd.DataFrame(cells)
    if not len(frame):
        return frame
    by = [k for k in keys if k != "method"]
    frame["best"] = False
    frame["indistinguishable"] = None
    frame["time_vs_unitary"] = math.nan
    frame["memory_vs_unitary"] = math.nan
    for _, group in frame.groupby(by, sort=False) if by else [(None, frame)]:
        best = group["average"].idxmax()
        frame.loc[best, "best"] = True
        for index in group.index:
            frame.at[index, "indistinguishable"] = same_as_best(frame.at[index, "seed_averages"], frame.at[best, "seed_averages"])
        unitary = group[group["method"] == "unitary"]
        if len(unitary):
            frame.loc[group.index, "time_vs_unitary"] = group["seconds_per_step"] / unitary["seconds_per_step"].iloc[0]
            frame.loc[group.index, "memory_vs_unitary"] = group["peak_bytes"] / unitary["peak_bytes"].iloc[0]
    return frame


def same_as_best(ours: list, best: list) -> bool | None:
    if ours is best or ours == best:
        return True
    if len(ours) < 2 or len(best) < 2:
        return None
    from scipy import stats as scipy_stats  # only where a verdict is needed: it is slow to import

    return bool(scipy_stats.ttest_ind(ours, best, equal_var=False).pvalue > 0.05)


def _pm(interval) -> str:
    return f"{interval.mean:.2f}" if math.isnan(interval.half_width) else f"{interval.mean:.2f} ± {interval.half_width:.2f}"


def render(cells: pd.DataFrame, keys: list[str], directions: dict | None = None) -> list[str]:
    """One table of the cells of one dataset (its tasks are the columns); ``directions``
    marks the lower-is-better metrics (depth errors) with an arrow."""
    directions = directions or {}
    if not len(cells):
        return ["No finished runs yet."]
    task_names = list(cells.iloc[0]["tasks"])
    show_tasks = len(task_names) <= MAX_TASK_COLUMNS
    arrows = {name: " ↓" if directions.get(name) == "lower" else "" for name in task_names}
    headers = keys + ["seeds"] + ([name + arrows[name] for name in task_names] if show_tasks else []) + [
        "average ± 95% CI", "vs best", "s/step", "× unitary", "peak MB", "× unitary (mem)"]
    table = []
    for _, cell in cells.iterrows():
        verdict = "best" if cell["best"] else {True: "≈ best", False: "worse", None: "n/a"}[cell["indistinguishable"]]
        table.append([cell[k] for k in keys] + [cell["seeds"]]
                     + ([_pm(cell["tasks"][name]) for name in task_names] if show_tasks else [])
                     + [f"{cell['average']:.2f}" + ("" if math.isnan(cell["ci95"]) else f" ± {cell['ci95']:.2f}"), verdict,
                        f"{cell['seconds_per_step'] * 1000:.1f} ms", ratio_text(cell["time_vs_unitary"]),
                        f"{cell['peak_bytes'] / 2**20:.0f}", ratio_text(cell["memory_vs_unitary"])])
    return [tabulate(table, headers=headers, tablefmt="github", disable_numparse=True), "", *NOTES]


def ratio_text(value) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.2f}"


NOTES = [
    "Metrics: mean over seeds ± half-width of the 95% t-interval across seeds (k-1 degrees of freedom). "
    "`vs best`: Welch's t-test of the seeds' averages against the best method's, two-sided at 5%: "
    "`≈ best` when the difference is not significant.",
    "Cost: mean seconds per training step (device synchronised) and peak memory (GPU allocated, else CPU RSS), "
    "with their ratios to `unitary` in the same suite.",
]



def vs_best(cell) -> str:
    """The `vs best` column in words: best, indistinguishable, worse or n/a."""
    if cell["best"]:
        return "best"
    return {True: "indistinguishable", False: "worse", None: "n/a"}[cell["indistinguishable"]]


def group_keys(suite) -> list[str]:
    return ["dataset", "method"] + [axis for axis in suite.axes if axis not in ("dataset", "method", "seed")]


def task_directions(runs: pd.DataFrame, dataset: str) -> dict:
    """Task -> "higher" or "lower", as the dataset's finished runs recorded them."""
    done = runs[(runs["dataset"] == dataset) & (runs["status"] == "done")]
    return {k: v for d in done["directions"] for k, v in d.items()}


def row_label(cell, keys: list[str]) -> str:
    """A row's name in a figure: its method, with the other varying axes."""
    extra = [f"{k}={cell[k]}" for k in keys if k not in ("dataset", "method")]
    return cell["method"] + (f" ({', '.join(extra)})" if extra else "")


# -- comparisons --------------------------------------------------------------------


def comparisons(suite, runs: pd.DataFrame, baseline: str | None, shared_by=DATA_ORDER_KEYS) -> pd.DataFrame:
    """Each method's difference in average to the baseline (``harness.report.compare_cells``):
    paired by seed when the runs agree on ``shared_by`` (same seed => same data order),
    Welch otherwise."""
    if not baseline:
        return pd.DataFrame()
    return compare_cells(suite, runs, "average", baseline, shared_by)


# -- figures ------------------------------------------------------------------------


def task_figure(cells: pd.DataFrame, keys: list[str], dataset: str, directions: dict, highlight: str, store) -> dict | None:
    """``<dataset>-tasks.png``: a panel per task (when at most MAX_TASK_COLUMNS) and one for
    the average; per row a bar at the mean over seeds with its 95% interval."""
    task_names = list(cells.iloc[0]["tasks"])
    shown = task_names if len(task_names) <= MAX_TASK_COLUMNS else []
    panels = []
    for name in shown:
        bars = tuple(plots.Bar(row_label(c, keys), c["tasks"][name].mean, c["tasks"][name].half_width, c["method"] == highlight)
                     for _, c in cells.iterrows() if name in c["tasks"])
        panels.append(plots.Panel(name + (" ↓" if directions.get(name) == "lower" else ""), bars, ylabel="test metric"))
    bars = tuple(plots.Bar(row_label(c, keys), c["average"], c["ci95"], c["method"] == highlight) for _, c in cells.iterrows())
    panels.append(plots.Panel("average", bars, ylabel="average (%)"))
    name = plots.file_name(dataset, "tasks")
    if plots.draw(panels, store.dir / name, title=f"{dataset}: test metrics, mean over seeds ± 95% t-interval") is None:
        return None
    caption = (f"{dataset}: each task's test metric and the average per optimizer, mean over seeds ± the 95% "
               f"t-interval across seeds" + (f"; hatched: {highlight}" if highlight in set(cells["method"]) else "") + ".")
    return {"file": name, "alt": f"{dataset} per-task metrics", "caption": caption, "dataset": dataset}


def cost_figure(cells: pd.DataFrame, keys: list[str], dataset: str, highlight: str, store) -> dict | None:
    """``<dataset>-cost.png``: time per step and peak memory per row, as ratios to unitary
    (a dashed line at 1) when the suite ran unitary, else in seconds and MB."""
    relative = bool(cells["time_vs_unitary"].notna().any())
    columns = (("time_vs_unitary", "time per step × unitary", 1.0), ("memory_vs_unitary", "peak memory × unitary", 1.0)) \
        if relative else (("seconds_per_step", "seconds per step", None), ("peak_mb", "peak memory (MB)", None))
    cells = cells.assign(peak_mb=cells["peak_bytes"] / 2**20)
    panels = [plots.Panel(title, tuple(plots.Bar(row_label(c, keys), float(c[column]), highlight=c["method"] == highlight)
                                       for _, c in cells.iterrows() if math.isfinite(c[column])), reference=reference)
              for column, title, reference in columns]
    name = plots.file_name(dataset, "cost")
    if plots.draw(panels, store.dir / name, title=f"{dataset}: cost per training step") is None:
        return None
    caption = (f"{dataset}: mean seconds per training step and peak memory per optimizer"
               + (", relative to unitary (dashed line: 1)." if relative else " (no unitary run to compare with)."))
    return {"file": name, "alt": f"{dataset} cost per step", "caption": caption, "dataset": dataset}


def draw_figures(cells: pd.DataFrame, runs: pd.DataFrame, keys: list[str], baseline: str | None, store) -> list[dict]:
    figures = []
    for dataset in cells["dataset"].unique() if len(cells) else []:
        subset = cells[cells["dataset"] == dataset].reset_index(drop=True)
        highlight = baseline or "unitary"
        figures += [f for f in (task_figure(subset, keys, dataset, task_directions(runs, dataset), highlight, store),
                                cost_figure(subset, keys, dataset, highlight, store)) if f]
    return figures


# -- markdown -----------------------------------------------------------------------


def render_markdown(suite, runs, scan, cells, keys, baseline=None, compared=None, figures=()) -> str:
    metric = families.get(suite.family).headline
    lines = header_lines(suite, runs)
    if not len(cells):
        lines.append("No finished runs yet.")
    for name in cells["dataset"].unique() if len(cells) else []:
        lines += [f"## {name}", "", *render(cells[cells["dataset"] == name].reset_index(drop=True), keys,
                                            task_directions(runs, name)), ""]
        if baseline:
            mine = compared[compared["dataset"] == name] if len(compared) else compared
            lines += [f"### Paired comparisons with {baseline}", "", *comparison_table(suite, mine, metric, keys), ""]
        for figure in (f for f in figures if f["dataset"] == name):
            lines += [f"![{figure['alt']}]({figure['file']})", "", figure["caption"], ""]
    return "\n".join(lines + footer_lines(runs, scan)) + "\n"


# -- csv: tidy ----------------------------------------------------------------------


CSV_COLUMNS = ["seed", "metric", "direction", "value", "ci95", "interval", "seeds", "status", "run_id", "vs_best",
               "baseline", "n", "n_baseline", "p_value", "verdict", "seconds_per_step", "time_vs_unitary", "peak_bytes",
               "memory_vs_unitary", "error"]


def run_rows(runs: pd.DataFrame, keys: list[str]) -> list[dict]:
    rows = []
    for _, run in runs.iterrows():
        common = {"row": "run", **{k: run[k] for k in keys}, "seed": run["seed"], "status": run["status"],
                  "run_id": run["run_id"], "seconds_per_step": run["seconds_per_step"], "peak_bytes": run["peak_bytes"],
                  "error": run["error"]}
        rows.append({**common, "metric": "average", "direction": "higher", "value": run["average"]})
        for name, value in (run["tasks"] or {}).items() if run["status"] == "done" else ():
            rows.append({**common, "metric": name, "direction": run["directions"].get(name), "value": value})
    return rows


def cell_rows(cells: pd.DataFrame, keys: list[str], directions: dict) -> list[dict]:
    rows = []
    for _, cell in cells.iterrows():
        common = {"row": "cell", **{k: cell[k] for k in keys}, "seeds": cell["seeds"], "interval": "95% t across seeds",
                  **{c: cell[c] for c in ("seconds_per_step", "time_vs_unitary", "peak_bytes", "memory_vs_unitary")}}
        rows.append({**common, "metric": "average", "direction": "higher", "value": cell["average"], "ci95": cell["ci95"],
                     "vs_best": vs_best(cell)})
        for name, interval in cell["tasks"].items():
            rows.append({**common, "metric": name, "direction": directions.get(cell["dataset"], {}).get(name),
                         "value": interval.mean, "ci95": interval.half_width})
    return rows


def render_csv(runs: pd.DataFrame, cells: pd.DataFrame, keys: list[str], compared=None) -> str:
    """Tidy CSV: ``row`` = run (one row per run and metric: the average and each task),
    cell (mean over seeds ± the 95% interval, vs best, cost and its ratios to unitary)
    or comparison (the average's difference to the baseline)."""
    if not len(runs):
        return ""
    directions = {name: task_directions(runs, name) for name in runs["dataset"].unique()}
    compared = compared if compared is not None else pd.DataFrame()
    rows = run_rows(runs, keys) + cell_rows(cells, keys, directions) + comparison_rows(compared, keys)
    return tidy_csv(rows, ["row", *keys, *CSV_COLUMNS])


# -- latex --------------------------------------------------------------------------


def dataset_latex(suite, cells: pd.DataFrame, keys: list[str], directions: dict) -> list[str]:
    """One dataset's table: the best of each task column and of the average in bold (by
    the task's direction), per comparison group."""
    dataset = cells["dataset"].iloc[0]
    shown_keys = [k for k in keys if k != "dataset"]
    task_names = list(cells.iloc[0]["tasks"])
    tasks = task_names if len(task_names) <= MAX_TASK_COLUMNS else []
    text = {}  # (row index, column) -> LaTeX
    for _, group in groups_by(cells, comparison_keys(keys)):
        for column in tasks + ["average"]:
            means = [c["tasks"][column].mean if column != "average" else c["average"] for _, c in group.iterrows()]
            halves = [c["tasks"][column].half_width if column != "average" else c["ci95"] for _, c in group.iterrows()]
            direction = "higher" if column == "average" else directions.get(column, "higher")
            for index, mean, half, best in zip(group.index, means, halves, best_mask(means, direction)):
                text[index, column] = bold(latex_pm(mean, half)) if best else latex_pm(mean, half)
    rows = [[latex_escape(cell[k]) for k in shown_keys] + [str(cell["seeds"])] + [text[i, c] for c in tasks + ["average"]]
            + [f"{cell['seconds_per_step'] * 1000:.1f}", ratio_text(cell["time_vs_unitary"]),
               f"{cell['peak_bytes'] / 2**20:.0f}", ratio_text(cell["memory_vs_unitary"])]
            for i, cell in cells.iterrows()]
    headers = shown_keys + ["seeds"] + [t + (" ↓" if directions.get(t) == "lower" else "") for t in tasks] + [
        "average", "ms/step", "× unitary", "peak MB", "× unitary (mem)"]
    caption = latex_escape(
        f"{dataset}: test metrics, mean over seeds ± half-width of the 95% t-interval across seeds (k-1 degrees of "
        f"freedom); ↓: lower is better. Bold: the best of each column ({', '.join(comparison_keys(keys))} fixed). "
        f"Cost: mean milliseconds per training step and peak memory, with their ratios to unitary.")
    return latex_table(headers, rows, caption, latex_label(suite.name, dataset),
                       align="l" * len(shown_keys) + "r" * (len(headers) - len(shown_keys)))


def render_latex(suite, runs, cells, keys, baseline=None, compared=None, figures=()) -> str:
    metric = families.get(suite.family).headline
    lines = latex_header(suite)
    if not len(cells):
        return "\n".join(lines + ["% No finished runs yet."]) + "\n"
    for name in cells["dataset"].unique():
        lines += dataset_latex(suite, cells[cells["dataset"] == name], keys, task_directions(runs, name))
        if baseline and len(compared):
            lines += comparison_latex(suite, compared[compared["dataset"] == name], metric, baseline, keys)
    return "\n".join(lines + latex_figures(list(figures))).rstrip("\n") + "\n"


# -- json ---------------------------------------------------------------------------


def cell_json(cell, keys: list[str], directions: dict) -> dict:
    return {**{k: cell[k] for k in keys}, "seeds": cell["seeds"], "average": cell["average"], "ci95": cell["ci95"],
            "interval": "95% t across seeds (k-1 df)",
            "per_seed": [{"seed": s, "average": v} for s, v in zip(cell["seed_list"], cell["seed_averages"])],
            "tasks": {name: {"mean": i.mean, "ci95": i.half_width, "direction": directions.get(name)}
                      for name, i in cell["tasks"].items()},
            "vs_best": vs_best(cell), **{c: cell[c] for c in ("seconds_per_step", "time_vs_unitary", "peak_bytes",
                                                              "memory_vs_unitary")}}


def run_json(run, keys: list[str]) -> dict:
    return {"run_id": run["run_id"], "label": run["label"], "status": run["status"], **{k: run[k] for k in keys},
            "seed": run["seed"], "average": run["average"], "tasks": run["tasks"], "seconds_per_step": run["seconds_per_step"],
            "peak_bytes": run["peak_bytes"], "error": run["error"], "log": run["log"]}


def render_json(suite, runs, scan, cells, keys, baseline=None, compared=None, figures=()) -> str:
    metric = families.get(suite.family).headline
    directions = {name: task_directions(runs, name) for name in runs["dataset"].unique()} if len(runs) else {}
    compared = compared if compared is not None else pd.DataFrame()
    document = {
        "suite": suite.name, "family": suite.family, "paper": suite.paper, "description": suite.description,
        "counts": counts(runs), "keys": keys,
        "cells": [cell_json(cell, keys, directions.get(cell["dataset"], {})) for _, cell in cells.iterrows()],
        "baseline": baseline, "comparisons": compared.to_dict("records"),
        "runs": [run_json(run, keys) for _, run in runs.iterrows()], "figures": list(figures),
        "notes": NOTES + (comparison_notes(compared, metric) if len(compared) else []), "warnings": report_warnings(scan),
    }
    return dumps(document)


# -- build --------------------------------------------------------------------------


def build(suite, store, fmt: str = "markdown", options: dict | None = None) -> tuple[str, list[str]]:
    """The report text in the given format, and the store's warnings: one table per dataset.
    ``options`` as ``harness.report.build``'s (plots, baseline, shared_by)."""
    options = resolve_options(suite, fmt, options)
    specs = list(expand(suite))
    scan = store.scan(specs)
    keys = group_keys(suite)
    runs = runs_frame(specs, scan, suite.axes)
    cells = summarize(runs, keys)
    baseline = options["baseline"]
    compared = comparisons(suite, runs, baseline, options.get("shared_by", DATA_ORDER_KEYS))
    figures, problems = (figures_or_warning(lambda: draw_figures(cells, runs, keys, baseline, store))
                         if options["plots"] else ([], []))
    if fmt == "csv":
        text = render_csv(runs, cells, keys, compared)
    elif fmt == "latex":
        text = render_latex(suite, runs, cells, keys, baseline, compared, figures)
    elif fmt == "json":
        text = render_json(suite, runs, scan, cells, keys, baseline, compared, figures)
    else:
        text = render_markdown(suite, runs, scan, cells, keys, baseline, compared, figures)
    return text, report_warnings(scan) + problems
