"""The LaTeX report (``report.tex``, a fragment to ``\\input``; needs booktabs): a booktabs
table from columns (the best of each group in bold), the comparisons table, the
figures; and the generic report's fragment: a table per metric, its comparisons.
"""
from __future__ import annotations

from harness.report import claims
from harness.report.cells import grouped
from harness.report.columns import (
    CELL_COLUMNS,
    COMPARISON_COLUMNS,
    Table,
    shown,
)
from harness.report.shared import (
    bold,
    comparison_keys,
    latex_escape,
    latex_header,
    latex_label,
    latex_table,
)

KIND_WORDS = {"ci95": "ci95 = 95% interval", "std": "std = standard deviation", "sem": "sem = standard error"}


def table(columns, context: Table, caption: str, label: str, by_group: bool = True, align: str | None = None,
          keys: list[str] | None = None) -> list[str]:
    """A booktabs table of ``context.rows``: the keys (``keys``, default the context's),
    then each column the table shows; a value in bold where its column declares the row
    significantly best of its group. ``by_group``: rows in group order (``context.by``), a
    rule between groups (else in their order)."""
    keys = context.keys if keys is None else keys
    views = shown(columns, "latex", context)
    groups = grouped(context.rows, context.by)
    ordered = [row for _, group in groups for row in group] if by_group else context.rows
    breaks, start = [], 0
    for _, group in groups if by_group else []:
        breaks.append(start)
        start += len(group)
    rows = [[latex_escape(row.key[k]) for k in keys]
            + [bold(view.text(row, context)) if view.bold and view.bold(row) else view.text(row, context) for view in views]
            for row in ordered]
    headers = list(keys) + [view.heading(context) for view in views]
    return latex_table(headers, rows, caption, label, breaks, align or "l" * len(keys) + "r" * len(views))


def comparison_table(suite, comparisons: list, metric, baseline: str, keys: list[str]) -> list[str]:
    """Comparisons with a baseline as a booktabs table."""
    if not comparisons:
        return []
    caption = (f"{suite.name}: {metric.name} of each method minus {baseline}'s, ± half-width of its 95% interval; "
               "test per row (paired over seeds where the runs pair, else Welch); wins: seeds where the method is "
               f"ahead; verdict at 5%, two-sided, on the p Holm-adjusted over the methods of one "
               f"{', '.join(comparison_keys(keys)) or 'table'}, by the metric's direction; no verdict with one seed a side.")
    return table(COMPARISON_COLUMNS, Table(metric, comparisons, keys), latex_escape(caption),
                 latex_label(suite.name, metric.name, "vs", baseline), by_group=False, align="l" * len(keys) + "rrrrrll")


def figure_lines(figures: list[dict]) -> list[str]:
    lines = []
    for figure in figures:
        if figure.get("file"):
            lines += ["\\begin{figure}[ht]", "\\centering", f"\\includegraphics[width=\\linewidth]{{{figure['file']}}}",
                      f"\\caption{{{latex_escape(figure['caption'])}}}", "\\end{figure}", ""]
    return lines


def caption(suite, context: Table, margin=None) -> str:
    """The caption of a metric's table: what the intervals are, the verdicts' rules, the bold rule."""
    metric = context.metric
    unit = f" in {metric.unit}" if metric.unit else ""
    text = (f"{suite.name}: {metric.name}{unit}, mean over seeds ± half-width of the 95% t-interval across seeds "
            f"(k-1 degrees of freedom).")
    if metric.bounds and context.clipped:
        text += f" Intervals that would leave [{metric.bounds[0]:g}, {metric.bounds[1]:g}] are clipped and shown as [low, high]."
    if context.has_reported:
        kinds = sorted({cell.reported.kind for cell in context.rows if cell.reported is not None and isinstance(cell.reported.kind, str)})
        described = "; ".join(KIND_WORDS[k] for k in kinds) or "no ± given"
        margins = sorted({c.reported.margin for c in context.rows if c.reported is not None and c.reported.margin is not None})
        text += f" Reported: the paper's number with its ± as the paper defines it ({described})."
        if margins:
            text += (f" Verdict (δ = {' or '.join(f'{m:g}' for m in margins)}): reproduced when the 90% interval of "
                     "ours - reported lies inside (-δ, +δ), not reproduced when it is shown outside at 5%, else "
                     "inconclusive; the se adds the paper's one-model seed draw and the shared test set (see REPORT.md).")
        else:
            text += " No verdict: the suite sets no margin (report: {margin: ...})."
    best = "lower" if metric.lower_is_better else "higher"
    text += f" Bold: the best mean per {', '.join(context.by) or 'table'} ({best} is better) only where it is significantly best"
    text += " (one-sided against every other, Holm, 5%)."
    if context.has_best and margin is not None:
        text += f" vs best: within δ = {margin:g} of the best when shown not worse than every other row by δ (Holm, 5%)."
    return latex_escape(text)


def render(report) -> str:
    """The generic report's fragment."""
    suite, keys = report.suite, report.keys
    lines = latex_header(suite)
    if not report.done:
        return "\n".join(lines + ["% No finished runs yet."]) + "\n"
    for section in report.sections:
        context = Table(section.metric, section.cells, keys, comparison_keys(keys))
        lines += table(CELL_COLUMNS, context, caption(suite, context, section.margin),
                       latex_label(suite.name, section.metric.name))
        if report.baseline:
            lines += comparison_table(suite, section.comparisons, section.metric, report.baseline, keys)
    lines += claims.latex_lines(suite, report.claims)
    return "\n".join(lines + figure_lines(report.figures)).rstrip("\n") + "\n"
