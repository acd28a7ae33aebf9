"""Model selection in a report (a suite's ``select:``, ``harness.selection``): which runs the
cells are made of, and the section that shows how they were chosen.

The cells of a suite with ``select`` are named by the report's keys less the ``over`` axes.
In each cell the configuration is chosen by the validation metric on the selection seeds;
the cell then holds the chosen configuration's runs on the confirmation seeds (or, until
they ran, its selection runs, marked "not confirmed"), and every verdict, comparison,
claim and look of sequential seeds is computed on those rows. The frozen choices of
``harness run --confirm`` (``results/<suite>/selection.json``) win over a recomputed one.
The oracle (the configuration chosen on the test metric) is computed only when asked for
(``harness report --oracle``) and only ever shown in this section, labelled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness import confirmation, families
from harness.report.shared import CellKeys
from harness.selection import Choice, choose, oracle
from harness.stats import t_interval

ORACLE_LABEL = "oracle (chosen on test: optimistic, never a verdict)"


@dataclass
class Selected:
    """What ``apply`` gives a report: the rows its cells are made of, their keys, the choices."""

    runs: object  # the runs frame rows the cells are made of
    keys: list
    choices: list = field(default_factory=list)  # harness.selection.Choice per cell (selected ones)
    oracles: dict = field(default_factory=dict)  # cell index -> oracle Choice (only with --oracle)
    select: object = None  # the suite's Selection
    test: str = ""  # the test metric the oracle chooses on
    frozen: bool = False  # some choice came from selection.json


def plain_runs(runs, validation: str, test: str) -> list[dict]:
    """The runs frame as ``harness.selection``'s plain rows (``index``: the frame's row)."""
    return [{"config": row["config"], "seed": row["seed"], "status": row["status"], "index": index,
             "metrics": {validation: row.get(validation), test: row.get(test)}}
            for index, row in enumerate(runs.to_dict("records"))]


def apply(suite, runs, keys: list[str], store=None, with_oracle: bool = False) -> Selected:
    """The rows and keys of the cells under the suite's ``select`` (unchanged without one),
    the choices frozen by ``harness run --confirm`` in ``store`` kept."""
    select = suite.select
    if select is None or not len(runs):
        return Selected(runs, keys)
    family = families.get(suite.family)
    direction = next(m.direction for m in family.validation if m.name == select.by)
    test = family.headline
    cell_keys = CellKeys([key for key in keys if key not in select.over], getattr(keys, "variants", ()))
    rows = plain_runs(runs, select.by, test.name)
    frozen = confirmation.frozen(confirmation.load(store) if store is not None else None, cell_keys)
    choices = choose(rows, cell_keys, select.over, select.by, direction, select.per, select.seeds, select.confirm)
    used = False
    for choice in choices:
        fixed = frozen.get(tuple(choice.cell[k] for k in cell_keys))
        if fixed is not None and choice.selected and fixed != choice.chosen:
            refix(choice, fixed, rows, cell_keys, select.confirm)
            used = True
        elif fixed is not None:
            used = True
    keep = sorted(row["index"] for choice in choices for row in choice.rows)
    kept = [choice for choice in choices if choice.selected]
    oracles = {}
    if with_oracle:
        for index, choice in enumerate(kept):
            found = oracle(choice, test.name, test.direction)
            if found is not None:
                oracles[index] = found
    return Selected(runs.iloc[keep].reset_index(drop=True), cell_keys, kept, oracles, select, test.name, used)


def refix(choice: Choice, values: dict, rows: list[dict], cell_keys: list[str], confirm: tuple) -> None:
    """Make the frozen values the cell's choice (its rows: their confirmation runs, else their
    selection runs)."""
    choice.chosen = dict(values)
    cell = [row for row in rows if all(row["config"].get(k) == choice.cell[k] for k in cell_keys)]
    mine = [row for row in cell if all(row["config"].get(a) == v for a, v in values.items())]
    confirmed = sorted((r for r in mine if r["seed"] in confirm and r["status"] == "done"), key=lambda r: r["seed"])
    candidate = next((c for c in choice.candidates if c.values == choice.chosen), None)
    choice.confirm_pending = sorted(set(confirm) - {r["seed"] for r in confirmed})
    choice.rows, choice.confirmed = (confirmed, True) if confirmed else (list(candidate.runs if candidate else []), False)


# -- the section ----------------------------------------------------------------------------------


def _values(values: dict | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) if values else "none"


def _cell(choice: Choice) -> str:
    return ", ".join(str(v) for v in choice.cell.values())


def _test(runs: list, test: str) -> str:
    values = [r["metrics"][test] for r in runs if isinstance(r["metrics"].get(test), (int, float))]
    if not values:
        return "n/a"
    interval = t_interval(values)
    return f"{interval.mean:.2f}" + (f" ± {interval.half_width:.2f}" if len(values) > 1 else "") + f" ({len(values)} seeds)"


def _status(choice: Choice, select) -> str:
    if choice.chosen is None and not choice.chosen_per_seed:
        return "no candidate finished"
    if choice.per == "seed":
        return "chosen per seed"
    if not choice.complete:
        return "selection runs not all done: the choice may change"
    if choice.confirmed:
        left = f"; {len(choice.confirm_pending)} confirmation seeds to run" if choice.confirm_pending else ""
        return f"confirmed on seeds {', '.join(map(str, choice.seeds))}{left}"
    if select.confirm:
        return "not confirmed (its selection seeds: biased upward): `harness run --confirm`"
    return "on its selection seeds (no confirmation seeds in the suite)"


def markdown_lines(selected: Selected) -> list[str]:
    """The "Model selection" section: per cell the candidates' validation means, the choice,
    the seeds the cell's row is made of, and (with --oracle) the oracle, labelled."""
    if selected is None or selected.select is None or not selected.choices:
        return []
    select = selected.select
    seeds = f"seeds {', '.join(map(str, select.seeds))}" if select.seeds else "every seed they ran"
    per = "the mean over the selection seeds" if select.per == "mean" else "each selection seed on its own"
    lines = ["", "## Model selection", "",
             f"Chosen on validation, never on test: in each cell the values of {', '.join(select.over)} with the best "
             f"{select.by} ({per}, {seeds}). The tables above report the chosen configuration"
             + (f" on the confirmation seeds {', '.join(map(str, select.confirm))}, which played no part in choosing "
                f"(until they ran: on its selection seeds, marked not confirmed)" if select.confirm else "") + ".", ""]
    columns = ["cell", "candidate", f"{select.by} (selection seeds)", "chosen"]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for choice in selected.choices:
        for candidate in choice.candidates:
            mark = "**chosen**" if candidate.values == choice.chosen else ""
            if choice.per == "seed":
                picked = [str(s) for s, values in choice.chosen_per_seed.items() if values == candidate.values]
                mark = f"seeds {', '.join(picked)}" if picked else ""
            validation = "n/a" if math.isnan(candidate.validation) else f"{candidate.validation:.2f}"
            lines.append(f"| {_cell(choice)} | {_values(candidate.values)} | {validation} "
                         f"({len(candidate.runs)} of {candidate.planned}) | {mark} |")
    lines += ["", "| cell | chosen | test | status |", "|---|---|---|---|"]
    for index, choice in enumerate(selected.choices):
        chosen = _values(choice.chosen) if choice.per == "mean" else "per seed"
        lines.append(f"| {_cell(choice)} | {chosen} | {_test(choice.rows, selected.test)} | {_status(choice, select)} |")
        found = selected.oracles.get(index)
        if found is not None:
            lines.append(f"| {_cell(choice)} | {_values(found.chosen)} | {_test(found.rows, selected.test)} | "
                         f"{ORACLE_LABEL} |")
    if selected.frozen:
        lines += ["", "Choices frozen by `harness run --confirm` (selection.json) are kept."]
    return lines


def json_entry(selected: Selected | None) -> dict | None:
    if selected is None or selected.select is None:
        return None
    select = selected.select
    cells = []
    for index, choice in enumerate(selected.choices):
        entry = {"cell": choice.cell, "per": choice.per, "chosen": choice.chosen,
                 "chosen_per_seed": {str(s): v for s, v in choice.chosen_per_seed.items()},
                 "complete": choice.complete, "confirmed": choice.confirmed, "seeds": choice.seeds,
                 "confirm_pending": choice.confirm_pending,
                 "candidates": [{"values": c.values, "validation": None if math.isnan(c.validation) else c.validation,
                                 "runs": len(c.runs), "planned": c.planned} for c in choice.candidates]}
        found = selected.oracles.get(index)
        if found is not None:
            entry["oracle"] = {"chosen": found.chosen, "seeds": found.seeds, "label": ORACLE_LABEL}
        cells.append(entry)
    return {"over": list(select.over), "by": select.by, "per": select.per,
            "seeds": list(select.seeds) if select.seeds else None, "confirm": list(select.confirm), "cells": cells}


# -- the sweep's cost (`harness plan --estimate`) ---------------------------------------------


def sweep_cost(suite, runs, keys: list[str], store=None) -> dict | None:
    """What the suite's selection costs, in runs and CPU/GPU seconds: the candidates' runs on
    the selection seeds (done and pending) and the confirmation runs still to plan (a chosen
    configuration the grid does not already run on the confirmation seeds), each priced at
    the mean ``total_seconds`` of its cell's finished runs (None where none finished)."""
    select = suite.select
    if select is None or not len(runs):
        return None
    chosen = apply(suite, runs, keys, store)
    frame = runs.to_dict("records")
    cells = []
    for choice in chosen.choices:
        mine = [r for r in frame if all(r["config"].get(k) == v for k, v in choice.cell.items())]
        seconds = [r["total_seconds"] for r in mine if r["status"] == "done" and r.get("total_seconds")]
        each = sum(seconds) / len(seconds) if seconds else None
        planned = sum(c.planned for c in choice.candidates)
        done = sum(len(c.runs) for c in choice.candidates)
        confirm = 0
        if select.confirm and choice.per == "mean":
            for candidate_values in ([choice.chosen] if choice.chosen else [c.values for c in choice.candidates]):
                have = {r["seed"] for r in mine if all(r["config"].get(a) == v for a, v in candidate_values.items())}
                confirm = max(confirm, len(set(select.confirm) - have))
        cells.append({"cell": choice.cell, "candidates": len(choice.candidates), "selection_runs": planned,
                      "selection_done": done, "confirmation_runs": confirm, "seconds_per_run": each,
                      "chosen": choice.chosen})
    return {"over": list(select.over), "by": select.by, "cells": cells}


def sweep_text(cost: dict | None) -> str:
    if not cost:
        return ""
    lines = ["", f"Model selection over {', '.join(cost['over'])} by {cost['by']}:", ""]
    rows = []
    for cell in cost["cells"]:
        each = cell["seconds_per_run"]
        pending = cell["selection_runs"] - cell["selection_done"] + cell["confirmation_runs"]
        rows.append(f"| {_cell_text(cell['cell'])} | {cell['candidates']} | {cell['selection_done']} of "
                    f"{cell['selection_runs']} | {cell['confirmation_runs']}"
                    f"{'' if cell['chosen'] else ' at most'} | "
                    + (f"{pending * each / 3600:.2f} h" if each else "n/a (no finished run)") + " |")
    lines += ["| cell | candidates | selection runs done | confirmation runs to plan | pending cost (run-hours) |",
              "|---|---|---|---|---|", *rows, ""]
    return "\n".join(lines)


def _cell_text(cell: dict) -> str:
    return ", ".join(str(v) for v in cell.values())
