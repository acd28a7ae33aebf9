"""`harness compare`: how each cell moved between two sets of results, A and B.

The two sides are two results folders (``results/<suite>``, or results roots with
``--suite``), or one suite's folder at two git revisions (``--rev A --rev B``: the
committed records, read with ``git archive`` into a temp folder).

A cell is the runs that differ only by seed. Cells are matched across the sides by
their config values without the seed (keys at their default left out, so a record
written before a key existed matches one that has it at its default), never by run id:
a component's version bump changes run ids, not cells. With a suite file, only its cells
count, named by its columns, for its family's headline metric; without one, every
finished record counts, by its own ``spec`` and ``family``.

Per cell, B - A of the metric's mean over seeds (``harness.comparisons.compare_cells``):
"identical" when both sides hold the same seeds with bit-identical values and samples;
paired over the seeds both sides ran (at least 2), Welch otherwise; "moved" only beyond a
margin δ (``--margin``, else the suite's report margin; 0 without either), with the false
discovery rate over the cells held by Benjamini-Hochberg; "unchanged" when the 90%
interval lies inside (-δ, δ); "inconclusive" otherwise; one seed a side: no verdict.
Per-unit samples are not added: within a cell both sides share the config, hence the test
units, whose sampling error B - A shares. No torch here.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from harness import HarnessError, families
from harness.comparisons import (
    IDENTICAL,
    MOVED,
    NO_VERDICT,
    UNCHANGED,
    UNDECIDED,
    CellPair,
    compare_cells,
)
from harness.record import RECORD, RUN_ID, family_of
from harness.report.shared import difference_bounds, interval_text, p_text, pm
from harness.spec import canonical_json, expand, identity_config
from harness.stats import t_interval
from harness.store import gc_paused, records_in
from harness.tost import two_sided_interval

ALPHA = 0.05


@dataclass
class Run:
    run_id: str
    family: str
    config: dict
    value: float
    samples: list | None


@dataclass
class Side:
    label: str  # what the user named: a folder, or a revision
    folder: Path
    runs: list = field(default_factory=list)
    unusable: list = field(default_factory=list)  # one line per record that could not be used


@dataclass
class Cell:
    key: str
    family: str
    values: dict  # the config without the seed, for the table
    a: list = field(default_factory=list)
    b: list = field(default_factory=list)


# ---------------------------------------------------------------- the two sides


def suite_folder(path: Path, suite_name: str | None) -> Path:
    """``path`` itself when it holds run folders, else its ``<suite>`` folder (a results root)."""
    if not path.is_dir():
        raise HarnessError(f"{path}: no such results folder")
    if suite_name and (path / suite_name).is_dir():
        return path / suite_name
    if _has_runs(path):
        return path
    suites = sorted(child.name for child in path.iterdir() if child.is_dir() and _has_runs(child))
    if suite_name:
        raise HarnessError(f"{path}: has no run folders and no {suite_name}/ folder")
    if len(suites) == 1:
        return path / suites[0]
    if suites:
        raise HarnessError(f"{path}: a results root with several suites ({', '.join(suites)}): give --suite")
    raise HarnessError(f"{path}: has no run folders (results/<suite>/<run_id>/record.json)")


def _has_runs(folder: Path) -> bool:
    return any(RUN_ID.match(child.name) and (child / RECORD).is_file() for child in folder.iterdir())


def revision_folder(folder: Path, revision: str, into: Path) -> Path:
    """``folder`` as committed at ``revision`` (of the git repository holding it), extracted
    into ``into``; returns the extracted folder."""
    folder = Path(os.path.abspath(folder))
    existing = next(p for p in (folder, *folder.parents) if p.is_dir())
    top = Path(_git(["rev-parse", "--show-toplevel"], existing, f"{folder}: not inside a git repository").strip())
    try:
        relative = folder.resolve().relative_to(top.resolve()) if folder.exists() else folder.relative_to(top)
    except ValueError:
        raise HarnessError(f"{folder}: not inside the git repository {top}") from None
    _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], top, f"--rev {revision}: not a revision of {top}")
    into.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(["git", "archive", "--format=tar", revision, "--", relative.as_posix()], cwd=top,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            archive.extractall(into, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except tarfile.ReadError:
        pass  # nothing came: git says why below
    finally:
        process.stdout.close()
        error = process.stderr.read().decode(errors="replace").strip()
        process.wait()
    if process.returncode != 0 or not (into / relative).is_dir():
        why = error.splitlines()[-1] if error else "no such folder there"
        raise HarnessError(f"--rev {revision}: {relative.as_posix()} is not in that revision ({why})")
    return into / relative


def _git(args: list[str], cwd: Path, problem: str) -> str:
    if shutil.which("git") is None:
        raise HarnessError("--rev needs git, which is not installed")
    done = subprocess.run(["git", *args], check=False, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise HarnessError(problem)
    return done.stdout


def read_side(label: str, folder: Path, family_name: str | None, metric_name: str | None) -> Side:
    """Every finished record of the folder that names its folder and holds the metric."""
    side = Side(label, folder)
    with gc_paused():
        for run_id, path, record, problem in records_in(folder):
            run, problem = (None, problem) if problem else _run(run_id, record, family_name, metric_name)
            if run is not None:
                side.runs.append(run)
            elif problem:
                side.unusable.append(f"{path}: {problem}")
    return side


def _run(run_id: str, record: dict, family_name: str | None, metric_name: str | None) -> tuple[Run | None, str | None]:
    if record.get("status") != "done":
        return None, None  # failed runs have no value to compare: not a problem
    name = family_name or record.get("family") or families.DEFAULT
    if family_name and family_of(record) != family_name:
        return None, f"a record of family {record.get('family')!r}, not {family_name!r}"
    family = families.get(name)
    metric = metric_of(family, metric_name)
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    value = metrics.get(metric.name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"no finite metrics.{metric.name}"
    samples = metrics.get(metric.samples) if metric.samples else None
    return Run(run_id, name, record["spec"], float(value), samples if isinstance(samples, list) else None), None


def metric_of(family, name: str | None):
    if name is None:
        return family.headline
    if name not in [m.name for m in family.metrics]:
        known = ", ".join(m.name for m in family.metrics)
        raise HarnessError(f"--metric {name}: the {family.name} family has no such metric (it has: {known})")
    return family.metric(name)


# ---------------------------------------------------------------- cells


def cell_values(family, config: dict) -> dict:
    """The config that names a run's cell: its identity (no keys at default), no seed."""
    return {key: value for key, value in identity_config(family, config).items() if key != "seed"}


def cells_of(a: Side, b: Side, suite=None) -> tuple[list[Cell], int]:
    """The cells of both sides (suite order, else sorted), and how many runs fell outside the suite."""
    planned = None
    if suite is not None:
        family = families.get(suite.family)
        planned = {}
        for spec in expand(suite):
            values = cell_values(family, spec.config)
            planned.setdefault(canonical_json([suite.family, values]), values)
    cells: dict[str, Cell] = {}
    if planned is not None:
        cells = {key: Cell(key, suite.family, values) for key, values in planned.items()}
    outside = 0
    for side, runs_of in ((a, lambda cell: cell.a), (b, lambda cell: cell.b)):
        for run in side.runs:
            values = cell_values(families.get(run.family), run.config)
            key = canonical_json([run.family, values])
            if planned is not None and key not in planned:
                outside += 1
                continue
            runs_of(cells.setdefault(key, Cell(key, run.family, values))).append(run)
    found = [cell for cell in cells.values() if cell.a or cell.b]
    if planned is None:
        found.sort(key=lambda cell: cell.key)
    return found, outside


def columns_of(cells: list[Cell], suite=None) -> list[str]:
    """The suite's cell columns; without a suite, the plan columns and every key that varies."""
    if suite is not None:
        fixed = [k for k in families.get(suite.family).plan_columns if k != "seed"]
        return fixed + [axis for axis in suite.axes if axis not in fixed and axis != "seed"]
    names = []
    for cell in cells:
        names += [k for k in families.get(cell.family).plan_columns if k != "seed" and k not in names]
    keys = sorted({k for cell in cells for k in cell.values})
    varying = [k for k in keys if k not in names and len({canonical_json(c.values.get(k)) for c in cells}) > 1]
    return names + varying


def full_config(family, values: dict) -> dict:
    """Identity values filled with the family's defaults, to show every column."""
    from harness.keys import REQUIRED

    return {**{name: key.default for name, key in family.keys.items() if key.default is not REQUIRED}, **values}


# ---------------------------------------------------------------- differences


@dataclass
class Change:
    cell: Cell
    metric: object
    verdict: str  # identical, moved, unchanged, inconclusive, no verdict (harness.comparisons.compare_cells)
    difference: object  # harness.stats.Difference of B - A; None when identical
    low: float  # its 90% interval (the one "unchanged" reads)
    high: float
    p_moved: float  # p of |B - A| <= margin
    q_moved: float  # Benjamini-Hochberg over the cells
    p_unchanged: float  # TOST p of |B - A| >= margin

    @property
    def moved(self) -> bool:
        return self.verdict == MOVED

    @property
    def better(self) -> bool | None:
        """For a moved cell: whether B is better than A by the metric's direction."""
        if not self.moved:
            return None
        return (self.difference.difference > 0) == (self.metric.direction == "higher")


def by_seed(runs: list) -> dict:
    """{seed: value}; a seed a side ran twice (two records of one config) keeps both, unpaired."""
    seeds = [run.config.get("seed") for run in runs]
    return {(seed if seeds.count(seed) == 1 else f"{seed}/{run.run_id}"): run.value for seed, run in zip(seeds, runs)}


def identical(cell: Cell) -> bool:
    """The two sides hold the same seeds with bit-identical values and per-unit samples."""
    def content(runs):
        return sorted((json.dumps(run.config.get("seed")), repr(run.value), repr(run.samples)) for run in runs)

    return content(cell.a) == content(cell.b)


def changes_of(cells: list[Cell], metrics: dict, margins: dict) -> list[Change]:
    """The compare rule on every cell on both sides (B - A), the false discovery rate held
    over them all (``harness.comparisons.compare_cells``)."""
    pairs = [CellPair(by_seed(cell.a), by_seed(cell.b), margins[cell.family], identical(cell)) for cell in cells]
    found = compare_cells(pairs, paired=True)
    changes = []
    for cell, change in zip(cells, found):
        d = change.difference
        low, high = (two_sided_interval(d.difference, d.se, d.df, ALPHA) if d is not None else (math.nan, math.nan))
        changes.append(Change(cell, metrics[cell.family], change.verdict, d, float(low), float(high), change.p_moved,
                              change.q_moved, change.p_unchanged))
    return changes


@dataclass
class Comparison:
    a: Side
    b: Side
    changes: list  # cells on both sides
    only_a: list  # cells with runs in A only
    only_b: list
    outside: int  # runs of cells the suite does not have
    metrics: dict  # family -> metric
    margins: dict  # family -> the margin δ (0: none given)
    margin_source: str  # "--margin", "the suite's report margin" or "" (none)

    @property
    def moved(self) -> list:
        return [change for change in self.changes if change.moved]


def margins_of(metrics: dict, suite, given: float | None) -> tuple[dict, str]:
    """δ per family: ``--margin``, else the suite's report margin for the metric, else 0."""
    if given is not None:
        return dict.fromkeys(metrics, float(given)), "--margin"
    if suite is not None:
        margin = (suite.report_options.get("margin") or {}).get(metrics[suite.family].name)
        if margin is not None:
            return dict.fromkeys(metrics, float(margin)), "the suite's report margin"
    return dict.fromkeys(metrics, 0.0), ""


def compare(a: Side, b: Side, suite=None, metric_name: str | None = None, margin: float | None = None) -> Comparison:
    """The changes of every cell on both sides; no cell in common is an error (a typo'd
    folder or suite, not a clean bill of health)."""
    cells, outside = cells_of(a, b, suite)
    metrics = {cell.family: metric_of(families.get(cell.family), metric_name) for cell in cells}
    if suite is not None:
        metrics.setdefault(suite.family, metric_of(families.get(suite.family), metric_name))
    common = [cell for cell in cells if cell.a and cell.b]
    if not common:
        only_a, only_b = sum(bool(c.a) for c in cells), sum(bool(c.b) for c in cells)
        raise HarnessError(f"{a.label} and {b.label} have no cell in common ({only_a} cells only in A, {only_b} only "
                           f"in B, of {len(a.runs)} and {len(b.runs)} finished runs): nothing to compare")
    margins, source = margins_of(metrics, suite, margin)
    return Comparison(a, b, changes_of(common, metrics, margins), [c for c in cells if c.a and not c.b],
                      [c for c in cells if c.b and not c.a], outside, metrics, margins, source)


# ---------------------------------------------------------------- output


def _side_text(runs: list, metric) -> str:
    interval = t_interval([r.value for r in runs])
    return pm(interval.mean, interval.half_width, bounds=metric.bounds)


def _difference_text(change: Change) -> str:
    d = change.difference
    if d is None:
        return "+0.00"
    if math.isnan(change.low):
        return f"{d.difference:+.2f}"
    return f"{d.difference:+.2f} {interval_text(change.low, change.high, bounds=difference_bounds(change.metric))}"


def _verdict_text(change: Change) -> str:
    if change.moved:
        return f"**moved** ({'better' if change.better else 'worse'})"
    return change.verdict


def _cell_text(cell: Cell, columns: list[str]) -> str:
    shown = full_config(families.get(cell.family), cell.values)
    return ", ".join(f"{k}={shown.get(k)}" for k in columns)


def markdown(result: Comparison, suite=None) -> str:
    columns = columns_of([change.cell for change in result.changes] + result.only_a + result.only_b, suite)
    lines = [f"# compare: {result.a.label} -> {result.b.label}", ""]
    for family, metric in result.metrics.items():
        unit = f" in {metric.unit}" if metric.unit else ""
        lines.append(f"Metric: {metric.name}{unit} ({family}; {'lower' if metric.lower_is_better else 'higher'} is better).")
    moved = result.moved
    better = sum(bool(change.better) for change in moved)
    counts = {word: sum(change.verdict == word for change in result.changes)
              for word in (IDENTICAL, UNCHANGED, UNDECIDED, NO_VERDICT)}
    lines += [f"A: {result.a.folder} ({len(result.a.runs)} finished runs); B: {result.b.folder} ({len(result.b.runs)}).",
              f"{len(result.changes)} cells on both sides: {len(moved)} moved ({better} better, {len(moved) - better} "
              f"worse), " + ", ".join(f"{n} {word}" for word, n in counts.items())
              + f"; {len(result.only_a)} only in A, {len(result.only_b)} only in B.", ""]
    rows = []
    for change in result.changes:
        shown = full_config(families.get(change.cell.family), change.cell.values)
        rows.append([shown.get(k) for k in columns] + [
            len(change.cell.a), len(change.cell.b), _side_text(change.cell.a, change.metric),
            _side_text(change.cell.b, change.metric), _difference_text(change), p_text(change.q_moved),
            _verdict_text(change), change.difference.test if change.difference is not None else "records identical"])
    headers = columns + ["seeds A", "seeds B", "A (mean ± 95% CI)", "B (mean ± 95% CI)", "B − A [90% CI]",
                         "q (moved, BH)", "verdict", "test"]
    lines += [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    for title, cells, side in (("Only in A", result.only_a, "a"), ("Only in B", result.only_b, "b")):
        if cells:
            lines += [f"{title}:", ""] + [f"- {_cell_text(c, columns)} ({len(getattr(c, side))} runs)" for c in cells] + [""]
    lines += notes(result)
    return "\n".join(lines).rstrip() + "\n"


def notes(result: Comparison) -> list[str]:
    margins = sorted(set(result.margins.values()))
    delta = " / ".join(f"{m:g}" for m in margins)
    lines = [("A cell: the runs that differ only by seed, matched by their config values without the seed. B − A: the "
              "difference of the means over seeds: the paired t over the seeds both sides ran when at least two are "
              "shared, else Welch (df at the 80% upper confidence limits of the variances); shown with its 90% "
              "interval. Per-unit samples are not added: both sides of a cell have the same config, so the same "
              "test units, whose sampling error the difference shares."),
             (f"Verdicts, δ = {delta} ({result.margin_source or 'no margin given'}): identical: the same seeds with "
              "bit-identical values and per-unit samples; moved: |B − A| > δ shown with the false discovery rate over "
              "the cells held at 5% (Benjamini-Hochberg over the cells' p of |B − A| ≤ δ: column q); unchanged: the "
              "90% interval lies inside (−δ, +δ) (two one-sided tests at 5%); inconclusive otherwise; no verdict with "
              "one seed a side (its interval would hold only the test units' noise).")]
    if not result.margin_source:
        lines.append("No margin: neither --margin nor the suite's `report: {margin: ...}` gives δ, so it is 0: moved "
                     "is any difference shown at a 5% false discovery rate, and no cell can be shown unchanged. Give "
                     "--margin δ (in the metric's units), the change that matters.")
    if result.outside:
        lines.append(f"{result.outside} finished runs belong to no cell of the suite and were left out.")
    for side in (result.a, result.b):
        if side.unusable:
            shown = "; ".join(side.unusable[:3]) + (f"; ... ({len(side.unusable) - 3} more)" if len(side.unusable) > 3 else "")
            lines.append(f"Left out of {side.label}: {shown}.")
    return lines


def as_json(result: Comparison) -> str:
    def number(value):
        return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value

    def side_of(runs):
        interval = t_interval([r.value for r in runs])
        return {"runs": [{"run_id": r.run_id, "seed": r.config.get("seed"), "value": r.value} for r in runs],
                "mean": number(interval.mean), "ci95": number(interval.half_width)}

    def cell_of(cell):
        return {"family": cell.family, "config": cell.values}

    changes = []
    for change in result.changes:
        d = change.difference
        changes.append({**cell_of(change.cell), "metric": change.metric.name, "a": side_of(change.cell.a),
                        "b": side_of(change.cell.b), "difference": number(d.difference) if d else 0.0,
                        "low": number(change.low), "high": number(change.high), "interval": "90%",
                        "df": number(d.df) if d else None, "p_moved": number(change.p_moved),
                        "q_moved": number(change.q_moved), "p_unchanged": number(change.p_unchanged),
                        "test": d.test if d else "records identical", "margin": result.margins[change.cell.family],
                        "verdict": change.verdict, "moved": change.moved, "better": change.better})
    document = {
        "a": {"label": result.a.label, "folder": str(result.a.folder), "runs": len(result.a.runs), "unusable": result.a.unusable},
        "b": {"label": result.b.label, "folder": str(result.b.folder), "runs": len(result.b.runs), "unusable": result.b.unusable},
        "metrics": {family: metric.name for family, metric in result.metrics.items()},
        "margins": result.margins, "margin_source": result.margin_source or None,
        "moved": len(result.moved), "cells": changes,
        "only_a": [{**cell_of(c), "runs": len(c.a)} for c in result.only_a],
        "only_b": [{**cell_of(c), "runs": len(c.b)} for c in result.only_b],
        "outside_suite": result.outside,
        "notes": notes(result),
    }
    return json.dumps(document, indent=1, allow_nan=False)
