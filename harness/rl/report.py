"""RL suites: success rate AND cost per multi-task optimizer (Kurin et al. 2022, Meta-World).

One table per benchmark, one row per (method, other varying axes but seed): the final
success rate, mean over seeds ± the 95% t-interval across seeds (k-1 degrees of
freedom); whether the row is statistically indistinguishable from the benchmark's best
(Welch's t-test of the seeds' success rates, two-sided, 5%, as the multi-task report);
seconds per update and env steps per second with their ratios to ``unitary`` in the same
suite; wall-clock per run. ``options={"per_task": True}`` adds each task's success.
The evaluation curves go to ``curves.png`` beside REPORT.md (``harness.rl.curves``).
No torch here.
"""
from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from harness.multitask.report import ratio_text, same_as_best
from harness import report as generic
from harness.report import footer_lines, header_lines, seconds
from harness.rl import curves
from harness.spec import expand
from harness.stats import t_interval

CURVES = "curves.png"


def runs_frame(specs, scan, axes) -> pd.DataFrame:
    rows = []
    for spec in specs:
        state = scan.states[spec.run_id]
        record = state.record or {}
        metrics, timing = record.get("metrics") or {}, record.get("timing") or {}
        rows.append({
            "dataset": spec.config["dataset"], "method": spec.config["method"],
            **{axis: spec.config[axis] for axis in axes if axis not in ("dataset", "method", "seed")},
            "seed": spec.config["seed"], "run_id": spec.run_id, "label": spec.label(), "status": state.status,
            "success": metrics.get("success"), "tasks": metrics.get("tasks"), "curve": metrics.get("curve"),
            "seconds_per_update": timing.get("seconds_per_update"), "env_steps_per_second": timing.get("env_steps_per_second"),
            "wall_seconds": (timing.get("train_seconds") or 0.0) + (timing.get("eval_seconds") or 0.0),
            "steps": timing.get("steps"),
            "error": ((record.get("error") or {}).get("message") or "").strip().split("\n")[0] or None,
            "log": record.get("log"),
        })
    return pd.DataFrame(rows)


def group_keys(suite) -> list[str]:
    return ["dataset", "method"] + [axis for axis in suite.axes if axis not in ("dataset", "method", "seed")]


def summarize(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    done = runs[runs["status"] == "done"] if len(runs) else runs
    cells = []
    for key, group in done.groupby(keys, sort=False):
        success = t_interval(group["success"].astype(float))
        task_names = list(group["tasks"].iloc[0])
        cells.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                      "seeds": success.n, "success": success.mean, "ci95": success.half_width,
                      "seed_values": list(group["success"].astype(float)),
                      "tasks": {name: t_interval([t[name] for t in group["tasks"]]) for name in task_names},
                      "curves": list(group["curve"]),
                      "seconds_per_update": _mean(group["seconds_per_update"]),
                      "env_steps_per_second": _mean(group["env_steps_per_second"]),
                      "wall_seconds": _mean(group["wall_seconds"]), "steps": _mean(group["steps"])})
    frame = pd.DataFrame(cells)
    if not len(frame):
        return frame
    frame["best"] = False
    frame["indistinguishable"] = None
    for column in ("update_vs_unitary", "env_vs_unitary"):
        frame[column] = math.nan
    others = [k for k in keys if k not in ("dataset", "method")]
    for _, group in frame.groupby("dataset", sort=False):
        best = group["success"].idxmax()
        frame.loc[best, "best"] = True
        for index in group.index:
            frame.at[index, "indistinguishable"] = same_as_best(frame.at[index, "seed_values"], frame.at[best, "seed_values"])
        for index in group.index:
            reference = _unitary_for(group, frame.loc[index], others)
            if reference is not None:
                frame.at[index, "update_vs_unitary"] = frame.at[index, "seconds_per_update"] / reference["seconds_per_update"]
                frame.at[index, "env_vs_unitary"] = frame.at[index, "env_steps_per_second"] / reference["env_steps_per_second"]
    return frame


def _mean(values) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def _unitary_for(group: pd.DataFrame, cell, others: list[str]):
    """The unitary row of the benchmark with the same other axes, else its first unitary row."""
    unitary = group[group["method"] == "unitary"]
    if not len(unitary):
        return None
    same = unitary[(unitary[others] == cell[others]).all(axis=1)] if others else unitary
    return (same if len(same) else unitary).iloc[0]


def _row_name(cell, keys: list[str]) -> str:
    extra = [f"{k}={cell[k]}" for k in keys if k not in ("dataset", "method")]
    return cell["method"] + (f" ({', '.join(extra)})" if extra else "")


def _pm(mean: float, half: float) -> str:
    return f"{mean:.1f}" if math.isnan(half) else f"{mean:.1f} ± {half:.1f}"


def render(cells: pd.DataFrame, keys: list[str], per_task: bool) -> list[str]:
    headers = keys[1:] + ["seeds", "success % ± 95% CI", "vs best", "s/update", "× unitary", "env steps/s",
                          "× unitary (env)", "wall-clock / run"]
    table = []
    for _, cell in cells.iterrows():
        verdict = "best" if cell["best"] else {True: "≈ best", False: "worse", None: "n/a"}[cell["indistinguishable"]]
        table.append([cell[k] for k in keys[1:]] + [cell["seeds"], _pm(cell["success"], cell["ci95"]), verdict,
                     _milliseconds(cell["seconds_per_update"]), ratio_text(cell["update_vs_unitary"]),
                     _count(cell["env_steps_per_second"]), ratio_text(cell["env_vs_unitary"]), seconds(cell["wall_seconds"])])
    lines = [tabulate(table, headers=headers, tablefmt="github", disable_numparse=True), ""]
    if per_task:
        names = [_row_name(cell, keys) for _, cell in cells.iterrows()]
        tasks = list(cells.iloc[0]["tasks"])
        rows = [[task] + [_pm(cell["tasks"][task].mean, cell["tasks"][task].half_width) if task in cell["tasks"] else ""
                          for _, cell in cells.iterrows()] for task in tasks]
        lines += ["Success per task (%, mean over seeds ± 95% CI):", "",
                  tabulate(rows, headers=["task"] + names, tablefmt="github", disable_numparse=True), ""]
    return lines


def _milliseconds(value) -> str:
    return "" if value is None or math.isnan(value) else f"{value * 1000:.1f} ms"


def _count(value) -> str:
    return "" if value is None or math.isnan(value) else f"{value:,.0f}"


NOTES = [
    "Success: the final evaluation's mean over tasks of the share of episodes with `info['success']` at any step "
    "(deterministic actions); mean over seeds ± half-width of the 95% t-interval across seeds (k-1 degrees of "
    "freedom). `vs best`: Welch's t-test of the seeds' success rates against the benchmark's best row, two-sided "
    "at 5%: `≈ best` when the difference is not significant.",
    "Cost: mean seconds per update (sampling and the whole SAC update, device synchronised) and env steps per "
    "second of the training envs, with their ratios to `unitary` of the same benchmark; wall-clock = training "
    "and evaluation per run.",
]


def render_csv(cells: pd.DataFrame) -> str:
    if not len(cells):
        return ""
    flat = cells.drop(columns=["tasks", "seed_values", "curves"]).copy()
    names = list(dict.fromkeys(name for tasks in cells["tasks"] for name in tasks))
    for name in names:
        flat[f"task:{name}"] = [c[name].mean if name in c else None for c in cells["tasks"]]
        flat[f"task:{name}:ci95"] = [c[name].half_width if name in c else None for c in cells["tasks"]]
    return flat.to_csv(index=False)


FORMATS = ("markdown", "csv")


def build(suite, store, fmt: str = "markdown", options: dict | None = None) -> tuple[str, list[str]]:
    """The report text in the given format and the store's warnings; the markdown one also
    writes the curves PNG beside REPORT.md and links it."""
    options = generic.resolve_options(suite, fmt, options)
    specs = list(expand(suite))
    scan = store.scan(specs)
    keys = group_keys(suite)
    runs = runs_frame(specs, scan, suite.axes)
    cells = summarize(runs, keys)
    if fmt == "csv":
        return render_csv(cells), generic.report_warnings(scan)
    lines = header_lines(suite, runs)
    if not len(cells):
        lines.append("No finished runs yet.")
    else:
        panels = {name: {_row_name(cell, keys): cell["curves"] for _, cell in cells[cells["dataset"] == name].iterrows()}
                  for name in cells["dataset"].unique()}
        if curves.plot(panels, store.dir / CURVES):
            lines += [f"Evaluation curves (mean over seeds, 95% band): [{CURVES}]({CURVES})", "", f"![evaluation curves]({CURVES})", ""]
        for name in cells["dataset"].unique():
            lines += [f"## {name}", "", *render(cells[cells["dataset"] == name].reset_index(drop=True), keys,
                                                bool(options.get("per_task"))), ""]
        for note in NOTES:
            lines += [note, ""]
        if options["baseline"]:
            lines += comparison_lines(suite, store, options["baseline"]) + [""]
    return "\n".join(lines + footer_lines(runs, scan)) + "\n", generic.report_warnings(scan)


# Runs of one seed share their environments' goals (drawn from the seed) when these agree:
# the report pairs them by seed (harness.report.compare_cells), else compares by Welch.
SHARED_BY = ("dataset", "horizon", "reward_function_version", "task_one_hot")


def comparison_lines(suite, store, baseline: str) -> list[str]:
    """Each method's final success against the baseline's, paired by seed (same goals)."""
    runs, _ = generic.collect(suite, store)
    return generic.comparison_lines(suite, runs, baseline, shared_by=SHARED_BY)
