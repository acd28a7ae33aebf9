"""Confirmation of model selection on fresh seeds (``harness run --confirm``): the frozen
choices on disk and the runs they add to the suite's plan.

``results/<suite>/selection.json``, rewritten atomically::

    {"version": 1, "suite": "kurin2022", "by": "val_average", "over": ["weight_decay", "dropout"],
     "choices": [{"cell": {"dataset": "multi_mnist", "method": "unitary"},
                  "chosen": {"weight_decay": 0.0, "dropout": true},
                  "validation": 93.1, "frozen": "2026-12-07T12:00:00+00:00"}]}

A cell's choice is frozen once every candidate's selection runs are done; from then on its
configuration runs on the suite's ``select.confirm`` seeds as planned runs of the suite
(``harness.spec.expand`` with ``extra_configs``), whatever a later record says, so that a
rerun of a selection run cannot switch the configuration the confirmation ran.
"""
from __future__ import annotations

import datetime
import json

from harness import HarnessError
from harness.record import SELECTION
from harness.store import Store, write_json_atomic

STATE = SELECTION
VERSION = 1


def load(store: Store) -> dict | None:
    path = store.dir / STATE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise HarnessError(f"{path}: cannot be read ({error}); remove it to choose again") from None
    if not isinstance(state, dict) or state.get("version") != VERSION or not isinstance(state.get("choices"), list):
        raise HarnessError(f"{path}: not a selection state of this harness (version {VERSION}); remove it to choose again")
    return state


def frozen(state: dict | None, cell_keys: list[str]) -> dict:
    """cell (the cell keys' values, in order) -> the frozen values of the ``over`` axes."""
    found = {}
    for entry in (state or {}).get("choices", []):
        cell = entry.get("cell") or {}
        if set(cell) == set(cell_keys):
            found[tuple(cell[k] for k in cell_keys)] = entry["chosen"]
    return found


def freeze(store: Store, suite, choices: list) -> list:
    """Add the complete, not yet frozen choices (``harness.selection.Choice`` per mean) to the
    state; the newly frozen ones."""
    state = load(store) or {"version": VERSION, "suite": suite.name, "by": suite.select.by,
                            "over": list(suite.select.over), "choices": []}
    known = {json.dumps(entry["cell"], sort_keys=True, default=str) for entry in state["choices"]}
    added = []
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    for choice in choices:
        name = json.dumps(choice.cell, sort_keys=True, default=str)
        if choice.per != "mean" or choice.chosen is None or not choice.complete or name in known:
            continue
        best = next(c for c in choice.candidates if c.values == choice.chosen)
        entry = {"cell": choice.cell, "chosen": choice.chosen, "validation": best.validation, "frozen": stamp}
        state["choices"].append(entry)
        added.append(entry)
        known.add(name)
    if added:
        store.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(store.dir / STATE, state)
    return added


def extra_configs(suite, state: dict | None) -> list[dict]:
    """The confirmation runs of the frozen choices: each cell's chosen configuration on every
    ``select.confirm`` seed (resolved as the grid's runs: overrides, excludes, filters)."""
    if state is None or suite.select is None or not suite.select.confirm:
        return []
    from harness.rounds import configs_on_seeds

    extra = []
    for entry in state["choices"]:
        extra += configs_on_seeds(suite, {**entry["cell"], **entry["chosen"]}, suite.select.confirm)
    return extra
