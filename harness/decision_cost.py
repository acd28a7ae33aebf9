"""`harness plan SUITE --estimate` for sequential seeds: for each cell and claim still open,
the expected and the worst-case number of seeds the rule will use, and what they cost.

Seeds: the rule of ``harness.sequential`` simulated (``simulate_sequential``, the engine of
``plan_sequential``) with the variances estimated from the runs so far, at the looks it has
had and the rounds to come (every ``seeds_per_round`` more, up to max seeds). Counted are
the simulated suites still undecided at the current look, so the figures say what is left
to run from here.
- A reported cell: our seed means normal with our seed sd and the shared test-set error
  we estimated, the paper's number with the standard error of its own ± (plus one seed
  draw for a one-model paper, and its own test set's error for a paper over seeds), the
  true difference taken at the one observed so far (``plan_sequential``'s ``Scenario``
  would tie the paper's ± to our seed sd; a cell's ± is known, so the suites are drawn
  with it).
- A claim: its paired parts' per-seed differences jointly normal with the covariance
  estimated from the seeds they share (the parts share cells: unitary against each
  optimizer), centred at the differences observed so far; supported when every part is, refuted when one is after Holm over the parts
  (the Holm over the suite's claims is left out: with several claims, a little optimistic).
  Cost claims and parts not paired by seed are not simulated.
Cost: the seeds still to run times the per-run wall-clock and GPU-hours of
``harness.estimate`` (from finished runs of the same method, dataset and backbone), for
every cell that gets them (a claim: every cell of its open claim cells).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness import rounds
from harness.estimate import estimate, seconds_text
from harness.reproduction import ReportedSide
from harness.sequential import decide, simulate_sequential
from harness.sequential_t import t_levels
from harness.simulation import Scenario, Suites
from harness.tables import markdown_table
from harness.tost import INCONCLUSIVE, region_p_values

SUITES = 2000
ALPHA = 0.05


@dataclass
class Plan:
    what: str  # the cell, or "claim NAME"
    seeds_now: int  # finished seeds (a claim: a side)
    looks: tuple  # the looks simulated (past and planned)
    expected: float  # seeds at the end, expected (nan: no estimate)
    worst: int  # the most any simulated suite used
    decided: float  # the share of simulated suites decided (not inconclusive) by the end
    cells: list  # the cells that get each new seed
    seconds_per_run: float | None  # summed over ``cells``: one new seed of each
    gpu_hours_per_seed: float | None
    note: str = ""

    @property
    def expected_seconds(self) -> float | None:
        return None if self.seconds_per_run is None else max(self.expected - self.seeds_now, 0) * self.seconds_per_run

    @property
    def worst_seconds(self) -> float | None:
        return None if self.seconds_per_run is None else max(self.worst - self.seeds_now, 0) * self.seconds_per_run


def future_looks(past: tuple, planned: int, per_round: int, max_seeds: int) -> tuple:
    """The looks so far, then the grid's (when it has not finished), then every ``per_round``."""
    looks = list(past)
    start = max([planned, *looks]) if looks else planned
    if not looks or planned > looks[-1]:
        looks.append(planned)
    looks += list(range(start + per_round, max_seeds, per_round))
    if looks[-1] < max_seeds:
        looks.append(max_seeds)
    return tuple(k for k in looks if k >= 2)


def cell_suites(ours, reported: ReportedSide, seeds: int, count: int, rng) -> Suites:
    """Simulated suites of one reported cell, the true difference at the one observed (see the module)."""
    sd, shared = math.sqrt(max(ours.seed_variance, 0.0)), math.sqrt(max(ours.shared_variance, 0.0))
    truth = ours.mean - reported.value
    means = truth + sd * rng.standard_normal((count, seeds)) + shared * rng.standard_normal((count, 1))
    df = ours.shared_df if math.isfinite(ours.shared_df) else 1e6
    estimate_shared = ours.shared_variance * rng.chisquare(df, count) / df
    value = reported.se * rng.standard_normal(count)
    value += sd * rng.standard_normal(count) if reported.covers == "episodes" else shared * rng.standard_normal(count)
    side = ReportedSide(value, np.full(count, reported.se), reported.df, reported.covers, reported.rule)
    return Suites(Scenario(sd, shared, episodes=int(df) + 1), means, estimate_shared, side)


def _ending(looks: tuple, look, code, now: int) -> tuple[float, int, float]:
    """(expected, worst, share decided) over the simulated suites not stopped before ``now`` seeds."""
    used = np.asarray(looks)[look]
    alive = used >= now
    if not alive.any():
        return float(now), now, 1.0
    return float(used[alive].mean()), int(used[alive].max()), float(np.mean(code[alive] != INCONCLUSIVE))


def cell_plan(decision, planned: int, per_round: int, max_seeds: int, rng) -> tuple:
    """(looks, expected, worst, decided) of an open reported cell, or a note why not."""
    if decision.ours is None or not decision.ours.seed_variance >= 0:
        return "fewer than 2 finished seeds: no variance to plan with"
    past = decision.verdict.looks if decision.verdict is not None else ()
    looks = future_looks(past, planned, per_round, max_seeds)
    simulated = cell_suites(decision.ours, decision.reported, looks[-1], SUITES, rng)
    look, code, _ = simulate_sequential(simulated, looks, decision.margin, ALPHA)
    return (looks, *_ending(looks, look, code, decision.seeds))


def claim_plan(decision, per_round: int, max_seeds: int, rng) -> tuple | str:
    """(looks, expected, worst, decided) of an open claim, or a note why not."""
    if decision.test == "cost_at_most" or not decision.differences:
        return "a cost claim, or parts not paired by seed: not simulated"
    common = sorted(set.intersection(*(set(part) for part in decision.differences)))
    if len(common) < 2:
        return "fewer than 2 seeds every part shares: no variance to plan with"
    values = np.array([[part[seed] for part in decision.differences] for seed in common])
    low, high = decision.region
    truth = values.mean(axis=0)
    looks = future_looks(decision.looks, decision.seeds, per_round, max_seeds)
    n = len(common)
    draws = truth + rng.standard_normal((SUITES, looks[-1], n)) @ (values - values.mean(axis=0)) / math.sqrt(n - 1)
    look, code, _ = simulate_claim(draws, looks, low, high)
    return (looks, *_ending(looks, look, code, decision.seeds))


def simulate_claim(draws, looks, low: float, high: float, alpha: float = ALPHA):
    """The sequential rule on simulated claims: ``draws`` (suites, max seeds, parts), each
    part's per-seed difference in the metric's direction, in seed order; the claim says
    every part lies in (low, high). At each look: the paired t of each part (as the report's
    claims test it), the intersection's p (the largest part's) and its refute p (Holm's
    smallest adjusted), against the look's level (``harness.sequential_t``). (look index, verdict code, reason) per suite."""
    draws = np.asarray(draws, dtype=float)
    suites, max_seeds, parts = draws.shape
    support, refute = [], []
    for k in looks:
        x = draws[:, :k]
        p_support, p_refute = region_p_values(x.mean(axis=1), x.std(axis=1, ddof=1) / math.sqrt(k), k - 1.0, low, high)
        support.append(p_support.max(axis=1))
        refute.append(np.minimum(1.0, parts * p_refute.min(axis=1)))  # Holm's smallest adjusted p over the parts
    levels = t_levels(looks, max_seeds, alpha)
    return decide(np.stack(support, axis=1), np.stack(refute, axis=1), np.zeros((suites, len(looks)), dtype=bool),
                  levels, looks[-1] == max_seeds)


def per_seed_cost(suite, specs, cells: list, finished) -> tuple[float | None, float | None]:
    """(seconds, GPU-hours) of one more seed of each of ``cells``: ``harness.estimate``'s
    per-run figures of a planned run of each; None when some cell has no estimate."""
    seconds = gpu_hours = 0.0
    for key in cells:
        spec = next((s for s in specs if all(s.config.get(k) == v for k, v in key.items())), None)
        group = estimate(suite, [spec], finished)[0] if spec is not None else None
        if group is None or group.seconds_per_run is None:
            return None, None
        seconds += group.seconds_per_run
        gpu_hours += group.gpu_hours
    return seconds, gpu_hours


def plans(suite, specs, decisions, per_round: int, finished, seed: int = 0) -> list[Plan]:
    """A plan for every open reported cell and claim of ``decisions``."""
    rng = np.random.default_rng(seed)
    planned = rounds.seeds_by_cell(specs, decisions.keys, suite.select, decisions.chosen)
    found = []
    for d in decisions.cells:
        if not d.open:
            continue
        result = cell_plan(d, len(rounds._lookup(planned, rounds.cell_id(d.key))), per_round, decisions.max_seeds, rng)
        found.append(_plan(suite, specs, ", ".join(f"{k}={v}" for k, v in d.key.items()) + f" ({d.metric})", d.seeds,
                           [d.key], result, finished))
    for c in decisions.claims:
        if not c.open:
            continue
        cells = list({tuple(key.items()): key for group in c.open_groups for key in group}.values())
        found.append(_plan(suite, specs, f"claim {c.name}", c.seeds, cells,
                           claim_plan(c, per_round, decisions.max_seeds, rng), finished))
    return found


def _plan(suite, specs, what: str, now: int, cells: list, result, finished) -> Plan:
    seconds, gpu_hours = per_seed_cost(suite, specs, cells, finished)
    if isinstance(result, str):
        return Plan(what, now, (), math.nan, 0, math.nan, cells, seconds, gpu_hours, result)
    return Plan(what, now, *result, cells, seconds, gpu_hours)


def text(found: list[Plan], max_seeds: int, per_round: int) -> str:
    lines = ["", (f"Sequential seeds (at most {max_seeds} per cell, {per_round} per round): the seeds the rule is "
                  "expected to use to decide each open cell and claim, and at worst, from the runs so far:"), ""]
    if not found:
        return "\n".join(lines[:1] + [lines[1].rstrip(":") + ": nothing is open.", ""])
    rows = []
    for p in found:
        if p.note:
            rows.append([p.what, p.seeds_now, "", "", "", "", len(p.cells), "", "", "", p.note])
            continue
        gpu = "" if p.gpu_hours_per_seed is None else \
            f"{max(p.expected - p.seeds_now, 0) * p.gpu_hours_per_seed:.2f} / {max(p.worst - p.seeds_now, 0) * p.gpu_hours_per_seed:.2f}"
        rows.append([p.what, p.seeds_now, " ".join(map(str, p.looks)), f"{p.expected:.1f}", p.worst, f"{p.decided:.0%}",
                     len(p.cells), seconds_text(p.expected_seconds) or "no estimate", seconds_text(p.worst_seconds),
                     gpu, ""])
    lines.append(markdown_table(rows, ["cell or claim", "seeds now", "looks", "expected seeds", "worst case",
                                       "decided by the end", "cells per seed", "expected run time", "worst case time",
                                       "GPU-hours expected / worst", "note"]))
    known = [p for p in found if not p.note and p.seconds_per_run is not None]
    if known:
        lines += ["", (f"Total still to run: expected {seconds_text(sum(p.expected_seconds for p in known)) or '0 s'}, "
                       f"worst case {seconds_text(sum(p.worst_seconds for p in known)) or '0 s'} of run time (one "
                       "after another); cells shared by several rows are counted in each.")]
    lines += ["", ("Expected and worst case: the group-sequential rule simulated with the variances of the runs so "
                   f"far ({SUITES} suites, the true differences at those observed so far), over the suites still "
                   "undecided now; the worst case is what the slowest of them used.")]
    return "\n".join(lines) + "\n"


def as_dict(found: list[Plan], max_seeds: int, per_round: int) -> dict:
    from harness.report.shared import plain

    return plain({"max_seeds": max_seeds, "seeds_per_round": per_round, "suites": SUITES,
                  "open": [{"what": p.what, "seeds_now": p.seeds_now, "looks": p.looks, "expected_seeds": p.expected,
                            "worst_case_seeds": p.worst if not p.note else None, "decided": p.decided,
                            "cells": p.cells, "seconds_per_seed": p.seconds_per_run,
                            "expected_seconds": p.expected_seconds if not p.note else None,
                            "worst_case_seconds": p.worst_seconds if not p.note else None,
                            "gpu_hours_per_seed": p.gpu_hours_per_seed, "note": p.note} for p in found]})
