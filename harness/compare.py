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

Per cell: B - A of the metric's mean over seeds with its 95% interval, Welch over the
seeds' values (each side needs 2 seeds). Per-unit samples (per-episode accuracies) are
then not added: within a cell both sides share the config, hence the test units, whose
sampling error B - A shares. With one seed on each side, the interval is over those units
when both runs have them (paired when they share the seed, Welch otherwise). A cell moved
when its interval excludes 0. No torch here.
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
from harness.spec import canonical_json, expand, identity_config
from harness.stats import compare_by_sample, t_interval, verdict, welch_difference
from harness.store import RECORD, RUN_ID, gc_paused


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
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise HarnessError(problem)
    return done.stdout


def read_side(label: str, folder: Path, family_name: str | None, metric_name: str | None) -> Side:
    """Every finished record of the folder that names its folder and holds the metric."""
    side = Side(label, folder)
    with gc_paused():
        for entry in sorted(folder.iterdir()):
            if not (RUN_ID.match(entry.name) and (entry / RECORD).is_file()):
                continue
            run, problem = _run(entry, family_name, metric_name)
            if run is not None:
                side.runs.append(run)
            elif problem:
                side.unusable.append(f"{entry / RECORD}: {problem}")
    return side


def _run(folder: Path, family_name: str | None, metric_name: str | None) -> tuple[Run | None, str | None]:
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, f"unreadable ({type(error).__name__})"
    if not isinstance(record, dict) or record.get("run_id") != folder.name or not isinstance(record.get("spec"), dict):
        return None, "not a record of this folder"
    if record.get("status") != "done":
        return None, None  # failed runs have no value to compare: not a problem
    name = family_name or record.get("family") or families.DEFAULT
    if family_name and record.get("family", families.DEFAULT) != family_name:
        return None, f"a record of family {record.get('family')!r}, not {family_name!r}"
    family = families.get(name)
    metric = metric_of(family, metric_name)
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    value = metrics.get(metric.name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"no finite metrics.{metric.name}"
    samples = metrics.get(metric.samples) if metric.samples else None
    return Run(folder.name, name, record["spec"], float(value), samples if isinstance(samples, list) else None), None


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
    difference: object  # harness.stats.Difference
    verdict: str  # better / worse / indistinguishable / n/a
    how: str

    @property
    def moved(self) -> bool:
        return self.verdict in ("better", "worse")


def change_of(cell: Cell, metric) -> Change:
    a, b = [run.value for run in cell.a], [run.value for run in cell.b]
    with_samples = metric.samples and all(run.samples is not None for run in cell.a + cell.b)
    if len(a) >= 2 and len(b) >= 2:
        difference = welch_difference(b, a, test="Welch over seeds")
        how = difference.test + (f" ({metric.samples_name} shared by both sides: not added)" if with_samples else "")
    elif with_samples and len(a) == 1 and len(b) == 1:
        seed_a, seed_b = cell.a[0].config.get("seed"), cell.b[0].config.get("seed")
        difference = compare_by_sample({seed_b: cell.b[0].samples}, {seed_a: cell.a[0].samples}, shared=True,
                                       unit=metric.samples_name)
        how = difference.test
    else:
        difference = welch_difference(b, a, test="Welch over seeds")
        how = "no interval: fewer than 2 seeds on a side" + (f" and no {metric.samples_name}" if not with_samples else "")
    return Change(cell, metric, difference, verdict(difference, metric.direction), how)


@dataclass
class Comparison:
    a: Side
    b: Side
    changes: list  # cells on both sides
    only_a: list  # cells with runs in A only
    only_b: list
    outside: int  # runs of cells the suite does not have
    metrics: dict  # family -> metric

    @property
    def moved(self) -> list:
        return [change for change in self.changes if change.moved]


def compare(a: Side, b: Side, suite=None, metric_name: str | None = None) -> Comparison:
    cells, outside = cells_of(a, b, suite)
    metrics = {cell.family: metric_of(families.get(cell.family), metric_name) for cell in cells}
    if suite is not None:
        metrics.setdefault(suite.family, metric_of(families.get(suite.family), metric_name))
    changes = [change_of(cell, metrics[cell.family]) for cell in cells if cell.a and cell.b]
    return Comparison(a, b, changes, [c for c in cells if c.a and not c.b], [c for c in cells if c.b and not c.a],
                      outside, metrics)


# ---------------------------------------------------------------- output


def _pm(interval) -> str:
    if math.isnan(interval.mean):
        return ""
    return f"{interval.mean:.2f}" if math.isnan(interval.half_width) else f"{interval.mean:.2f} ± {interval.half_width:.2f}"


def _difference_text(difference) -> str:
    if math.isnan(difference.half_width):
        return f"{difference.difference:+.2f}"
    return f"{difference.difference:+.2f} [{difference.low:+.2f}, {difference.high:+.2f}]"


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
    better = sum(change.verdict == "better" for change in moved)
    lines += [f"A: {result.a.folder} ({len(result.a.runs)} finished runs); B: {result.b.folder} ({len(result.b.runs)}).",
              f"{len(result.changes)} cells on both sides: {len(moved)} moved ({better} better, {len(moved) - better} worse); "
              f"{len(result.only_a)} only in A, {len(result.only_b)} only in B.", ""]
    if result.changes:
        rows = []
        for change in result.changes:
            shown = full_config(families.get(change.cell.family), change.cell.values)
            a_values, b_values = [r.value for r in change.cell.a], [r.value for r in change.cell.b]
            rows.append([shown.get(k) for k in columns] + [
                len(a_values), len(b_values), _pm(t_interval(a_values)), _pm(t_interval(b_values)),
                _difference_text(change.difference), {"better": "**better**", "worse": "**worse**"}.get(change.verdict, change.verdict),
                change.how])
        headers = columns + ["seeds A", "seeds B", "A (mean ± 95% CI)", "B (mean ± 95% CI)", "B − A [95% CI]", "moved", "interval"]
        lines += [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    for title, cells, side in (("Only in A", result.only_a, "a"), ("Only in B", result.only_b, "b")):
        if cells:
            lines += [f"{title}:", ""] + [f"- {_cell_text(c, columns)} ({len(getattr(c, side))} runs)" for c in cells] + [""]
    lines += notes(result)
    return "\n".join(lines).rstrip() + "\n"


def notes(result: Comparison) -> list[str]:
    lines = ["A cell: the runs that differ only by seed, matched by their config values without the seed. "
             "B − A: the difference of the means over seeds; its 95% interval is Welch's over the seeds' values "
             "(Welch-Satterthwaite degrees of freedom). Per-unit samples are not added to it: both sides of a cell have "
             "the same config, so the same test units, whose sampling error the difference shares. With one seed a side, "
             "the interval is over the two runs' per-unit samples (paired when they share the seed). "
             "A cell moved (better / worse by the metric's direction) when its interval excludes 0; "
             "indistinguishable when it contains 0; n/a without an interval."]
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
                        "b": side_of(change.cell.b), "difference": number(d.difference), "ci95": number(d.half_width),
                        "low": number(d.low), "high": number(d.high), "df": number(d.df), "p_value": number(d.p_value),
                        "interval": change.how, "verdict": change.verdict, "moved": change.moved})
    document = {
        "a": {"label": result.a.label, "folder": str(result.a.folder), "runs": len(result.a.runs), "unusable": result.a.unusable},
        "b": {"label": result.b.label, "folder": str(result.b.folder), "runs": len(result.b.runs), "unusable": result.b.unusable},
        "metrics": {family: metric.name for family, metric in result.metrics.items()},
        "moved": len(result.moved), "cells": changes,
        "only_a": [{**cell_of(c), "runs": len(c.a)} for c in result.only_a],
        "only_b": [{**cell_of(c), "runs": len(c.b)} for c in result.only_b],
        "outside_suite": result.outside,
    }
    return json.dumps(document, indent=1, allow_nan=False)
