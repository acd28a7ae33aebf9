"""The markdown report (``REPORT.md``): the pieces every family's report is made of (the
header, a table from columns, the comparisons section, the figures' links, the failed
runs and warnings), and the generic report's page: a table per metric with the notes
that define every interval and rule, the comparisons with the baseline, the figures.
"""
from __future__ import annotations

from harness.record import STORE_STATUSES
from harness.report import claims, selected
from harness.report.collect import report_warnings
from harness.report.columns import CELL_COLUMNS, COMPARISON_COLUMNS, Table, shown
from harness.report.paired import notes as comparison_notes
from harness.report.shared import bounds_line, comparison_keys, margin_line
from harness.tables import markdown_table


def header_lines(suite, runs) -> list[str]:
    """Title, paper, description and run counts: the top of every family's report."""
    lines = [f"# {suite.name}", "", f"Reproducing: {suite.paper}", ""]
    if suite.description:
        lines += [suite.description.strip(), ""]
    counts = runs["status"].value_counts().to_dict() if len(runs) else {}
    lines.append("Runs: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in STORE_STATUSES))
    return lines + [""]


def footer_lines(runs, scan) -> list[str]:
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


def table(columns, context: Table) -> str:
    """The markdown table of ``context.rows``: the keys, then each column the table shows."""
    views = shown(columns, "markdown", context)
    rows = [[row.key[k] for k in context.keys] + [view.text(row, context) for view in views] for row in context.rows]
    return markdown_table(rows, list(context.keys) + [view.heading(context) for view in views])


def comparison_table(comparisons: list, metric, keys: list[str]) -> list[str]:
    """The markdown table of comparisons with a baseline (any family's: ``keys`` name the
    columns), with the definitions of the tests used."""
    if not comparisons:
        return ["No other method to compare with the baseline."]
    return [table(COMPARISON_COLUMNS, Table(metric, comparisons, keys)), "",
            *comparison_notes(comparisons, metric, comparison_keys(keys))]


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


def notes(metric) -> list[str]:
    """What the generic table of ``metric`` shows: its values and intervals, and the cost."""
    unit = metric.samples_name
    what = f"{metric.name}" + (f" in {metric.unit}" if metric.unit else "") + (" (lower is better, ↓)" if metric.lower_is_better else "")
    lines = [f"{what[0].upper()}{what[1:]}."]
    if metric.samples:
        lines.append(f"Per seed: mean ± half-width of the 95% t-interval over that seed's test {unit} (ddof=1). "
                     f"Mean: mean of the seed means ± half-width of the 95% t-interval across seeds "
                     f"(k-1 degrees of freedom); {unit} are never pooled across seeds. The interval across seeds holds "
                     f"the spread of training seeds on these test {unit}; the verdicts below add the error of the test "
                     f"set itself where they compare with other test sets.")
    else:
        lines.append("Mean: mean over seeds ± half-width of the 95% t-interval across seeds (k-1 degrees of freedom).")
    lines.append("Wall-clock: mean per run of training (including validation) and of the final test evaluation, "
                 "device synchronised; GPU-hours: GPUs asked for x wall-clock, over the runs that ran on a GPU.")
    return lines


def metric_lines(section, keys: list[str]) -> list[str]:
    """One metric's table with its notes: the values, the verdicts' rules, the sources."""
    context = Table(section.metric, section.cells, keys, comparison_keys(keys))
    return [table(CELL_COLUMNS, context), "", *notes(section.metric), *verdict_notes(context, section.margin)]


def verdict_notes(context: Table, margin) -> list[str]:
    """The lines under a table of cells: bounds, test sets, the reproduction rule and the
    reported sources, the rule against the best (each when the table has it)."""
    metric = context.metric
    lines = bounds_line(metric, context.clipped)
    lines += conditional_lines(context.rows)
    if context.has_reported:
        lines += reproduction_notes(context)
    if context.has_best:
        lines += best_notes(metric, context.by, margin)
    return lines


def conditional_lines(cells) -> list[str]:
    """Which cells' runs recorded no per-unit samples: what they say is conditional on their test set."""
    bare = [cell for cell in cells if cell.without_samples]
    if not bare:
        return []
    names = ", ".join(sorted({str(cell.key.get("dataset", "")) or "a cell" for cell in bare}))
    unit = cells[0].metric.samples_name
    return [(f"Runs without per-{unit.removesuffix('s')} samples ({names}): their intervals and verdicts are "
             f"conditional on the fixed test set (its own sampling error is not in them).")]


def reproduction_notes(context: Table) -> list[str]:
    """The reproduction rule, its δ, what each source's ± covers and the reading of a ± over unknown seeds."""
    metric, cells = context.metric, [cell for cell in context.rows if cell.reported is not None]
    unit = metric.samples_name.removesuffix("s")
    lines = ["Reported: the paper's number with its ± as the paper gives it; [n]: its source below."]
    margins = sorted({cell.reported.margin for cell in cells if cell.reported.margin is not None})
    if margins:
        deltas = " or ".join(f"{m:g}" for m in margins) + (" (per entry, column δ)" if len(margins) > 1 else "")
        lines.append(
            f"Verdict (δ = {deltas}, in {metric.name}'s units{', ' + metric.unit if metric.unit else ''}; fixed before "
            f"the runs): reproduced when the 90% "
            f"interval of ours − reported lies inside (−δ, +δ) (two one-sided t-tests at 5%); not reproduced when "
            f"|ours − reported| > δ is shown at 5% (the 90% interval lies outside [−δ, +δ] once δ is a few se wide); "
            f"inconclusive otherwise; one seed: no verdict.")
        lines.append(
            f"se² of ours − reported = s²/k (the spread of our k seed means, k−1 df) + s² again when the paper reports "
            f"ONE trained model (the seed-to-seed variance its ± does not cover, estimated by our seeds) + the error of "
            f"the test set our seeds share (the mean cross-seed covariance of the per-{unit} values over n; twice "
            f"against a paper over seeds, whose own test set has the same error; 0 for runs without per-{unit} samples) "
            f"+ the reported ±'s se²; df by Welch-Satterthwaite with each estimated variance at its 80% upper "
            f"confidence limit.")
    if context.has_plans:
        lines.append("Seeds to decide: the seeds (in all) with which an inconclusive cell would be decided with 80% "
                     "power were the true difference 0; 'cannot be decided at this margin': the reported ± (with the "
                     "seed draw of a one-model paper) and our shared test set alone leave more error than δ allows at "
                     "any number of seeds (even with the seed variance at its 90% lower confidence limit): a larger δ, "
                     "or a paper's number with a smaller ±, is needed. `harness plan SUITE --power` gives the seeds, "
                     "the floor and the smallest decidable δ of every reported cell and claim.")
    if any(cell.reported.margin is None for cell in cells):
        lines.append(margin_line(metric))
    lines.append("What each reported ± covers: " + "; ".join(
        f"[{number}] {source}: {covers_text(cells, source)}" for source, number in context.sources.items()) + ".")
    lines.append("A ± over an unknown number of seeds: a std is taken as the standard error itself (as if from one "
                 "seed: the widest reading), a ci95 is read with 1.96 and a sem with infinite degrees of freedom; "
                 "`seeds: k` in the entry replaces the assumption.")
    if context.has_cost:
        lines.append("Training cost: the paper's GPU-hours per run on its hardware, beside ours: the mean training "
                     "GPU-hours per run (GPUs asked for x training time; CPU core-hours when no run used a GPU, then "
                     "no ratio), on the devices our runs recorded.")
    return lines


def covers_text(cells, source: str) -> str:
    """What the ± of a source's entries covers, and how its se was derived."""
    found = []
    for cell in cells:
        entry = cell.reported
        if entry.source != source:
            continue
        if entry.interval is None:
            text = "no ± given (se 0)"
        elif entry.over == "episodes":
            count = f"{entry.count} " if entry.count else ""
            text = (f"{entry.kind} over the {count}test {cell.metric.samples_name} of ONE trained model "
                    f"(se = {entry.se_rule.removesuffix(' over episodes')}; one draw of our seed variance added)")
        else:
            count = f"{entry.count} seeds" if entry.count else "an unknown number of seeds"
            text = f"{entry.kind} over {count} (se = {entry.se_rule.removesuffix(' over seeds')})"
        if text not in found:
            found.append(text)
    return ", ".join(found)


def best_notes(metric, by: list[str], margin) -> list[str]:
    group = ", ".join(by) or "table"
    if margin is None:
        return [f"vs best: against the empirical best of its group (same {group}), which needs a margin δ. "
                + margin_line(metric)]
    return [(f"vs best: each row against the empirical best of its group (same {group}): \"within δ of the best\" "
             f"(δ = {margin:g}) when it is shown not worse than EVERY other row of the group by δ or more (one-sided "
             f"t, paired by seed where the runs pair, else Welch; the largest p over the other rows, Holm over the "
             f"group's rows, 5%), so whichever is truly best; \"not shown within δ of the best\" otherwise; no "
             f"verdict with one seed. Bold (LaTeX): the best only when it beats every other row (one-sided, Holm, 5%).")]


def render(report) -> str:
    """The generic report's page."""
    lines = header_lines(report.suite, report.runs)
    if not report.done:
        lines.append("No finished runs yet.")
    else:
        for section in report.sections:
            if len(report.sections) > 1:
                lines += [f"## {section.metric.name}", ""]
            lines += metric_lines(section, report.keys) + [""]
        lines.pop()
        if report.baseline:
            for section in report.sections:
                title = f"## Paired comparisons with {report.baseline}"
                title += f": {section.metric.name}" if len(report.sections) > 1 else ""
                lines += ["", title, "", *comparison_table(section.comparisons, section.metric, report.keys)]
        lines += selected.markdown_lines(report.selection)
        lines += claims.markdown_lines(report.claims)
        lines += figure_lines(report.figures)
    return "\n".join(lines + footer_lines(report.runs, report.scan)) + "\n"
