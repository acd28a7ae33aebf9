"""Rounds of sequential seeds (``harness run --until-decided``): the state on disk, the
new seeds each round gives, and the runs those seeds add to the suite's plan.

The state is ``results/<suite>/rounds.json``, rewritten atomically (write, fsync, rename)::

    {"version": 1, "suite": "tiny", "max_seeds": 10, "alpha": 0.05,
     "rounds": [
       {"round": 0, "created": "...", "seeds_per_round": null, "additions": [], "launches": ["<launch id>"],
        "look": null},
       {"round": 1, "created": "...", "seeds_per_round": 2,
        "additions": [{"cell": {"dataset": "d", "method": "m"}, "seeds": [3, 4]}, ...],
        "launches": ["<launch id>"], "look": {the decisions after round 0 that planned it}}],
     "finished": null or {"created": "...", "look": {the decisions that ended it}}}

Round 0 is the grid. A round is written, with the cells and seeds it adds, BEFORE any of
its runs is dispatched; each launch that dispatches some of them appends its id. Its
runs are then planned runs of the suite like the grid's (``harness.spec.expand`` with
``extra_configs``), so whether one still needs dispatching is what the records and the
scheduler say (``harness.status``), as for any run: a round whose jobs are queued or
running is waited for, never dispatched again; a round written but not dispatched (the
launcher died in between) is dispatched by the next ``run``. ``max_seeds`` is fixed when
the state is created (the spending's information fractions are k / max seeds); the seeds
per round may change from one round to the next.

New seeds: the cells still open after a look (``harness.report.sequential``) get
``seeds_per_round`` seeds each, the next integers after their largest seed. Cells that
must stay paired by seed (the cells of an open claim cell, both sides, and through them
every cell linked to those) get the very same seeds: the first ``seeds_per_round`` of the
seeds some of them have and others lack (so that they catch up: one may have had rounds
of its own before), then of the integers after the largest seed among them. A cell never
goes past ``max_seeds`` seeds. Cells are the report's (``seeds_by_cell``): with a suite's
``select``, the chosen configuration's runs on the seeds it reports, and the new seeds
go to that configuration.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

from harness import HarnessError
from harness.record import ROUNDS
from harness.store import Store, write_json_atomic

STATE = ROUNDS
VERSION = 1


def state_path(store: Store) -> Path:
    return store.dir / STATE


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def load(store: Store) -> dict | None:
    """The suite's rounds, or None when it never ran rounds; a damaged file is one line."""
    path = state_path(store)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise HarnessError(f"{path}: unreadable ({error.strerror})") from None
    try:
        state = json.loads(text)
    except json.JSONDecodeError as error:
        raise HarnessError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    problem = _problem(state)
    if problem:
        raise HarnessError(f"{path}: {problem}")
    return state


def _problem(state) -> str | None:
    if not isinstance(state, dict) or state.get("version") != VERSION:
        return f"not a rounds state of version {VERSION}"
    if not isinstance(state.get("max_seeds"), int) or not isinstance(state.get("rounds"), list) or not state["rounds"]:
        return "max_seeds and rounds are missing"
    for i, entry in enumerate(state["rounds"]):
        if not isinstance(entry, dict) or entry.get("round") != i or not isinstance(entry.get("additions"), list):
            return f"rounds[{i}]: not round {i}"
        for addition in entry["additions"]:
            if not (isinstance(addition, dict) and isinstance(addition.get("cell"), dict)
                    and isinstance(addition.get("seeds"), list) and all(isinstance(s, int) for s in addition["seeds"])):
                return f"rounds[{i}].additions: each needs a cell and its seeds"
    return None


def save(store: Store, state: dict) -> None:
    write_json_atomic(state_path(store), state)


def new_state(suite: str, max_seeds: int, alpha: float) -> dict:
    return {"version": VERSION, "suite": suite, "max_seeds": max_seeds, "alpha": alpha,
            "rounds": [{"round": 0, "created": now(), "seeds_per_round": None, "additions": [], "launches": [],
                        "look": None}], "finished": None}


def add_round(state: dict, additions: list, seeds_per_round: int, look: dict) -> dict:
    entry = {"round": len(state["rounds"]), "created": now(), "seeds_per_round": seeds_per_round,
             "additions": additions, "launches": [], "look": look}
    state["rounds"].append(entry)
    state["finished"] = None
    return entry


def note_launch(state: dict, launch_id: str) -> None:
    """The latest round was (partly) dispatched by this launch."""
    launches = state["rounds"][-1]["launches"]
    if launch_id and launch_id not in launches:
        launches.append(launch_id)


# -- the rounds' runs ----------------------------------------------------------------------


def additions(state: dict | None) -> list[tuple[int, dict, list]]:
    """(round, cell, seeds) of every round."""
    if not state:
        return []
    return [(entry["round"], addition["cell"], addition["seeds"]) for entry in state["rounds"]
            for addition in entry["additions"]]


def _restricted(grid: dict, cell: dict, seeds: list) -> dict:
    """The grid with its seed axis set to ``seeds`` and every axis the cell names narrowed to
    the cell's value (when the grid has it: a value an override sets is matched after)."""
    narrowed = {axis: [v for v in values if v == cell[axis]] or values if axis in cell else values
                for axis, values in grid.items()}
    return {**narrowed, "seed": list(seeds)}


def configs_on_seeds(suite, cell: dict, seeds) -> list[dict]:
    """The resolved configs of a cell (config keys -> values) on other seeds: the suite's
    defaults, overrides, exclude rules and ``--filter`` applied, as for its grid."""
    grids = tuple(_restricted(grid, cell, seeds) for grid in suite.grids)
    return [config for config in dataclasses.replace(suite, grids=grids).configs()
            if all(config.get(k) == v for k, v in cell.items())]


def extra_configs(suite, state: dict | None) -> tuple[list[dict], list[str]]:
    """The resolved configs of the rounds' new seeds (the suite's defaults, overrides,
    exclude rules and ``--filter`` applied, as for its grid), and a warning for each
    addition whose cell the suite no longer has."""
    configs, warnings = [], []
    for number, cell, seeds in additions(state):
        found = configs_on_seeds(suite, cell, seeds)
        if not found and not suite.keep:
            text = ", ".join(f"{k}={v}" for k, v in cell.items())
            warnings.append(f"{STATE}: round {number} adds seeds to the cell {text}, which the suite no longer has")
        configs += found
    return configs, warnings


def round_of(spec, state: dict | None) -> int:
    """The round that added a run (0: the grid's)."""
    for number, cell, seeds in additions(state):
        if spec.config.get("seed") in seeds and all(spec.config.get(k) == v for k, v in cell.items()):
            return number
    return 0


def looks(specs, state: dict | None, rounds: int) -> list[list]:
    """The runs of each look 0..rounds-1: look j holds the grid's and the runs of rounds 1..j."""
    tagged = [(round_of(spec, state), spec) for spec in specs]
    return [[spec for number, spec in tagged if number <= j] for j in range(rounds)]


# -- the next round ------------------------------------------------------------------------


def cell_id(key: dict) -> tuple:
    return tuple(key.items())


def seeds_by_cell(specs, keys: list[str], select=None, chosen: dict | None = None) -> dict[tuple, set]:
    """Each cell's planned seeds, cells by the report's ``keys`` (with a suite's ``select``:
    its keys less the ``over`` axes, ``harness.report.selected``). With ``select``, the
    seeds are those of the runs a cell reports: not its selection runs (the selection seeds
    not among the confirmation seeds; a suite that does not confirm reports them), and,
    where ``chosen`` gives a cell's chosen values ({cell: {over axis: value}}), only the
    chosen configuration's runs."""
    selection_only = set(select.seeds) - set(select.confirm) if select is not None and select.confirm else set()
    found: dict[tuple, set] = {}
    for spec in specs:
        cell = tuple((k, spec.config.get(k)) for k in keys)
        values = _lookup(chosen or {}, cell, None)
        if spec.config["seed"] in selection_only or (values and any(spec.config.get(a) != v for a, v in values.items())):
            continue
        found.setdefault(cell, set()).add(spec.config["seed"])
    return found


def _find(parent: dict, x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def paired_sets(decisions) -> list[list[tuple]]:
    """The open cells, in sets that must get the same new seeds: the cells of each open
    claim cell (both sides), joined where they share a cell; an open reported cell alone."""
    parent: dict = {}
    order = []

    def add(x):
        if x not in parent:
            parent[x] = x
            order.append(x)

    for claim in decisions.claims:
        if claim.open:
            for group in claim.open_groups:
                ids = [cell_id(key) for key in group]
                for x in ids:
                    add(x)
                for x in ids[1:]:
                    parent[_find(parent, x)] = _find(parent, ids[0])
    for cell in decisions.cells:
        if cell.open:
            add(cell_id(cell.key))
    sets: dict = {}
    for x in order:
        sets.setdefault(_find(parent, x), []).append(x)
    return list(sets.values())


def _lookup(by_cell: dict, cell: tuple, missing=frozenset()):
    """A cell's entry; the report's key values compare equal to the configs' (1.0 == 1)."""
    if cell in by_cell:
        return by_cell[cell]
    return next((found for key, found in by_cell.items() if key == cell), missing)


def next_additions(decisions, seeds: dict[tuple, set], per_round: int, max_seeds: int) -> list[dict]:
    """The next round's {"cell", "seeds"} (see the module); [] when nothing is open or every
    open cell has max seeds. A cell chosen by a suite's ``select`` gets its seeds in the
    chosen configuration: the addition's cell names the chosen values of the ``over`` axes."""
    found = []
    for members in paired_sets(decisions):
        have = [_lookup(seeds, member) for member in members]
        union = set().union(*have)
        lacking = sorted(seed for seed in union if any(seed not in mine for mine in have))
        top = max(union, default=-1)
        chosen = (lacking + list(range(top + 1, top + 1 + per_round)))[:per_round]
        for member, mine in zip(members, have):
            new = [seed for seed in chosen if seed not in mine][:max(max_seeds - len(mine), 0)]
            if new:
                cell = {**dict(member), **(_lookup(decisions.chosen, member, None) or {})}
                found.append({"cell": {k: _plain(v) for k, v in cell.items()}, "seeds": new})
    return found


def _plain(value):
    """A key value as JSON keeps it (a numpy number from the runs frame as a Python one)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value
