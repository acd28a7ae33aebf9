"""The markdown report (``REPORT.md``): the pieces every family's report is made of (the
header, a table from columns, the comparisons section, the figures' links, the failed
runs and warnings), and the generic report's page: a table per metric with the notes
that define every interval and rule, the comparisons with the baseline, the figures.
"""
from __future__ import annotations

from harness.report.collect import report_warnings
from harness.report.columns import CELL_COLUMNS, COMPARISON_COLUMNS, Table, shown
from harness.report.paired import notes as comparison_notes
from harness.tables import markdown_table


def header_lines(suite, runs) -> list[str]:
    """Title, paper, description and run counts: the top of every family's report."""
    lines = [f"# {suite.name}", "", f"Reproducing: {suite.paper}", ""]
    if suite.description:
        lines += [suite.description.strip(), ""]
    counts = runs["status"].value_counts().to_dict() if len(runs) else {}
    lines.append("Runs: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("done", "failed", "running", "pending")))
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
    return [table(COMPARISON_COLUMNS, Table(metric, comparisons, keys)), "", *comparison_notes(comparisons, metric)]


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
    """What the generic table of ``metric`` shows: every interval and the agreement rule."""
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
              f"seed's squared per-{unit.removesuffix('s')} standard error)") if metric.samples else ""
    lines.append(f"Agreement rule: a cell agrees when |diff| <= t(0.975, df) * sqrt(se_ours² + se_reported²), where "
                 f"se_ours² is the squared standard error of the seed means (k-1 df){shared}, se_reported is "
                 f"derived from the reported ± by its kind, and df is the Welch-Satterthwaite combination of their "
                 f"degrees of freedom (a part with unknown df counts as infinite).")
    lines.append("Wall-clock: mean per run of training (including validation) and of the final test evaluation, "
                 "device synchronised; GPU-hours: GPUs asked for x wall-clock, over the runs that ran on a GPU.")
    return lines


def metric_lines(section, keys: list[str]) -> list[str]:
    """One metric's table with its notes, sources and how the reported errors were derived."""
    context = Table(section.metric, section.cells, keys)
    lines = [table(CELL_COLUMNS, context), "", *notes(section.metric)]
    if context.sources:
        lines += ["", "Sources: " + "; ".join(f"[{n}] {s}" for s, n in context.sources.items()) + "."]
    rules = sorted({cell.reported.se_rule for cell in section.cells if cell.reported is not None})
    if rules:
        lines.append("Reported se derived as: " + "; ".join(rules) + ".")
    return lines


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
        lines += figure_lines(report.figures)
    return "\n".join(lines + footer_lines(report.runs, report.scan)) + "\n"
