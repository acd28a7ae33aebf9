"""Records -> DataFrame -> tables: accuracy with intervals beside the reported numbers.

No torch here: a report is made on any machine from the records alone.
"""
from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from harness.spec import expand
from harness.stats import agreement, reported_se, t_interval
from harness.store import Store
from harness.suite import Suite

CELL = ["dataset", "ways", "shots", "method", "backbone"]


def collect(suite: Suite, store: Store):
    """(one row per planned run, the store scan); statistics are computed later, never stored."""
    specs = list(expand(suite))
    scan = store.scan(specs)
    rows = []
    for spec in specs:
        state = scan.states[spec.run_id]
        record = state.record or {}
        timing = record.get("timing") or {}
        row = {name: spec.config[name] for name in CELL + suite.axes if name != "seed"}
        row.update({
            "seed": spec.config["seed"],
            "run_id": spec.run_id,
            "label": spec.label(),
            "status": state.status,
            "episode_accuracies": (record.get("metrics") or {}).get("episode_accuracies"),
            "train_seconds": timing.get("train_seconds"),
            "eval_seconds": timing.get("eval_seconds"),
            "total_seconds": timing.get("total_seconds"),
            "device": (record.get("env") or {}).get("device"),
            "gpus": suite.resources_for(spec.config).gpus,  # what the run asked for, overrides included
            "error": _first_line((record.get("error") or {}).get("message")) if state.status == "failed" else None,
            "log": record.get("log"),
        })
        rows.append(row)
    return pd.DataFrame(rows), scan


def _first_line(text):
    return text.strip().splitlines()[0] if text and text.strip() else text


def group_keys(suite: Suite) -> list[str]:
    return CELL + [axis for axis in suite.axes if axis not in CELL and axis != "seed"]


def summarize(suite: Suite, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: per-seed episode intervals, the across-seed interval, the reported value."""
    keys = group_keys(suite)
    reported = {r.cell: r for r in suite.reported}
    done = runs[runs["status"] == "done"] if len(runs) else runs
    cells = []
    for key, group in done.groupby(keys, sort=False):
        group = group.sort_values("seed")
        per_seed = [t_interval(accuracies) for accuracies in group["episode_accuracies"]]
        across = t_interval([interval.mean for interval in per_seed])
        se_ours = across.se if across.n > 1 else per_seed[0].se
        cell = dict(zip(keys, key))
        row = {
            **cell,
            "seeds": across.n,
            "episodes": int(min(interval.n for interval in per_seed)),
            "per_seed": [(seed, interval.mean, interval.half_width) for seed, interval in zip(group["seed"], per_seed)],
            "accuracy": across.mean,
            "ci95": across.half_width,
            "se": se_ours,
            "train_seconds": group["train_seconds"].mean(),
            "eval_seconds": group["eval_seconds"].mean(),
            "gpu_hours": _gpu_hours(group),
        }
        entry = reported.get(tuple(cell[name] for name in CELL)) or reported.get(tuple(cell[name] for name in CELL[:-1]) + (None,))
        if entry is not None:
            se_rep, how = reported_se(entry.interval, entry.kind, entry.seeds or entry.episodes)
            difference, bound, agrees = agreement(across.mean, se_ours, entry.value, se_rep)
            row.update({
                "reported": entry.value, "reported_interval": entry.interval, "reported_kind": entry.kind,
                "reported_se": se_rep, "reported_se_rule": how, "source": _source(entry),
                "diff": difference, "bound": bound, "agrees": bool(agrees) if not math.isnan(bound) else None,
            })
        cells.append(row)
    return pd.DataFrame(cells)


def _gpu_hours(runs: pd.DataFrame) -> float:
    """GPUs asked for x wall-clock, summed over the runs that ran on a GPU."""
    on_gpu = runs["device"].fillna("").str.startswith("cuda")
    return float((runs["total_seconds"] * runs["gpus"])[on_gpu].sum() / 3600)


def _source(entry) -> str:
    return f"{entry.paper}, {entry.table}" if entry.table else entry.paper


def _num(value, digits=2) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _pm(mean, half) -> str:
    return _num(mean) if half is None or math.isnan(half) else f"{mean:.2f} ± {half:.2f}"


def _seconds(value) -> str:
    if value is None or math.isnan(value):
        return ""
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.2f} h"


def header_lines(suite: Suite, runs: pd.DataFrame) -> list[str]:
    """Title, paper, description and run counts: the top of every family's report."""
    lines = [f"# {suite.name}", "", f"Reproducing: {suite.paper}", ""]
    if suite.description:
        lines += [suite.description.strip(), ""]
    counts = runs["status"].value_counts().to_dict() if len(runs) else {}
    lines.append("Runs: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("done", "failed", "running", "pending")))
    return lines + [""]


def footer_lines(runs: pd.DataFrame, scan) -> list[str]:
    """Failed runs (first line of the error, the log) and the store's warnings."""
    lines = []
    failed = runs[runs["status"] == "failed"] if len(runs) else runs
    if len(failed):
        lines += ["", "## Failed runs", ""]
        lines += [f"- `{r.run_id}` ({r.label}): {r.error} (log: {r.log})" for r in failed.itertuples()]
    if scan.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in scan.warnings]
    return lines


def render_markdown(suite: Suite, runs: pd.DataFrame, cells: pd.DataFrame, scan) -> str:
    lines = header_lines(suite, runs)
    if len(cells):
        keys = group_keys(suite)
        show_gpu = (cells["gpu_hours"] > 0).any()
        sources = {}
        table = []
        for _, cell in cells.iterrows():
            row = [cell[k] for k in keys]
            row += [
                cell["seeds"], cell["episodes"],
                "; ".join(f"s{seed}: {_pm(mean, half)}" for seed, mean, half in cell["per_seed"]),
                _pm(cell["accuracy"], cell["ci95"]),
            ]
            if isinstance(cell.get("source"), str):
                mark = sources.setdefault(cell["source"], len(sources) + 1)
                kind = f" ({cell['reported_kind']})" if cell["reported_kind"] else ""
                row += [f"{_pm(cell['reported'], cell['reported_interval'] if cell['reported_interval'] is not None else math.nan)}{kind} [{mark}]",
                        f"{cell['diff']:+.2f}", {True: "yes", False: "no", None: "n/a"}[cell["agrees"]]]
            else:
                row += ["", "", ""]
            row += [_seconds(cell["train_seconds"]), _seconds(cell["eval_seconds"])]
            if show_gpu:
                row.append(f"{cell['gpu_hours']:.3f}")
            table.append(row)
        headers = keys + ["seeds", "episodes/seed", "per seed: acc ± 95% CI (episodes)",
                          "mean ± 95% CI (seeds)", "reported", "diff", "agrees", "train/run", "eval/run"]
        if show_gpu:
            headers.append("GPU-h (all seeds)")
        lines.append(tabulate(table, headers=headers, tablefmt="github", disable_numparse=True))
        lines += ["", *NOTES]
        if sources:
            lines += ["", "Sources: " + "; ".join(f"[{n}] {s}" for s, n in sources.items()) + "."]
        rules = sorted({cell["reported_se_rule"] for _, cell in cells.iterrows() if isinstance(cell.get("reported_se_rule"), str)})
        if rules:
            lines.append("Reported se derived as: " + "; ".join(rules) + ".")
    else:
        lines.append("No finished runs yet.")
    return "\n".join(lines + footer_lines(runs, scan)) + "\n"


NOTES = [
    "Accuracy in %. Per seed: mean ± half-width of the 95% t-interval over that seed's test episodes "
    "(ddof=1). Mean: mean of the seed means ± half-width of the 95% t-interval across seeds "
    "(k-1 degrees of freedom); episodes are never pooled across seeds. Reported: the paper's number "
    "with its ± as the paper defines it (ci95, std or sem).",
    "Agreement rule: a cell agrees when |diff| <= 1.96 * sqrt(se_ours² + se_reported²), where se_ours is "
    "the standard error of the seed means (with a single seed, the per-episode standard error) and "
    "se_reported is derived from the reported ± by its kind.",
    "Wall-clock: mean per run of training (including validation) and of the final test evaluation, "
    "device synchronised.",
]


def render_csv(cells: pd.DataFrame) -> str:
    if not len(cells):
        return ""
    flat = cells.drop(columns=["per_seed"]).copy()
    flat["per_seed"] = [";".join(f"{s}:{m:.4f}:{h:.4f}" for s, m, h in c) for c in cells["per_seed"]]
    return flat.to_csv(index=False)


def build(suite: Suite, store: Store, fmt: str = "markdown") -> tuple[str, list[str]]:
    """The report text in the given format, and the store's warnings."""
    runs, scan = collect(suite, store)
    cells = summarize(suite, runs)
    text = render_markdown(suite, runs, cells, scan) if fmt == "markdown" else render_csv(cells)
    return text, scan.warnings
