"""The generic report, for any family, from the metrics it declares: the runs frame, then
each metric's cells (per-seed intervals over the samples, the interval across seeds,
the reported number and its reproduction verdict, the verdict against the best, cost
figures), comparisons with the baseline and the suite's claims, computed once, then the
figures and the format asked for.
"""
from __future__ import annotations

from harness import HarnessError, families
from harness.record import REPORT_FILES
from harness.report import claims, document, latex, markdown, selected, tidy
from harness.report.cells import build as build_cells
from harness.report.cells import done_rows, run_costs
from harness.report.collect import collect, report_warnings
from harness.report.figures import cost_figure, figures_folder, figures_or_warning
from harness.report.model import Report, Section
from harness.report.paired import Pairing, compare
from harness.report.shared import comparison_keys, group_keys
from harness.report.verdicts import judge_best, judge_reported, suite_margin

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


def sections(suite, runs, keys: list[str], baseline: str | None, shared_by=None) -> tuple[list[Section], dict]:
    """Each declared metric's cells (their verdicts against the paper's number and against
    the best of their group) and comparisons with the baseline; and each metric's pairing."""
    family = families.get(suite.family)
    rows = done_rows(runs)
    found, pairings = [], {}
    for metric in family.metrics:
        cells = build_cells(rows, keys, metric, by_seed=True)
        for cell in cells:
            cell.cost = run_costs(cell.runs)
        pairing = pairings[metric.name] = Pairing.of(family, metric, shared_by)
        margin = suite_margin(suite, metric)
        judge_reported(suite, cells)
        judge_best(cells, comparison_keys(keys), pairing, margin)
        found.append(Section(metric, cells, compare(cells, keys, baseline, pairing), margin))
    return found, pairings


def compute(suite, store, options: dict | None = None) -> Report:
    """The report's model (``build``'s ``options``; no figures): the runs frame, per
    metric the cells and the comparisons with the baseline, and the suite's claims."""
    options = resolve_options(suite, "markdown", options)  # the baseline; the format does not matter here
    runs, scan = collect(suite, store, specs=options.get("specs"))
    chosen = selected.apply(suite, runs, group_keys(suite), store, options.get("oracle", False))
    keys = chosen.keys
    found, pairings = sections(suite, chosen.runs, keys, options["baseline"], options.get("shared_by"))
    tested = claims.evaluate(suite, {s.metric.name: s.cells for s in found}, pairings, keys) if suite.claims else []
    return Report(suite, keys, runs, scan, found, options["baseline"], claims=tested, selection=chosen)


def build(suite, store, fmt: str = "markdown", options: dict | None = None) -> tuple[str, list[str]]:
    """The report text in the given format (``FORMATS``), and the store's warnings.

    ``options``: ``plots`` (default: on for markdown) draws the figures into ``store.dir``
    (``figures_dir`` when given) and links them; ``baseline`` (default: the suite's) adds the paired comparisons;
    ``shared_by`` (default ``harness.report.paired.pairing_keys``) the config keys two
    runs of one seed must agree on to be paired; ``specs``, the suite's runs when the caller has expanded them already."""
    options = resolve_options(suite, fmt, options)
    report = compute(suite, store, options)
    if options["plots"]:
        headline = report.sections[0]
        report.figures, report.problems = figures_or_warning(
            lambda: [f for f in [cost_figure(suite.name, headline.cells, report.keys, figures_folder(store, options),
                                             headline.metric)] if f])
    return RENDER[fmt](report), report_warnings(report.scan) + report.problems
