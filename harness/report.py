"""The generic report: records -> DataFrame -> tables, for any family, from the metrics it
declares. No torch here: a report is made on any machine from the records alone.

For each cell (runs that differ only by seed) and each declared metric: the mean over
seeds ± the 95% t-interval across seeds; per-seed intervals over the metric's samples
when it has some (test episodes); the reported number, the difference and whether they
agree (``harness.stats.agreement``); lower-is-better metrics marked ↓; wall-clock and
GPU-hours. With a baseline (the suite's ``report: {baseline: ...}`` or ``--baseline``):
every other method's paired difference to it (``compare_cells``). Plots (``harness.plots``)
are written beside the report and linked. Formats: markdown, csv (tidy), latex
(booktabs), json.

A family may replace it (``Family.report``) and reuse its pieces: ``header_lines``,
``footer_lines``, ``group_keys``, ``collect``, ``summarize``, ``metric_table``,
``compare_cells`` / ``comparison_table``, ``latex_table``, ``plain`` (JSON-safe values),
``report_warnings``; a family report module may declare ``FORMATS`` (default: markdown
and csv), the formats its ``build`` writes.
"""
from __future__ import annotations

import json
import math
from pathlib import PurePath

import pandas as pd

from harness import HarnessError, families
from harness import plots
from harness.spec import expand
from harness.stats import agreement, compare_by_sample, compare_by_seed, reported_error, t_interval, verdict
from harness.store import Store, gc_paused
from harness.tables import markdown_table
from harness.suite import Suite

REPORT_FILES = {"markdown": "REPORT.md", "csv": "report.csv", "latex": "report.tex", "json": "report.json"}
FORMATS = tuple(REPORT_FILES)


def group_keys(suite: Suite) -> list[str]:
    """The columns naming a cell: the family's plan columns and every varying axis, no seed."""
    family = families.get(suite.family)
    keys = [k for k in family.plan_columns if k != "seed"]
    return keys + [axis for axis in suite.axes if axis not in keys and axis != "seed"]


def collect(suite: Suite, store: Store, specs=None):
    """(one row per planned run, the store scan); statistics are computed later, never stored.
    ``specs``: the suite's runs when the caller has expanded them already."""
    family = families.get(suite.family)
    specs = list(expand(suite)) if specs is None else list(specs)
    scan = store.scan(specs)
    keys = group_keys(suite)
    rows = []
    resources = {}
    with gc_paused():  # the records are decoded here (lazily): many small acyclic containers
        for spec in specs:
            rows.append(_run_row(suite, family, keys, spec, scan.states[spec.run_id], resources))
    return pd.DataFrame(rows), scan


def _run_row(suite: Suite, family, keys: list, spec, state, resources: dict) -> dict:
    """One run as a row of the report's frame (``resources``: the resources per config, memoised)."""
    record = state.record or {}
    timing = record.get("timing") or {}
    metrics = record.get("metrics") or {}
    config = spec.config
    asked = resources.get(id(config)) or resources.setdefault(id(config), suite.resources_for(config))
    row = {name: config[name] for name in keys}
    row.update({
        "seed": config["seed"], "run_id": spec.run_id, "label": spec.label(), "status": state.status,
        "config": config,
        "train_seconds": timing.get("train_seconds"), "eval_seconds": timing.get("eval_seconds"),
        "total_seconds": timing.get("total_seconds"),
        "device": (record.get("env") or {}).get("device"),
        "gpus": asked.gpus,  # what the run asked for, overrides included
        "cpus": asked.cpus,
        "error": first_line((record.get("error") or {}).get("message")) if state.status == "failed" else None,
        "log": record.get("log"),
    })
    for metric in family.metrics:
        row[metric.name] = metrics.get(metric.name)
        if metric.samples:
            row[f"{metric.name}:samples"] = metrics.get(metric.samples)
    return row




def first_line(text):
    return text.strip().splitlines()[0] if text and text.strip() else text


def _reported_for(suite: Suite, metric: str, config: dict):
    """The most specific reported entry for ``metric`` whose values the config has."""
    matching = [entry for entry in suite.reported if entry.metric == metric and entry.matches(config)]
    return max(matching, key=lambda entry: len(entry.cell)) if matching else None


def summarize(suite: Suite, runs: pd.DataFrame, metric: str | None = None, within_run: bool = True) -> pd.DataFrame:
    """One row per cell for one metric (default: the family's first). Plain Python over the
    runs' rows (not pandas per cell): a 10,000-run report has a thousand cells.
    ``within_run=False`` (for figures): the per-unit samples are not read, so the cells have
    no per-seed intervals and no agreement verdict, only the reported number; most of the
    time of a large report goes into those samples."""
    family = families.get(suite.family)
    declared = family.metric(metric) if metric else family.headline
    keys = group_keys(suite)
    done = runs[runs["status"] == "done"] if len(runs) else runs
    groups: dict[tuple, list] = {}
    for row in done.to_dict("records"):
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    cells = []
    for key, group in groups.items():
        group.sort(key=lambda row: row["seed"])
        values = [float(row[declared.name]) for row in group]
        across = t_interval(values)
        cell = {**dict(zip(keys, key)), "metric": declared.name,
                "seeds": across.n, "mean": across.mean, "ci95": across.half_width, "seed_values": values,
                "seed_list": [row["seed"] for row in group],
                "train_seconds": mean_of(row["train_seconds"] for row in group),
                "eval_seconds": mean_of(row["eval_seconds"] for row in group),
                "gpu_hours": gpu_hours(group), **training_hours(group)}
        sample_se, sample_df = 0.0, math.inf
        if declared.samples and within_run:
            per_seed = [t_interval(row[f"{declared.name}:samples"]) for row in group]
            cell["per_seed"] = [(row["seed"], i.mean, i.half_width) for row, i in zip(group, per_seed)]
            cell["samples"] = int(min(i.n for i in per_seed))
            cell["samples_per_seed"] = [i.n for i in per_seed]
            # the test units all seeds share: their sampling variance, averaged over seeds
            usable = [i for i in per_seed if i.n > 1]
            if usable:
                sample_se = math.sqrt(sum(i.se ** 2 for i in usable) / len(usable))
                sample_df = float(sum(i.n - 1 for i in usable))
        cell["sample_se"] = sample_se
        entry = _reported_for(suite, declared.name, group[0]["config"])
        if entry is not None and not within_run:
            cell["reported"] = entry.value
        elif entry is not None:
            se_rep, how, df_rep = reported_error(entry.interval, entry.kind, entry.seeds or entry.samples)
            verdict = agreement(across.mean, entry.value, seed_se=across.se, seed_df=float(across.n - 1),
                                sample_se=sample_se, sample_df=sample_df, reported_se=se_rep, reported_df=df_rep)
            cell.update({
                "reported": entry.value, "reported_interval": entry.interval, "reported_kind": entry.kind,
                "reported_se": se_rep, "reported_se_rule": how, "source": source_text(entry),
                "diff": verdict.difference, "se": verdict.se, "df": verdict.df, "quantile": verdict.quantile,
                "bound": verdict.bound, "agrees": bool(verdict.agrees) if verdict.se > 0 else None,
            })
        cells.append(cell)
    return pd.DataFrame(cells)


def _number(value) -> float:
    """A timing field as a float: NaN when missing (None, NaN, not a number)."""
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def mean_of(values) -> float:
    """The mean of the numbers among ``values`` (NaN when there are none), as pandas' mean."""
    numbers = [v for v in map(_number, values) if not math.isnan(v)]
    return math.fsum(numbers) / len(numbers) if numbers else math.nan


def _on_gpu(row) -> bool:
    return str(row.get("device") or "").startswith("cuda")


def gpu_hours(runs) -> float:
    """GPUs asked for x wall-clock, summed over the runs (rows) that ran on a GPU."""
    rows = runs.to_dict("records") if isinstance(runs, pd.DataFrame) else runs
    return math.fsum(v for v in (_number(r["total_seconds"]) * r["gpus"] for r in rows if _on_gpu(r))
                     if not math.isnan(v)) / 3600


def training_hours(runs) -> dict:
    """Mean training cost per run: GPU-hours (GPUs asked for x training seconds, 0 for a run
    that did not run on a GPU) and CPU core-hours (cores asked for x training seconds)."""
    rows = runs.to_dict("records") if isinstance(runs, pd.DataFrame) else runs
    gpu = [_number(r["train_seconds"]) * (r["gpus"] if _on_gpu(r) else 0) for r in rows]
    cpu = [_number(r["train_seconds"]) * r["cpus"] for r in rows]
    return {"train_gpu_hours": mean_of(gpu) / 3600, "train_cpu_hours": mean_of(cpu) / 3600}


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
    warnings = report_warnings(scan)
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    return lines


FOREIGN = ": not a run folder of this harness; ignored"


def report_warnings(scan) -> list[str]:
    """The store's warnings, less those about the report's own files (REPORT.md and its
    siblings, the plots): a report regenerates to the same text whatever was there."""
    def own(warning: str) -> bool:
        if not warning.endswith(FOREIGN):
            return False
        name = PurePath(warning[: -len(FOREIGN)]).name
        return name in REPORT_FILES.values() or name.endswith(".png")

    return [w for w in scan.warnings if not own(w)]


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
    lines = [markdown_table(table, headers), ""]
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


# -- options --------------------------------------------------------------------------


def resolve_options(suite: Suite, fmt: str, options: dict | None) -> dict:
    """``plots``: as given, else on for markdown only; ``baseline``: as given (``--baseline``),
    else the suite's ``report: {baseline: ...}``, else None."""
    if fmt not in FORMATS:
        raise HarnessError(f"--format {fmt}: unknown format (known: {', '.join(FORMATS)})")
    options = dict(options or {})
    plots_on = options.get("plots")
    options["plots"] = fmt == "markdown" if plots_on is None else bool(plots_on)
    options["baseline"] = options.get("baseline") or suite.report_options.get("baseline")
    return options


# -- paired comparisons with a baseline -----------------------------------------------


def comparison_keys(keys: list[str]) -> list[str]:
    """The keys of a comparison group: a cell's keys but the method."""
    return [k for k in keys if k != "method"]


def evaluation_keys(family) -> tuple[str, ...]:
    """The config keys that fix what a run is tested on, by the naming convention of the
    keys: ``test_*`` and ``eval_*`` (the few-shot test episodes: test_episodes,
    test_queries, eval_seed, ...). Runs of one comparison group share its keys already."""
    return tuple(name for name in family.keys if name.startswith(("test_", "eval_")))


def shared_keys(family, metric, given=None) -> tuple[str, ...]:
    """The config keys two runs must agree on to have been tested on the same units:
    ``given`` (a family report's ``options["shared_by"]``), else the metric's own
    ``shared_by`` when its family declares one, else ``evaluation_keys``."""
    if given is not None:
        return tuple(given)
    declared = getattr(metric, "shared_by", None)
    return tuple(declared) if declared is not None else evaluation_keys(family)


def differing_keys(configs, baseline_configs, keys) -> list[str]:
    """The keys on which some run of one side and some run of the other disagree."""
    return sorted({k for a in configs for b in baseline_configs for k in keys if a.get(k) != b.get(k)})


def key_tuple(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def groups_by(frame: pd.DataFrame, by: list[str]):
    """(values of ``by``, rows) for each group, in order; the whole frame when ``by`` is empty."""
    if not by:
        return [((), frame)]
    return [(key_tuple(key), group) for key, group in frame.groupby(by, sort=False, dropna=False)]


def compare_cells(suite: Suite, runs: pd.DataFrame, metric: str | None = None, baseline: str | None = None,
                  shared_by=None) -> pd.DataFrame:
    """One row per cell whose method is not the baseline: its difference (method - baseline)
    to the baseline's cell of the same comparison group (the same values of every cell key
    but the method), with its 95% interval, p-value, verdict and the test used.

    With per-unit samples (test episodes): paired over seeds, or over the units of the one
    common seed, when both sides were tested on the same units: their configs agree on
    ``shared_by`` (default ``shared_keys``) and the sample counts are equal; Welch
    otherwise (``harness.stats.compare_by_sample``). Without samples: paired by seed when
    the configs agree on ``shared_by``, Welch otherwise (``compare_by_seed``)."""
    family = families.get(suite.family)
    declared = family.metric(metric) if metric else family.headline
    if not baseline or not len(runs):
        return pd.DataFrame()
    keys = group_keys(suite)
    shared_by = shared_keys(family, declared, shared_by)
    done = runs[runs["status"] == "done"]
    rows = []
    for _, group in groups_by(done, comparison_keys(keys)):
        base = group[group["method"] == baseline]
        for key, cell in groups_by(group, keys):
            if cell["method"].iloc[0] == baseline:
                continue
            row = {**dict(zip(keys, key)), "metric": declared.name, "baseline": baseline}
            if not len(base):
                row.update({"n": len(cell), "n_baseline": 0, "difference": math.nan, "ci95": math.nan,
                            "p_value": math.nan, "verdict": "n/a", "test": "no baseline run in this group",
                            "paired": False})
            else:
                difference = compare_runs(cell, base, declared, shared_by)
                row.update({"n": difference.n, "n_baseline": difference.n_baseline, "difference": difference.difference,
                            "ci95": difference.half_width, "p_value": difference.p_value,
                            "verdict": verdict(difference, declared.direction), "test": difference.test,
                            "paired": difference.paired})
            rows.append(row)
    return pd.DataFrame(rows)


def compare_runs(cell: pd.DataFrame, base: pd.DataFrame, metric, shared_by):
    """The ``harness.stats.Difference`` of one cell's runs to the baseline's runs."""
    differ = differing_keys(list(cell["config"]), list(base["config"]), shared_by)
    why_not = f"{', '.join(differ)} differ" if differ else ""
    if metric.samples:
        column = f"{metric.name}:samples"
        return compare_by_sample(dict(zip(cell["seed"], cell[column])), dict(zip(base["seed"], base[column])),
                                 shared=not differ, unit=metric.samples_name, why_not=why_not)
    return compare_by_seed(dict(zip(cell["seed"], cell[metric.name].astype(float))),
                           dict(zip(base["seed"], base[metric.name].astype(float))), paired=not differ, why_not=why_not)


def difference_text(difference: float, half: float) -> str:
    if difference is None or math.isnan(difference):
        return ""
    return f"{difference:+.2f}" if half is None or math.isnan(half) else f"{difference:+.2f} ± {half:.2f}"


def p_text(p_value) -> str:
    if p_value is None or math.isnan(p_value):
        return ""
    return "<0.001" if p_value < 0.001 else f"{p_value:.3f}"


def count_text(row) -> str:
    return str(row["n"]) if row["paired"] else f"{row['n']} vs {row['n_baseline']}"


def comparison_table(suite: Suite, comparisons: pd.DataFrame, metric, keys: list[str] | None = None) -> list[str]:
    """The markdown table of ``compare_cells`` rows (any family's: ``keys`` name the
    columns, default the generic cell keys), with the definitions of the tests used."""
    keys = keys or group_keys(suite)
    if not len(comparisons):
        return ["No other method to compare with the baseline."]
    arrow = " ↓" if metric.lower_is_better else ""
    table = [[row[k] for k in keys] + [count_text(row), difference_text(row["difference"], row["ci95"]),
                                       p_text(row["p_value"]), row["verdict"], row["test"]]
             for _, row in comparisons.iterrows()]
    headers = keys + ["n", f"diff{arrow} ± 95% CI", "p", "verdict", "test"]
    return [markdown_table(table, headers), "",
            *comparison_notes(comparisons, metric)]


def comparison_notes(comparisons: pd.DataFrame, metric) -> list[str]:
    """What each test used in ``comparisons`` computes, and the verdict rule."""
    unit = metric.samples_name
    tests = " ".join(comparisons["test"]) if len(comparisons) else ""
    lines = [f"Diff: {metric.name} of the method minus the baseline's; n: the pairs (paired tests) or the values "
             "behind each side (Welch)."]
    if "paired t over seeds" in tests:
        if metric.samples:
            lines.append(f"Paired t over seeds (shared {unit}): every method and seed was tested on the same {unit}; "
                         f"for each seed s both ran, d_s = mean over the {unit} of (method - baseline) = the difference "
                         f"of the two seed means; diff = mean of the d_s ± t(0.975, k-1) sd(d_s)/sqrt(k) "
                         f"(scipy's ttest_rel of the seed means). It is conditional on this test set: the spread of "
                         f"training seeds, not the sampling of new {unit}.")
        else:
            lines.append("Paired t over seeds: the runs of one seed share what the seed fixes (data order); "
                         "d_s = method - baseline for each seed s both ran; diff = mean of the d_s ± "
                         "t(0.975, k-1) sd(d_s)/sqrt(k) (scipy's ttest_rel).")
    if f"paired t over {unit} (seed" in tests:
        lines.append(f"Paired t over {unit}: one seed in common; the per-{unit.rstrip('s')} differences of the two "
                     f"runs, mean ± t(0.975, n-1) sd/sqrt(n) (scipy's ttest_rel of the per-{unit.rstrip('s')} "
                     f"values): the comparison of two trained models, without seed-to-seed variation.")
    if "Welch" in tests:
        lines.append("Welch: the runs cannot be paired (the reason is given); difference of the means ± t(0.975, df) "
                     "sqrt(s1²/n1 + s2²/n2), Welch-Satterthwaite df (scipy's ttest_ind, equal_var=False)"
                     + (f"; '+ {unit} error' adds each side's sampling error of the {unit} its seeds share."
                        if f"+ {unit} error" in tests else "."))
    lines.append(f"Verdict: better or worse ({'lower' if metric.lower_is_better else 'higher'} is better) when the "
                 "95% interval excludes 0 (two-sided, 5%), else indistinguishable; each comparison on its own, not "
                 "corrected for multiplicity.")
    return lines


def comparison_lines(suite: Suite, runs: pd.DataFrame, baseline: str, shared_by=None) -> list[str]:
    """The markdown section of the paired comparisons, one table per metric."""
    family = families.get(suite.family)
    lines = []
    for metric in family.metrics:
        title = f"## Paired comparisons with {baseline}" + (f": {metric.name}" if len(family.metrics) > 1 else "")
        comparisons = compare_cells(suite, runs, metric.name, baseline, shared_by)
        lines += ["", title, "", *comparison_table(suite, comparisons, metric)]
    return lines


# -- figures --------------------------------------------------------------------------


MAX_COST_PANELS = 36  # 12 rows of 3: every (dataset, ways, shots) of a paper, not a sweep's every setting


def panel_title(by: list[str], values: tuple) -> str:
    return ", ".join(str(v) if k == "dataset" else f"{k} {v}" for k, v in zip(by, values))


def cost_figure(suite: Suite, runs: pd.DataFrame, store: Store, metric) -> dict | None:
    """``<metric>_vs_training_cost.png``: a panel per comparison group, per method its mean ±
    95% interval across seeds against its mean training GPU-hours per run (CPU
    core-hours when no run used a GPU), the reported number as a hollow diamond.
    Returns the figure's description for the report, or None when nothing was drawn."""
    cells = summarize(suite, runs, metric.name, within_run=False)
    if not len(cells):
        return None
    gpu = bool((cells["train_gpu_hours"] > 0).any())
    column = "train_gpu_hours" if gpu else "train_cpu_hours"
    cost = "GPU-hours" if gpu else "CPU core-hours"
    keys = group_keys(suite)
    by = comparison_keys(keys)
    costs = [c for c in cells[column] if math.isfinite(c)]
    unit = f" ({metric.unit})" if metric.unit else ""
    panels, left_out = [], []
    for values, group in groups_by(cells, by):
        plotted = [cell for _, cell in group.iterrows() if math.isfinite(cell[column])]
        left_out += [f"{panel_title(by, values)} {cell['method']}".strip() for _, cell in group.iterrows()
                     if not math.isfinite(cell[column])]
        panels.append(plots.Panel(panel_title(by, values) or suite.name, tuple(cost_point(c, column) for c in plotted),
                                  xlabel=f"training {cost} per run", ylabel=f"{metric.name}{unit}",
                                  log_x=plots.use_log_scale(costs)))
    name = plots.file_name(f"{metric.name}_vs_training_cost")
    if len(panels) > MAX_COST_PANELS:  # a hyper-parameter sweep: unreadable, and slow to draw
        return {"file": None, "left_out": [], "not_drawn": (
            f"{metric.name} against training cost would need {len(panels)} panels (one per {', '.join(by)} group), "
            f"more than {MAX_COST_PANELS}: `harness report --filter` to fewer groups to draw it")}
    if plots.draw(panels, store.dir / name, legend="reported") is None:
        return {"file": None, "left_out": left_out}
    caption = (f"{metric.name} (mean over seeds ± the 95% t-interval across seeds) against the mean training {cost} "
               f"per run; hollow diamonds: the reported numbers.")
    return {"file": name, "alt": f"{metric.name} against training {cost}", "caption": caption, "left_out": left_out}


def cost_point(cell, column: str) -> plots.Point:
    """A cell as a point: x its training cost, y its mean, its interval, its reported number."""
    reported = cell.get("reported")
    known = isinstance(reported, (int, float)) and math.isfinite(reported)
    return plots.Point(cell["method"], float(cell[column]), float(cell["mean"]), float(cell["ci95"]),
                       float(reported) if known else None)


def draw_figures(suite: Suite, runs: pd.DataFrame, store: Store) -> list[dict]:
    """The generic report's figures (the headline metric against training cost)."""
    family = families.get(suite.family)
    if not len(runs) or not (runs["status"] == "done").any():
        return []
    figure = cost_figure(suite, runs, store, family.headline)
    return [figure] if figure else []


def figures_or_warning(draw) -> tuple[list[dict], list[str]]:
    """The figures ``draw()`` makes; none, and a warning, when matplotlib is not installed
    (a report must not fail at the end of a long ``harness run`` for want of plots)."""
    try:
        return draw(), []
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] != "matplotlib":
            raise
        return [], ["plots skipped: matplotlib is not installed (pip install matplotlib; or --no-plots)"]


def figure_lines(figures: list[dict]) -> list[str]:
    """The markdown of the figures: a relative link to each PNG, its caption."""
    lines = []
    for figure in figures:
        if figure.get("file"):
            lines += ["", f"![{figure['alt']}]({figure['file']})", "", figure["caption"]]
        if figure.get("not_drawn"):
            lines += ["", f"Not drawn: {figure['not_drawn']}."]
        if figure.get("left_out"):
            lines += ["", "Not plotted (no training time recorded): " + "; ".join(figure["left_out"]) + "."]
    return ["", "## Plots", *lines] if lines else []


# -- markdown ---------------------------------------------------------------------------


def render_markdown(suite: Suite, runs: pd.DataFrame, scan, baseline: str | None = None, figures=(),
                    shared_by=None) -> str:
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
        if baseline:
            lines += comparison_lines(suite, runs, baseline, shared_by)
        lines += figure_lines(list(figures))
    return "\n".join(lines + footer_lines(runs, scan)) + "\n"


# -- csv: tidy, one row per run, per cell and per comparison ---------------------------


CSV_COLUMNS = ["seed", "metric", "value", "ci95", "interval", "seeds", "samples", "status", "run_id", "reported",
               "reported_interval", "reported_kind", "reported_se", "source", "diff", "bound", "agrees", "baseline",
               "n", "n_baseline", "p_value", "verdict", "train_seconds", "eval_seconds", "gpu_hours", "train_gpu_hours",
               "train_cpu_hours", "error"]


def tidy_csv(rows: list[dict], columns: list[str]) -> str:
    """CSV of ``rows`` with exactly ``columns``; missing and nan values are empty cells."""
    if not rows:
        return ""
    frame = pd.DataFrame([{c: _csv_value(row.get(c)) for c in columns} for row in rows], columns=columns, dtype=object)
    return frame.to_csv(index=False)


def _csv_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value.item() if hasattr(value, "item") else value


def run_rows(suite: Suite, runs: pd.DataFrame, metric) -> list[dict]:
    keys = group_keys(suite)
    rows = []
    for _, run in runs.iterrows():
        row = {"row": "run", **{k: run[k] for k in keys}, "seed": run["seed"], "metric": metric.name,
               "status": run["status"], "run_id": run["run_id"], "train_seconds": run["train_seconds"],
               "eval_seconds": run["eval_seconds"], "error": run["error"]}
        if run["status"] == "done":
            row["value"] = float(run[metric.name])
            if metric.samples:
                interval = t_interval(run[f"{metric.name}:samples"])
                row.update({"ci95": interval.half_width, "samples": interval.n,
                            "interval": f"95% t over {metric.samples_name}"})
        rows.append(row)
    return rows


def cell_rows(suite: Suite, cells: pd.DataFrame, metric) -> list[dict]:
    keys = group_keys(suite)
    rows = []
    for _, cell in cells.iterrows():
        row = {"row": "cell", **{k: cell[k] for k in keys}, "metric": metric.name, "value": cell["mean"],
               "ci95": cell["ci95"], "interval": "95% t across seeds", "seeds": cell["seeds"],
               "samples": cell.get("samples"), **{c: cell[c] for c in (
                   "train_seconds", "eval_seconds", "gpu_hours", "train_gpu_hours", "train_cpu_hours")}}
        if isinstance(cell.get("source"), str):
            row.update({"reported": cell["reported"], "reported_interval": cell["reported_interval"],
                        "reported_kind": cell["reported_kind"], "reported_se": cell["reported_se"],
                        "source": cell["source"], "diff": cell["diff"], "bound": cell["bound"], "agrees": cell["agrees"]})
        rows.append(row)
    return rows


def comparison_rows(comparisons: pd.DataFrame, keys: list[str]) -> list[dict]:
    return [{"row": "comparison", **{k: row[k] for k in keys}, "metric": row["metric"], "value": row["difference"],
             "ci95": row["ci95"], "interval": row["test"], "baseline": row["baseline"], "n": row["n"],
             "n_baseline": row["n_baseline"], "p_value": row["p_value"], "verdict": row["verdict"]}
            for _, row in comparisons.iterrows()]


def render_csv(suite: Suite, runs: pd.DataFrame, baseline: str | None = None, shared_by=None) -> str:
    """Tidy CSV: a ``row`` column says what each row is: ``run`` (one per planned run and
    metric: its value, the interval over its samples, status), ``cell`` (the mean over
    seeds, the interval across seeds, the reported number and agreement) or
    ``comparison`` (the difference to the baseline, its interval, the test in
    ``interval``, p-value, verdict)."""
    family = families.get(suite.family)
    if not len(runs):
        return ""
    keys = group_keys(suite)
    rows, cells, comparisons = [], [], []
    for metric in family.metrics:
        rows += run_rows(suite, runs, metric)
        cells += cell_rows(suite, summarize(suite, runs, metric.name), metric)
        comparisons += comparison_rows(compare_cells(suite, runs, metric.name, baseline, shared_by), keys)
    return tidy_csv(rows + cells + comparisons, ["row", *keys, *CSV_COLUMNS])


# -- latex: booktabs tables -----------------------------------------------------------


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                 "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


LATEX_SYMBOLS = str.maketrans({"±": r"$\pm$", "↓": r"$\downarrow$", "×": r"$\times$", "²": r"$^2$", "≈": r"$\approx$",
                               "≤": r"$\le$"})


def latex_escape(text) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text)).translate(LATEX_SYMBOLS)


def latex_pm(mean, half, digits: int = 2) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    if half is None or (isinstance(half, float) and math.isnan(half)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} $\\pm$ {half:.{digits}f}"


def bold(text: str) -> str:
    return f"\\textbf{{{text}}}" if text else text


def best_mask(values, direction: str) -> list[bool]:
    """Which values are the best (ties all), by direction; none when fewer than 2 are finite."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if len(finite) < 2:
        return [False] * len(values)
    best = max(finite) if direction == "higher" else min(finite)
    return [v is not None and math.isfinite(v) and v == best for v in values]


def latex_table(headers: list[str], rows: list[list[str]], caption: str, label: str, breaks=(),
                align: str | None = None) -> list[str]:
    """A booktabs table (``\\usepackage{booktabs}``). ``headers`` are plain text (escaped
    here); ``rows`` are LaTeX already; ``breaks``: row indices that start a new group
    (a ``\\midrule`` before them)."""
    align = align or "l" * len(headers)
    lines = ["\\begin{table}[ht]", "\\centering", f"\\caption{{{caption}}}", f"\\label{{{label}}}",
             f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(latex_escape(h) for h in headers) + " \\\\",
             "\\midrule"]
    for i, row in enumerate(rows):
        if i in breaks and i:
            lines.append("\\midrule")
        lines.append(" & ".join(row) + " \\\\")
    return lines + ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]


def latex_label(*parts) -> str:
    return "tab:" + "-".join(plots.file_name(*parts)[:-4].split("_"))


def latex_figures(figures: list[dict]) -> list[str]:
    lines = []
    for figure in figures:
        if figure.get("file"):
            lines += ["\\begin{figure}[ht]", "\\centering", f"\\includegraphics[width=\\linewidth]{{{figure['file']}}}",
                      f"\\caption{{{latex_escape(figure['caption'])}}}", "\\end{figure}", ""]
    return lines


def latex_header(suite: Suite) -> list[str]:
    return [f"% {suite.name}: reproducing {suite.paper}", "% written by `harness report --format latex`; needs "
            "\\usepackage{booktabs} (and graphicx for the figures)", ""]


def metric_latex(suite: Suite, cells: pd.DataFrame, metric) -> list[str]:
    """One metric's cells as a booktabs table, the best mean of each comparison group in bold."""
    keys = group_keys(suite)
    by = comparison_keys(keys)
    has_reported = cells["source"].apply(lambda s: isinstance(s, str)).any() if "source" in cells else False
    rows, breaks = [], []
    for _, group in groups_by(cells, by):
        breaks.append(len(rows))
        for (_, cell), best in zip(group.iterrows(), best_mask(list(group["mean"]), metric.direction)):
            text = latex_pm(cell["mean"], cell["ci95"])
            row = [latex_escape(cell[k]) for k in keys] + [str(cell["seeds"]), bold(text) if best else text]
            if has_reported:
                reported = isinstance(cell.get("source"), str)
                kind = f" ({cell['reported_kind']})" if reported and isinstance(cell["reported_kind"], str) else ""
                row += [latex_pm(cell["reported"], cell["reported_interval"]) + kind if reported else "",
                        {True: "yes", False: "no", None: "n/a"}[cell["agrees"]] if reported else ""]
            rows.append(row)
    unit = f" ({metric.unit})" if metric.unit else ""
    arrow = " ↓" if metric.lower_is_better else ""
    headers = keys + ["seeds", f"{metric.name}{unit}{arrow}"] + (["reported", "agrees"] if has_reported else [])
    return latex_table(headers, rows, metric_caption(suite, cells, metric, by, has_reported),
                       latex_label(suite.name, metric.name), breaks, "l" * len(keys) + "r" * (len(headers) - len(keys)))


KIND_WORDS = {"ci95": "ci95 = 95% interval", "std": "std = standard deviation", "sem": "sem = standard error"}


def metric_caption(suite: Suite, cells: pd.DataFrame, metric, by: list[str], has_reported: bool) -> str:
    """The caption (LaTeX) of a metric's table: what the intervals are, the agreement rule, the bold rule."""
    unit = f" in {metric.unit}" if metric.unit else ""
    text = latex_escape(f"{suite.name}: {metric.name}{unit}, mean over seeds ± half-width of the 95% t-interval "
                        f"across seeds (k-1 degrees of freedom).")
    if has_reported:
        kinds = sorted({k for k in cells["reported_kind"] if isinstance(k, str)})
        described = "; ".join(KIND_WORDS[k] for k in kinds) or "no ± given"
        text += latex_escape(f" Reported: the paper's number with its ± as the paper defines it ({described}).")
        text += (r" Agrees: $|\mathrm{ours} - \mathrm{reported}| \le t_{0.975,\nu} \sqrt{se_\mathrm{ours}^2 + "
                 r"se_\mathrm{reported}^2}$, $\nu$ by Welch-Satterthwaite.")
    best = "lower" if metric.lower_is_better else "higher"
    return text + latex_escape(f" Bold: the best mean per {', '.join(by) or 'table'} ({best} is better).")


def comparison_latex(suite: Suite, comparisons: pd.DataFrame, metric, baseline: str, keys: list[str] | None = None) -> list[str]:
    """``compare_cells`` rows as a booktabs table."""
    keys = keys or group_keys(suite)
    if not len(comparisons):
        return []
    rows = [[latex_escape(row[k]) for k in keys] + [latex_escape(count_text(row)),
                                                    latex_escape(difference_text(row["difference"], row["ci95"])),
                                                    latex_escape(p_text(row["p_value"])), latex_escape(row["verdict"]),
                                                    latex_escape(row["test"])]
            for _, row in comparisons.iterrows()]
    caption = (f"{suite.name}: {metric.name} of each method minus {baseline}'s, ± half-width of its 95% interval; "
               "test per row (paired over seeds or test units where the runs share them, else Welch); verdict at 5%, "
               "two-sided, by the metric's direction.")
    headers = keys + ["n", "diff ± 95% CI", "p", "verdict", "test"]
    return latex_table(headers, rows, latex_escape(caption), latex_label(suite.name, metric.name, "vs", baseline),
                       align="l" * len(keys) + "rrrll")


def render_latex(suite: Suite, runs: pd.DataFrame, baseline: str | None = None, figures=(), shared_by=None) -> str:
    family = families.get(suite.family)
    lines = latex_header(suite)
    if not len(runs) or not (runs["status"] == "done").any():
        return "\n".join(lines + ["% No finished runs yet."]) + "\n"
    for metric in family.metrics:
        lines += metric_latex(suite, summarize(suite, runs, metric.name), metric)
        if baseline:
            lines += comparison_latex(suite, compare_cells(suite, runs, metric.name, baseline, shared_by), metric, baseline)
    return "\n".join(lines + latex_figures(list(figures))).rstrip("\n") + "\n"


# -- json: everything the markdown shows, for tools -----------------------------------


def plain(value):
    """``value`` as JSON-safe Python: numpy scalars as numbers, nan and inf as None,
    tuples as lists, dataclasses (intervals) as dicts."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(document: dict) -> str:
    return json.dumps(plain(document), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def counts(runs: pd.DataFrame) -> dict:
    found = runs["status"].value_counts().to_dict() if len(runs) else {}
    return {status: int(found.get(status, 0)) for status in ("done", "failed", "running", "pending")}


def cell_json(suite: Suite, cell, metric) -> dict:
    keys = group_keys(suite)
    halves = {seed: half for seed, _, half in cell["per_seed"]} if isinstance(cell.get("per_seed"), list) else {}
    sizes = dict(zip(cell["seed_list"], cell["samples_per_seed"])) if isinstance(cell.get("samples_per_seed"), list) else {}
    entry = {**{k: cell[k] for k in keys}, "metric": metric.name, "seeds": cell["seeds"], "mean": cell["mean"],
             "ci95": cell["ci95"], "interval": "95% t across seeds (k-1 df)",
             "per_seed": [{"seed": seed, "value": value, "ci95": halves.get(seed), "samples": sizes.get(seed)}
                          for seed, value in zip(cell["seed_list"], cell["seed_values"])],
             "train_seconds": cell["train_seconds"], "eval_seconds": cell["eval_seconds"], "gpu_hours": cell["gpu_hours"],
             "train_gpu_hours": cell["train_gpu_hours"], "train_cpu_hours": cell["train_cpu_hours"],
             "reported": None, "agreement": None}
    if metric.samples:
        entry["per_seed_interval"] = f"95% t over {metric.samples_name} (ddof=1)"
    if isinstance(cell.get("source"), str):
        entry["reported"] = {"value": cell["reported"], "interval": cell["reported_interval"],
                             "kind": cell["reported_kind"], "se": cell["reported_se"], "se_rule": cell["reported_se_rule"],
                             "source": cell["source"]}
        entry["agreement"] = {"diff": cell["diff"], "se": cell["se"], "df": cell["df"], "quantile": cell["quantile"],
                              "bound": cell["bound"], "agrees": cell["agrees"]}
    return entry


def run_json(suite: Suite, run, family) -> dict:
    entry = {"run_id": run["run_id"], "label": run["label"], "status": run["status"],
             **{k: run[k] for k in group_keys(suite)}, "seed": run["seed"], "metrics": {}, "samples": {},
             "train_seconds": run["train_seconds"], "eval_seconds": run["eval_seconds"], "device": run["device"],
             "error": run["error"], "log": run["log"]}
    if run["status"] == "done":
        for metric in family.metrics:
            entry["metrics"][metric.name] = run[metric.name]
            if metric.samples:
                entry["samples"][metric.name] = len(run[f"{metric.name}:samples"])
    return entry


def render_json(suite: Suite, runs: pd.DataFrame, scan, baseline: str | None = None, figures=(), shared_by=None) -> str:
    family = families.get(suite.family)
    done = bool(len(runs)) and (runs["status"] == "done").any()
    cells, comparisons, notes_by_metric = [], [], {}
    for metric in family.metrics:
        notes_by_metric[metric.name] = notes(metric)
        if not done:
            continue
        cells += [cell_json(suite, cell, metric) for _, cell in summarize(suite, runs, metric.name).iterrows()]
        found = compare_cells(suite, runs, metric.name, baseline, shared_by)
        comparisons += found.to_dict("records")
        if len(found):
            notes_by_metric[metric.name] = notes_by_metric[metric.name] + comparison_notes(found, metric)
    document = {
        "suite": suite.name, "family": suite.family, "paper": suite.paper, "description": suite.description,
        "counts": counts(runs),
        "metrics": [{"name": m.name, "direction": m.direction, "unit": m.unit, "samples": m.samples,
                     "samples_name": m.samples_name} for m in family.metrics],
        "keys": group_keys(suite), "cells": cells, "baseline": baseline, "comparisons": comparisons,
        "runs": [run_json(suite, run, family) for _, run in runs.iterrows()],
        "figures": [f for f in figures if f.get("file")], "notes": notes_by_metric, "warnings": report_warnings(scan),
    }
    return dumps(document)


# -- build ----------------------------------------------------------------------------


def build(suite: Suite, store: Store, fmt: str = "markdown", options: dict | None = None) -> tuple[str, list[str]]:
    """The report text in the given format (``FORMATS``), and the store's warnings.

    ``options``: ``plots`` (default: on for markdown) draws the figures into ``store.dir``
    and links them; ``baseline`` (default: the suite's) adds the paired comparisons;
    ``shared_by`` (default ``shared_keys``) the config keys two runs must agree on to be
    paired; ``specs``, the suite's runs when the caller has expanded them already."""
    options = resolve_options(suite, fmt, options)
    runs, scan = collect(suite, store, options.get("specs"))
    baseline, shared_by = options["baseline"], options.get("shared_by")
    figures, problems = figures_or_warning(lambda: draw_figures(suite, runs, store)) if options["plots"] else ([], [])
    if fmt == "markdown":
        text = render_markdown(suite, runs, scan, baseline, figures, shared_by)
    elif fmt == "csv":
        text = render_csv(suite, runs, baseline, shared_by)
    elif fmt == "latex":
        text = render_latex(suite, runs, baseline, figures, shared_by)
    else:
        text = render_json(suite, runs, scan, baseline, figures, shared_by)
    return text, report_warnings(scan) + problems
