"""`harness plan --estimate`: the expected wall-clock and GPU-hours of the pending runs,
before a launch, from the wall-clock (``timing.total_seconds``) of finished runs.

The pending runs are grouped by method, dataset and backbone (the keys of those the
family has). A group's runs are expected to take the mean wall-clock of the finished
runs (of this suite and of every other suite in the results folder) with the same
method, dataset and backbone; when there are none, of the same method and dataset, then
of the same method, and the estimate says so. GPU-hours: the GPUs each run asks for
(``suite.resources_for(config).gpus``) x its expected wall-clock. No torch here; an
estimate assumes the finished runs' cost per run (it does not scale with ``steps``): the
keys on which they differ from the pending runs are named beside it (a budget of another
size shows as ``steps (9000 vs 2000000)``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from harness import families
from harness.keys import REQUIRED
from harness.record import family_of
from harness.store import gc_paused, records_in

GROUP_KEYS = ("method", "dataset", "backbone")


@dataclass
class Finished:
    suite: str
    run_id: str
    config: dict  # with the family's defaults filled in
    seconds: float


@dataclass
class Group:
    values: dict  # key -> value: method, dataset, backbone
    specs: list
    gpus: list  # GPUs each pending run asks for
    matched: tuple = ()  # the keys the finished runs share with the group; () when none matched
    fallback: bool = False  # matched on fewer keys than the group has
    basis: list = field(default_factory=list)  # the Finished runs behind the estimate

    @property
    def seconds_per_run(self) -> float | None:
        return sum(run.seconds for run in self.basis) / len(self.basis) if self.basis else None

    @property
    def seconds(self) -> float | None:
        per_run = self.seconds_per_run
        return None if per_run is None else per_run * len(self.specs)

    @property
    def gpu_hours(self) -> float | None:
        per_run = self.seconds_per_run
        return None if per_run is None else sum(self.gpus) * per_run / 3600


def with_defaults(family, config: dict) -> dict:
    return {**{name: key.default for name, key in family.keys.items() if key.default is not REQUIRED}, **config}


def total_seconds(record: dict) -> float | None:
    seconds = (record.get("timing") or {}).get("total_seconds") if isinstance(record.get("timing"), dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        return None
    return float(seconds)


def finished_runs(suite, specs, scan, root: Path) -> list[Finished]:
    """This suite's done runs (from the scan), then every other suite's done records of the family."""
    family = families.get(suite.family)
    found = []
    for spec in specs:
        state = scan.states[spec.run_id]
        seconds = total_seconds(state.record) if state.status == "done" else None
        if seconds is not None:
            found.append(Finished(suite.name, spec.run_id, with_defaults(family, spec.config), seconds))
    if root.is_dir():
        with gc_paused():
            for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != suite.name):
                found += _finished_in(folder, family)
    return found


def _finished_in(folder: Path, family) -> list[Finished]:
    found = []
    for run_id, _, record, problem in records_in(folder):
        if problem or record.get("status") != "done" or family_of(record) != family.name:
            continue
        seconds = total_seconds(record)
        if seconds is not None:
            found.append(Finished(folder.name, run_id, with_defaults(family, record["spec"]), seconds))
    return found


def estimate(suite, pending, finished: list[Finished]) -> list[Group]:
    """The pending runs' groups, each with its estimate and what it is based on."""
    family = families.get(suite.family)
    keys = [key for key in GROUP_KEYS if key in family.keys]
    groups: dict[tuple, Group] = {}
    for spec in pending:
        values = tuple(spec.config.get(key) for key in keys)
        group = groups.setdefault(values, Group(dict(zip(keys, values)), [], []))
        group.specs.append(spec)
        group.gpus.append(suite.resources_for(spec.config).gpus)
    for group in groups.values():
        for level in range(len(keys)):
            used = keys[:len(keys) - level]
            basis = [run for run in finished if all(run.config.get(k) == group.values[k] for k in used)]
            if basis:
                group.matched, group.fallback, group.basis = tuple(used), level > 0, basis
                break
    return list(groups.values())


def seconds_text(value: float | None) -> str:
    if value is None:
        return ""
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.2f} h"


def basis_text(group: Group) -> str:
    if not group.basis:
        what = ", ".join(f"{k} {v}" for k, v in group.values.items())
        return f"none: no finished run with {what}, nor of method {group.values.get('method')}"
    suites = sorted({run.suite for run in group.basis})
    ids = ", ".join(run.run_id for run in group.basis[:3]) + (", ..." if len(group.basis) > 3 else "")
    low, high = min(r.seconds for r in group.basis), max(r.seconds for r in group.basis)
    spread = f", {seconds_text(low)} to {seconds_text(high)}" if len(group.basis) > 1 else ""
    where = f"{len(group.basis)} finished run{'s' * (len(group.basis) != 1)} of suite{'s' * (len(suites) != 1)} " \
            f"{', '.join(suites)} ({ids}{spread})"
    text = f"fallback, {same(group.matched)}: {where}" if group.fallback else where
    differences = differing(group)
    return f"{text}; they differ in {differences}" if differences else text


def differing(group: Group, most: int = 3) -> str:
    """The config keys (but the seed) on which the basis runs differ from the pending runs,
    with both values: an estimate from runs of another budget (steps, epochs) is flagged."""
    pending = with_defaults(families.get(group.specs[0].family), group.specs[0].config)
    found = []
    for key, value in pending.items():
        if key == "seed":
            continue
        theirs = sorted({repr(run.config.get(key)) for run in group.basis if run.config.get(key) != value})
        if theirs:
            found.append(f"{key} ({'/'.join(theirs[:2])}{'/...' if len(theirs) > 2 else ''} vs {value!r})")
    return ", ".join(found[:most]) + (f" and {len(found) - most} more keys" if len(found) > most else "")


def same(keys) -> str:
    keys = list(keys)
    return "same " + (", ".join(keys[:-1]) + " and " + keys[-1] if len(keys) > 1 else keys[0])


def text(groups: list[Group]) -> str:
    if not groups:
        return "Estimate: no pending runs.\n"
    keys = list(groups[0].values)
    rows = [[*g.values.values(), len(g.specs), seconds_text(g.seconds_per_run), seconds_text(g.seconds),
             "/".join(str(n) for n in sorted(set(g.gpus))), "" if g.gpu_hours is None else f"{g.gpu_hours:.2f}",
             basis_text(g)] for g in groups]
    headers = keys + ["pending", "per run", "wall-clock", "GPUs/run", "GPU-hours", "based on (timing.total_seconds)"]
    known = [g for g in groups if g.basis]
    pending = sum(len(g.specs) for g in groups)
    estimated = sum(len(g.specs) for g in known)
    total = (f"Total: {estimated} of {pending} pending runs estimated: {seconds_text(sum(g.seconds for g in known)) or '0 s'}"
             f" of run time (one after another; runs in parallel divide it), "
             f"{sum(g.gpu_hours for g in known):.2f} GPU-hours")
    missing = pending - estimated
    total += f"; {missing} without an estimate (no finished run of their method)." if missing else "."
    return "\n".join(["", f"Estimate for the {pending} pending runs:", "",
                      tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), "", total]) + "\n"


def as_dict(groups: list[Group]) -> dict:
    known = [g for g in groups if g.basis]
    return {
        "groups": [{**g.values, "pending": len(g.specs), "run_ids": [s.run_id for s in g.specs],
                    "seconds_per_run": g.seconds_per_run, "seconds": g.seconds, "gpus": g.gpus, "gpu_hours": g.gpu_hours,
                    "basis": same(g.matched) if g.matched else None, "fallback": g.fallback,
                    "based_on": [{"suite": r.suite, "run_id": r.run_id, "seconds": r.seconds} for r in g.basis]}
                   for g in groups],
        "total": {"pending": sum(len(g.specs) for g in groups), "estimated": sum(len(g.specs) for g in known),
                  "seconds": sum(g.seconds for g in known), "gpu_hours": sum(g.gpu_hours for g in known)},
    }
