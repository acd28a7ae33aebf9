"""Columns, each declared once: what it shows of a cell (or of a comparison) in every
format that has it. A ``Column`` names its markdown and LaTeX views (heading, text,
when the table has it, and for LaTeX whether a row's value is bold: the best of its group
only when it is significantly best) and the named values it adds to a tidy CSV row and
to a JSON cell. Renderers take the columns they show from these lists; a new column is
one more entry.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from harness.report.paired import count_text, wins_text
from harness.report.shared import (
    arrow,
    clip,
    difference_bounds,
    difference_text,
    interval_text,
    latex_escape,
    latex_pm,
    missing,
    p_text,
    pm,
    seconds,
)


@dataclass
class Table:
    """One table's context: its metric, its cells (or comparisons), the keys that name a
    row and those that group rows (a rule between groups in LaTeX)."""

    metric: object
    rows: list
    keys: list
    by: list = field(default_factory=list)

    @cached_property
    def sources(self) -> dict:
        """Reported source -> its footnote number, in order of first use."""
        marks = {}
        for cell in self.rows:
            if getattr(cell, "reported", None) is not None:
                marks.setdefault(cell.reported.source, len(marks) + 1)
        return marks

    @property
    def has_samples(self) -> bool:
        return bool(self.metric.samples) and any(cell.samples for cell in self.rows)

    @cached_property
    def has_reported(self) -> bool:
        return any(getattr(cell, "reported", None) is not None for cell in self.rows)

    @cached_property
    def has_plans(self) -> bool:
        return any(cell.verdict == "inconclusive" for cell in self.rows if getattr(cell, "reported", None) is not None)

    @cached_property
    def margins(self) -> set:
        return {cell.reported.margin for cell in self.rows if getattr(cell, "reported", None) is not None}

    @cached_property
    def has_best(self) -> bool:
        return any(getattr(cell, "vs_best", None) for cell in self.rows)

    @cached_property
    def has_cost(self) -> bool:
        return any(cell.reported is not None and cell.reported.cost for cell in self.rows if hasattr(cell, "reported"))

    @cached_property
    def clipped(self) -> bool:
        """Some interval of the table was clipped to the metric's bounds."""
        bounds = self.metric.bounds
        if not bounds:
            return False
        intervals = [(c.mean, c.ci95) for c in self.rows if hasattr(c, "interval")]
        intervals += [(s.within.mean, s.within.half_width) for c in self.rows for s in getattr(c, "seeds", ())
                      if s.within is not None]
        return any(clip(mean, half, bounds)[2] for mean, half in intervals)


def always(_table: Table) -> bool:
    return True


@dataclass(frozen=True)
class View:
    """How one table format shows a column."""

    header: str | Callable[[Table], str]
    text: Callable  # (row, table) -> the cell's text (markdown: any value; LaTeX: LaTeX)
    when: Callable[[Table], bool] = always
    bold: Callable | None = None  # row -> whether it is the significantly best of its group (LaTeX)

    def heading(self, table: Table) -> str:
        return self.header(table) if callable(self.header) else self.header


@dataclass(frozen=True)
class Column:
    """A column, declared once: how the markdown and LaTeX tables show it (None: they do
    not) and the named values it adds to a row of the tidy CSV and to a JSON entry."""

    name: str
    markdown: View | None = None
    latex: View | None = None
    tidy: Callable | None = None  # row -> {CSV column: value}
    json: Callable | None = None  # row -> {JSON key: value}


# -- the reported number and its verdict ------------------------------------------------


def reported_text(cell, table: Table, latex: bool = False) -> str:
    entry = cell.reported
    if entry is None:
        return ""
    kind = f" ({entry.kind})" if isinstance(entry.kind, str) else ""
    if latex:
        return latex_pm(entry.value, entry.interval) + kind
    return f"{pm(entry.value, entry.interval)}{kind} [{table.sources[entry.source]}]"


def diff_text(cell) -> str:
    """ours - reported with the 90% interval the verdict reads."""
    if cell.reported is None:
        return ""
    found = cell.reproduction
    if found is None or missing(found.low):
        return f"{cell.mean - cell.reported.value:+.2f}"
    return f"{found.difference:+.2f} {interval_text(found.low, found.high, bounds=difference_bounds(cell.metric))}"


def verdict_text(cell) -> str:
    if cell.reported is None:
        return ""
    return cell.verdict or cell.verdict_note


def decide_text(cell) -> str:
    """For an inconclusive verdict: the seeds that would decide it, or that none can."""
    found = cell.reproduction
    if cell.verdict != "inconclusive":
        return ""
    if found.cannot_decide:
        return "cannot be decided at this margin"
    return str(found.plan.seeds) if found.plan.seeds is not None else found.plan.reason


def reported_fields(cell) -> dict:
    entry, found = cell.reported, cell.reproduction
    if entry is None:
        return {}
    values = {"reported": entry.value, "reported_interval": entry.interval, "reported_kind": entry.kind,
              "reported_over": entry.over, "reported_count": entry.count, "reported_se": entry.se, "source": entry.source,
              "margin": entry.margin, "diff": cell.mean - entry.value, "verdict": cell.verdict,
              "verdict_note": cell.verdict_note or None}
    if found is not None:
        plan = found.plan
        values.update({"diff_low": found.low, "diff_high": found.high, "diff_se": found.se, "diff_df": found.df,
                       "p_equivalent": found.p_equivalent, "p_different": found.p_different,
                       "seeds_to_decide": plan.seeds if plan is not None else None,
                       "smallest_margin": plan.smallest_margin if plan is not None else None})
    return values


def reported_json(cell) -> dict:
    entry, found = cell.reported, cell.reproduction
    if entry is None:
        return {"reported": None, "reproduction": None}
    reported = {"value": entry.value, "interval": entry.interval, "kind": entry.kind, "over": entry.over,
                "count": entry.count, "se": entry.se, "se_rule": entry.se_rule, "source": entry.source}
    if found is None:
        return {"reported": reported, "reproduction": {"margin": entry.margin, "verdict": None,
                                                       "note": cell.verdict_note}}
    plan = found.plan
    return {"reported": reported, "reproduction": {
        "margin": found.margin, "verdict": found.verdict, "note": found.note, "diff": found.difference,
        "interval": [found.low, found.high], "confidence": 1 - 2 * found.alpha, "se": found.se, "df": found.df,
        "p_equivalent": found.p_equivalent, "p_different": found.p_different,
        "parts": [{"name": p.name, "variance": p.variance, "df": p.df} for p in found.parts],
        "seeds_to_decide": plan.seeds if plan is not None else None, "cannot_decide": found.cannot_decide,
        "smallest_margin": plan.smallest_margin if plan is not None else None}}


# -- cost against the paper's ------------------------------------------------------------


def our_cost(cell) -> tuple[float, str]:
    """Our mean training cost per run: GPU-hours when a run used a GPU, else CPU core-hours."""
    gpu = cell.cost.get("train_gpu_hours", math.nan)
    if gpu > 0:
        return gpu, "GPU-h"
    return cell.cost.get("train_cpu_hours", math.nan), "CPU core-h"


def hardware(cell) -> str:
    names = sorted({str(row.get("device_name")) for row in cell.runs if row.get("device_name")})
    return "; ".join(names)


def cost_ratio(cell) -> float:
    """Ours / the paper's training GPU-hours per run (NaN when ours are CPU core-hours)."""
    hours, unit = our_cost(cell)
    return hours / cell.reported.cost["train_gpu_hours"] if unit == "GPU-h" else math.nan


def paper_cost_text(cell) -> str:
    cost = cell.reported.cost if cell.reported is not None else None
    return f"{cost['train_gpu_hours']:.3g} GPU-h ({cost['hardware']})" if cost else ""


def our_cost_text(cell) -> str:
    if cell.reported is None or not cell.reported.cost:
        return ""
    hours, unit = our_cost(cell)
    where = hardware(cell)
    return "" if missing(hours) else f"{hours:.3g} {unit}" + (f" ({where})" if where else "")


def ratio_cost_text(cell) -> str:
    if cell.reported is None or not cell.reported.cost:
        return ""
    ratio = cost_ratio(cell)
    return "n/a: ours are CPU core-hours" if missing(ratio) else f"×{ratio:.3g}"


def cost_fields(cell) -> dict:
    if cell.reported is None or not cell.reported.cost:
        return {}
    hours, unit = our_cost(cell)
    return {"reported_train_gpu_hours": cell.reported.cost["train_gpu_hours"],
            "reported_hardware": cell.reported.cost["hardware"], "our_train_hours": hours,
            "our_train_hours_unit": "GPU-hours" if unit == "GPU-h" else "CPU core-hours",
            "our_hardware": hardware(cell) or None, "cost_ratio": cost_ratio(cell)}


# -- the rest -------------------------------------------------------------------------------


def per_seed_json(cell) -> dict:
    return {"per_seed": [{"seed": s.seed, "value": s.value, "ci95": s.within.half_width if s.within else None,
                          "samples": s.within.n if s.within else None} for s in cell.seeds]}


def mean_fields(cell) -> dict:
    low, high, clipped = clip(cell.mean, cell.ci95, cell.metric.bounds)
    return {"value": cell.mean, "ci95": cell.ci95, "low": low, "high": high, "clipped": clipped or None,
            "interval": "95% t across seeds"}


def mean_json(cell) -> dict:
    low, high, clipped = clip(cell.mean, cell.ci95, cell.metric.bounds)
    return {"mean": cell.mean, "ci95": cell.ci95, "interval": "95% t across seeds (k-1 df)", "low": low, "high": high,
            "clipped_to_bounds": clipped}


def best_fields(cell) -> dict:
    return {"vs_best": cell.vs_best, "vs_best_p_holm": cell.best_p,
            "significantly_best": cell.metric.name in cell.bold} if cell.vs_best else {}


def _has_gpu(table: Table) -> bool:
    return any(cell.cost["gpu_hours"] > 0 for cell in table.rows)


def _unit(metric) -> str:
    return f" ({metric.unit})" if metric.unit else ""


def _cost(*names):
    return lambda cell: {name: cell.cost[name] for name in names}


def _bold(cell) -> bool:
    return cell.metric.name in cell.bold


def _has_reported(table: Table) -> bool:
    return table.has_reported


# The columns every family's table of reported cells shows, after its value column.
REPORTED_COLUMNS = [
    Column("reported", View("reported", reported_text, when=_has_reported),
           View("reported", lambda c, t: reported_text(c, t, latex=True), when=_has_reported),
           tidy=reported_fields, json=reported_json),
    Column("margin", View("δ", lambda c, t: f"{c.reported.margin:g}" if c.reported and c.reported.margin else "",
                          when=lambda t: len(t.margins - {None}) > 1)),
    Column("diff", View("ours − reported [90% CI]", lambda c, t: diff_text(c), when=_has_reported),
           View("ours - reported [90% CI]", lambda c, t: latex_escape(diff_text(c)), when=_has_reported)),
    Column("verdict", View("verdict", lambda c, t: verdict_text(c), when=_has_reported),
           View("verdict", lambda c, t: latex_escape(verdict_text(c)), when=_has_reported)),
    Column("to_decide", View("seeds to decide", lambda c, t: decide_text(c), when=lambda t: t.has_plans)),
    Column("paper_cost", View("paper's training cost", lambda c, t: paper_cost_text(c), when=lambda t: t.has_cost),
           tidy=cost_fields, json=cost_fields),
    Column("our_cost", View("ours per run", lambda c, t: our_cost_text(c), when=lambda t: t.has_cost)),
    Column("cost_ratio", View("ours / paper's", lambda c, t: ratio_cost_text(c), when=lambda t: t.has_cost)),
]

VS_BEST = Column("vs_best", View("vs best", lambda c, t: c.vs_best or "", when=lambda t: t.has_best),
                 View("vs best", lambda c, t: latex_escape(c.vs_best or ""), when=lambda t: t.has_best),
                 tidy=best_fields, json=best_fields)

# The generic report's cell tables (one per metric), in the order of the markdown table.
CELL_COLUMNS = [
    Column("seeds", View("seeds", lambda c, t: c.interval.n), View("seeds", lambda c, t: str(c.interval.n)),
           tidy=lambda c: {"seeds": c.interval.n}, json=lambda c: {"seeds": c.interval.n}),
    Column("samples", View(lambda t: f"{t.metric.samples_name}/seed", lambda c, t: c.samples, when=lambda t: t.has_samples),
           tidy=lambda c: {"samples": c.samples}),
    Column("per_seed", View(lambda t: f"per seed: {t.metric.name}{arrow(t.metric)} ± 95% CI ({t.metric.samples_name})",
                            lambda c, t: "; ".join(f"s{s.seed}: {pm(s.within.mean, s.within.half_width, bounds=t.metric.bounds)}"
                                                   if s.within else f"s{s.seed}: {s.value:.2f}" for s in c.seeds),
                            when=lambda t: t.has_samples),
           json=per_seed_json),
    Column("mean", View(lambda t: f"mean{arrow(t.metric)} ± 95% CI (seeds)", lambda c, t: pm(c.mean, c.ci95, bounds=t.metric.bounds)),
           View(lambda t: f"{t.metric.name}{_unit(t.metric)}{arrow(t.metric)}",
                lambda c, t: latex_pm(c.mean, c.ci95, bounds=t.metric.bounds), bold=_bold),
           tidy=mean_fields, json=mean_json),
    *REPORTED_COLUMNS,
    VS_BEST,
    Column("train_seconds", View("train/run", lambda c, t: seconds(c.cost["train_seconds"])),
           tidy=_cost("train_seconds"), json=_cost("train_seconds")),
    Column("eval_seconds", View("eval/run", lambda c, t: seconds(c.cost["eval_seconds"])),
           tidy=_cost("eval_seconds"), json=_cost("eval_seconds")),
    Column("gpu_hours", View("GPU-h (all seeds)", lambda c, t: f"{c.cost['gpu_hours']:.3f}", when=_has_gpu),
           tidy=_cost("gpu_hours"), json=_cost("gpu_hours")),
    Column("training_cost", tidy=_cost("train_gpu_hours", "train_cpu_hours"),
           json=_cost("train_gpu_hours", "train_cpu_hours")),
    Column("per_seed_interval", json=lambda c: {"per_seed_interval": f"95% t over {c.metric.samples_name} (ddof=1)"}
           if c.metric.samples else {}),
]

# The comparison tables (any family's): a row per ``Comparison``.
COMPARISON_COLUMNS = [
    Column("n", View("n", lambda r, t: count_text(r)), View("n", lambda r, t: latex_escape(count_text(r))),
           tidy=lambda r: {"n": r.n, "n_baseline": r.n_baseline}),
    Column("difference", View(lambda t: f"diff{arrow(t.metric)} ± 95% CI",
                              lambda r, t: difference_text(r.difference, r.ci95, difference_bounds(t.metric))),
           View("diff ± 95% CI", lambda r, t: latex_escape(difference_text(r.difference, r.ci95, difference_bounds(t.metric)))),
           tidy=lambda r: {"value": r.difference, "ci95": r.ci95, "interval": r.test, "baseline": r.baseline}),
    Column("wins", View("wins", lambda r, t: wins_text(r)), View("wins", lambda r, t: latex_escape(wins_text(r))),
           tidy=lambda r: {"wins": r.wins}),
    Column("p", View("p", lambda r, t: p_text(r.p_value)), View("p", lambda r, t: latex_escape(p_text(r.p_value))),
           tidy=lambda r: {"p_value": r.p_value}),
    Column("p_holm", View("p_holm", lambda r, t: p_text(r.p_holm)), View("p (Holm)", lambda r, t: latex_escape(p_text(r.p_holm))),
           tidy=lambda r: {"p_holm": r.p_holm}),
    Column("verdict", View("verdict", lambda r, t: r.verdict), View("verdict", lambda r, t: latex_escape(r.verdict)),
           tidy=lambda r: {"verdict": r.verdict}),
    Column("test", View("test", lambda r, t: r.test), View("test", lambda r, t: latex_escape(r.test))),
]


def shown(columns: list[Column], fmt: str, table: Table) -> list[View]:
    """The views of ``columns`` that a table of format ``fmt`` (markdown, latex) has."""
    views = [getattr(column, fmt) for column in columns]
    return [view for view in views if view is not None and view.when(table)]


def fields(columns: list[Column], fmt: str, row) -> dict:
    """The named values of ``row`` that ``columns`` give a format (tidy, json)."""
    values = {}
    for column in columns:
        part = getattr(column, fmt)
        if part is not None:
            values.update(part(row))
    return values
