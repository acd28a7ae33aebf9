"""`harness run SUITE --until-decided`: rounds of seeds until every verdict is decided. The
pieces of its loop (``harness.cli``), and what `status` and `report` show of the rounds.

``harness.rounds`` keeps the state on disk and says which cells get which new seeds;
``harness.report.sequential`` decides each reported cell and claim after every round, by
the report's own code and the group-sequential rule of ``harness.sequential``.

The loop, the same locally and on Slurm:
1. dispatch the planned runs nothing works on yet (the grid's, then the latest round's);
2. wait until each has its record: a local launch waits itself; on Slurm ``--wait``
   follows the jobs, else the command returns and the same command, run again later,
   goes on from the state on disk (a round whose jobs are queued or running is waited for,
   never submitted again);
3. every run of the rounds so far finished: decide; when some cell is still open, write
   the next round (before dispatching anything of it) and go to 1; else print the
   verdicts and the report.
A failed run stops the loop (exit 1): the verdicts wait for every run of a round
(``--retry-failed`` reruns it); a run that ends without a record twice in one command stops
it too, rather than submitting it again and again.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from harness import HarnessError
from harness import rounds as state_file
from harness.record import FINISHED
from harness.spec import expand

ALPHA = 0.05
SHOWN = 12  # open cells listed after each look


def budget(args, suite, specs, state: dict | None) -> tuple[int, int]:
    """(max seeds, seeds per round): the flags, else the suite's ``budget:``; checked (max
    seeds at least the most seeds a cell of the plan has)."""
    given = suite.budget
    max_seeds = args.max_seeds if args.max_seeds is not None else getattr(given, "max_seeds", None)
    per_round = args.seeds_per_round if args.seeds_per_round is not None else getattr(given, "seeds_per_round", None)
    if max_seeds is None or per_round is None:
        raise HarnessError(f"--until-decided: give --max-seeds N and --seeds-per-round K, or set budget: "
                           f"{{max_seeds: N, seeds_per_round: K}} in {suite.path}")
    source = "--max-seeds" if args.max_seeds is not None else f"{suite.path}: budget.max_seeds"
    if max_seeds < 2:
        raise HarnessError(f"{source} {max_seeds}: must be >= 2")
    if per_round < 1:
        raise HarnessError(f"--seeds-per-round {per_round}: must be >= 1")
    from harness.report.shared import group_keys

    keys = [k for k in group_keys(suite) if suite.select is None or k not in suite.select.over]
    most = max((len(seeds) for seeds in state_file.seeds_by_cell(specs, keys, suite.select).values()), default=0)
    if max_seeds < most:
        raise HarnessError(f"{source} {max_seeds}: below the {most} seeds a cell of the plan already runs")
    if state is not None and state["max_seeds"] != max_seeds:
        raise HarnessError(f"{source} {max_seeds}: the rounds in {state_file.STATE} were started with max seeds "
                           f"{state['max_seeds']}, which the boundaries' information fractions (k / max seeds) are "
                           f"fixed to; give {state['max_seeds']}, or delete the file to start over")
    return max_seeds, per_round


def require_verdicts(suite) -> None:
    margins = suite.report_options.get("margin") or {}
    if suite.claims or any(entry.margin is not None or entry.metric in margins for entry in suite.reported):
        return
    raise HarnessError(f"--until-decided: {suite.path} has nothing to decide: no reported number with a margin "
                       "(report: {margin: ...}) and no claims")


def specs_of(suite, state: dict) -> list:
    configs, _ = state_file.extra_configs(suite, state)
    return list(expand(suite, configs))


def decisions_of(suite, store, specs, state: dict, rounds: int | None = None):
    """The decisions after the first ``rounds`` rounds (default: all of them)."""
    from harness.report.sequential import decide_looks

    count = len(state["rounds"]) if rounds is None else rounds
    return decide_looks(suite, store, state_file.looks(specs, state, count), state["max_seeds"], state.get("alpha", ALPHA))


def wait_for(store, specs, views, active, args, number: int) -> bool:
    """Wait for runs an earlier launch dispatched (Slurm: with --wait; local: their workers
    outlived a launcher that was stopped). False: return now, the next `run` goes on."""
    from harness import launch as launcher
    from harness import status

    jobs = [views[spec.run_id].job or {} for spec in active]
    on_slurm = [job for job in jobs if job.get("cluster") == "slurm"]
    if on_slurm and not args.wait:
        ids = ", ".join(job["job_id"] for job in on_slurm[:10]) + (", ..." if len(on_slurm) > 10 else "")
        print(f"round {number}: {len(active)} runs are still queued or running (jobs {ids}); run the same command "
              f"again when they have ended (follow with: harness status {args.suite})")
        return False
    if on_slurm:
        by_launch: dict = {}
        for job in on_slurm:
            by_launch.setdefault(job.get("launch_id"), []).append(job["job_id"])
        for launch_id, job_ids in by_launch.items():
            launcher.wait(store, launcher.LaunchResult(folder=Path(), launch_id=launch_id or "", job_ids=job_ids),
                          progress=not args.quiet)
        return True
    print(f"round {number}: waiting for {len(active)} runs another launcher started", file=sys.stderr)
    poll = float(os.environ.get("HARNESS_POLL_SECONDS", "5"))
    while any(status.run_views(store, active).views[spec.run_id].active for spec in active):
        time.sleep(poll)
    return True


def look_dict(decisions) -> dict:
    from harness.report.sequential import as_dict

    return as_dict(decisions)


def cell_text(key: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items())


def outcome(item) -> str:
    """A cell's or claim's state after a look: open, or its verdict (with why, when inconclusive)."""
    if item.open:
        return "open"
    reason = item.verdict.reason if hasattr(item, "metric") else item.reason
    return f"{item.word} ({reason})" if item.word == "inconclusive" else item.word


def print_look(decisions, number: int) -> None:
    """One line per look, and the cells and claims still open."""
    tally: dict = {}
    for item in [*decisions.cells, *decisions.claims]:
        tally[outcome(item)] = tally.get(outcome(item), 0) + 1
    summary = ", ".join(f"{n} {word}" for word, n in tally.items()) or "nothing to decide"
    print(f"look after round {number}: {summary}")
    open_items = [f"{cell_text(c.key)} ({c.metric}, {c.seeds} seeds)" for c in decisions.cells if c.open]
    open_items += [f"claim {c.name} ({c.seeds} seeds a side)" for c in decisions.claims if c.open]
    for text in open_items[:SHOWN]:
        print(f"  open: {text}")
    if len(open_items) > SHOWN:
        print(f"  ... and {len(open_items) - SHOWN} more open")


# -- what `status` and `report` show of the rounds ---------------------------------------------


def complete_rounds(state: dict, specs, finished: set) -> int:
    """How many rounds have every run finished (done or failed), from the first."""
    tagged = [(state_file.round_of(spec, state), spec.run_id) for spec in specs]
    count = 0
    for number in range(len(state["rounds"])):
        if any(r == number and run_id not in finished for r, run_id in tagged):
            break
        count += 1
    return count


RULE_NAME = ("Lan-DeMets O'Brien-Fleming-type alpha spending over k / max seeds on both one-sided tests "
             "(harness.sequential); claims: spent on their paired t statistics (harness.sequential_t), the suite's "
             "claims by a sequential Holm")


def _looks_so_far(store, specs) -> tuple[dict, int]:
    """(the rounds' state, the rounds whose runs have all finished)."""
    state = state_file.load(store)
    scan = store.scan(specs)
    finished = {spec.run_id for spec in specs if scan.states[spec.run_id].status in FINISHED}
    return state, complete_rounds(state, specs, finished)


def report_section(suite, store, specs) -> str:
    """The report's 'Sequential seeds' section ("" when the suite never ran rounds)."""
    if not state_file.state_path(store).exists():
        return ""
    from harness.report.sequential import markdown_lines

    state, count = _looks_so_far(store, specs)
    if count == 0:
        return "\n## Sequential seeds\n\nThe grid's runs (round 0) have not all finished: no look yet.\n"
    return "\n".join(markdown_lines(decisions_of(suite, store, specs, state, count))) + "\n"


def report_entry(suite, store, specs) -> dict | None:
    """report.json's "sequential" entry: the decisions at the latest look, as the section
    shows them (None when the suite never ran rounds; no look yet: no cells, no claims)."""
    if not state_file.state_path(store).exists():
        return None
    from harness.report.sequential import as_dict

    state, count = _looks_so_far(store, specs)
    if count == 0:
        return {"rule": RULE_NAME, "max_seeds": state["max_seeds"], "looks": 0, "cells": [], "claims": []}
    return {"rule": RULE_NAME, **as_dict(decisions_of(suite, store, specs, state, count))}


def status_lines(suite, store, specs, views) -> list[str]:
    """Each cell's round, seeds so far, verdict at the latest look, and what it waits for."""
    state = state_file.load(store)
    if state is None:
        return []
    number = len(state["rounds"]) - 1
    ended = state.get("finished")
    look = (ended or {}).get("look") or state["rounds"][-1].get("look")
    lines = ["", f"Sequential seeds: round {number}" + (" (finished)" if ended else "")
             + f", at most {state['max_seeds']} seeds per cell ({state_file.state_path(store)})"]
    if look is None:
        lines.append("  round 0 (the grid): no look yet; the first look comes when its runs have finished")
        return lines
    added = state_file.additions(state)
    selection_only = (set(suite.select.seeds) - set(suite.select.confirm)
                      if suite.select is not None and suite.select.confirm else set())
    cells: dict = {}  # cell id -> [key, verdict text, open, why it stopped]
    for entry in look["cells"]:
        reason = (entry.get("sequential") or {}).get("reason")
        cells[tuple(entry["cell"].items())] = [entry["cell"], f"{entry['word']} ({entry['metric']})", entry["open"],
                                               reason]
    for claim in look["claims"]:
        opened = {tuple(key.items()) for key in claim["open_cells"]}
        for key in claim["cells"]:
            found = cells.setdefault(tuple(key.items()), [key, "", False, "decided"])
            found[1] += ("; " if found[1] else "") + f"claim {claim['claim']}: {claim['word']}"
            found[2] = found[2] or tuple(key.items()) in opened
    for key, verdicts, is_open, reason in cells.values():
        # a cell of a suite's select: its reported runs (not its selection runs), its rounds in the chosen values
        mine = [spec for spec in specs if all(spec.config.get(k) == v for k, v in key.items())
                and spec.config["seed"] not in selection_only]
        round_ = max((n for n, cell, _ in added if all(cell.get(k) == v for k, v in key.items())), default=0)
        lines.append(f"  {cell_text(key)}: round {round_}, {done_count(mine, views)} seeds done of {len(mine)}; "
                     f"{verdicts}; {waiting_text(mine, views, is_open, ended, reason)}")
    for claim in look["claims"]:
        lines.append(f"  claim {claim['claim']}: {claim['seeds']} seeds a side at the latest look, {claim['word']}"
                     + ("" if claim["open"] else f" ({claim['reason']})"))
    return lines


def done_count(specs, views) -> int:
    return sum(1 for spec in specs if views[spec.run_id].status == "done")


def waiting_text(mine, views, is_open: bool, ended, reason) -> str:
    pending = [spec for spec in mine if views[spec.run_id].status not in FINISHED]
    if pending:
        jobs = [f"{views[s.run_id].job['job_id']} {views[s.run_id].status}" for s in pending if views[s.run_id].job]
        return f"waits for its {len(pending)} runs" + (f" (jobs {', '.join(jobs[:6])})" if jobs else " (not dispatched)")
    if is_open and not ended:
        return "waits for the next round (harness run ... --until-decided)"
    return reason or "decided"
