"""Pairing, and the comparisons with a baseline.

One rule decides, for every comparison of two cells (with the baseline, against the best,
a claim's sides), whether their runs are paired by seed: the runs of one seed are paired
when their configs agree on ``pairing_keys``: what the seed fixes beyond the config (the
family's ``paired_by``: the data order of a multi-task run, the goals of an RL run) and
what fixes the metric's test units (its ``shared_by``: the few-shot test episodes; by
default the ``test_*`` and ``eval_*`` keys). Paired: the paired t over the common seeds
(``harness.comparisons.seed_difference``). Otherwise Welch over the seeds of each side,
plus each side's error of its own test set when the test units differ and the runs
recorded per-unit samples. One seed a side: no verdict.

Comparisons with a baseline: every other method's cell against the baseline's cell of its
comparison group (the same values of every key but the method), Holm-adjusted within the
group (``harness.comparisons.with_baseline``).
"""
from __future__ import annotations

import math

from harness.comparisons import seed_difference, with_baseline
from harness.report.cells import grouped, shared_error
from harness.report.model import Cell, Comparison
from harness.report.shared import comparison_keys


def evaluation_keys(family) -> tuple[str, ...]:
    """The config keys that fix what a run is tested on, by the naming convention of the
    keys: ``test_*`` and ``eval_*`` (the few-shot test episodes: test_episodes,
    test_queries, eval_seed, ...). Runs of one comparison group share its keys already."""
    return tuple(name for name in family.keys if name.startswith(("test_", "eval_")))


def unit_keys(family, metric) -> tuple[str, ...]:
    """The config keys that fix the metric's test units: its ``shared_by``, else ``evaluation_keys``."""
    declared = getattr(metric, "shared_by", None)
    return tuple(declared) if declared is not None else evaluation_keys(family)


def pairing_keys(family, metric, given=None) -> tuple[str, ...]:
    """The config keys two runs of one seed must agree on to be paired: ``given`` (a
    report's ``options["shared_by"]``), else the family's ``paired_by`` and the keys that
    fix the metric's test units (``unit_keys``)."""
    if given is not None:
        return tuple(given)
    return tuple(dict.fromkeys((*(getattr(family, "paired_by", None) or ()), *unit_keys(family, metric))))


class Pairing:
    """The pairing rule of one metric's cells (see the module): ``difference(cell, other)``
    is cell - other over seeds, paired or Welch. Each cell's values of the keys are
    gathered once."""

    def __init__(self, keys, units):
        self.keys, self.units = tuple(keys), set(units)
        self._values: dict[int, dict] = {}

    @classmethod
    def of(cls, family, metric, given=None) -> Pairing:
        return cls(pairing_keys(family, metric, given), unit_keys(family, metric) if given is None else given)

    def values(self, cell: Cell) -> dict:
        found = self._values.get(id(cell))
        if found is None:
            found = self._values[id(cell)] = {k: {_hashable(row["config"].get(k)) for row in cell.runs} for k in self.keys}
        return found

    def differing(self, cell: Cell, other: Cell) -> list[str]:
        """The keys on which some run of one cell and some run of the other disagree."""
        mine, theirs = self.values(cell), self.values(other)
        return [k for k in self.keys if mine[k] != theirs[k] or len(mine[k]) > 1]

    def difference(self, cell: Cell, other: Cell, values=None):
        """cell - other (``harness.stats.Difference``, 95% interval); ``values``: the two
        sides' {seed: value} when not the cells' metric values (a part, a cost)."""
        mine, theirs = values or (cell.by_seed, other.by_seed)
        differ = self.differing(cell, other)
        if not differ:
            return seed_difference(mine, theirs, paired=True)
        extra = ()
        if values is None and self.units & set(differ):  # other test units: each side's own test-set error
            extra = tuple(part for part in (shared_error(cell), shared_error(other)) if part)
        return seed_difference(mine, theirs, paired=False, why_not=f"{', '.join(differ)} differ", extra=extra)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def compare(cells: list[Cell], keys: list[str], baseline: str | None, pairing: Pairing) -> list[Comparison]:
    """The comparison of each cell whose method is not the baseline with the baseline's
    cell of its group, Holm-adjusted within the group, in group order (also set as each
    such cell's ``comparison``)."""
    if not baseline:
        return []
    comparisons = []
    for _, group in grouped(cells, comparison_keys(keys)):
        base = next((cell for cell in group if cell.key["method"] == baseline), None)
        others = [cell for cell in group if cell is not base]
        for cell, found in zip(others, against(others, base, baseline, pairing)):
            cell.comparison = found
            comparisons.append(found)
    return comparisons


def against(cells: list[Cell], base: Cell | None, baseline: str, pairing: Pairing) -> list[Comparison]:
    if base is None:
        return [Comparison(cell.key, cell.metric.name, baseline, len(cell.runs), 0, math.nan, math.nan, math.nan,
                           math.nan, None, "no verdict", "no baseline run in this group", False) for cell in cells]
    if not cells:
        return []
    by_index = {i: cell for i, cell in enumerate(cells)}
    by_index[-1] = base
    rows = with_baseline({**{i: cell.by_seed for i, cell in enumerate(cells)}, -1: base.by_seed}, -1, paired=True,
                         direction=base.metric.direction,
                         difference=lambda m, j: pairing.difference(by_index[m], by_index[j]))
    return [Comparison(cell.key, cell.metric.name, baseline, row.difference.n, row.difference.n_baseline,
                       row.difference.difference, row.difference.half_width, row.p_value, row.p_holm, row.wins,
                       row.verdict, row.difference.test, row.difference.paired) for cell, row in zip(cells, rows)]


def count_text(comparison: Comparison) -> str:
    return str(comparison.n) if comparison.paired else f"{comparison.n} vs {comparison.n_baseline}"


def wins_text(comparison: Comparison) -> str:
    return "" if comparison.wins is None else f"{comparison.wins}/{comparison.n}"


def notes(comparisons: list[Comparison], metric, group: list[str]) -> list[str]:
    """What each test used in ``comparisons`` computes, and the verdict rule; ``group``:
    the keys of a comparison group (Holm's family)."""
    unit = metric.samples_name
    tests = " ".join(comparison.test for comparison in comparisons)
    lines = [(f"Diff: {metric.name} of the method minus the baseline's, ± the half-width of its 95% interval; n: the "
              "pairs (paired tests) or the seeds behind each side (Welch); wins: the seeds where the method is ahead "
              f"({'lower' if metric.lower_is_better else 'higher'} is better), paired tests only.")]
    if "paired t over seeds" in tests:
        shared = (f"; every method and seed was tested on the same {unit}, so d_s is conditional on this test set: "
                  f"the spread of training seeds, not the sampling of new {unit}") if metric.samples else ""
        lines.append("Paired t over seeds: the runs of one seed agree on what the seed fixes and on what fixes the "
                     f"test units; d_s = method - baseline for each seed s both ran; diff = mean of the d_s ± "
                     f"t(0.975, k-1) sd(d_s)/sqrt(k) (scipy's ttest_rel){shared}.")
    if "Welch" in tests:
        lines.append("Welch: the runs cannot be paired (the keys that differ are named); difference of the means ± "
                     "t(0.975, df) sqrt(s1²/n1 + s2²/n2), df by Welch-Satterthwaite with each variance at its 80% "
                     "upper confidence limit (few seeds: plain Welch-Satterthwaite errs up to 8% instead of 5%)"
                     + (f"; '+ test-set errors' adds each side's error of its own {unit} (the mean cross-seed "
                        f"covariance of the per-{unit.removesuffix('s')} values over n)."
                        if "test-set errors" in tests else "."))
    lines.append(f"Verdict: better or worse when the Holm-adjusted p (p_holm, over the methods compared with the "
                 f"baseline in one {', '.join(group) or 'table'}) is at most 5%, two-sided; else indistinguishable; "
                 "no verdict with one seed a side.")
    return lines
