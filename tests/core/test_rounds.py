"""The rounds of sequential seeds (harness/rounds.py): which cells get which new seeds, the
runs they add to a suite's plan, and the state file."""
from __future__ import annotations

import json
import math
import shutil

import pytest
from test_until_decided import GAUSS

from harness import HarnessError, plugins, rounds
from harness.report.sequential import CellDecision, ClaimDecision, Decisions
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite


def cell(method: str, open_: bool) -> CellDecision:
    from harness.sequential import SequentialVerdict

    verdict = SequentialVerdict(None if open_ else "reproduced", "continue" if open_ else "decided", 1, 3, (3,), 9,
                                (3.0,), (0.001,), 0.0, -1.0, 1.0, 0.5, 0.5)
    return CellDecision({"dataset": "normal", "method": method}, "score", 3, verdict, "inconclusive")


def claim(name: str, groups: list, open_: bool) -> ClaimDecision:
    keyed = tuple(tuple({"dataset": "normal", "method": m} for m in group) for group in groups)
    return ClaimDecision(name, None if open_ else "supported", "continue", 1, 3, (3,), (3.0,), (0.001,), 0.5, 0.5,
                         keyed, keyed, "inconclusive")


def seeds(**planned) -> dict:
    return {(("dataset", "normal"), ("method", m)): set(s) for m, s in planned.items()}


def added(found: list) -> dict:
    return {a["cell"]["method"]: a["seeds"] for a in found}


def test_open_cells_get_the_next_seeds_and_cells_of_an_open_claim_the_same_ones():
    decisions = Decisions(9, 1, ["dataset", "method"],
                          [cell("a", True), cell("b", False), cell("c", True), cell("d", False)],
                          [claim("c-vs-d", [["c", "d"]], True), claim("b-vs-d", [["b", "d"]], False)])
    planned = seeds(a=[0, 1, 2], b=[0, 1, 2], c=[0, 1, 2, 3, 4], d=[0, 1, 2])
    found = rounds.next_additions(decisions, planned, 2, 9)
    # a alone: after its own largest; c and d together: d first catches up with c's 3 and 4
    assert added(found) == {"a": [3, 4], "d": [3, 4]}
    assert "b" not in added(found)  # decided, and its claim too
    planned = seeds(a=[0, 1, 2], b=[0, 1, 2], c=range(5), d=range(5))
    assert added(rounds.next_additions(decisions, planned, 2, 9)) == {"a": [3, 4], "c": [5, 6], "d": [5, 6]}
    # max seeds: a cell with 8 of 9 gets one seed, one with 9 none
    assert added(rounds.next_additions(decisions, seeds(a=range(8), b=[0], c=range(9), d=range(9)), 2, 9)) == \
        {"a": [8]}
    # nothing open: no round
    closed = Decisions(9, 1, ["dataset", "method"], [cell("a", False)], [claim("c-vs-d", [["c", "d"]], False)])
    assert rounds.next_additions(closed, planned, 2, 9) == []


def test_claims_that_share_a_cell_give_all_their_cells_the_same_seeds():
    decisions = Decisions(20, 1, ["dataset", "method"], [],
                          [claim("x", [["u", "p"]], True), claim("y", [["u", "q"]], True), claim("z", [["r", "s"]], True)])
    found = added(rounds.next_additions(decisions, seeds(u=[0, 1, 2], p=[0, 1, 2, 7], q=[0, 1, 2], r=[0, 1], s=[0, 1]),
                                        3, 20))
    assert found == {"u": [7, 8, 9], "p": [8, 9], "q": [7, 8, 9], "r": [2, 3, 4], "s": [2, 3, 4]}
    # seeds that start elsewhere (a selection's 100, 101, 102): the next after the largest
    alone = Decisions(20, 1, ["dataset", "method"], [cell("v", True)], [])
    assert added(rounds.next_additions(alone, seeds(v=[100, 101, 102]), 2, 20)) == {"v": [103, 104]}


SUITE = """
name: gauss
family: gauss
plugins: [gauss.py]
paper: p
grid:
  - {dataset: [normal], method: [noisy, far], seed: [0, 1, 2]}
  - {dataset: [normal], method: [exact], sd: [0.5, 2.0], seed: [0, 1]}
overrides:
  - when: {method: far}
    set: {common_sd: 0.5}
  - when: {method: far, seed: [4]}
    set: {sleep_s: 0.25}
exclude:
  - {method: noisy, seed: 5}
"""


@pytest.fixture
def suite(tmp_path):
    plugins.reset()
    shutil.copy(GAUSS, tmp_path / "gauss.py")
    (tmp_path / "suite.yaml").write_text(SUITE)
    yield load_suite(tmp_path / "suite.yaml")
    plugins.reset()


def test_a_rounds_seeds_are_planned_like_the_grids_runs(suite):
    state = rounds.new_state("gauss", 9, 0.05)
    rounds.add_round(state, [{"cell": {"dataset": "normal", "method": "far"}, "seeds": [3, 4]},
                             {"cell": {"dataset": "normal", "method": "noisy"}, "seeds": [3, 4, 5]},
                             {"cell": {"dataset": "normal", "method": "exact", "sd": 2.0}, "seeds": [2]}], 2, {})
    configs, warnings = rounds.extra_configs(suite, state)
    assert warnings == []
    found = {(c["method"], c["seed"], c["sd"]): c for c in configs}
    # the overrides apply (the ones on the seed too), the exclude rules too, the other grid's keys stay
    assert set(found) == {("far", 3, 1.0), ("far", 4, 1.0), ("noisy", 3, 1.0), ("noisy", 4, 1.0), ("exact", 2, 2.0)}
    assert found["far", 3, 1.0]["common_sd"] == 0.5 and found["far", 4, 1.0]["sleep_s"] == 0.25
    assert found["far", 3, 1.0]["sleep_s"] == 0.0
    specs = list(expand(suite, configs))
    assert len(specs) == 6 + 4 + 5
    assert [rounds.round_of(spec, state) for spec in specs] == [0] * 10 + [1] * 5
    assert [len(look) for look in rounds.looks(specs, state, 2)] == [10, 15]
    # a cell the suite no longer has is named, and adds nothing
    rounds.add_round(state, [{"cell": {"dataset": "normal", "method": "twin"}, "seeds": [3]}], 1, {})
    configs, warnings = rounds.extra_configs(suite, state)
    assert len(configs) == 5 and warnings == [("rounds.json: round 2 adds seeds to the cell dataset=normal, "
                                              "method=twin, which the suite no longer has")]


@pytest.mark.parametrize("text, problem", [
    ('{"version": 2}', "not a rounds state of version 1"),
    ('{"version": 1, "max_seeds": 9, "rounds": []}', "max_seeds and rounds are missing"),
    ('{"version": 1, "max_seeds": 9, "rounds": [{"round": 1, "additions": []}]}', "rounds[0]: not round 0"),
    ('{"version": 1, "max_seeds": 9, "rounds": [{"round": 0, "additions": [{"cell": {}, "seeds": [1.5]}]}]}',
     "rounds[0].additions: each needs a cell and its seeds"),
    ('{"version": 1,', "not valid JSON"),
])
def test_a_damaged_state_is_refused_with_the_path_and_what_is_wrong(tmp_path, text, problem):
    store = Store(tmp_path, "s")
    assert rounds.load(store) is None
    store.dir.mkdir()
    rounds.state_path(store).write_text(text)
    with pytest.raises(HarnessError) as error:
        rounds.load(store)
    assert str(rounds.state_path(store)) in str(error.value) and problem in str(error.value)


def test_the_state_is_written_whole_and_read_back(tmp_path):
    store = Store(tmp_path, "s")
    state = rounds.new_state("s", 10, 0.05)
    rounds.save(store, state)
    rounds.note_launch(state, "20260101-000000-abcdef")
    rounds.add_round(state, [{"cell": {"method": "m"}, "seeds": [3]}], 1, {"cells": [], "claims": []})
    rounds.note_launch(state, "20260101-000100-abcdef")
    rounds.save(store, state)
    assert rounds.load(store) == json.loads(rounds.state_path(store).read_text()) == state
    assert state["rounds"][0]["launches"] == ["20260101-000000-abcdef"]
    assert state["rounds"][1]["launches"] == ["20260101-000100-abcdef"] and not math.isnan(state["max_seeds"])
    assert [p.name for p in store.dir.iterdir()] == ["rounds.json"]  # no temp file left behind


def test_seeds_are_counted_per_report_cell_and_a_selected_cells_in_its_chosen_configuration():
    """kurin2022: unitary on Multi-MNIST runs seeds 0-9 (the grid) and, in each of its six
    candidate configurations, the selection seeds 100-102: the report's cell (keys less the
    select's over axes) reports 10 confirmation seeds, not 13."""
    from pathlib import Path

    from harness.report.shared import group_keys
    from harness.until_decided import budget

    suite = load_suite(Path(__file__).resolve().parents[2] / "suites" / "kurin2022.yaml")
    specs = list(expand(suite))
    keys = [k for k in group_keys(suite) if k not in suite.select.over]
    found = rounds.seeds_by_cell(specs, keys, suite.select)
    unitary = next(v for k, v in found.items() if dict(k)["method"] == "unitary" and dict(k)["dataset"] == "multi_mnist")
    assert unitary == set(range(10)) and max(len(v) for v in found.values()) == 10
    assert len(rounds.seeds_by_cell(specs, group_keys(suite))[next(
        k for k in rounds.seeds_by_cell(specs, group_keys(suite)) if dict(k)["method"] == "unitary"
        and dict(k)["dataset"] == "multi_mnist" and dict(k).get("dropout") is True and not dict(k).get("weight_decay"))]) == 13

    class Args:
        max_seeds, seeds_per_round = 10, 2

    assert budget(Args, suite, specs, None) == (10, 2)  # was refused: "below the 13 seeds a cell ... runs"
    # the chosen configuration's runs only; its new seeds go to it
    cell_key = next(k for k in found if dict(k)["method"] == "unitary" and dict(k)["dataset"] == "multi_mnist")
    chosen = {cell_key: {"weight_decay": 0.001, "dropout": False}}
    assert rounds._lookup(rounds.seeds_by_cell(specs, keys, suite.select, chosen), cell_key) == set()
    open_cell = CellDecision(dict(cell_key), "average", 10, None, "inconclusive")
    decisions = Decisions(12, 1, keys, [open_cell], [], chosen)
    found_next = rounds.next_additions(decisions, rounds.seeds_by_cell(specs, keys, suite.select, chosen), 2, 12)
    assert found_next == [{"cell": {**dict(cell_key), "weight_decay": 0.001, "dropout": False}, "seeds": [0, 1]}]
    configs = rounds.configs_on_seeds(suite, found_next[0]["cell"], [0, 1])
    assert [(c["seed"], c["weight_decay"], c["dropout"]) for c in configs] == [(0, 0.001, False), (1, 0.001, False)]
