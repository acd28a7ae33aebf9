"""The report's verdicts under sequential seeds: what ``harness run --until-decided`` asks
after each round, and the section a report of such a suite prints.

A look is the state after a round: the runs of the grid and of the rounds up to it. At
each look the report's own model is computed on that look's runs (the family's
``compute``: the same cells, reproduction verdicts and claims as ``harness report``), and
the group-sequential rule of ``harness.sequential`` decides over the looks so far:

- a reported cell: ``sequential_reproduction`` on its seeds at each look where it had
  more of them (Lan-DeMets O'Brien-Fleming spending over k / max seeds on both one-sided
  tests; it stops when decided, at the floor, or at max seeds);
- a claim: the same spending on the claim's two p-values as the report gives them (the
  intersection over its parts, Holm-adjusted over the suite's claims), at each look where
  its seeds (the fewer of a part's two sides, over its parts) grew: ``sequential.decide``
  at the levels of ``harness.sequential_t``, spent on the paired t statistics themselves
  (the z boundaries' nominal levels would be liberal with few seeds).
  A claim has no floor here: its parts pair by seed, and nothing but seeds is in their
  error (a part across two test sets is the exception; it stops at max seeds).

No torch: the report's modules only.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from harness import claims as claim_rules
from harness import families
from harness.claims import WORDS as CLAIM_WORDS
from harness.report.claims import claim_sides
from harness.report.verdicts import our_side
from harness.reproduction import OurSide, ReportedSide, reported_side
from harness.sequential import (
    CONTINUE,
    DECIDED,
    MAX_SEEDS,
    REASONS,
    SequentialVerdict,
    sequential_reproduction,
)
from harness.sequential_t import sequential_holm, t_levels
from harness.tost import INCONCLUSIVE, REFUTED, SUPPORTED

ALPHA = 0.05
CONTINUE_WORD = "continue"


def report_model(suite, store, specs):
    """The report's model of ``specs``' runs, computed as ``harness report`` computes it: the
    family's own ``compute`` beside its report builder, else the generic report's."""
    from harness.report import generic

    family = families.get(suite.family)
    compute = generic.compute
    if family.report:
        compute = getattr(inspect.getmodule(family.load("report")), "compute", compute)
    return compute(suite, store, {"specs": list(specs), "plots": False})


def cell_id(key: dict) -> tuple:
    """A report cell's key values as a hashable tuple, in the key's order."""
    return tuple(key.items())


@dataclass(frozen=True)
class CellDecision:
    """A reported cell's sequential verdict after the looks so far."""

    key: dict  # the report cell's key values
    metric: str
    seeds: int  # finished seeds now
    verdict: SequentialVerdict | None  # None: no look with 2 seeds yet
    fixed: str | None  # the report table's verdict (all seeds, fixed 5%)
    ours: OurSide | None = None  # at the last look (None: no look with 2 seeds yet)
    reported: ReportedSide | None = None
    margin: float = math.nan

    @property
    def open(self) -> bool:
        """Another round would add seeds to it."""
        return self.verdict is None or self.verdict.verdict is None

    @property
    def word(self) -> str:
        if self.verdict is None:
            return "no verdict (one seed)"
        return self.verdict.verdict or CONTINUE_WORD


@dataclass(frozen=True)
class ClaimDecision:
    """A claim's sequential verdict after the looks so far."""

    name: str
    verdict: str | None  # supported / refuted / inconclusive; None: run another round (or no look yet)
    reason: str  # as ``harness.sequential.REASONS``; "no look with 2 seeds a side yet"
    look: int  # the look that ended it (1-based), else the last one
    seeds: int  # a side, at that look
    looks: tuple  # the seeds at each of the claim's looks
    boundaries: tuple  # each look's critical value of a paired t on k_j - 1 df (``harness.sequential_t``)
    levels: tuple  # each look's nominal one-sided level for the claim's p-values
    p_value: float  # at that look (Holm over the suite's claims), to compare with its level
    p_refute: float
    groups: tuple  # per claim cell: the keys of its cells of both sides (they get the same new seeds)
    open_groups: tuple  # the claim cells whose parts are not yet supported at the last look's level
    fixed: str  # the report's verdict of the claim (all seeds, fixed 5%)
    test: str = ""  # the claim's test (equivalent, not_worse, better, cost_at_most)
    region: tuple = ()  # where the claim puts each part's quantity
    differences: tuple = ()  # per part at the last look: {seed: a - b in the metric's direction}, paired parts only

    @property
    def open(self) -> bool:
        return self.verdict is None

    @property
    def word(self) -> str:
        return self.verdict or CONTINUE_WORD


@dataclass
class Decisions:
    max_seeds: int
    looks: int
    keys: list  # the report's keys naming a cell
    cells: list
    claims: list
    chosen: dict = field(default_factory=dict)  # with a suite's select: cell id -> the chosen values of its over axes

    @property
    def open(self) -> bool:
        return any(c.open for c in self.cells) or any(c.open for c in self.claims)


def decide_looks(suite, store, looks: list, max_seeds: int, alpha: float = ALPHA) -> Decisions:
    """The sequential decisions after ``looks``: each look's runs (RunSpecs, the grid's and
    the rounds' so far), the last the current one; every run of them finished."""
    models = [report_model(suite, store, specs) for specs in looks]
    cells = [cell_decision(models, cell, max_seeds, alpha) for section in models[-1].sections for cell in section.cells
             if cell.reported is not None and cell.reported.margin is not None]
    claims = claim_decisions(models, max_seeds, alpha)
    return Decisions(max_seeds, len(looks), list(models[-1].keys), cells, claims, chosen_values(models[-1]))


def chosen_values(model) -> dict:
    """{cell id: the chosen values of the over axes} of the cells a suite's select chose in (per mean)."""
    selection = getattr(model, "selection", None)
    return {tuple((k, choice.cell[k]) for k in model.keys): dict(choice.chosen)
            for choice in (selection.choices if selection is not None else []) if choice.chosen}


def _growing(values: list) -> list[int]:
    """The indices where a look's seed count grew past the last kept one (from 2 seeds)."""
    kept, last = [], 1
    for i, seeds in enumerate(values):
        if seeds > last:
            kept.append(i)
            last = seeds
    return kept


def _check_max(seeds: int, max_seeds: int, what: str) -> None:
    if seeds > max_seeds:
        from harness import HarnessError

        raise HarnessError(f"{what} has {seeds} seeds, more than max seeds {max_seeds}: give a larger --max-seeds")


def cell_decision(models, cell, max_seeds: int, alpha: float) -> CellDecision:
    metric = cell.metric.name
    same = []
    for model in models:
        section = next(s for s in model.sections if s.metric.name == metric)
        same.append(next((c for c in section.cells if c.key == cell.key), None))
    counts = [len(c.seeds) if c is not None else 0 for c in same]
    _check_max(counts[-1], max_seeds, f"cell {', '.join(f'{k}={v}' for k, v in cell.key.items())}")
    kept = _growing(counts)
    entry = cell.reported
    side = reported_side(entry.value, entry.interval, entry.kind, entry.count, entry.over)
    verdict = (sequential_reproduction([our_side(same[i]) for i in kept], side, entry.margin, max_seeds, alpha)
               if kept else None)
    return CellDecision(dict(cell.key), metric, counts[-1], verdict, cell.verdict,
                        our_side(cell) if counts[-1] > 1 else None, side, entry.margin)


def claim_seeds(result) -> int:
    """A claim's seeds: the fewer of the two sides over its parts (0 without parts)."""
    return min((min(part.seeds) for part in result.parts), default=0)


def raw_claim(result):
    """The claim before the Holm over the suite's claims (the sequential Holm replaces it)."""
    parts = [p.claim for p in result.parts]
    return parts[0] if len(parts) == 1 else claim_rules.intersection(result.statement, parts)


def claim_decisions(models, max_seeds: int, alpha: float) -> list[ClaimDecision]:
    """Every claim's decision: each claim's p-values at its own looks, the suite's claims
    sharing alpha by ``sequential_holm`` on the support p's and, apart, on the refute p's."""
    last = models[-1]
    histories, seeds, kept, support, refute = [], [], [], [], []
    for result in last.claims:
        history = [next(r for r in model.claims if r.spec.name == result.spec.name) for model in models]
        counts = [claim_seeds(r) for r in history]
        _check_max(counts[-1], max_seeds, f"claim {result.spec.name}")
        looks = _growing(counts)
        raw = [raw_claim(history[i]) for i in looks]
        histories.append(history)
        kept.append(tuple(looks))
        seeds.append(tuple(counts[i] for i in looks))
        support.append(np.array([[c.p_value for c in raw]]))
        refute.append(np.array([[c.p_refute for c in raw]]))
    family = [i for i, result in enumerate(last.claims) if result.claim is not None and kept[i]]
    supported, refuted = (sequential_holm([p[i] for i in family], [seeds[i] for i in family],
                                          [kept[i] for i in family], max_seeds, alpha)[0] for p in (support, refute))
    found = []
    for i, result in enumerate(last.claims):
        where = family.index(i) if i in family else None
        crossed = (-1, -1) if where is None else (int(supported[where]), int(refuted[where]))
        others = [(int(supported[j]), kept[family[j]]) for j in range(len(family)) if j != where]
        found.append(claim_decision(models, result, histories[i], seeds[i], kept[i], support[i][0], refute[i][0],
                                    crossed, others, max_seeds, alpha))
    return found


def _level(seeds: tuple, j: int, others: list, look: int, max_seeds: int, alpha: float) -> float:
    """The support level of the claim's look ``j`` (the family's look ``look``): alpha's
    spending shared by this claim and the others not supported by the end of that look
    (``others``: (the index of the other claim's look where it was supported or -1, its
    looks in the family's)). The level a supported claim shows is at least the one it
    crossed; an open claim's is the one it missed."""
    count = 1 + sum(1 for r, at in others if r < 0 or at[r] > look)
    return float(t_levels(seeds, max_seeds, alpha / count)[j])


def claim_decision(models, result, history, seeds, kept, p_support, p_refute, crossed, others, max_seeds: int,
                   alpha: float) -> ClaimDecision:
    last = models[-1]
    name = result.spec.name
    metric = result.spec.metric or last.sections[0].metric.name
    section = next(s for s in last.sections if s.metric.name == metric)
    sides = claim_sides(result.spec, section.cells, last.keys)
    groups = [(values, tuple(dict(cell.key) for cell in a_side + b_side)) for values, a_side, b_side in sides]
    shape = {"test": result.spec.test, "region": result.parts[0].claim.region if result.parts else (),
             "differences": paired_differences(result, sides)}
    if not kept:
        return ClaimDecision(name, None, "no look with 2 seeds a side yet", len(models), claim_seeds(history[-1]), (),
                             (), (), math.nan, math.nan, tuple(g for _, g in groups), tuple(g for _, g in groups),
                             result.verdict, **shape)
    ends = [c for c in crossed if c >= 0]
    look = min(ends) if ends else len(kept) - 1
    code = SUPPORTED if crossed[0] == look else REFUTED if crossed[1] == look else INCONCLUSIVE
    reason = DECIDED if ends else MAX_SEEDS if seeds[-1] >= max_seeds else CONTINUE
    levels = tuple(_level(seeds, j, others, kept[j], max_seeds, alpha) for j in range(look + 1))
    unsupported = {tuple(p.cell.items()) for p in result.parts
                   if not p.claim.p_value <= levels[-1]}  # NaN (one seed a side) counts as not supported
    open_groups = tuple(g for values, g in groups if tuple(values.items()) in unsupported) or tuple(g for _, g in groups)
    bounds = -special.stdtrit(np.asarray(seeds[:look + 1], dtype=float) - 1, np.asarray(levels))
    return ClaimDecision(name, None if reason == CONTINUE else CLAIM_WORDS[code], REASONS[reason], look + 1,
                         seeds[look], tuple(seeds), tuple(bounds), levels, float(p_support[look]),
                         float(p_refute[look]), tuple(g for _, g in groups), open_groups, result.verdict, **shape)


def paired_differences(result, sides: list) -> tuple:
    """Each paired part's {seed: A - B} in the metric's direction, over the seeds both sides
    ran (what a plan of the claim draws from); empty for a cost claim."""
    if result.spec.test == "cost_at_most":
        return ()
    pairs = [(a, b) for _, a_side, b_side in sides for a in a_side for b in b_side]
    found = []
    for part, (a, b) in zip(result.parts, pairs):
        if part.claim.test.startswith("paired"):
            sign = 1.0 if a.metric.direction == "higher" else -1.0
            found.append({seed: sign * (a.by_seed[seed] - b.by_seed[seed]) for seed in a.by_seed if seed in b.by_seed})
    return tuple(found)


# -- the report's section ------------------------------------------------------------------

RULE = [
    ("Sequential seeds (`harness run --until-decided`): the grid's seeds are the first round; each later round adds "
     "new seeds (the next integers after a cell's largest) only to the cells still undecided, both sides of a claim "
     "cell alike (they stay paired by seed), up to max seeds per cell. Looking after every round at a fixed 5% would "
     "inflate the error, so each verdict is the group-sequential rule's (harness.sequential): the two one-sided tests "
     "spend their 5% along the information fraction t = k / max seeds by the Lan-DeMets O'Brien-Fleming-type "
     "function, and look j tests at the nominal level 1 − Φ(c_j) of its boundary c_j instead of 5%."),
    ("A reported cell stops when decided, when no number of seeds can decide its margin ('cannot be decided at this "
     "margin': the paper's ± and the shared test set leave a floor), or at max seeds; a claim spends the same function "
     "on its paired t statistics themselves (harness.sequential_t: the z boundaries' levels are liberal with few seeds), "
     "the suite's claims sharing the 5% by a sequential Holm (each look's levels spend 5% / the claims not yet "
     "supported; apart for refuted), and stops when supported or refuted, or at max seeds. The p-values shown are "
     "the claim's own, to compare with its level. The table's "
     "verdicts above use all seeds at a fixed 5%; where they differ from these, these are the ones whose error is "
     "controlled under the looks."),
]


def _look_text(seeds: tuple, levels: tuple) -> str:
    return ", ".join(f"{k} (level {level:.2g})" for k, level in zip(seeds, levels))


def markdown_lines(decisions: Decisions) -> list[str]:
    from harness.report.shared import p_text
    from harness.tables import markdown_table

    lines = ["", "## Sequential seeds", "", f"Max seeds per cell: {decisions.max_seeds}; looks so far: {decisions.looks}.", ""]
    if decisions.cells:
        rows = []
        for d in decisions.cells:
            v = d.verdict
            cell = ", ".join(f"{k}={value}" for k, value in d.key.items())
            if v is None:
                rows.append([cell, d.metric, d.word, "", d.seeds, "", "", "", d.fixed or ""])
                continue
            rows.append([cell, d.metric, d.word, v.reason, f"{v.seeds} (look {v.look})",
                         _look_text(v.looks[:v.look], v.levels[:v.look]),
                         f"{v.difference:+.2f} [{v.low:+.2f}, {v.high:+.2f}]", p_text(v.p_equivalent), d.fixed or ""])
        lines += [markdown_table(rows, ["cell", "metric", "sequential verdict", "why it stopped", "seeds used",
                                        "looks: seeds (level)", "ours − reported [repeated CI]", "p equivalent",
                                        "fixed-sample verdict"]), ""]
    if decisions.claims:
        rows = [[c.name, c.word, c.reason, f"{c.seeds} a side (look {c.look})" if c.looks else c.seeds,
                 _look_text(c.looks[:c.look], c.levels), p_text(c.p_value), p_text(c.p_refute), c.fixed] for c in decisions.claims]
        lines += [markdown_table(rows, ["claim", "sequential verdict", "why it stopped", "seeds used",
                                        "looks: seeds (level)", "p", "p refuted", "fixed-sample verdict"]),
                  ""]
    return lines + RULE


def as_dict(decisions: Decisions) -> dict:
    """The decisions as JSON-safe values (the rounds' state keeps each look's)."""
    from harness.report.shared import plain

    def verdict(v: SequentialVerdict | None) -> dict | None:
        if v is None:
            return None
        return plain({"verdict": v.verdict, "reason": v.reason, "look": v.look, "seeds": v.seeds, "looks": v.looks,
                      "levels": v.levels, "difference": v.difference, "low": v.low, "high": v.high,
                      "p_equivalent": v.p_equivalent, "p_different": v.p_different})

    return plain({
        "max_seeds": decisions.max_seeds, "looks": decisions.looks,
        "cells": [{"cell": d.key, "metric": d.metric, "seeds": d.seeds, "word": d.word, "open": d.open,
                   "sequential": verdict(d.verdict), "fixed": d.fixed} for d in decisions.cells],
        "claims": [{"claim": c.name, "word": c.word, "reason": c.reason, "open": c.open, "look": c.look, "seeds": c.seeds,
                    "looks": c.looks, "levels": c.levels, "p_value": c.p_value, "p_refute": c.p_refute,
                    "fixed": c.fixed, "cells": _unique(c.groups), "open_cells": _unique(c.open_groups) if c.open else []}
                   for c in decisions.claims],
    })


def _unique(groups) -> list[dict]:
    """The cells of claim cells, each once."""
    return list({cell_id(key): key for group in groups for key in group}.values())
