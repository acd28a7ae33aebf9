"""Multi-task suites: accuracy AND cost per optimizer, side by side (Kurin et al. 2022).

One row per (dataset, method, other varying axes): each task's metric and their
average, mean over seeds ± the 95% t-interval across seeds (k-1 degrees of
freedom); whether the method is statistically indistinguishable from the best one
(Welch's t-test on the seeds' averages, two-sided, 5% level); time per training
step and peak memory, also as ratios to `unitary` measured in the same suite.
No torch here.
"""
from __future__ import annotations

import math

import pandas as pd
from scipy import stats as scipy_stats
from tabulate import tabulate

from harness.report import footer_lines, header_lines
from harness.spec import expand
from harness.stats import t_interval

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
            "directions": (record.get("details") or {}).get("directions") or {},
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
                      "seed_averages": list(group["average"].astype(float)), "tasks": tasks,
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
            frame.at[index, "indistinguishable"] = _same_as(frame.at[index, "seed_averages"], frame.at[best, "seed_averages"])
        unitary = group[group["method"] == "unitary"]
        if len(unitary):
            frame.loc[group.index, "time_vs_unitary"] = group["seconds_per_step"] / unitary["seconds_per_step"].iloc[0]
            frame.loc[group.index, "memory_vs_unitary"] = group["peak_bytes"] / unitary["peak_bytes"].iloc[0]
    return frame


def _same_as(ours: list, best: list) -> bool | None:
    if ours is best or ours == best:
        return True
    if len(ours) < 2 or len(best) < 2:
        return None
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
                        f"{cell['seconds_per_step'] * 1000:.1f} ms", _ratio(cell["time_vs_unitary"]),
                        f"{cell['peak_bytes'] / 2**20:.0f}", _ratio(cell["memory_vs_unitary"])])
    return [tabulate(table, headers=headers, tablefmt="github", disable_numparse=True), "", *NOTES]


def _ratio(value) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.2f}"


NOTES = [
    "Metrics: mean over seeds ± half-width of the 95% t-interval across seeds (k-1 degrees of freedom). "
    "`vs best`: Welch's t-test of the seeds' averages against the best method's, two-sided at 5%: "
    "`≈ best` when the difference is not significant.",
    "Cost: mean seconds per training step (device synchronised) and peak memory (GPU allocated, else CPU RSS), "
    "with their ratios to `unitary` in the same suite.",
]


def render_csv(cells: pd.DataFrame) -> str:
    if not len(cells):
        return ""
    flat = cells.drop(columns=["tasks", "seed_averages"]).copy()
    names = list(dict.fromkeys(name for tasks in cells["tasks"] for name in tasks))  # every dataset's, in order
    for name in names:  # empty where the row's dataset has no such task
        flat[f"task:{name}"] = [c[name].mean if name in c else None for c in cells["tasks"]]
        flat[f"task:{name}:ci95"] = [c[name].half_width if name in c else None for c in cells["tasks"]]
    return flat.to_csv(index=False)


def group_keys(suite) -> list[str]:
    return ["dataset", "method"] + [axis for axis in suite.axes if axis not in ("dataset", "method", "seed")]


def build(suite, store, fmt: str = "markdown", options: dict | None = None) -> tuple[str, list[str]]:
    """The report text in the given format, and the store's warnings: one table per dataset."""
    specs = list(expand(suite))
    scan = store.scan(specs)
    keys = group_keys(suite)
    runs = runs_frame(specs, scan, suite.axes)
    cells = summarize(runs, keys)
    if fmt == "csv":
        return render_csv(cells), scan.warnings
    lines = header_lines(suite, runs)
    if not len(cells):
        lines.append("No finished runs yet.")
    for name in cells["dataset"].unique() if len(cells) else []:
        done = runs[(runs["dataset"] == name) & (runs["status"] == "done")]
        directions = {k: v for d in done["directions"] for k, v in d.items()}
        lines += [f"## {name}", "", *render(cells[cells["dataset"] == name].reset_index(drop=True), keys, directions), ""]
    return "\n".join(lines + footer_lines(runs, scan)) + "\n", scan.warnings
