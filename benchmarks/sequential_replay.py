"""Sequential seeds replayed on real records: 120 Multi-MNIST runs (12 optimizers x seeds
0-9), by default those committed in results/kurin2022 on 2026-12-06 and kept, as they
were, in benchmarks/data/kurin2022_multi_mnist_2026-12-06 (``--records DIR``: another
folder of records, e.g. results/kurin2022), taken seed by seed in order, through the
loop of `harness run --until-decided` (``harness.rounds``: the new seeds of each round;
``harness.report.sequential``: the report's verdicts decided by the group-sequential rule)
with nothing run: a round's runs are the committed records of its seeds.

The suite replayed is suites/kurin2022.yaml's first grid (the paper's settings) on
multi_mnist, with the suite's defaults, overrides, margin and claims, its seeds cut to the
first round (``--first``); each later round adds ``--step`` seeds to the cells still
undecided, up to ``--max-seeds``. The committed records were made by older code (their
run ids and specs predate the suite's current keys), so they are read by (method, seed)
only and written, metrics untouched, into a temporary results folder under the current
plan's run ids.

Printed for each schedule: each claim's sequential verdict, the look and the seeds a side
it used in its claim cell, the fixed-sample verdict of all 10 seeds (the report's), whether
they agree, and the runs and training hours the rounds used against all 120 runs.

Printed first (``--expected-suites`` simulated suites each; 0: not printed): the rule's
expected seeds at the null (the truth on the margin) and at the alternative (truth 0), for
a reproduction (3-seed paper, seed sd 0.7, margin 2.5) and a one-part not-worse claim
(per-seed differences of sd 1, margin 1), at several schedules.

    python benchmarks/sequential_replay.py [--first 3] [--step 1 2] [--max-seeds 10] [--expected-suites 4000]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import yaml

from harness import rounds, yamlfile
from harness.decision_cost import simulate_claim
from harness.report.sequential import report_model
from harness.sequential import plan_sequential
from harness.sequential import rounds as schedule
from harness.simulation import Scenario
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite
from harness.until_decided import ALPHA, decisions_of, specs_of

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "kurin2022.yaml"
RECORDS = ROOT / "benchmarks" / "data" / "kurin2022_multi_mnist_2026-12-06"
DATASET = "multi_mnist"
ALL_SEEDS = 10


def plain(value):
    """The YAML loader's mappings and lists as plain ones (to write the replay's suite)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def replay_suite(folder: Path, first: int):
    """The first grid of the suite on multi_mnist with seeds 0..first-1, and its claims."""
    doc = plain(yamlfile.load(SUITE))
    grid = dict(doc["grid"][0] if isinstance(doc["grid"], list) else doc["grid"])
    grid.update(dataset=[DATASET], seed=list(range(first)))
    kept = {key: doc[key] for key in ("family", "paper", "defaults", "overrides", "resources", "report", "claims")
            if key in doc}
    path = folder / "replay.yaml"
    path.write_text(yaml.safe_dump({"name": "kurin2022-replay", **kept, "grid": grid}, sort_keys=False))
    return load_suite(path)


# The keys the suite's other grids set (the official solvers, unitary's regularisation
# sweep): a run of the first grid has them at the family's defaults (dropout: on, or null
# in records older than that key's default).
FIRST_GRID = {"imtl_solver": ("exact",), "mgda_solver": ("exact",), "weight_decay": (0.0,), "dropout": (None, True)}


def committed(folder: Path = RECORDS) -> dict:
    """(method, seed) -> the committed record of each multi_mnist run of the first grid."""
    found = {}
    for path in sorted(folder.glob("*/record.json")):
        record = json.loads(path.read_text())
        spec = record.get("spec") or {}
        if not (spec.get("dataset") == DATASET and record.get("status") == "done" and spec.get("seed") in range(ALL_SEEDS)
                and all(spec.get(key, values[0]) in values for key, values in FIRST_GRID.items())):
            continue
        if (spec["method"], spec["seed"]) in found:
            raise SystemExit(f"{path}: a second record of {spec['method']} seed {spec['seed']}")
        found[spec["method"], spec["seed"]] = record
    return found


def fill_store(suite, store: Store, records: dict) -> list:
    """Every run of seeds 0-9 as a record of the replay's plan; the plan's specs."""
    full = dataclasses.replace(suite, grids=tuple({**grid, "seed": list(range(ALL_SEEDS))} for grid in suite.grids))
    specs = list(expand(full))
    for spec in specs:
        record = records[spec.config["method"], spec.config["seed"]]
        store.write_record({**record, "run_id": spec.run_id, "suite": suite.name, "spec": spec.config})
    return specs


def replay(suite, store: Store, first: int, step: int, max_seeds: int):
    """The loop of `run --until-decided` on the records: (state, final decisions, specs run)."""
    state = rounds.new_state(suite.name, max_seeds, ALPHA)
    specs = list(expand(suite))
    while True:
        decisions = decisions_of(suite, store, specs, state)
        have = rounds.seeds_by_cell(specs, decisions.keys, suite.select, decisions.chosen)
        found = rounds.next_additions(decisions, have, step, max_seeds)
        if not found:
            return state, decisions, specs
        rounds.add_round(state, found, step, {})
        specs = specs_of(suite, state)


def train_hours(store: Store, specs) -> float:
    return sum(json.loads(store.record_path(spec.run_id).read_text())["timing"]["train_seconds"] for spec in specs) / 3600


SCHEDULES = [schedule(3, 1, 10), schedule(3, 2, 10), schedule(2, 2, 20), schedule(5, 5, 20)]


def expected_seeds_table(schedules=SCHEDULES, suites: int = 4000) -> list[str]:
    """Expected seeds of the rule at the null and at the alternative (see the module)."""
    lines = ["schedule | reproduction: null, alternative | claim: null, alternative (expected seeds)"]
    for looks in schedules:
        null = plan_sequential(Scenario(0.7, 0.2, 3, truth=2.5), 2.5, looks, suites=suites).expected_seeds
        alternative = plan_sequential(Scenario(0.7, 0.2, 3), 2.5, looks, suites=suites).expected_seeds
        claim = []
        for truth in (-1.0, 0.0):
            draws = truth + np.random.default_rng(0).standard_normal((suites, looks[-1], 1))
            claim.append(float(np.asarray(looks)[simulate_claim(draws, looks, -1.0, math.inf)[0]].mean()))
        lines.append(f"{' '.join(map(str, looks))} | {null:.1f}, {alternative:.1f} | {claim[0]:.1f}, {claim[1]:.1f}")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first", type=int, default=3, help="seeds of the first round (default 3)")
    parser.add_argument("--step", type=int, nargs="+", default=[1, 2], help="seeds per later round (default: 1, then 2)")
    parser.add_argument("--max-seeds", type=int, default=ALL_SEEDS, help="at most (default 10: all committed)")
    parser.add_argument("--expected-suites", type=int, default=4000,
                        help="simulated suites of the expected-seeds table (0: not printed)")
    parser.add_argument("--records", type=Path, default=RECORDS,
                        help=f"a folder of run folders with record.json (default {RECORDS.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    if args.expected_suites:
        print(f"Expected seeds of the rule ({args.expected_suites} simulated suites each):")
        print("\n".join(expected_seeds_table(SCHEDULES, args.expected_suites)) + "\n")
    records = committed(args.records)
    if len(records) != 120 or len({method for method, _ in records}) != 12:
        raise SystemExit(f"{args.records}: {len(records)} finished runs of the first grid, not 12 optimizers x 10 seeds")
    assert len(records) == 120 and len({method for method, _ in records}) == 12, len(records)
    with tempfile.TemporaryDirectory(prefix="sequential-replay-") as folder:
        suite = replay_suite(Path(folder), args.first)
        store = Store(Path(folder) / "results", suite.name)
        everything = fill_store(suite, store, records)
        fixed = {result.spec.name: result for result in report_model(suite, store, everything).claims}
        all_hours = train_hours(store, everything)
        print(f"Replay of {len(everything)} committed runs ({DATASET}, 12 optimizers x seeds 0-9), at most "
              f"{args.max_seeds} seeds per cell, margin {suite.report_options['margin']}; the claims of {SUITE.name}.")
        for step in args.step:
            state, decisions, used = replay(suite, store, args.first, step, args.max_seeds)
            looks = [args.first + step * i for i in range(len(state["rounds"]))]
            print(f"\nFirst round {args.first} seeds, then {step} per round: {len(state['rounds'])} rounds "
                  f"(seeds after each: {', '.join(map(str, looks))})")
            for claim in decisions.claims:
                whole = fixed[claim.name]
                cells = len({tuple(key.items()) for group in claim.groups for key in group})
                parts = len(whole.parts)
                same = claim.word == whole.verdict
                print(f"  claim {claim.name} ({cells} cells, {parts} parts, 1 claim cell: {DATASET}): "
                      f"{claim.word} ({claim.reason}) at look {claim.look}, {claim.seeds} seeds a side in its claim cell "
                      f"(p {claim.p_value:.3g} against level {claim.levels[-1]:.3g}); with all {ALL_SEEDS} seeds "
                      f"(fixed 5%): {whole.verdict} (p {whole.p_value:.3g}): {'the same' if same else 'DIFFERENT'}")
            hours = train_hours(store, used)
            print(f"  runs: {len(used)} of {len(everything)} ({len(everything) - len(used)} saved, "
                  f"{1 - len(used) / len(everything):.0%}); training {hours:.2f} of {all_hours:.2f} CPU-hours")


if __name__ == "__main__":
    main()
