"""Columns, each declared once: what it shows of a cell (or of a comparison) in every
format that has it. A ``Column`` names its markdown and LaTeX views (heading, text,
when the table has it, and for LaTeX which value makes the best of a group bold) and
the named values it adds to a tidy CSV row and to a JSON cell. Renderers take the
columns they show from these lists; a new column is one more entry.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from harness.report.paired import count_text
from harness.report.shared import (
    AGREES,
    arrow,
    best_mask,
    difference_text,
    latex_escape,
    latex_pm,
    p_text,
    pm,
    seconds,
)


@dataclass
class Table:
    """One table's context: its metric, its cells (or comparisons), the keys that name a
    row and those that group rows (bold per group, a rule between groups)."""

    metric: object
    rows: list
    keys: list
    by: list = field(default_factory=list)

    @cached_property
    def sources(self) -> dict:
        """Reported source -> its footnote number, in order of first use."""
        marks = {}
        for cell in self.rows:
            if cell.reported is not None:
                marks.setdefault(cell.reported.source, len(marks) + 1)
        return marks

    @property
    def has_samples(self) -> bool:
        return bool(self.metric.samples)

    @cached_property
    def has_reported(self) -> bool:
        return any(cell.reported is not None for cell in self.rows)


def always(_table: Table) -> bool:
    return True


@dataclass(frozen=True)
class View:
    """How one table format shows a column."""

    header: str | Callable[[Table], str]
    text: Callable  # (row, table) -> the cell's text (markdown: any value; LaTeX: LaTeX)
    when: Callable[[Table], bool] = always
    best: Callable | None = None  # row -> the value whose best (by ``direction``) of each group is bold
    direction: Callable[[Table], str] = lambda table: table.metric.direction

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


def _reported(cell, table: Table, latex: bool = False) -> str:
    entry = cell.reported
    if entry is None:
        return ""
    kind = f" ({entry.kind})" if isinstance(entry.kind, str) else ""
    if latex:
        return latex_pm(entry.value, entry.interval) + kind
    return f"{pm(entry.value, entry.interval)}{kind} [{table.sources[entry.source]}]"


def _reported_fields(cell) -> dict:
    entry = cell.reported
    if entry is None:
        return {}
    return {"reported": entry.value, "reported_interval": entry.interval, "reported_kind": entry.kind,
            "reported_se": entry.se, "source": entry.source, "diff": cell.agreement.difference,
            "bound": cell.agreement.bound, "agrees": cell.agrees}


def _reported_json(cell) -> dict:
    entry, found = cell.reported, cell.agreement
    if entry is None:
        return {"reported": None, "agreement": None}
    return {"reported": {"value": entry.value, "interval": entry.interval, "kind": entry.kind, "se": entry.se,
                         "se_rule": entry.se_rule, "source": entry.source},
            "agreement": {"diff": found.difference, "se": found.se, "df": found.df, "quantile": found.quantile,
                          "bound": found.bound, "agrees": cell.agrees}}


def _per_seed_json(cell) -> dict:
    return {"per_seed": [{"seed": s.seed, "value": s.value, "ci95": s.within.half_width if s.within else None,
                          "samples": s.within.n if s.within else None} for s in cell.seeds]}


def _has_gpu(table: Table) -> bool:
    return any(cell.cost["gpu_hours"] > 0 for cell in table.rows)


def _unit(metric) -> str:
    return f" ({metric.unit})" if metric.unit else ""


def _cost(*names):
    return lambda cell: {name: cell.cost[name] for name in names}


# The generic report's cell tables (one per metric), in the order of the markdown table.
CELL_COLUMNS = [
    Column("seeds", View("seeds", lambda c, t: c.interval.n), View("seeds", lambda c, t: str(c.interval.n)),
           tidy=lambda c: {"seeds": c.interval.n}, json=lambda c: {"seeds": c.interval.n}),
    Column("samples", View(lambda t: f"{t.metric.samples_name}/seed", lambda c, t: c.samples, when=lambda t: t.has_samples),
           tidy=lambda c: {"samples": c.samples}),
    Column("per_seed", View(lambda t: f"per seed: {t.metric.name}{arrow(t.metric)} ± 95% CI ({t.metric.samples_name})",
                            lambda c, t: "; ".join(f"s{s.seed}: {pm(s.within.mean, s.within.half_width)}" for s in c.seeds),
                            when=lambda t: t.has_samples),
           json=_per_seed_json),
    Column("mean", View(lambda t: f"mean{arrow(t.metric)} ± 95% CI (seeds)", lambda c, t: pm(c.mean, c.ci95)),
           View(lambda t: f"{t.metric.name}{_unit(t.metric)}{arrow(t.metric)}", lambda c, t: latex_pm(c.mean, c.ci95),
                best=lambda c: c.mean),
           tidy=lambda c: {"value": c.mean, "ci95": c.ci95, "interval": "95% t across seeds"},
           json=lambda c: {"mean": c.mean, "ci95": c.ci95, "interval": "95% t across seeds (k-1 df)"}),
    Column("reported", View("reported", _reported), View("reported", lambda c, t: _reported(c, t, latex=True),
                                                          when=lambda t: t.has_reported),
           tidy=_reported_fields, json=_reported_json),
    Column("diff", View("diff", lambda c, t: f"{c.agreement.difference:+.2f}" if c.reported else "")),
    Column("agrees", View("agrees", lambda c, t: AGREES[c.agrees] if c.reported else ""),
           View("agrees", lambda c, t: AGREES[c.agrees] if c.reported else "", when=lambda t: t.has_reported)),
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
    Column("difference", View(lambda t: f"diff{arrow(t.metric)} ± 95% CI", lambda r, t: difference_text(r.difference, r.ci95)),
           View("diff ± 95% CI", lambda r, t: latex_escape(difference_text(r.difference, r.ci95))),
           tidy=lambda r: {"value": r.difference, "ci95": r.ci95, "interval": r.test, "baseline": r.baseline}),
    Column("p", View("p", lambda r, t: p_text(r.p_value)), View("p", lambda r, t: latex_escape(p_text(r.p_value))),
           tidy=lambda r: {"p_value": r.p_value}),
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


def best_marks(view: View, table: Table, groups) -> set[int]:
    """The ids of the rows whose ``view.best`` value is the best of their group (ties all)."""
    marks = set()
    for _, group in groups:
        for row, best in zip(group, best_mask([view.best(row) for row in group], view.direction(table))):
            if best:
                marks.add(id(row))
    return marks
