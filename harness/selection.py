"""Model selection on validation, never on test (a suite's ``select:``).

In each cell (runs equal on every cell key but the seed and the ``over`` axes), the
candidates are the configurations (values of the ``over`` axes) that ran on the selection
seeds. With ``per: mean`` (the default) the candidate with the best mean validation metric
over those seeds is chosen, and the cell reports its runs on the ``confirm`` seeds when they
ran (seeds that played no part in choosing), else its runs on the selection seeds (biased
upward: the report says "not confirmed"). With ``per: seed`` each selection seed chooses its
own candidate and the cell reports, per seed, the chosen run. A cell with no run on the
selection seeds is not selected over: it reports all its runs. The oracle choice (by the test
metric) exists only to be shown when asked for, labelled as such.

Pure Python over plain run rows: ``{"config": dict, "seed": int, "status": str, "metrics": dict}``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Candidate:
    values: dict  # the over axes' values
    runs: list  # its done runs on the selection seeds, by seed
    planned: int  # its runs on the selection seeds, done or not
    validation: float  # mean of the validation metric over its done selection runs (nan: none)

    @property
    def complete(self) -> bool:
        return self.planned > 0 and len(self.runs) == self.planned


@dataclass
class Choice:
    """The selection in one cell. ``rows`` are the runs the cell reports."""

    cell: dict
    selected: bool  # False: the cell had no run on the selection seeds (nothing chosen)
    per: str
    candidates: list = field(default_factory=list)
    chosen: dict | None = None  # per mean: the chosen values; per seed: None (see chosen_per_seed)
    chosen_per_seed: dict = field(default_factory=dict)  # seed -> values (per seed)
    rows: list = field(default_factory=list)
    confirmed: bool = False  # rows are confirmation runs
    complete: bool = True  # every candidate's selection runs are done
    confirm_pending: list = field(default_factory=list)  # confirm seeds of the chosen values not done yet

    @property
    def seeds(self) -> list:
        return [row["seed"] for row in self.rows]


def _value(run: dict, metric: str) -> float:
    value = (run.get("metrics") or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _better(a: float, b: float, direction: str) -> bool:
    if math.isnan(b):
        return not math.isnan(a)
    if math.isnan(a):
        return False
    return a > b if direction == "higher" else a < b


def _best(candidates: list, direction: str, score) -> object | None:
    """The candidate with the best score; ties go to the first (grid order)."""
    best = None
    for candidate in candidates:
        if best is None or _better(score(candidate), score(best), direction):
            best = candidate
    return best if best is not None and not math.isnan(score(best)) else None


def choose(runs: list[dict], cell_keys: list[str], over: tuple, by: str, direction: str, per: str = "mean",
           seeds: tuple | None = None, confirm: tuple = ()) -> list[Choice]:
    """One Choice per cell, in the order cells first appear in ``runs``."""
    cells: dict[tuple, list] = {}
    for run in runs:
        cells.setdefault(tuple(run["config"].get(k) for k in cell_keys), []).append(run)
    return [_choose_cell(dict(zip(cell_keys, key)), group, over, by, direction, per, seeds, confirm)
            for key, group in cells.items()]


def _choose_cell(cell, group, over, by, direction, per, seeds, confirm) -> Choice:
    on_seeds = [run for run in group if (seeds is None or run["seed"] in seeds) and run["seed"] not in confirm]
    if not on_seeds:
        return Choice(cell, selected=False, per=per, rows=_done(group))
    candidates: dict[tuple, Candidate] = {}
    for run in on_seeds:
        values = tuple(run["config"].get(axis) for axis in over)
        candidate = candidates.setdefault(values, Candidate(dict(zip(over, values)), [], 0, math.nan))
        candidate.planned += 1
        if run["status"] == "done":
            candidate.runs.append(run)
    for candidate in candidates.values():
        candidate.runs.sort(key=lambda run: run["seed"])
        values = [_value(run, by) for run in candidate.runs]
        candidate.validation = math.fsum(values) / len(values) if values else math.nan
    found = list(candidates.values())
    choice = Choice(cell, selected=True, per=per, candidates=found, complete=all(c.complete for c in found))
    if per == "seed":
        _per_seed(choice, found, by, direction)
        return choice
    best = _best(found, direction, lambda c: c.validation)
    if best is None:
        return choice
    choice.chosen = dict(best.values)
    confirmed = [run for run in group if run["seed"] in confirm and _has(run, best.values)]
    done = _done(confirmed)
    choice.confirm_pending = sorted(set(confirm) - {run["seed"] for run in done})
    choice.rows, choice.confirmed = (done, True) if done else (list(best.runs), False)
    return choice


def _per_seed(choice: Choice, candidates: list, by: str, direction: str) -> None:
    by_seed: dict[int, list] = {}
    for candidate in candidates:
        for run in candidate.runs:
            by_seed.setdefault(run["seed"], []).append((candidate, run))
    for seed in sorted(by_seed):
        pairs = by_seed[seed]
        best = _best([run for _, run in pairs], direction, lambda run: _value(run, by))
        if best is not None:
            chosen = next(candidate for candidate, run in pairs if run is best)
            choice.chosen_per_seed[seed] = dict(chosen.values)
            choice.rows.append(best)


def oracle(choice: Choice, test: str, direction: str) -> Choice | None:
    """The same cell chosen on the TEST metric (shown only when asked for, labelled oracle)."""
    if not choice.selected:
        return None
    best = _best(choice.candidates, direction,
                 lambda c: math.fsum(_value(r, test) for r in c.runs) / len(c.runs) if c.runs else math.nan)
    if best is None:
        return None
    return Choice(choice.cell, selected=True, per="mean", candidates=choice.candidates, chosen=dict(best.values),
                  rows=list(best.runs), complete=choice.complete)


def confirmation_configs(choices: list[Choice], runs: list[dict], confirm: tuple) -> list[dict]:
    """The configs still to run to confirm each complete choice on the confirm seeds: a chosen
    candidate's config with the seed replaced (nothing for a cell whose selection is incomplete)."""
    planned = {(_key(run["config"]),) for run in runs}
    configs = []
    for choice in choices:
        if not (choice.selected and choice.chosen is not None and choice.complete):
            continue
        template = next(c for c in choice.candidates if c.values == choice.chosen).runs[0]["config"]
        for seed in confirm:
            config = {**template, "seed": seed}
            if (_key(config),) not in planned:
                planned.add((_key(config),))
                configs.append(config)
    return configs


def _key(config: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in config.items()))


def _has(run: dict, values: dict) -> bool:
    return all(run["config"].get(axis) == value for axis, value in values.items())


def _done(runs: list) -> list:
    return sorted((run for run in runs if run["status"] == "done"), key=lambda run: run["seed"])
