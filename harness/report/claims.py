"""A suite's claims (``claims:``) tested on its cells, and their section in every format.

A claim compares the runs its ``a`` selects with those its ``b`` selects, in each claim
cell: the report's cells that agree on every cell key but the ones ``a`` and ``b`` name,
kept by ``where``. In each claim cell, each cell of side A meets each cell of side B
(``versus: each``: every B method; ``versus: best``: the same parts, the empirical best of
B marked, so the claim holds against whichever B is truly best). Each part is a test of
``harness.claims`` on the part's difference, paired by seed by the report's one pairing
rule (``harness.report.paired.Pairing``), Welch otherwise; a cost claim is the ratio of
geometric means of the per-run training cost (a test on log costs). A claim holds when
every part holds, is refuted when a part is refuted after Holm over the parts
(``harness.claims.intersection``), and the suite's claims together are Holm-adjusted
(``harness.claims.family``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness import claims as rules
from harness.report.cells import grouped
from harness.report.shared import latex_escape, latex_table, p_text, usual_variants
from harness.suite_report import matches

COST_WORDS = {"train_seconds": "training seconds", "train_gpu_hours": "training GPU-hours",
              "train_cpu_hours": "training CPU core-hours"}


@dataclass(frozen=True)
class Part:
    """One comparison of a claim: a cell of side A against a cell of side B in one claim cell."""

    cell: dict  # the claim cell's key values (the report's keys but those the claim compares)
    a: str  # side A's cell, in words
    b: str
    claim: rules.Claim  # the test's estimate, 90% interval, region, p-values and verdict
    seeds: tuple  # (A's seeds, B's seeds)
    best: bool = False  # B is the empirical best of side B in this claim cell (versus: best)


@dataclass
class ClaimResult:
    spec: object  # harness.suite_report.Claim
    statement: str
    claim: rules.Claim | None  # the whole claim (after ``harness.claims.family``: Holm over the suite's claims)
    parts: list = field(default_factory=list)
    note: str = ""  # why there is no verdict

    @property
    def verdict(self) -> str:
        return self.claim.verdict if self.claim is not None else rules.NO_VERDICT

    @property
    def p_value(self) -> float:
        """Small: supported (Holm over the suite's claims)."""
        return self.claim.p_value if self.claim is not None else math.nan

    @property
    def p_refute(self) -> float:
        return self.claim.p_refute if self.claim is not None else math.nan

    @property
    def ratio(self) -> bool:
        return self.spec.test == "cost_at_most"


def side_text(cell, names: list[str], usual: dict | None = None) -> str:
    """A side's cell in a claim's table: the value of the one compared key, or key=value of
    each; then the method's variants where the cell's is not the ``usual`` one ("imtl
    (imtl_solver=official)")."""
    values = [str(cell.key.get(k)) for k in names]
    text = values[0] if len(values) == 1 else ", ".join(f"{k}={v}" for k, v in zip(names, values))
    other = [f"{k}={cell.key.get(k)}" for k, value in (usual or {}).items() if cell.key.get(k) != value]
    return f"{text} ({', '.join(other)})" if other else text


def first_config(cell) -> dict:
    return cell.runs[0]["config"]


def run_cost(row: dict, name: str) -> float:
    """A run's training cost ``name`` (train_seconds, train_gpu_hours, train_cpu_hours);
    NaN when its training time is not recorded."""
    try:
        seconds = float(row.get("train_seconds"))
    except (TypeError, ValueError):
        return math.nan
    if name == "train_seconds":
        return seconds
    if name == "train_gpu_hours":
        on_gpu = str(row.get("device") or "").startswith("cuda")
        return seconds * (row.get("gpus") or 0) / 3600 if on_gpu else 0.0
    return seconds * (row.get("cpus") or 1) / 3600


def costs_of(cell, name: str) -> dict:
    """{seed: cost} of the cell's runs with a positive, recorded cost (a log needs one)."""
    found = {row["seed"]: run_cost(row, name) for row in cell.runs}
    return {seed: value for seed, value in found.items() if value > 0}


def evaluate(suite, sections: dict, pairings: dict, keys: list[str], alpha: float = 0.05) -> list[ClaimResult]:
    """Every claim of the suite, Holm-adjusted together. ``sections``: metric name -> its
    cells by the report's ``keys`` (the first: the headline, whose cells a cost claim
    uses); ``pairings``: metric name -> its ``Pairing``."""
    margins = suite.report_options.get("margin") or {}
    results = []
    for spec in suite.claims:
        metric = spec.metric or next(iter(sections))
        results.append(one_claim(spec, sections[metric], pairings[metric], keys,
                                 spec.margin if spec.margin is not None else margins.get(metric), alpha))
    tested = [r for r in results if r.claim is not None]
    for result, adjusted in zip(tested, rules.family([r.claim for r in tested], alpha)):
        result.claim = adjusted
    return results


def claim_keys(spec, keys: list[str]) -> tuple[list[str], list[str]]:
    """(the keys naming a claim cell, the keys naming a side): a claim compares the keys of
    its side A (``method``) and, with the method, the method's variants (``CellKeys.variants``:
    the official IMTL is one more B cell beside the exact one)."""
    compared = list(spec.a)
    if "method" in compared:
        compared += [k for k in getattr(keys, "variants", ()) if k not in compared]
    return [k for k in keys if k not in compared], compared


def claim_sides(spec, cells: list, keys: list[str]) -> list[tuple]:
    """(claim cell values, side A's cells, side B's cells) of each claim cell where both
    sides ran (kept by the claim's ``where``); ``one_claim`` tests each A cell against each
    B cell in this order, and the sequential decisions follow the same order."""
    cell_keys, _ = claim_keys(spec, keys)
    kept = [cell for cell in cells if matches(first_config(cell), spec.where)]
    found = []
    for values, group in grouped(kept, cell_keys):
        a_side = [cell for cell in group if matches(first_config(cell), spec.a)]
        b_side = [cell for cell in group if matches(first_config(cell), spec.b)]
        if a_side and b_side:
            found.append((dict(zip(cell_keys, values)), a_side, b_side))
    return found


def one_claim(spec, cells: list, pairing, keys: list[str], margin, alpha: float) -> ClaimResult:
    compared = list(spec.a)
    variants = [k for k in claim_keys(spec, keys)[1] if k not in compared]  # shown only where unusual
    parts = []
    for cell, a_side, b_side in claim_sides(spec, cells, keys):
        sign = 1.0 if a_side[0].metric.direction == "higher" else -1.0
        best = max(b_side, key=lambda cell: sign * cell.mean) if spec.versus == "best" else None
        usual = usual_variants(a_side + b_side, variants)
        for a in a_side:
            for b in b_side:
                names = (side_text(a, compared, usual), side_text(b, compared, usual))
                parts.append(Part(cell, *names, part_claim(spec, a, b, pairing, margin, alpha, names),
                                  (len(a.seeds), len(b.seeds)), b is best))
    statement = describe(spec, margin)
    if not parts:
        return ClaimResult(spec, statement, None, [], "no cell has finished runs of both sides yet")
    whole = parts[0].claim if len(parts) == 1 else rules.intersection(statement, [p.claim for p in parts], alpha)
    untested = sum(math.isnan(part.claim.p_value) for part in parts)
    note = f"{untested} of {len(parts)} parts with one seed a side: not tested" if untested else ""
    return ClaimResult(spec, statement, whole, parts, note)


def part_claim(spec, a, b, pairing, margin, alpha: float, names: tuple) -> rules.Claim:
    if spec.test == "cost_at_most":
        a_costs, b_costs = costs_of(a, spec.cost), costs_of(b, spec.cost)
        differ = pairing.differing(a, b)
        return rules.cost_ratio(a_costs, b_costs, spec.ratio, paired=not differ, alpha=alpha, names=names,
                                why_not=f"{', '.join(differ)} differ" if differ else "")
    difference = pairing.difference(a, b)
    direction = a.metric.direction
    if spec.test == "equivalent":
        return rules.equivalent({}, {}, margin, alpha=alpha, names=names, difference=difference)
    if spec.test == "not_worse":
        return rules.not_worse({}, {}, margin, direction=direction, alpha=alpha, names=names, difference=difference)
    return rules.better({}, {}, direction=direction, alpha=alpha, names=names, difference=difference)


def describe(spec, margin) -> str:
    """The claim in words, as tested."""
    def side(rule):
        return ", ".join(f"{k}={'/'.join(map(str, v))}" for k, v in rule.items())

    several = any(len(v) > 1 for v in spec.b.values())
    a, b = side(spec.a), (("the best of " if spec.versus == "best" else "each of ") if several else "") + side(spec.b)
    where = f" (where {side(spec.where)})" if spec.where else ""
    if spec.test == "cost_at_most":
        return f"{a}'s {COST_WORDS[spec.cost]} per run at most {spec.ratio:g} × {b}'s{where}"
    if spec.test == "equivalent":
        return f"{a} equivalent to {b} within ±{margin:g} {spec.metric}{where}"
    if spec.test == "not_worse":
        return f"{a} not worse than {b} by {margin:g} {spec.metric} or more{where}"
    return f"{a} better than {b} in {spec.metric}{where}"


# -- the section in each format ------------------------------------------------------------

RULE = [
    ("Claims: each is tested in every claim cell where both sides ran (the runs agreeing on every cell key but those "
     "the claim compares, kept by its `where`): each cell of side A against each cell of side B, on the difference "
     "A − B in the metric's direction (positive: A better), or for a cost on the ratio of the geometric means of the "
     "per-run training cost (a test on log costs), with its 90% interval. Paired by seed where the runs pair (as in "
     "the comparisons), Welch otherwise."),
    ("supported: the 90% interval lies inside the claim's region (one-sided t-tests at 5%: equivalent (−δ, +δ), "
     "by two one-sided tests; not worse (−δ, ∞); better (0, ∞); cost at most r: ratio below r); refuted: the data "
     "put the quantity outside the region at 5%; inconclusive otherwise; one seed a side: no verdict."),
    ("A claim over several cells or methods holds when every part holds (its p: the largest part's) and is refuted "
     "when one part is refuted after Holm over the parts; `versus: best` asks the same of every method of B, so it "
     "holds against whichever is truly best (* marks the empirical best). p and p refuted are Holm-adjusted over the "
     "suite's claims: no claim is wrongly supported, or wrongly refuted, more than 5% of the time."),
]


def cell_text(part: Part) -> str:
    return ", ".join(f"{k}={v}" for k, v in part.cell.items())


def estimate_text(part: Part, ratio: bool) -> str:
    claim = part.claim
    if math.isnan(claim.estimate):
        return ""
    if ratio:
        return f"×{claim.estimate:.3g} [{claim.low:.3g}, {claim.high:.3g}]" if not math.isnan(claim.low) else f"×{claim.estimate:.3g}"
    if math.isnan(claim.low):
        return f"{claim.estimate:+.2f}"
    return f"{claim.estimate:+.2f} [{claim.low:+.2f}, {claim.high:+.2f}]"


def region_text(part: Part, ratio: bool) -> str:
    low, high = part.claim.region
    if ratio:
        return f"< {high:g}"
    if math.isinf(high):
        return f"> {low:g}"
    return f"({low:g}, {high:g})"


def markdown_lines(results: list[ClaimResult]) -> list[str]:
    from harness.tables import markdown_table

    if not results:
        return []
    rows = [[r.spec.name, r.statement, r.verdict + (f" ({r.note})" if r.note else ""), p_text(r.p_value),
             p_text(r.p_refute), len({tuple(p.cell.items()) for p in r.parts})] for r in results]
    lines = ["", "## Claims", "", markdown_table(rows, ["claim", "as tested", "verdict", "p (Holm)", "p refuted (Holm)",
                                                         "cells"]), ""]
    lines += [f"- {r.spec.name}: “{r.spec.quote}” ({r.spec.source})" for r in results]
    parts = [[r.spec.name, cell_text(p), p.a, p.b + (" *" if p.best else ""), f"{p.seeds[0]} vs {p.seeds[1]}",
              estimate_text(p, r.ratio), region_text(p, r.ratio), p_text(p.claim.p_value), p_text(p.claim.p_refute),
              p.claim.verdict, p.claim.test] for r in results for p in r.parts]
    if parts:
        lines += ["", markdown_table(parts, ["claim", "cell", "A", "B", "seeds", "A − B (cost: A / B) [90% CI]",
                                             "claim's region", "p", "p refuted", "part", "test"])]
    return lines + ["", *RULE]


def latex_lines(suite, results: list[ClaimResult]) -> list[str]:
    if not results:
        return []
    rows = [[latex_escape(r.spec.name), latex_escape(r.statement), latex_escape(r.verdict), latex_escape(p_text(r.p_value)),
             latex_escape(p_text(r.p_refute))] for r in results]
    caption = latex_escape(f"{suite.name}: the paper's claims as tested. " + " ".join(RULE))
    lines = latex_table(["claim", "as tested", "verdict", "p (Holm)", "p refuted (Holm)"], rows, caption,
                        f"tab:{suite.name}-claims", align="llll" + "r")
    parts = [[latex_escape(x) for x in (r.spec.name, cell_text(p), p.a, p.b + (" *" if p.best else ""),
                                        estimate_text(p, r.ratio), region_text(p, r.ratio), p_text(p.claim.p_value),
                                        p.claim.verdict)] for r in results for p in r.parts]
    if parts:
        lines += latex_table(["claim", "cell", "A", "B", "A − B (A / B) [90% CI]", "region", "p", "part"], parts,
                             latex_escape(f"{suite.name}: each claim's parts (per cell and method of B); * the "
                                          "empirical best of B."), f"tab:{suite.name}-claim-parts", align="llllrlrl")
    return lines


def tidy_rows(results: list[ClaimResult]) -> list[dict]:
    """row=claim: the claim's verdict and Holm-adjusted p's; row=claim_part: each part."""
    rows = []
    for r in results:
        rows.append({"row": "claim", "claim": r.spec.name, "test": r.spec.test, "statement": r.statement,
                     "verdict": r.verdict, "p_value": r.p_value, "p_refute": r.p_refute, "note": r.note or None,
                     "quote": r.spec.quote, "source": r.spec.source})
        for p in r.parts:
            rows.append({"row": "claim_part", "claim": r.spec.name, "test": r.spec.test, **p.cell, "a": p.a, "b": p.b,
                         "empirical_best": p.best, "value": p.claim.estimate, "low": p.claim.low, "high": p.claim.high,
                         "interval": "90% (ratio of geometric means)" if r.ratio else "90%",
                         "region_low": p.claim.region[0], "region_high": p.claim.region[1],
                         "p_value": p.claim.p_value, "p_refute": p.claim.p_refute, "verdict": p.claim.verdict,
                         "seeds": p.seeds[0], "seeds_b": p.seeds[1], "test_used": p.claim.test})
    return rows


def json_entries(results: list[ClaimResult]) -> list[dict]:
    return [{"name": r.spec.name, "test": r.spec.test, "statement": r.statement, "verdict": r.verdict,
             "p_value": r.p_value, "p_refute": r.p_refute, "note": r.note, "quote": r.spec.quote, "source": r.spec.source,
             "versus": r.spec.versus, "margin": r.spec.margin, "ratio": r.spec.ratio, "cost": r.spec.cost,
             "parts": [{"cell": p.cell, "a": p.a, "b": p.b, "empirical_best": p.best, "seeds": list(p.seeds),
                        "estimate": p.claim.estimate, "low": p.claim.low, "high": p.claim.high,
                        "quantity": "ratio" if r.ratio else "difference", "region": list(p.claim.region),
                        "p_value": p.claim.p_value, "p_refute": p.claim.p_refute, "verdict": p.claim.verdict,
                        "test": p.claim.test} for p in r.parts]} for r in results]
