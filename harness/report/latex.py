"""The LaTeX report (``report.tex``, a fragment to ``\\input``; needs booktabs): a booktabs
table from columns (the best of each group in bold), the comparisons table, the
figures; and the generic report's fragment: a table per metric, its comparisons.
"""
from __future__ import annotations

from harness.report.cells import grouped
from harness.report.columns import (
    CELL_COLUMNS,
    COMPARISON_COLUMNS,
    Table,
    best_marks,
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
    then each column the table shows; the best value of each group (``context.by``) of a
    column that declares one in bold. ``by_group``: rows in group order, a rule between
    groups (else in their order)."""
    keys = context.keys if keys is None else keys
    views = shown(columns, "latex", context)
    groups = grouped(context.rows, context.by)
    marks = [best_marks(view, context, groups) if view.best else set() for view in views]
    ordered = [row for _, group in groups for row in group] if by_group else context.rows
    breaks, start = [], 0
    for _, group in groups if by_group else []:
        breaks.append(start)
        start += len(group)
    rows = [[latex_escape(row.key[k]) for k in keys]
            + [bold(text) if id(row) in mark else text for text, mark in ((v.text(row, context), m) for v, m in zip(views, marks))]
            for row in ordered]
    headers = list(keys) + [view.heading(context) for view in views]
    return latex_table(headers, rows, caption, label, breaks, align or "l" * len(keys) + "r" * len(views))


def comparison_table(suite, comparisons: list, metric, baseline: str, keys: list[str]) -> list[str]:
    """Comparisons with a baseline as a booktabs table."""
    if not comparisons:
        return []
    caption = (f"{suite.name}: {metric.name} of each method minus {baseline}'s, ± half-width of its 95% interval; "
               "test per row (paired over seeds or test units where the runs share them, else Welch); verdict at 5%, "
               "two-sided, by the metric's direction.")
    return table(COMPARISON_COLUMNS, Table(metric, comparisons, keys), latex_escape(caption),
                 latex_label(suite.name, metric.name, "vs", baseline), by_group=False, align="l" * len(keys) + "rrrll")


def figure_lines(figures: list[dict]) -> list[str]:
    lines = []
    for figure in figures:
        if figure.get("file"):
            lines += ["\\begin{figure}[ht]", "\\centering", f"\\includegraphics[width=\\linewidth]{{{figure['file']}}}",
                      f"\\caption{{{latex_escape(figure['caption'])}}}", "\\end{figure}", ""]
    return lines


def caption(suite, context: Table) -> str:
    """The caption of a metric's table: what the intervals are, the agreement rule, the bold rule."""
    metric = context.metric
    unit = f" in {metric.unit}" if metric.unit else ""
    text = latex_escape(f"{suite.name}: {metric.name}{unit}, mean over seeds ± half-width of the 95% t-interval "
                        f"across seeds (k-1 degrees of freedom).")
    if context.has_reported:
        kinds = sorted({cell.reported.kind for cell in context.rows if cell.reported is not None and isinstance(cell.reported.kind, str)})
        described = "; ".join(KIND_WORDS[k] for k in kinds) or "no ± given"
        text += latex_escape(f" Reported: the paper's number with its ± as the paper defines it ({described}).")
        text += (r" Agrees: $|\mathrm{ours} - \mathrm{reported}| \le t_{0.975,\nu} \sqrt{se_\mathrm{ours}^2 + "
                 r"se_\mathrm{reported}^2}$, $\nu$ by Welch-Satterthwaite.")
    best = "lower" if metric.lower_is_better else "higher"
    return text + latex_escape(f" Bold: the best mean per {', '.join(context.by) or 'table'} ({best} is better).")


def render(report) -> str:
    """The generic report's fragment."""
    suite, keys = report.suite, report.keys
    lines = latex_header(suite)
    if not report.done:
        return "\n".join(lines + ["% No finished runs yet."]) + "\n"
    for section in report.sections:
        context = Table(section.metric, section.cells, keys, comparison_keys(keys))
        lines += table(CELL_COLUMNS, context, caption(suite, context), latex_label(suite.name, section.metric.name))
        if report.baseline:
            lines += comparison_table(suite, section.comparisons, section.metric, report.baseline, keys)
    return "\n".join(lines + figure_lines(report.figures)).rstrip("\n") + "\n"
