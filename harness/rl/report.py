"""RL suites: success rate AND cost per multi-task optimizer (Kurin et al. 2022, Meta-World).

One table per benchmark (its reward version named), one row per cell (method, other varying
axes but seed): the success rate, mean over seeds ± the 95% t-interval across seeds (k-1
degrees of freedom), clipped to [0, 100]; the IQM and the mean of all run x task scores with
their stratified bootstrap intervals (``harness.aggregates``); with a baseline, the
probability of improvement over it; the reproduction verdict against a reported number;
the label against the benchmark's best (``harness.report.verdicts.judge_best``); seconds per
update and env steps per second with their ratios to ``unitary`` in the same suite;
wall-clock per run. ``options={"per_task": True}`` adds each task's success. With a
baseline: each method's success against it, Holm over the group, paired by seed (the
family's ``paired_by``: the same seed fixes the same goals). The suite's claims. Figures
beside REPORT.md (``harness.rl.curves``): the evaluation curves and the performance
profiles. Built on the shared cells, columns and renderers of ``harness.report``; no torch.
"""
from __future__ import annotations

import numpy as np

from harness import families
from harness.aggregates import (
    aggregate,
    performance_profile,
    probability_of_improvement,
)
from harness.report import claims, markdown, selected
from harness.report.cells import build as build_cells
from harness.report.cells import (
    done_rows,
    frame_mean,
    grouped,
    parts,
    ratios_to,
    training_hours,
)
from harness.report.collect import collect, cost_fields, first_line, report_warnings
from harness.report.columns import (
    REPORTED_COLUMNS,
    VS_BEST,
    Column,
    Table,
    View,
    fields,
    mean_fields,
)
from harness.report.figures import figures_folder, figures_or_warning
from harness.report.generic import resolve_options
from harness.report.model import Report, Section
from harness.report.paired import Pairing, compare
from harness.report.shared import (
    clip,
    comparison_keys,
    group_keys,
    missing,
    pm,
    ratio_text,
    row_label,
    seconds,
    tidy_csv,
)
from harness.report.tidy import comparison_rows, header
from harness.report.verdicts import judge_best, judge_reported, suite_margin
from harness.rl import curves
from harness.tables import markdown_table

FORMATS = ("markdown", "csv")
CURVES, PROFILES = "curves.png", "profiles.png"
COSTS = ("seconds_per_update", "env_steps_per_second", "wall_seconds", "steps")
SCORE_BOUNDS = (0.0, 100.0)  # a success rate in %
RESAMPLES = 2000
REWARDS = "reward_function_version"


def cell_keys(suite) -> list[str]:
    """The keys naming a row: the benchmark, the method and every other varying axis."""
    return ["dataset", "method"] + [axis for axis in suite.axes if axis not in ("dataset", "method", "seed")]


def run_row(suite):
    """An RL run as a row of the runs frame: the keys of its cell (the generic keys: ``steps``
    too), its success, tasks, curve, timing and training cost."""
    keys = list(dict.fromkeys(cell_keys(suite) + group_keys(suite)))
    costs = cost_fields(suite)

    def row(spec, state) -> dict:
        record = state.record or {}
        metrics, timing = record.get("metrics") or {}, record.get("timing") or {}
        return {
            **{k: spec.config[k] for k in keys}, "seed": spec.config["seed"], "run_id": spec.run_id, "label": spec.label(),
            "status": state.status, "config": spec.config,
            "success": metrics.get("success"), "tasks": metrics.get("tasks"), "curve": metrics.get("curve"),
            "seconds_per_update": timing.get("seconds_per_update"), "env_steps_per_second": timing.get("env_steps_per_second"),
            "wall_seconds": (timing.get("train_seconds") or 0.0) + (timing.get("eval_seconds") or 0.0),
            "steps_done": timing.get("steps"), **costs(spec.config, record),
            "error": first_line((record.get("error") or {}).get("message")) or None,
            "log": record.get("log"),
        }

    return row


def task_scores(cell) -> list:
    """Per task (of the cell's first run), its runs' scores: the strata of the bootstrap."""
    return [np.array([row["tasks"][task] for row in cell.runs], dtype=float) for task in cell.runs[0]["tasks"]]


def bounds_of(metric) -> tuple:
    return tuple(metric.bounds) if metric.bounds else SCORE_BOUNDS


def aggregates_of(cell) -> dict:
    """IQM and mean of the cell's run x task scores with stratified bootstrap intervals;
    none with one seed (resampling one run per task gives no spread to show)."""
    if len(cell.runs) < 2:
        return {}
    scores, bounds = task_scores(cell), bounds_of(cell.metric)
    return {name: aggregate(scores, name, resamples=RESAMPLES, bounds=bounds) for name in ("iqm", "mean")}


def improvement(cells: list, keys: list[str], baseline: str | None) -> None:
    """P(X > baseline) of each cell against its group's baseline cell, with its interval."""
    if not baseline:
        return
    for _, group in grouped(cells, comparison_keys(keys)):
        base = next((cell for cell in group if cell.key["method"] == baseline), None)
        if base is None or len(base.runs) < 2:
            continue
        for cell in group:
            if cell is not base and len(cell.runs) >= 2 and list(cell.runs[0]["tasks"]) == list(base.runs[0]["tasks"]):
                cell.aggregates["improvement"] = probability_of_improvement(task_scores(cell), task_scores(base),
                                                                            resamples=RESAMPLES)


def cells_of(suite, runs, keys: list[str], metric, pairing, baseline: str | None) -> list:
    """The cells of the success rate, with each task's interval, the aggregates, the cost
    figures and their ratios to unitary (the benchmark's, with the same other axes when
    there is one), the reproduction verdicts and the labels against the benchmark's best."""
    cells = build_cells(done_rows(runs), keys, metric)
    for cell in cells:
        cell.parts = parts(cell, "tasks")
        cell.cost = {name: frame_mean(row["steps_done" if name == "steps" else name] for row in cell.runs) for name in COSTS}
        cell.cost.update(training_hours(cell.runs))
        cell.aggregates = aggregates_of(cell)
    improvement(cells, keys, baseline)
    judge_reported(suite, cells)
    judge_best(cells, ["dataset"], pairing, suite_margin(suite, metric))
    ratios_to(cells, "unitary", {"update_vs_unitary": "seconds_per_update", "env_vs_unitary": "env_steps_per_second"},
              [comparison_keys(keys), ["dataset"]])
    return cells


def compute(suite, store, options: dict | None = None) -> Report:
    """The report's model: one set of cells (by the generic keys), their comparisons and the claims."""
    options = resolve_options(suite, "markdown", options)
    family = families.get(suite.family)
    runs, scan = collect(suite, store, run_row(suite), options.get("specs"))
    chosen = selected.apply(suite, runs, group_keys(suite), store, options.get("oracle", False))
    keys, metric = chosen.keys, family.headline
    pairing = Pairing.of(family, metric, options.get("shared_by"))
    cells = cells_of(suite, chosen.runs, keys, metric, pairing, options["baseline"])
    compared = compare(cells, keys, options["baseline"], pairing)
    tested = claims.evaluate(suite, {metric.name: cells}, {metric.name: pairing}, keys) if suite.claims else []
    return Report(suite, keys, runs, scan, [Section(metric, cells, compared, suite_margin(suite, metric))],
                  options["baseline"], claims=tested, selection=chosen)


def _milliseconds(value) -> str:
    return "" if missing(value) else f"{value * 1000:.1f} ms"


def _count(value) -> str:
    return "" if missing(value) else f"{value:,.0f}"


def aggregate_text(found, digits: int = 1) -> str:
    if found is None:
        return "one seed: no interval"
    return f"{found.value:.{digits}f} [{found.low:.{digits}f}, {found.high:.{digits}f}]"


def aggregate_fields(name: str):
    def values(cell) -> dict:
        found = cell.aggregates.get(name)
        return {} if found is None else {name: found.value, f"{name}_low": found.low, f"{name}_high": found.high,
                                          f"{name}_interval": f"{found.confidence:.0%} stratified bootstrap ({found.method})"}
    return values


def _has_improvement(table: Table) -> bool:
    return any("improvement" in cell.aggregates for cell in table.rows)


COLUMNS = [
    Column("seeds", View("seeds", lambda c, t: c.interval.n), tidy=lambda c: {"seeds": c.interval.n}),
    Column("success", View("success % ± 95% CI", lambda c, t: pm(c.mean, c.ci95, 1, bounds_of(c.metric))),
           tidy=lambda c: {"success": c.mean, **mean_fields(c)}),
    Column("iqm", View("IQM [95% CI]", lambda c, t: aggregate_text(c.aggregates.get("iqm"))), tidy=aggregate_fields("iqm")),
    Column("bootstrap_mean", View("mean [95% CI]", lambda c, t: aggregate_text(c.aggregates.get("mean"))),
           tidy=aggregate_fields("mean")),
    Column("improvement", View("P(> baseline) [95% CI]",
                               lambda c, t: aggregate_text(c.aggregates.get("improvement"), 2) if "improvement" in c.aggregates else "",
                               when=_has_improvement), tidy=aggregate_fields("improvement")),
    *REPORTED_COLUMNS,
    VS_BEST,
    Column("seconds_per_update", View("s/update", lambda c, t: _milliseconds(c.cost["seconds_per_update"]))),
    Column("update_vs_unitary", View("× unitary", lambda c, t: ratio_text(c.ratios["update_vs_unitary"]))),
    Column("env_steps_per_second", View("env steps/s", lambda c, t: _count(c.cost["env_steps_per_second"]))),
    Column("env_vs_unitary", View("× unitary (env)", lambda c, t: ratio_text(c.ratios["env_vs_unitary"]))),
    Column("wall_seconds", View("wall-clock / run", lambda c, t: seconds(c.cost["wall_seconds"]))),
]


def reward_versions(cells) -> str:
    """The Meta-World reward version(s) of the cells' runs ("v1", or "v1, v2")."""
    return ", ".join(sorted({str(row["config"].get(REWARDS)) for cell in cells for row in cell.runs}))


def rewards_text(cells) -> str:
    return f"Meta-World {REWARDS} {reward_versions(cells)}"


def notes(cells, baseline: str | None) -> list[str]:
    lines = [
        ("Success: each run's score is the mean over tasks of each task's success rate over its evaluation episodes, "
         "averaged over its last evaluations (the config's eval_episodes and score_evaluations); mean over seeds ± "
         "half-width of the 95% t-interval across seeds (k-1 degrees of freedom)."),
        ("IQM: the mean of the middle 50% of all run × task scores; mean: of all run × task scores; each with its 95% "
         f"stratified bootstrap interval (each task's runs resampled, {RESAMPLES:,} resamples, percentile), which "
         "stays within [0, 100]. One seed: no interval (one run per task leaves nothing to resample)."),
    ]
    if baseline and any("improvement" in cell.aggregates for cell in cells):
        lines.append(f"P(> baseline): the probability that a run of the row beats a run of {baseline} on a task (ties "
                     "count half; the Mann-Whitney statistic over runs), averaged over tasks, with its stratified "
                     "bootstrap interval; 0.5: neither ahead.")
    lines.append("Cost: mean seconds per update (sampling and the whole SAC update, device synchronised) and env steps "
                 "per second of the training envs, with their ratios to `unitary` of the same benchmark; wall-clock = "
                 "training and evaluation per run.")
    lines.append("The reward version changes Meta-World results a lot: compare only tables with the same one.")
    return lines


def benchmark_lines(cells: list, keys: list[str], shown: list[str], metric, per_task: bool, margin) -> list[str]:
    """One benchmark's table (no benchmark column) and, ``per_task``, its tasks' success."""
    context = Table(metric, cells, shown, ["dataset"])
    lines = [f"Rewards: {rewards_text(cells)}.", "", markdown.table(COLUMNS, context), ""]
    lines += markdown.verdict_notes(context, margin)
    if per_task:
        names = [row_label(cell.key, keys) for cell in cells]
        rows = [[task] + [pm(cell.parts[task].mean, cell.parts[task].half_width, 1, bounds_of(metric))
                          if task in cell.parts else "" for cell in cells] for task in cells[0].parts]
        lines += ["", f"Success per task (%, mean over seeds ± 95% CI; {rewards_text(cells)}):", "",
                  markdown_table(rows, ["task"] + names)]
    return lines + [""]


def figures(report: Report, folder) -> list[dict]:
    """The curves and the performance profiles, a panel per benchmark."""
    section, keys = report.sections[0], report.keys
    benchmarks = list(dict.fromkeys(cell.key["dataset"] for cell in section.cells))
    drawn = []
    panels = {name: {row_label(cell.key, keys): [row["curve"] for row in cell.runs] for cell in section.cells
                     if cell.key["dataset"] == name} for name in benchmarks}
    if curves.plot(panels, folder / CURVES):
        drawn.append({"file": CURVES, "alt": "evaluation curves",
                      "caption": "Evaluation curves: mean success over seeds at each evaluation, with the 95% "
                                 "t-interval across seeds as a band (none with one seed), within [0, 100]."})
    thresholds = np.linspace(0.0, 100.0, 101)
    profiles = {f"{name} ({reward_versions([c for c in section.cells if c.key['dataset'] == name])} rewards)":
                {row_label(cell.key, keys): (performance_profile(task_scores(cell), thresholds, resamples=RESAMPLES),
                                             len(cell.runs)) for cell in section.cells if cell.key["dataset"] == name}
                for name in benchmarks}
    if curves.plot_profiles(profiles, folder / PROFILES):
        drawn.append({"file": PROFILES, "alt": "performance profiles",
                      "caption": "Performance profiles: the fraction of run × task scores above each success "
                                 "threshold, averaged over tasks, with 95% stratified bootstrap bands (none with one "
                                 "seed)."})
    return drawn


def render_markdown(report: Report, per_task: bool) -> str:
    section, keys = report.sections[0], report.keys
    shown = [k for k in cell_keys(report.suite) if k != "dataset"]
    lines = markdown.header_lines(report.suite, report.runs)
    benchmarks = list(dict.fromkeys(cell.key["dataset"] for cell in section.cells))
    if not section.cells:
        lines.append("No finished runs yet.")
    else:
        for figure in report.figures:
            lines += [f"{figure['caption']} [{figure['file']}]({figure['file']})", "",
                      f"![{figure['alt']}]({figure['file']})", ""]
        for name in benchmarks:
            cells = [cell for cell in section.cells if cell.key["dataset"] == name]
            lines += [f"## {name}", "", *benchmark_lines(cells, keys, shown, section.metric, per_task, section.margin)]
        for note in notes(section.cells, report.baseline):
            lines += [note, ""]
        if report.baseline:
            lines += ["", f"## Paired comparisons with {report.baseline}", "",
                      f"Rewards: {rewards_text(section.cells)}.", "",
                      *markdown.comparison_table(section.comparisons, section.metric, keys), ""]
        chosen = selected.markdown_lines(report.selection)
        lines += [*chosen[1:], ""] if chosen else []
        claimed = claims.markdown_lines(report.claims)
        lines += [*claimed[1:3], f"Rewards: {rewards_text(section.cells)}.", "", *claimed[3:], ""] if claimed else []
    return "\n".join(lines + markdown.footer_lines(report.runs, report.scan)) + "\n"


def render_csv(report: Report) -> str:
    """Tidy CSV: ``row`` = cell (its keys, the reward version, success and its interval, the
    aggregates, cost, the verdicts and ratios, each task), comparison, claim, claim_part."""
    section = report.sections[0]
    if not section.cells:
        return ""
    names = list(dict.fromkeys(name for cell in section.cells for name in cell.parts))
    rows = []
    for cell in section.cells:
        costs = {("steps_done" if name == "steps" else name): value for name, value in cell.cost.items()}
        row = {"row": "cell", **cell.key, REWARDS: reward_versions([cell]), **fields(COLUMNS, "tidy", cell), **costs,
               **cell.ratios}
        for name in names:
            part = cell.parts.get(name)
            low, high, _ = clip(part.mean, part.half_width, bounds_of(cell.metric)) if part else (None, None, None)
            row.update({f"task:{name}": part.mean if part else None, f"task:{name}:ci95": part.half_width if part else None,
                        f"task:{name}:low": low, f"task:{name}:high": high})
        rows.append(row)
    rows += comparison_rows(section.comparisons, report.keys) + claims.tidy_rows(report.claims)
    return tidy_csv(rows, header(rows, ["row", *report.keys, REWARDS, "seeds", "success", "ci95"]))


def build(suite, store, fmt: str = "markdown", options: dict | None = None) -> tuple[str, list[str]]:
    """The report text in the given format and the store's warnings; with plots (default
    for markdown) the curves and profiles PNGs beside REPORT.md, linked."""
    options = resolve_options(suite, fmt, options)
    report = compute(suite, store, options)
    if fmt == "csv":
        return render_csv(report), report_warnings(report.scan)
    if options["plots"] and report.done:
        report.figures, report.problems = figures_or_warning(lambda: figures(report, figures_folder(store, options)))
    return render_markdown(report, bool(options.get("per_task"))), report_warnings(report.scan) + report.problems

