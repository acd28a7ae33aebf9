"""The reproduction verdict's rules measured on simulated suites: the sequential rule
(looks after each round of seeds, Lan-DeMets O'Brien-Fleming-type boundaries) against
the fixed-seed rule, in realistic settings (verdicts.md: one-model papers with a 95%
interval over 600 episodes, k-seed papers; sigma_seed 0.7 and 2.5; episode se 0.2).

For each setting and look schedule it prints, from ``--suites`` suites per truth
(seeded: the same numbers every run):
- at theta = delta (the edge of "reproduced"): how often each rule says "reproduced" and
  "not reproduced" (both wrong there; at most alpha = 5% each), and the sequential
  rule's expected and worst-case seeds;
- at theta = 0 (an exact reproduction): how often each says "reproduced" (power), the
  sequential rule's expected and worst-case seeds and its share stopped at the floor;
  the fixed rule runs all max seeds; "plan" is the seeds the fixed rule asks for 80%
  power (``harness.seedplan.seeds_needed``).

    python benchmarks/verdict_rules.py [--suites 20000] [--seed 0]
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace

import numpy as np

from harness.reproduction import verdict_arrays
from harness.seedplan import VarianceModel, seeds_needed
from harness.sequential import FLOOR, rounds, simulate_sequential
from harness.simulation import Scenario, simulate
from harness.tables import markdown_table
from harness.tost import REFUTED, SUPPORTED

ONE_MODEL_SE = 0.61 / 1.96
SETTINGS = [
    ("one-model paper, σ 0.7", Scenario(0.7, 0.2, None, ONE_MODEL_SE), 3.0),
    ("one-model paper, σ 2.5", Scenario(2.5, 0.2, None, ONE_MODEL_SE), 8.0),
    ("3-seed paper, σ 0.7", Scenario(0.7, 0.2, 3), 2.5),
    ("5-seed paper, σ 2.5", Scenario(2.5, 0.2, 5), 5.0),
    ("10-seed paper, σ 2.5", Scenario(2.5, 0.2, 10), 3.0),
]
SCHEDULES = [rounds(2, 1, 10), rounds(3, 2, 10), rounds(2, 2, 20)]


def planning_model(scenario: Scenario) -> VarianceModel:
    if scenario.paper_seeds is None:
        return VarianceModel(scenario.seed_sd ** 2, 1, ((scenario.shared_se ** 2, scenario.episodes - 1.0),
                                                        (scenario.paper_episode_se ** 2, scenario.episodes - 1.0)))
    k = scenario.paper_seeds
    return VarianceModel(scenario.seed_sd ** 2, 0, ((2 * scenario.shared_se ** 2, scenario.episodes - 1.0),
                                                    (scenario.seed_sd ** 2 / k, k - 1.0)))


def run(scenario: Scenario, margin: float, looks, truth: float, suites: int, seed: int) -> dict:
    simulated = simulate(replace(scenario, truth=truth), looks[-1], suites, np.random.default_rng(seed))
    look, code, reason = simulate_sequential(simulated, looks, margin)
    used = np.asarray(looks)[look]
    fixed = verdict_arrays(simulated.ours(looks[-1]), simulated.reported, margin)[0]
    return {"reproduced": np.mean(code == SUPPORTED), "not reproduced": np.mean(code == REFUTED),
            "expected": used.mean(), "worst": int(used.max()), "floor": np.mean(reason == FLOOR),
            "fixed reproduced": np.mean(fixed == SUPPORTED), "fixed not reproduced": np.mean(fixed == REFUTED)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", type=int, default=20_000, help="simulated suites per setting and truth")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = []
    for name, scenario, margin in SETTINGS:
        plan = seeds_needed(margin, planning_model(scenario))
        for looks in SCHEDULES:
            edge = run(scenario, margin, looks, margin, args.suites, args.seed)
            exact = run(scenario, margin, looks, 0.0, args.suites, args.seed + 1)
            rows.append([name, f"{margin:g}", ",".join(map(str, looks)),
                         f"{edge['reproduced']:.3f} / {edge['fixed reproduced']:.3f}",
                         f"{edge['not reproduced']:.3f} / {edge['fixed not reproduced']:.3f}",
                         f"{edge['expected']:.2f} ({edge['worst']})",
                         f"{exact['reproduced']:.3f} / {exact['fixed reproduced']:.3f}",
                         f"{exact['expected']:.2f} ({exact['worst']})", f"{exact['floor']:.3f}",
                         "-" if plan.seeds is None else str(plan.seeds)])
    mc = 2.2 * math.sqrt(0.05 * 0.95 / args.suites)
    print(f"{args.suites} simulated suites per setting and truth, seed {args.seed}; alpha 5% "
          f"(Monte Carlo bound 2.2 sigma: {0.05 + mc:.4f}); sequential / fixed at max seeds\n")
    print(markdown_table(rows, ["setting", "δ", "looks (seeds)", "θ=δ: reproduced", "θ=δ: not reproduced",
                                "θ=δ: E[seeds] (max)", "θ=0: reproduced", "θ=0: E[seeds] (max)", "θ=0: floor stop",
                                "plan (fixed, 80%)"]))
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
