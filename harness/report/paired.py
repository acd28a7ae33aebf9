"""Paired comparisons with a baseline: every other method's cell against the baseline's
cell of its comparison group (the same values of every key but the method), with the
test chosen by what the runs share, and the notes that define each test.

With per-unit samples (test episodes): paired over seeds, or over the units of the one
common seed, when both sides were tested on the same units (their configs agree on
``shared_by``, default ``shared_keys``, and the sample counts are equal), Welch
otherwise (``harness.stats.compare_by_sample``). Without samples: paired by seed when
the configs agree on ``shared_by``, Welch otherwise (``compare_by_seed``).
"""
from __future__ import annotations

import math

from harness.report.cells import grouped
from harness.report.model import Cell, Comparison
from harness.report.shared import comparison_keys
from harness.stats import compare_by_sample, compare_by_seed, verdict


def evaluation_keys(family) -> tuple[str, ...]:
    """The config keys that fix what a run is tested on, by the naming convention of the
    keys: ``test_*`` and ``eval_*`` (the few-shot test episodes: test_episodes,
    test_queries, eval_seed, ...). Runs of one comparison group share its keys already."""
    return tuple(name for name in family.keys if name.startswith(("test_", "eval_")))


def shared_keys(family, metric, given=None) -> tuple[str, ...]:
    """The config keys two runs must agree on to have been tested on the same units:
    ``given`` (a family report's ``options["shared_by"]``), else the metric's own
    ``shared_by`` when its family declares one, else ``evaluation_keys``."""
    if given is not None:
        return tuple(given)
    declared = getattr(metric, "shared_by", None)
    return tuple(declared) if declared is not None else evaluation_keys(family)


def differing_keys(configs, baseline_configs, keys) -> list[str]:
    """The keys on which some run of one side and some run of the other disagree."""
    return sorted({k for a in configs for b in baseline_configs for k in keys if a.get(k) != b.get(k)})


def compare(cells: list[Cell], keys: list[str], baseline: str | None, shared_by) -> list[Comparison]:
    """The comparison of each cell whose method is not the baseline with the baseline's
    cell of its group, in group order (also set as each such cell's ``comparison``)."""
    if not baseline:
        return []
    comparisons = []
    for _, group in grouped(cells, comparison_keys(keys)):
        base = next((cell for cell in group if cell.key["method"] == baseline), None)
        for cell in group:
            if cell is base:
                continue
            cell.comparison = against(cell, base, baseline, shared_by)
            comparisons.append(cell.comparison)
    return comparisons


def against(cell: Cell, base: Cell | None, baseline: str, shared_by) -> Comparison:
    metric = cell.metric
    if base is None:
        return Comparison(cell.key, metric.name, baseline, len(cell.runs), 0, math.nan, math.nan, math.nan, "n/a",
                          "no baseline run in this group", False)
    differ = differing_keys([row["config"] for row in cell.runs], [row["config"] for row in base.runs], shared_by)
    why_not = f"{', '.join(differ)} differ" if differ else ""
    if metric.samples:
        column = f"{metric.name}:samples"
        found = compare_by_sample({row["seed"]: row[column] for row in cell.runs}, {row["seed"]: row[column] for row in base.runs},
                                  shared=not differ, unit=metric.samples_name, why_not=why_not)
    else:
        found = compare_by_seed({row["seed"]: float(row[metric.name]) for row in cell.runs},
                                {row["seed"]: float(row[metric.name]) for row in base.runs}, paired=not differ, why_not=why_not)
    return Comparison(cell.key, metric.name, baseline, found.n, found.n_baseline, found.difference, found.half_width,
                      found.p_value, verdict(found, metric.direction), found.test, found.paired)


def count_text(comparison: Comparison) -> str:
    return str(comparison.n) if comparison.paired else f"{comparison.n} vs {comparison.n_baseline}"


def notes(comparisons: list[Comparison], metric) -> list[str]:
    """What each test used in ``comparisons`` computes, and the verdict rule."""
    unit = metric.samples_name
    tests = " ".join(comparison.test for comparison in comparisons)
    lines = [(f"Diff: {metric.name} of the method minus the baseline's; n: the pairs (paired tests) or the values "
              "behind each side (Welch).")]
    if "paired t over seeds" in tests:
        if metric.samples:
            lines.append(f"Paired t over seeds (shared {unit}): every method and seed was tested on the same {unit}; "
                         f"for each seed s both ran, d_s = mean over the {unit} of (method - baseline) = the difference "
                         f"of the two seed means; diff = mean of the d_s ± t(0.975, k-1) sd(d_s)/sqrt(k) "
                         f"(scipy's ttest_rel of the seed means). It is conditional on this test set: the spread of "
                         f"training seeds, not the sampling of new {unit}.")
        else:
            lines.append("Paired t over seeds: the runs of one seed share what the seed fixes (data order); "
                         "d_s = method - baseline for each seed s both ran; diff = mean of the d_s ± "
                         "t(0.975, k-1) sd(d_s)/sqrt(k) (scipy's ttest_rel).")
    if f"paired t over {unit} (seed" in tests:
        lines.append(f"Paired t over {unit}: one seed in common; the per-{unit.rstrip('s')} differences of the two "
                     f"runs, mean ± t(0.975, n-1) sd/sqrt(n) (scipy's ttest_rel of the per-{unit.rstrip('s')} "
                     f"values): the comparison of two trained models, without seed-to-seed variation.")
    if "Welch" in tests:
        lines.append("Welch: the runs cannot be paired (the reason is given); difference of the means ± t(0.975, df) "
                     "sqrt(s1²/n1 + s2²/n2), Welch-Satterthwaite df (scipy's ttest_ind, equal_var=False)"
                     + (f"; '+ {unit} error' adds each side's sampling error of the {unit} its seeds share."
                        if f"+ {unit} error" in tests else "."))
    lines.append(f"Verdict: better or worse ({'lower' if metric.lower_is_better else 'higher'} is better) when the "
                 "95% interval excludes 0 (two-sided, 5%), else indistinguishable; each comparison on its own, not "
                 "corrected for multiplicity.")
    return lines
