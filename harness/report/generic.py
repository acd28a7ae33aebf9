"""The generic report, for any family, from the metrics it declares: the runs frame, then
each metric's cells (per-seed intervals over the samples, the interval across seeds,
the reported number and the agreement rule, cost figures) and comparisons with the
baseline, computed once, then the figures and the format asked for.
"""
from __future__ import annotations

from harness import HarnessError, families
from harness.report import document, latex, markdown, tidy
from harness.report.cells import build as build_cells
from harness.report.cells import done_rows, run_costs
from harness.report.collect import collect, report_warnings
from harness.report.figures import cost_figure, figures_or_warning
from harness.report.model import Report, Section
from harness.report.paired import compare, shared_keys
from harness.report.shared import REPORT_FILES, group_keys
from harness.report.verdicts import judge_reported

FORMATS = tuple(REPORT_FILES)
RENDER = {"markdown": markdown.render, "csv": tidy.render, "latex": latex.render, "json": document.render}


def resolve_options(suite, fmt: str, options: dict | None) -> dict:
    """``plots``: as given, else on for markdown only; ``baseline``: as given (``--baseline``),
    else the suite's ``report: {baseline: ...}``, else None."""
    if fmt not in FORMATS:
        raise HarnessError(f"--format {fmt}: unknown format (known: {', '.join(FORMATS)})")
    options = dict(options or {})
    plots_on = options.get("plots")
    options["plots"] = fmt == "markdown" if plots_on is None else bool(plots_on)
    options["baseline"] = options.get("baseline") or suite.report_options.get("baseline")
    return options


def sections(suite, runs, keys: list[str], baseline: str | None, shared_by=None) -> list[Section]:
    """Each declared metric's cells and comparisons with the baseline."""
    family = families.get(suite.family)
    rows = done_rows(runs)
    found = []
    for metric in family.metrics:
        cells = build_cells(rows, keys, metric, by_seed=True)
        for cell in cells:
            cell.cost = run_costs(cell.runs)
        judge_reported(suite, cells)
        found.append(Section(metric, cells, compare(cells, keys, baseline, shared_keys(family, metric, shared_by))))
    return found


def compute(suite, store, options: dict | None = None) -> Report:
    """The report's model (``build``'s ``options``; no figures): the runs frame, and per
    metric the cells and the comparisons with the baseline."""
    options = resolve_options(suite, "markdown", options)  # the baseline; the format does not matter here
    runs, scan = collect(suite, store, specs=options.get("specs"))
    keys = group_keys(suite)
    return Report(suite, keys, runs, scan, sections(suite, runs, keys, options["baseline"], options.get("shared_by")),
                  options["baseline"])


def build(suite, store, fmt: str = "markdown", options: dict | None = None) -> tuple[str, list[str]]:
    """The report text in the given format (``FORMATS``), and the store's warnings.

    ``options``: ``plots`` (default: on for markdown) draws the figures into ``store.dir``
    and links them; ``baseline`` (default: the suite's) adds the paired comparisons;
    ``shared_by`` (default ``shared_keys``) the config keys two runs must agree on to be
    paired; ``specs``, the suite's runs when the caller has expanded them already."""
    options = resolve_options(suite, fmt, options)
    report = compute(suite, store, options)
    if options["plots"]:
        headline = report.sections[0]
        report.figures, report.problems = figures_or_warning(
            lambda: [f for f in [cost_figure(suite.name, headline.cells, report.keys, store.dir, headline.metric)] if f])
    return RENDER[fmt](report), report_warnings(report.scan) + report.problems
