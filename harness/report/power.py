"""`harness plan SUITE --power`: how many seeds do I need? From the runs finished so far,
per reported cell and per part of each claim, the seeds that would decide it with 80%
power (``harness.seedplan``), or that no number of seeds can at this margin, with the floor
(the standard error left with infinitely many seeds) and the smallest decidable margin.

Reported cells: the reproduction verdict's variance model (``harness.reproduction``) with
our seed variance estimated from the finished seeds, at a true difference 0. Claims: the
difference of the two sides over seeds (paired: the variance of the per-seed differences;
Welch: the sum of the two sides' variances, plus the errors of two different test sets),
at a true difference 0 for "equivalent" and "not worse", and at the observed difference for
"better" and "cost at most" (which have no such neutral point: a planning assumption,
said so). No torch; the same cells as the report (``harness.report.cells``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from harness import families
from harness.report.cells import build as build_cells
from harness.report.cells import done_rows, shared_error
from harness.report.claims import costs_of, first_config, part_claim, side_text
from harness.report.collect import collect
from harness.report.paired import Pairing
from harness.report.shared import group_keys, plain
from harness.report.verdicts import judge_reported, our_side
from harness.reproduction import reported_side, variance_model
from harness.seedplan import (
    VarianceModel,
    floor_forbids,
    seeds_for_region,
    seeds_needed,
)
from harness.suite_report import matches
from harness.tables import markdown_table
from harness.tost import t_quantile

POWER, ALPHA = 0.8, 0.05


@dataclass(frozen=True)
class Need:
    """The seeds one verdict needs."""

    what: dict  # the row's identifying fields (cell keys, or claim, cell, sides)
    seeds: int  # finished seeds now (the fewer of the two sides for a claim)
    margin: float | None
    now: str  # the verdict now (or why none)
    needed: str  # the seeds for 80% power, "cannot be decided at this margin", or why not known
    floor_se: float  # the se with infinitely many seeds (nan: unknown)
    smallest_margin: float  # the smallest margin any number of seeds decides with 80% power (nan: unknown)
    assumed: str  # the true difference the power is computed at


def reported_needs(suite, cells) -> list[Need]:
    needs = []
    for cell in cells:
        entry = cell.reported
        if entry is None:
            continue
        what = {**cell.key, "metric": cell.metric.name}
        if entry.margin is None:
            needs.append(Need(what, len(cell.seeds), None, "no margin", "set report: {margin: ...}", math.nan, math.nan, ""))
            continue
        if len(cell.seeds) < 2:
            needs.append(Need(what, 1, entry.margin, "one seed: no verdict",
                              "2 finished seeds are needed to estimate the seed variance", math.nan, math.nan, "0"))
            continue
        side = reported_side(entry.value, entry.interval, entry.kind, entry.count, entry.over)
        model = variance_model(our_side(cell), side)
        plan = seeds_needed(entry.margin, model, ALPHA, POWER)
        cannot = bool(floor_forbids(entry.margin, model, len(cell.seeds), ALPHA, POWER))
        needed = (f"decided now ({cell.verdict})" if cell.verdict != "inconclusive"
                  else "cannot be decided at this margin" if cannot
                  else str(plan.seeds) if plan.seeds is not None else plan.reason)
        needs.append(Need(what, len(cell.seeds), entry.margin, cell.verdict, needed, plan.floor_se, plan.smallest_margin,
                          "0"))
    return needs


def difference_model(a, b, pairing, values=None) -> tuple[VarianceModel, float]:
    """(the variance model of a - b over seeds, the observed difference) for a claim's part."""
    mine, theirs = values or (a.by_seed, b.by_seed)
    differ = pairing.differing(a, b)
    common = sorted(set(mine) & set(theirs))
    if not differ and len(common) >= 2:
        d = np.array([mine[s] - theirs[s] for s in common])
        return VarianceModel(float(d.var(ddof=1))), float(d.mean())
    x, y = np.array(list(mine.values())), np.array(list(theirs.values()))
    fixed = ()
    if values is None and pairing.units & set(differ):
        fixed = tuple(part for part in (shared_error(a), shared_error(b)) if part)
    spread = (x.var(ddof=1) if len(x) > 1 else math.nan) + (y.var(ddof=1) if len(y) > 1 else math.nan)
    return VarianceModel(float(spread), 0, fixed), float(x.mean() - y.mean())


def smallest_margin(model: VarianceModel, two_sided: bool) -> float:
    se, df = model.floor()
    z = special.ndtri(1 - (1 - POWER) / 2) if two_sided else special.ndtri(POWER)
    return float((t_quantile(1 - ALPHA, df) + z) * se)


def claim_needs(suite, cells: dict, pairings: dict, keys: list[str]) -> list[Need]:
    margins = suite.report_options.get("margin") or {}
    needs = []
    for spec in suite.claims:
        metric = spec.metric or next(iter(cells))
        margin = spec.margin if spec.margin is not None else margins.get(metric)
        compared = list(spec.a)
        kept = [c for c in cells[metric] if matches(first_config(c), spec.where)]
        by_cell: dict[tuple, list] = {}
        for cell in kept:
            by_cell.setdefault(tuple(cell.key[k] for k in keys if k not in compared), []).append(cell)
        for group in by_cell.values():
            a_side = [c for c in group if matches(first_config(c), spec.a)]
            b_side = [c for c in group if matches(first_config(c), spec.b)]
            for a in a_side:
                for b in b_side:
                    now = part_claim(spec, a, b, pairings[metric], margin, ALPHA, ("A", "B")).verdict
                    needs.append(claim_need(spec, a, b, pairings[metric], margin, keys, compared, now))
    return needs


def claim_need(spec, a, b, pairing, margin, keys, compared, now: str) -> Need:
    what = {"claim": spec.name, "cell": ", ".join(f"{k}={a.key[k]}" for k in keys if k not in compared),
            "A": side_text(a, compared), "B": side_text(b, compared)}
    seeds = min(len(a.seeds), len(b.seeds))
    if spec.test == "cost_at_most":
        costs = ({s: math.log(v) for s, v in costs_of(a, spec.cost).items()},
                 {s: math.log(v) for s, v in costs_of(b, spec.cost).items()})
        model, observed = difference_model(a, b, pairing, costs)
        low, high, truth, assumed = -math.inf, math.log(spec.ratio), observed, f"observed ratio ×{math.exp(observed):.3g}"
    else:
        model, observed = difference_model(a, b, pairing)
        sign = 1.0 if a.metric.direction == "higher" else -1.0
        if spec.test == "equivalent":
            low, high, truth, assumed = -margin, margin, 0.0, "0"
        elif spec.test == "not_worse":
            low, high, truth, assumed = -margin, math.inf, 0.0, "0"
        else:
            low, high, truth, assumed = 0.0, math.inf, sign * observed, f"observed {sign * observed:+.3g}"
    if spec.test not in ("equivalent", "not_worse"):
        margin = None
    if seeds < 2 or math.isnan(model.seed_variance):
        return Need(what, seeds, margin, "one seed a side: no verdict",
                    "2 finished seeds a side are needed to estimate the seed variance", math.nan, math.nan, assumed)
    needed = seeds_for_region(low, high, model, truth, ALPHA, POWER)
    floor_se = float(model.floor()[0])
    if now in ("supported", "refuted"):
        text = f"decided now ({now})"
    elif needed is None:
        text = ("cannot be supported at the observed difference" if not low < truth < high
                else "cannot be decided at this margin" if floor_se > 0 else "more than 1000 seeds")
    else:
        text = str(needed)
    two_sided = math.isfinite(low) and math.isfinite(high)
    return Need(what, seeds, margin, now, text, floor_se,
                smallest_margin(model, two_sided) if spec.test in ("equivalent", "not_worse") else math.nan, assumed)


def needs(suite, store, specs=None) -> tuple[list[Need], list[Need], int]:
    """(reported cells' needs, claims' needs, finished runs) from the suite's records."""
    runs, _ = collect(suite, store, specs=specs)
    family = families.get(suite.family)
    keys, rows = group_keys(suite), done_rows(runs)
    cells, pairings = {}, {}
    reported = []
    for metric in family.metrics:
        cells[metric.name] = build_cells(rows, keys, metric, by_seed=True)
        pairings[metric.name] = Pairing.of(family, metric)
        judge_reported(suite, cells[metric.name])
        reported += reported_needs(suite, cells[metric.name])
    claimed = claim_needs(suite, cells, pairings, keys) if suite.claims else []
    return reported, claimed, len(rows)


def number(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.3g}"


NOTES = [
    ("Seeds for 80% power: the smallest number of seeds (in all, per cell; for a claim, per side) with which the "
     "verdict would be decided with 80% probability, computed exactly for the rule the report applies (its t "
     "quantiles and degrees of freedom), with the seed variance estimated from the finished seeds (more seeds "
     "sharpen it: rerun --power as they finish)."),
    ("A reported cell: 'reproduced' decided when the true difference is 0; 'cannot be decided at this margin': the "
     "reported ± and the test set our seeds share leave a floor under the standard error (floor se) that no number "
     "of seeds removes, and δ is below the smallest margin any number of seeds can decide with 80% power (with the "
     "seed variance at its 90% lower confidence limit)."),
    ("A claim's part: 'equivalent' and 'not worse' supported when the true difference is 0; 'better' and 'cost at "
     "most' at the difference observed so far (an assumption: if it is smaller, more seeds are needed). A claim over "
     "several parts needs every part decided: at least its largest number."),
]


def text(reported: list[Need], claimed: list[Need], finished: int) -> str:
    lines = ["", f"How many seeds do I need? ({POWER:.0%} power, {ALPHA:.0%} tests; from the {finished} finished runs)", ""]
    if not reported and not claimed:
        return "\n".join(lines + ["No reported number and no claim to plan for (the suite's reported: and claims:).", ""])
    if reported:
        keys = list(reported[0].what)
        rows = [[need.what[k] for k in keys] + [need.seeds, number(need.margin), need.now or "", need.needed,
                                                 number(need.floor_se), number(need.smallest_margin)] for need in reported]
        lines += ["Reported numbers:", "", markdown_table(rows, keys + ["seeds now", "δ", "verdict now", "seeds for 80% power",
                                                                      "floor se", "smallest decidable δ"]), ""]
    if claimed:
        rows = [[n.what["claim"], n.what["cell"], n.what["A"], n.what["B"], n.seeds, number(n.margin), n.now,
                 n.assumed, n.needed, number(n.floor_se), number(n.smallest_margin)] for n in claimed]
        lines += ["Claims (per part):", "", markdown_table(rows, ["claim", "cell", "A", "B", "seeds now (a side)", "δ",
                                                                 "part now", "true difference assumed",
                                                                 "seeds for 80% power", "floor se",
                                                                 "smallest decidable δ"]), ""]
    return "\n".join(lines + NOTES + [""])


def as_dict(reported: list[Need], claimed: list[Need], finished: int) -> dict:
    def entry(need: Need) -> dict:
        return {**need.what, "seeds": need.seeds, "margin": need.margin, "verdict_now": need.now or None,
                "seeds_needed": int(need.needed) if need.needed.isdigit() else None, "needed": need.needed,
                "floor_se": need.floor_se, "smallest_margin": need.smallest_margin, "assumed_difference": need.assumed}

    return plain({"power": POWER, "alpha": ALPHA, "finished_runs": finished, "reported": [entry(n) for n in reported],
                  "claims": [entry(n) for n in claimed], "notes": NOTES})

