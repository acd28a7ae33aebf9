"""The generic report: records -> DataFrame -> tables, for any family, from the metrics it
declares. No torch here: a report is made on any machine from the records alone.

For each cell (runs that differ only by seed) and each declared metric: the mean over
seeds ± the 95% t-interval across seeds; per-seed intervals over the metric's samples
when it has some (test episodes); the reported number, the difference and whether they
agree (``harness.stats.agreement``); lower-is-better metrics marked ↓; wall-clock and
GPU-hours. A family may replace it (``Family.report``) and reuse its pieces.
"""
from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from harness import families
from harness.spec import expand
from harness.stats import agreement, reported_error, t_interval
from harness.store import Store
from harness.suite import Suite


def group_keys(suite: Suite) -> list[str]:
    """The columns naming a cell: the family's plan columns and every varying axis, no seed."""
    family = families.get(suite.family)
    keys = [k for k in family.plan_columns if k != "seed"]
    return keys + [axis for axis in suite.axes if axis not in keys and axis != "seed"]


def collect(suite: Suite, store: Store):
    """(one row per planned run, the store scan); statistics are computed later, never stored."""
    family = families.get(suite.family)
    specs = list(expand(suite))
    scan = store.scan(specs)
    keys = group_keys(suite)
    rows = []
    for spec in specs:
        state = scan.states[spec.run_id]
        record = state.record or {}
        timing = record.get("timing") or {}
        metrics = record.get("metrics") or {}
        row = {name: spec.config[name] for name in keys}
        row.update({
            "seed": spec.config["seed"], "run_id": spec.run_id, "label": spec.label(), "status": state.status,
            "config": spec.config,
            "train_seconds": timing.get("train_seconds"), "eval_seconds": timing.get("eval_seconds"),
            "total_seconds": timing.get("total_seconds"),
            "device": (record.get("env") or {}).get("device"),
            "gpus": suite.resources_for(spec.config).gpus,  # what the run asked for, overrides included
            "error": first_line((record.get("error") or {}).get("message")) if state.status == "failed" else None,
            "log": record.get("log"),
        })
        for metric in family.metrics:
            row[metric.name] = metrics.get(metric.name)
            if metric.samples:
                row[f"{metric.name}:samples"] = metrics.get(metric.samples)
        rows.append(row)
    return pd.DataFrame(rows), scan


def first_line(text):
    return text.strip().splitlines()[0] if text and text.strip() else text


def _reported_for(suite: Suite, metric: str, config: dict):
    """The most specific reported entry for ``metric`` whose values the config has."""
    matching = [entry for entry in suite.reported if entry.metric == metric and entry.matches(config)]
    return max(matching, key=lambda entry: len(entry.cell)) if matching else None


def summarize(suite: Suite, runs: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """One row per cell for one metric (default: the family's first)."""
    family = families.get(suite.family)
    declared = family.metric(metric) if metric else family.headline
    keys = group_keys(suite)
    done = runs[runs["status"] == "done"] if len(runs) else runs
    cells = []
    for key, group in done.groupby(keys, sort=False, dropna=False):
        group = group.sort_values("seed")
        values = [float(v) for v in group[declared.name]]
        across = t_interval(values)
        row = {**dict(zip(keys, key if isinstance(key, tuple) else (key,))), "metric": declared.name,
               "seeds": across.n, "mean": across.mean, "ci95": across.half_width, "seed_values": values,
               "seed_list": list(group["seed"]),
               "train_seconds": group["train_seconds"].mean(), "eval_seconds": group["eval_seconds"].mean(),
               "gpu_hours": gpu_hours(group)}
        sample_se, sample_df = 0.0, math.inf
        if declared.samples:
            per_seed = [t_interval(samples) for samples in group[f"{declared.name}:samples"]]
            row["per_seed"] = [(seed, i.mean, i.half_width) for seed, i in zip(group["seed"], per_seed)]
            row["samples"] = int(min(i.n for i in per_seed))
            # the test units all seeds share: their sampling variance, averaged over seeds
            usable = [i for i in per_seed if i.n > 1]
            if usable:
                sample_se = math.sqrt(sum(i.se ** 2 for i in usable) / len(usable))
                sample_df = float(sum(i.n - 1 for i in usable))
        row["sample_se"] = sample_se
        entry = _reported_for(suite, declared.name, group["config"].iloc[0])
        if entry is not None:
            se_rep, how, df_rep = reported_error(entry.interval, entry.kind, entry.seeds or entry.samples)
            verdict = agreement(across.mean, entry.value, seed_se=across.se, seed_df=float(across.n - 1),
                                sample_se=sample_se, sample_df=sample_df, reported_se=se_rep, reported_df=df_rep)
            row.update({
                "reported": entry.value, "reported_interval": entry.interval, "reported_kind": entry.kind,
                "reported_se": se_rep, "reported_se_rule": how, "source": source_text(entry),
                "diff": verdict.difference, "se": verdict.se, "df": verdict.df, "quantile": verdict.quantile,
                "bound": verdict.bound, "agrees": bool(verdict.agrees) if verdict.se > 0 else None,
            })
        cells.append(row)
    return pd.DataFrame(cells)


def gpu_hours(runs: pd.DataFrame) -> float:
    """GPUs asked for x wall-clock, summed over the runs that ran on a GPU."""
    on_gpu = runs["device"].fillna("").astype(str).str.startswith("cuda")
    return float((runs["total_seconds"].astype(float) * runs["gpus"])[on_gpu].sum() / 3600)


def source_text(entry) -> str:
    return f"{entry.paper}, {entry.table}" if entry.table else entry.paper


def number(value, digits=2) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def pm(mean, half) -> str:
    return number(mean) if half is None or math.isnan(half) else f"{mean:.2f} ± {half:.2f}"


def seconds(value) -> str:
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


def metric_table(suite: Suite, cells: pd.DataFrame, metric) -> list[str]:
    """The markdown table of one metric's cells, with its notes."""
    keys = group_keys(suite)
    arrow = " ↓" if metric.lower_is_better else ""
    show_gpu = bool((cells["gpu_hours"] > 0).any())
    has_samples = "per_seed" in cells
    sources, table = {}, []
    for _, cell in cells.iterrows():
        row = [cell[k] for k in keys] + [cell["seeds"]]
        if has_samples:
            row += [cell["samples"], "; ".join(f"s{seed}: {pm(mean, half)}" for seed, mean, half in cell["per_seed"])]
        row.append(pm(cell["mean"], cell["ci95"]))
        if isinstance(cell.get("source"), str):
            mark = sources.setdefault(cell["source"], len(sources) + 1)
            kind = f" ({cell['reported_kind']})" if isinstance(cell["reported_kind"], str) else ""
            interval = cell["reported_interval"] if cell["reported_interval"] is not None else math.nan
            row += [f"{pm(cell['reported'], interval)}{kind} [{mark}]", f"{cell['diff']:+.2f}",
                    {True: "yes", False: "no", None: "n/a"}[cell["agrees"]]]
        else:
            row += ["", "", ""]
        row += [seconds(cell["train_seconds"]), seconds(cell["eval_seconds"])]
        if show_gpu:
            row.append(f"{cell['gpu_hours']:.3f}")
        table.append(row)
    unit = metric.samples_name
    headers = keys + ["seeds"]
    if has_samples:
        headers += [f"{unit}/seed", f"per seed: {metric.name}{arrow} ± 95% CI ({unit})"]
    headers += [f"mean{arrow} ± 95% CI (seeds)", "reported", "diff", "agrees", "train/run", "eval/run"]
    if show_gpu:
        headers.append("GPU-h (all seeds)")
    lines = [tabulate(table, headers=headers, tablefmt="github", disable_numparse=True), ""]
    lines += notes(metric)
    if sources:
        lines += ["", "Sources: " + "; ".join(f"[{n}] {s}" for s, n in sources.items()) + "."]
    rules = sorted({cell["reported_se_rule"] for _, cell in cells.iterrows() if isinstance(cell.get("reported_se_rule"), str)})
    if rules:
        lines.append("Reported se derived as: " + "; ".join(rules) + ".")
    return lines


def notes(metric) -> list[str]:
    unit = metric.samples_name
    what = f"{metric.name}" + (f" in {metric.unit}" if metric.unit else "") + (" (lower is better, ↓)" if metric.lower_is_better else "")
    lines = [f"{what[0].upper()}{what[1:]}."]
    if metric.samples:
        lines.append(f"Per seed: mean ± half-width of the 95% t-interval over that seed's test {unit} (ddof=1). "
                     f"Mean: mean of the seed means ± half-width of the 95% t-interval across seeds "
                     f"(k-1 degrees of freedom); {unit} are never pooled across seeds.")
    else:
        lines.append("Mean: mean over seeds ± half-width of the 95% t-interval across seeds (k-1 degrees of freedom).")
    lines.append("Reported: the paper's number with its ± as the paper defines it (ci95, std or sem).")
    shared = (f" plus the sampling error of the test {unit}, which every seed shares (the mean over seeds of each "
              f"seed's squared per-{unit[:-1] if unit.endswith('s') else unit} standard error)") if metric.samples else ""
    lines.append(f"Agreement rule: a cell agrees when |diff| <= t(0.975, df) * sqrt(se_ours² + se_reported²), where "
                 f"se_ours² is the squared standard error of the seed means (k-1 df){shared}, se_reported is "
                 f"derived from the reported ± by its kind, and df is the Welch-Satterthwaite combination of their "
                 f"degrees of freedom (a part with unknown df counts as infinite).")
    lines.append("Wall-clock: mean per run of training (including validation) and of the final test evaluation, "
                 "device synchronised; GPU-hours: GPUs asked for x wall-clock, over the runs that ran on a GPU.")
    return lines


def render_markdown(suite: Suite, runs: pd.DataFrame, scan) -> str:
    family = families.get(suite.family)
    lines = header_lines(suite, runs)
    done = len(runs) and (runs["status"] == "done").any()
    if not done:
        lines.append("No finished runs yet.")
    else:
        for metric in family.metrics:
            if len(family.metrics) > 1:
                lines += [f"## {metric.name}", ""]
            lines += metric_table(suite, summarize(suite, runs, metric.name), metric) + [""]
        lines.pop()
    return "\n".join(lines + footer_lines(runs, scan)) + "\n"


def render_csv(suite: Suite, runs: pd.DataFrame) -> str:
    family = families.get(suite.family)
    frames = [summarize(suite, runs, metric.name) for metric in family.metrics] if len(runs) else []
    cells = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else pd.DataFrame()
    if not len(cells):
        return ""
    flat = cells.drop(columns=[c for c in ("per_seed", "seed_values", "seed_list") if c in cells]).copy()
    if "per_seed" in cells:
        flat["per_seed"] = [";".join(f"{s}:{m:.4f}:{h:.4f}" for s, m, h in c) if isinstance(c, list) else ""
                            for c in cells["per_seed"]]
    return flat.to_csv(index=False)


def build(suite: Suite, store: Store, fmt: str = "markdown", options: dict | None = None) -> tuple[str, list[str]]:
    """The report text in the given format, and the store's warnings."""
    runs, scan = collect(suite, store)
    text = render_markdown(suite, runs, scan) if fmt == "markdown" else render_csv(suite, runs)
    return text, scan.warnings
