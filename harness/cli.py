"""The `harness` command: a thin layer over suite, spec, store, launch and report.

`list`, `plan`, `status` and `report` never import torch. `run` imports the suite's
plugins and every component its runs use in the launcher before dispatching anything
(`preflight`: an import that fails stops the launch with one line), so it imports torch
there as well as in the workers.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
from pathlib import Path

from harness import HarnessError, __version__, families
from harness.keys import check_value, parse_text
from harness.record import FINISHED, FROM_SCHEDULER, NOT_STARTED, STATUSES, STORE_STATUSES
from harness.spec import expand, ignored_key_warnings
from harness.store import Store
from harness.suite import load_suite
from harness.tables import markdown_table

SUITES_DIR = Path("suites")


def resolve_suite_path(name: str) -> Path:
    path = Path(name)
    if not path.exists() and not path.suffix and (SUITES_DIR / f"{name}.yaml").exists():
        return SUITES_DIR / f"{name}.yaml"
    return path


def parse_filters(items: list[str] | None, keys: dict) -> dict[str, list]:
    """``--filter KEY=V1,V2`` items, checked against ``keys`` (the suite family's schema)."""
    filters: dict[str, list] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise HarnessError(f"--filter {item!r}: expected KEY=VALUE")
        if key not in keys:
            raise HarnessError(f"--filter {item!r}: unknown key {key!r}")
        for value in text.split(","):
            try:
                value, problem = check_value(key, parse_text(key, value, keys), keys)
            except ValueError as error:
                problem = str(error)
            if problem:
                raise HarnessError(f"--filter {item!r}: {problem}")
            filters.setdefault(key, []).append(value)
    return filters


def planned(args):
    """The suite (restricted to the runs ``--filter`` keeps), its runs and its store."""
    suite = load_suite(resolve_suite_path(args.suite))
    warn(suite.warnings)
    filters = parse_filters(args.filter, suite.keys)
    if filters:
        require_filtered_values(suite, filters)
        suite = dataclasses.replace(suite, keep=(filters,))
    store = results_store(args.results, suite.name)
    specs = list(expand(suite, round_configs(suite, store) + confirmation_configs(suite, store)))
    warn(ignored_key_warnings(families.get(suite.family), specs))
    return suite, specs, store


def confirmation_configs(suite, store) -> list[dict]:
    """The confirmation runs of the choices ``run --confirm`` froze (``harness.confirmation``)."""
    from harness import confirmation

    if suite.select is None:
        return []
    return confirmation.extra_configs(suite, confirmation.load(store))


def round_configs(suite, store, quiet: bool = False) -> list[dict]:
    """The runs the rounds of sequential seeds added (``harness.rounds``): planned runs too."""
    from harness import rounds

    state = rounds.load(store)
    if state is None:
        return []
    configs, problems = rounds.extra_configs(suite, state)
    if not quiet:
        warn(problems)
    return configs


def require_filtered_values(suite, filters: dict) -> None:
    """Every value a ``--filter`` asks for is some run's: a typo keeps no run, silently."""
    present: dict[str, list] = {key: [] for key in filters}
    for config in suite.configs():
        for key, values in present.items():
            if config.get(key) not in values:
                values.append(config.get(key))
    for key, wanted in filters.items():
        missing = [value for value in wanted if value not in present[key]]
        if missing:
            have = ", ".join(sorted(map(str, present[key])))
            raise HarnessError(f"--filter {key}={','.join(map(str, missing))}: no run of {suite.path} has "
                               f"{key} {'=' if len(missing) == 1 else 'in'} {', '.join(map(str, missing))} ({key} takes: {have})")


def results_store(results, name: str) -> Store:
    store = Store(results, name)
    if store.root.exists() and not store.root.is_dir():
        raise HarnessError(f"--results {store.root}: is a file, not a folder")
    if store.dir.exists() and not store.dir.is_dir():
        raise HarnessError(f"{store.dir}: is a file, not a results folder")
    return store


def warn(messages) -> None:
    for message in messages:
        print(f"warning: {message}", file=sys.stderr)


def cmd_list(args) -> None:
    from harness import plugins

    if args.suite:
        load_suite(resolve_suite_path(args.suite))  # its plugins, too
    if args.keys is not None:
        for family in [families.get(args.keys)] if args.keys else families.all_families():
            _print_keys(family)
        return
    for family in families.all_families():
        print(f"family {family.name} (version {family.version}, {plugins.origin(family.name)}): {family.help}")
        for name, registry in family.registries.items():
            by_origin: dict[str, list] = {}
            for entry in registry.entries().values():
                by_origin.setdefault(entry.origin, []).append(f"{entry.name}" + (f" v{entry.version}" if entry.version != "1" else ""))
            parts = [f"{', '.join(sorted(names))} ({origin})" for origin, names in by_origin.items()]
            print(f"  {name}: {'; '.join(parts)}")
            for entry in sorted(registry.entries().values(), key=lambda e: e.name):
                for key, spec in entry.keys.items():
                    if spec.versions:
                        variants = [f"{spec.key.default} (default, v{entry.version})"]
                        variants += [f"{choice} v{version}" for choice, version in spec.versions.items()]
                        print(f"    {entry.name} variants ({key}): {', '.join(variants)}")
    for plugin in plugins.index().plugins:
        warn(plugin.warnings)
    for plugin in plugins.index().broken:
        print(f"broken plugin: {plugin.error}")
    suites = sorted(p.as_posix() for p in SUITES_DIR.glob("*.yaml")) if SUITES_DIR.is_dir() else []
    print(f"suites: {', '.join(suites) if suites else '(none in ./suites)'}")


def _print_keys(family) -> None:
    """`list --keys`: the family's keys that take a value (not a component's name), each
    with its default, type and bounds, and which components read it."""
    from harness.keys import REQUIRED, describe

    print(f"family {family.name} keys (set them in a suite's defaults, grid or overrides):")
    owners = family.schema.owners
    for name, key in family.keys.items():
        if key.names_component:
            continue
        value = " (required)" if key.default is REQUIRED else " = null" if key.default is None else f" = {key.default!r}"
        read_by = f"; read by {', '.join(sorted(component for _, component in owners[name]))}" if name in owners else ""
        print(f"  {name}{value}  [{describe(key)}{read_by}]  {key.help}")


def stale(specs, scan) -> list[str]:
    from harness.staleness import stale_warnings

    return stale_warnings(specs, scan)


def cmd_plan(args) -> None:
    suite, specs, store = planned(args)
    scan = store.scan(specs)
    warn(scan.warnings + stale(specs, scan))
    groups = _estimate_groups(suite, specs, scan, store) if getattr(args, "estimate", False) else None
    sequential = _sequential_estimate(suite, specs, scan, store) if getattr(args, "estimate", False) else None
    power = _power(suite, specs, store) if getattr(args, "power", False) else None
    sweep = _sweep_estimate(suite, specs, store) if getattr(args, "estimate", False) else None
    if args.format == "json":
        runs = [{"run_id": spec.run_id, "status": scan.states[spec.run_id].status, "label": spec.label(),
                 "config": spec.config} for spec in specs]
        document = {"suite": suite.name, "family": suite.family, "runs": runs}
        if groups is not None:
            from harness.estimate import as_dict

            document["estimate"] = as_dict(groups)
        if sequential is not None:
            from harness.decision_cost import as_dict as sequential_dict

            document["sequential_estimate"] = sequential_dict(*sequential)
        if sweep is not None:
            document["selection_estimate"] = sweep
        if power is not None:
            from harness.report.power import as_dict as power_dict

            document["seeds_needed"] = power_dict(*power)
        print(json.dumps(document, indent=1))
        return
    fixed = list(families.get(suite.family).plan_columns)
    columns = fixed + [axis for axis in suite.axes if axis not in fixed]
    rows = [[spec.run_id, scan.states[spec.run_id].status] + [spec.config[c] for c in columns] for spec in specs]
    print(markdown_table(rows, ["run_id", "status"] + columns))
    print(_counts_line(scan, specs))
    if groups is not None:
        from harness.estimate import text

        print(text(groups), end="")
    if sequential is not None:
        from harness.decision_cost import text as sequential_text

        print(sequential_text(*sequential), end="")
    if sweep is not None:
        from harness.report.selected import sweep_text

        print(sweep_text(sweep), end="")
    if power is not None:
        from harness.report.power import text as power_text

        print(power_text(*power), end="")


def _sweep_estimate(suite, specs, store):
    """`plan --estimate` with select: the sweep's runs and its confirmation runs, priced."""
    if suite.select is None:
        return None
    from harness.report.collect import collect
    from harness.report.selected import sweep_cost
    from harness.report.shared import group_keys

    runs, _ = collect(suite, store, specs=specs)
    return sweep_cost(suite, runs, group_keys(suite), store)


def _power(suite, specs, store):
    """`plan --power`: the seeds each reported cell and claim needs, from the finished runs (no torch)."""
    from harness.report.power import needs

    return needs(suite, store, specs)


def _estimate_groups(suite, specs, scan, store):
    """`plan --estimate`: the pending runs' expected cost, from the finished runs of the results folder."""
    from harness.estimate import estimate, finished_runs

    pending = [spec for spec in specs if scan.states[spec.run_id].status == "pending"]
    return estimate(suite, pending, finished_runs(suite, specs, scan, store.root))


def _sequential_estimate(suite, specs, scan, store):
    """`plan --estimate` of a suite with a `budget:` or rounds: (plans of the open cells and
    claims, max seeds, seeds per round), from the runs so far; None without either."""
    from harness import rounds
    from harness.decision_cost import plans
    from harness.estimate import finished_runs
    from harness.report.sequential import decide_looks
    from harness.until_decided import complete_rounds

    state = rounds.load(store)
    if state is None and suite.budget is None:
        return None
    max_seeds = state["max_seeds"] if state else suite.budget.max_seeds
    per_round = (suite.budget.seeds_per_round if suite.budget else None) or \
        next((entry["seeds_per_round"] for entry in reversed(state["rounds"]) if entry["seeds_per_round"]), 1)
    finished = {spec.run_id for spec in specs if scan.states[spec.run_id].status in FINISHED}
    complete = complete_rounds(state, specs, finished) if state else 0
    looks = rounds.looks(specs, state, complete)
    if len(looks) < (len(state["rounds"]) if state else 1):
        looks.append(specs)  # the round under way: what has finished of it
    if not any(scan.states[spec.run_id].status == "done" for spec in looks[-1]):
        return [], max_seeds, per_round
    decisions = decide_looks(suite, store, looks, max_seeds)
    return plans(suite, specs, decisions, per_round, finished_runs(suite, specs, scan, store.root)), max_seeds, per_round


def _counts_line(scan, specs) -> str:
    counts = {s: 0 for s in STORE_STATUSES}
    for spec in specs:
        counts[scan.states[spec.run_id].status] += 1
    return f"{len(specs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items())


def cmd_status(args) -> None:
    from harness.status import run_views

    suite, specs, store = planned(args)
    view = run_views(store, specs)
    warn(view.warnings + stale(specs, view.scan))
    if args.format == "json":
        print(json.dumps(_status_document(suite, specs, store, view), indent=1))
        return
    _print_status(suite, specs, store, view)
    from harness.until_decided import status_lines

    for line in status_lines(suite, store, specs, view.views):
        print(line)


def _status_counts(specs, views) -> str:
    """'N runs: a done, b failed, c running, d pending' (+ requeued, cancelled, lost when any)."""
    counts = {status: 0 for status in STATUSES}
    for spec in specs:
        counts[views[spec.run_id].status] += 1
    queued = sum(1 for spec in specs if views[spec.run_id].queued)
    parts = []
    for status, number in counts.items():
        if number or status in STORE_STATUSES:
            parts.append(f"{number} {status}" + (f" ({queued} queued)" if status == "pending" and queued else ""))
    return f"{len(specs)} runs: " + ", ".join(parts)


def _status_document(suite, specs, store, view) -> dict:
    """`status --format json`: the counts, and per run its config, status and what explains it."""
    from harness.record import STATUSES

    runs = []
    for spec in specs:
        run = view.views[spec.run_id]
        record = run.record or {}
        error = record.get("error") if run.status == "failed" else None
        log = store.root / str(record["log"]) if record.get("log") else run.log
        runs.append({"run_id": spec.run_id, "label": spec.label(), "status": run.status, "config": spec.config,
                     "error": {"type": error.get("type"), "message": error.get("message")} if error else None,
                     "log": str(log) if log else None, "why": run.why or None, "queued": run.queued,
                     "running": run.running, "job_id": (run.job or {}).get("job_id")})
    counts = {status: sum(1 for run in runs if run["status"] == status) for status in STATUSES}
    return {"suite": suite.name, "family": suite.family, "counts": {**counts, "queued": sum(r["queued"] for r in runs)},
            "runs": runs, "unplanned_records": view.unplanned}


def _print_status(suite, specs, store, view) -> None:
    views = view.views
    print(f"{suite.name}: {_status_counts(specs, views)}")
    queued = []
    for spec in specs:
        run = views[spec.run_id]
        head = f"  {run.status:<9} {spec.run_id}  {spec.label()}"
        if run.status == "failed":
            error = run.record.get("error") or {}
            message = (error.get("message") or "").strip().splitlines()
            first = f"{error.get('type', 'Error')}: {message[0] if message else ''}"
            print(f"{head}\n            {first}\n            log: {store.root / str(run.record.get('log'))}")
        elif run.status == "running":
            info = run.running or {}
            where = [f"host {info.get('host')}, pid {info.get('pid')}, since {info.get('started')}"] if info else []
            print(f"{head}  ({'; '.join([run.why] * bool(run.why) + where)})")
            if isinstance(info.get("step"), int):
                total = f"/{info['total']}" if info.get("total") else ""
                figures = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                    for k, v in (info.get("figures") or {}).items())
                print(f"            step {info['step']}{total}" + (f", {figures}" if figures else "")
                      + f" (at {info.get('updated')})")
        elif run.status in FROM_SCHEDULER:
            log = f"\n            log: {run.log}" if run.log and Path(run.log).exists() else ""
            print(f"{head}\n            {run.why}{log}")
        elif run.queued:
            queued.append(run.job["job_id"])
    if queued:
        shown = ", ".join(queued[:10]) + (f", ... ({len(queued) - 10} more)" if len(queued) > 10 else "")
        print(f"  {len(queued)} pending runs are queued in Slurm: jobs {shown}")
    if view.unplanned:
        print(f"  ({view.unplanned} records in {store.dir} belong to runs no longer in this plan)")


def resource_overrides(args) -> dict:
    """The resource flags of `run`, checked like the suite's `resources` (one-line errors)."""
    from harness.suite import RESERVED_SBATCH_ARGS, RESOURCE_KEYS

    values = {}
    for name in ("gpus", "cpus", "mem_gb", "timeout_min", "partition", "account", "qos"):
        value = getattr(args, name, None)
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        minimum = RESOURCE_KEYS[name][1]
        if minimum is not None and value < minimum:
            raise HarnessError(f"{flag} {value}: must be >= {minimum}")
        values[name] = value if value != "" else None
    extra = {}
    for item in args.sbatch or []:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key):
            raise HarnessError(f"--sbatch {item!r}: expected KEY=VALUE (or KEY for a flag), KEY an sbatch option name")
        if key in RESERVED_SBATCH_ARGS:
            raise HarnessError(f"--sbatch {item!r}: {key} is set by the harness")
        extra[key] = value if sep else True
    if extra:
        values["sbatch_args"] = extra
    return values


def launch_resources(args, suite, specs):
    """spec -> its Resources with the command line's overrides; the launch flags checked."""
    from harness import launch as launcher

    overrides = resource_overrides(args)
    for flag, value, minimum in (("--max-requeues", args.max_requeues, 0), ("--signal-delay-s", args.signal_delay_s, 1)):
        if value is not None and value < minimum:
            raise HarnessError(f"{flag} {value}: must be >= {minimum}")

    def resources_of(spec):
        return suite.resources_for(spec.config).updated(overrides)

    if args.cluster == "slurm" and args.signal_delay_s is not None and specs:
        shortest = min(resources_of(spec).timeout_min for spec in specs)
        problem = launcher.signal_delay_problem(args.signal_delay_s, shortest)
        if problem:
            raise HarnessError(f"--signal-delay-s {args.signal_delay_s}: {problem}")
    return resources_of


def dispatch(suite, todo, store, args, resources_of, executor: str):
    """Check, then launch ``todo`` (local and debug: until they end); on Slurm, print the arrays."""
    from harness import launch as launcher
    from harness.suite import Resources

    require_data(todo)
    preflight(suite, todo, args.cluster, resources_of)
    result = launcher.launch(todo, store, args.cluster, resources_of, args.max_parallel, progress=not args.quiet,
                             max_requeues=args.max_requeues, signal_delay_s=args.signal_delay_s, executor=executor)
    if args.cluster == "slurm":
        arrays, runs = result.arrays, len(result.submitted)
        print(f"submitted {runs} run{'s' * (runs != 1)} in {len(arrays)} job array{'s' * (len(arrays) != 1)}:")
        for array in arrays:
            resources = Resources(**array["resources"])
            size = f"{array['size']} runs, at most {array['parallelism']} at once" if array["size"] > 1 else "1 run"
            print(f"  job {array['job_id']}: {size} ({launcher.describe_resources(resources)})")
        print(f"job ids: {' '.join(map(str, result.job_ids))}")
        print(f"launch record: {result.record_path}")
    return result


def cmd_run(args) -> None:
    if args.until_decided:
        if args.confirm:
            raise HarnessError("--confirm: not with --until-decided (confirm first, then add seeds in rounds)")
        return run_until_decided(args)
    for flag, value in (("--max-seeds", args.max_seeds), ("--seeds-per-round", args.seeds_per_round)):
        if value is not None:
            raise HarnessError(f"{flag} {value}: only with --until-decided")
    suite, specs, store = planned(args)
    if args.confirm and (suite.select is None or not suite.select.confirm):
        raise HarnessError(f"--confirm: {suite.path} has no select: with confirm seeds to confirm on")
    executor = local_executor(args)
    resources_of = launch_resources(args, suite, specs)
    launched = launch_pending(args, suite, specs, store, executor, resources_of)
    if launched is None:
        return
    todo, elsewhere = launched
    if args.confirm:
        specs = confirm_choices(suite, specs, store)
        launched = launch_pending(args, suite, specs, store, executor, launch_resources(args, suite, specs), "confirmation")
        if launched is None:
            return
        todo, elsewhere = todo + launched[0], elsewhere | launched[1]
    _write_report(suite, store, "markdown", None, echo=True, specs=specs)
    if todo:
        finished = store.scan(todo)
        failed = [spec for spec in todo if finished.states[spec.run_id].status != "done" and spec.run_id not in elsewhere]
        if failed:
            print(f"harness: {len(failed)} of the {len(todo)} runs of this launch did not finish "
                  f"(failed or without a record): see `harness status {args.suite}`", file=sys.stderr)
            raise LaunchFailed()


def launch_pending(args, suite, specs, store, executor, resources_of, what: str = ""):
    """Dispatch the pending runs of ``specs`` (local: until they end). (the runs dispatched,
    the run ids another launcher holds), or None when Slurm jobs were submitted without --wait."""
    from harness import launch as launcher
    from harness import status

    view = status.run_views(store, specs)
    warn(view.warnings + stale(specs, view.scan))
    views = view.views
    wanted = set(NOT_STARTED) | ({"failed"} if args.retry_failed else set())
    if args.force and not what:
        wanted |= set(FINISHED)
    todo = [spec for spec in specs if views[spec.run_id].status in wanted and not views[spec.run_id].active]
    active = sum(1 for spec in specs if views[spec.run_id].active)
    skipped = len(specs) - len(todo)
    print(f"{suite.name}{f' ({what})' if what else ''}: {len(todo)} to run, {skipped} skipped "
          f"({_status_counts(specs, views)})")
    if active and (args.force or args.retry_failed or todo):
        print(f"({active} runs still queued or running are not dispatched again)")
    if not todo:
        print("nothing to run.")
        return None if args.cluster == "slurm" and not (args.confirm and not what) else ([], set())
    result = dispatch(suite, todo, store, args, resources_of, executor)
    if args.cluster == "slurm":
        if not args.wait:
            again = " (then `harness run --confirm` again, once they ended)" if args.confirm and not what else ""
            print(f"follow with: harness status {args.suite}{again}")
            return None
        launcher.wait(store, result, progress=not args.quiet)
        view = status.run_views(store, specs)
        warn(view.warnings)
        _print_status(suite, specs, store, view)
    for run_id, holder in result.elsewhere.items():
        print(f"harness: run {run_id} skipped (running elsewhere): another launcher's worker holds it "
              f"({holder}); its record will come from there", file=sys.stderr)
    for run_id, why in result.crashed.items():
        print(f"warning: run {run_id} ended without a record: {why}", file=sys.stderr)
    return todo, set(result.elsewhere)


def confirm_choices(suite, specs, store) -> list:
    """Freeze each cell's choice whose selection runs are all done (``harness.confirmation``)
    and say what was chosen; the suite's runs with the confirmation runs of every frozen choice."""
    from harness import confirmation
    from harness.report.collect import collect
    from harness.report.selected import apply
    from harness.report.shared import group_keys

    # the choice is the whole sweep's: a --filter (e.g. one confirmation seed) narrows the
    # confirmation runs to dispatch, never the candidates' selection runs
    whole = dataclasses.replace(suite, keep=())
    runs, _ = collect(whole, store, specs=list(expand(whole, round_configs(whole, store, quiet=True))))
    chosen = apply(whole, runs, group_keys(whole), store)
    for entry in confirmation.freeze(store, suite, chosen.choices):
        cell = ", ".join(f"{k}={v}" for k, v in entry["cell"].items())
        values = ", ".join(f"{k}={v}" for k, v in entry["chosen"].items())
        print(f"chosen on {suite.select.by} for {cell}: {values} ({suite.select.by} {entry['validation']:.4g}); frozen")
    waiting = [choice for choice in chosen.choices if choice.per == "mean" and not choice.complete]
    if waiting:
        print(f"{len(waiting)} cell{'s' * (len(waiting) != 1)} not chosen yet (selection runs not all done): "
              f"`harness run --confirm` again once they are")
    if suite.select.per != "mean":
        print("select.per: seed: each seed chose its own configuration; there is nothing to confirm")
    return list(expand(suite, round_configs(suite, store, quiet=True) + confirmation_configs(suite, store)))


def run_until_decided(args) -> None:
    """`run --until-decided`: the loop of ``harness.until_decided``."""
    from harness import launch as launcher
    from harness import rounds as state_file
    from harness import status
    from harness.until_decided import (
        ALPHA,
        budget,
        decisions_of,
        look_dict,
        print_look,
        require_verdicts,
        specs_of,
        wait_for,
    )

    if args.force:
        raise HarnessError("--force: each seed of the rounds runs once; delete the records to run them again")
    suite, specs, store = planned(args)
    state = state_file.load(store)
    max_seeds, per_round = budget(args, suite, specs, state)
    require_verdicts(suite)
    executor = local_executor(args)
    resources_of = launch_resources(args, suite, specs)
    if state is None:
        state = state_file.new_state(suite.name, max_seeds, ALPHA)
        state_file.save(store, state)
    retry, dispatched, first = args.retry_failed, set(), True
    while True:
        view = status.run_views(store, specs)
        if first:
            warn(view.warnings + stale(specs, view.scan))
            first = False
        views = view.views
        number = len(state["rounds"]) - 1
        wanted = set(NOT_STARTED) | ({"failed"} if retry else set())
        todo = [spec for spec in specs if views[spec.run_id].status in wanted and not views[spec.run_id].active]
        active = [spec for spec in specs if views[spec.run_id].active]
        again = [spec for spec in todo if spec.run_id in dispatched]
        if again:
            _write_report(suite, store, "markdown", None, echo=True, specs=specs)
            print(f"harness: round {number}: {len(again)} runs ended without a record (lost, cancelled or killed): "
                  f"see `harness status {args.suite}`; run the same command again to dispatch them again",
                  file=sys.stderr)
            raise LaunchFailed()
        if todo:
            print(f"{suite.name}: round {number}: {len(todo)} to run ({_status_counts(specs, views)})")
            result = dispatch(suite, todo, store, args, resources_of, executor)
            state_file.note_launch(state, result.launch_id)
            state_file.save(store, state)
            dispatched |= {spec.run_id for spec in todo} - set(result.elsewhere)
            retry = False
            for run_id, holder in result.elsewhere.items():
                print(f"harness: run {run_id} skipped (running elsewhere): another launcher's worker holds it "
                      f"({holder}); its record will come from there", file=sys.stderr)
            for run_id, why in result.crashed.items():
                print(f"warning: run {run_id} ended without a record: {why}", file=sys.stderr)
            if args.cluster == "slurm":
                if not args.wait:
                    print(f"round {number} submitted; run the same command again when its jobs have ended "
                          f"(follow with: harness status {args.suite})")
                    return
                launcher.wait(store, result, progress=not args.quiet)
            continue
        if active:
            if not wait_for(store, specs, views, active, args, number):
                return
            continue
        failed = [spec for spec in specs if views[spec.run_id].status == "failed"]
        if failed:
            _write_report(suite, store, "markdown", None, echo=True, specs=specs)
            print(f"harness: round {number}: {len(failed)} runs failed, and the verdicts wait for every run of the "
                  f"round: see `harness status {args.suite}`, then run again with --retry-failed", file=sys.stderr)
            raise LaunchFailed()
        decisions = decisions_of(suite, store, specs, state)
        print_look(decisions, number)
        have = state_file.seeds_by_cell(specs, decisions.keys, suite.select, decisions.chosen)
        found = state_file.next_additions(decisions, have, per_round, max_seeds)
        look = look_dict(decisions)
        if not found:
            state["finished"] = {"created": state_file.now(), "look": look}
            state_file.save(store, state)
            print(f"{suite.name}: every verdict is decided (or can be no further) after round {number}.")
            break
        entry = state_file.add_round(state, found, per_round, look)
        state_file.save(store, state)
        runs = sum(len(addition["seeds"]) for addition in found)
        print(f"round {entry['round']}: {len(found)} undecided cells get new seeds ({runs} runs)")
        specs = specs_of(suite, state)
    _write_report(suite, store, "markdown", None, echo=True, specs=specs)


def local_executor(args) -> str:
    """`--executor`, checked: local runs only; the fork server needs Linux."""
    from harness import launch as launcher

    if args.executor is None:
        return launcher.DEFAULT_EXECUTOR
    if args.cluster != "local":
        raise HarnessError(f"--executor {args.executor}: only for --cluster local")
    if args.executor == "pool" and not sys.platform.startswith("linux"):
        raise HarnessError("--executor pool: forking a process that imported torch is safe on Linux only; "
                           "use --executor submitit")
    return args.executor


class LaunchFailed(Exception):
    """Some runs of a local or debug launch failed: exit 1, after the report."""


def preflight(suite, specs, cluster: str, resources_of) -> None:
    """Before anything is dispatched: every plugin the suite names can be imported (one
    that fails stops the launch, even when no run uses it), every component the runs use
    can be imported (a plugin that declares a name it does not register stops it too), and
    the family's own check passes for each run. One line naming the culprit each."""
    from harness import plugins
    from harness.spec import used_components

    for i, item in enumerate(suite.plugins):
        try:
            plugins.import_all([item])
        except HarnessError as error:
            raise HarnessError(f"{suite.path}: plugins[{i}]: {error}") from None
    family = families.get(suite.family)
    seen = set()
    for spec in specs:
        for key, name in used_components(family, spec.config).items():
            if (key, name) not in seen:
                seen.add((key, name))
                try:
                    family.registries[key].get(name)
                except HarnessError as error:
                    raise HarnessError(f"{suite.path}: {key} {name!r}: {error}") from None
    if family.check:
        check = family.load("check")
        for spec in specs:
            problem = check(spec.config, cluster, resources_of(spec).gpus)
            if problem:
                raise HarnessError(f"{suite.path}: run {spec.run_id} ({spec.label()}): {problem}")


def _write_report(suite, store, fmt: str, out: str | None, echo: bool, specs=None, options: dict | None = None) -> None:
    """Build the report (with the family's own builder when it has one) and write it to
    results/<suite>/REPORT.md (report.csv, report.tex, report.json), and to ``out``. A results
    folder that cannot be written is left as it is: only ``out`` is written (the figures
    beside it; without ``out``, none), with one warning."""
    from harness.report import REPORT_FILES

    family = families.get(suite.family)
    if out and Path(out).is_dir():
        raise HarnessError(f"--out {out}: is a folder; give a file path")
    if fmt not in family.report_formats:
        raise HarnessError(f"--format {fmt}: the {family.name} report does not write it "
                           f"(it writes: {', '.join(family.report_formats)})")
    if family.report:
        build = family.load("report")
    else:
        from harness.report import build
    options = {**(options or {}), **({"specs": specs} if specs is not None else {})}
    writable = store.writable()
    if not writable:  # a read-only results folder: only --out is written, its figures beside it
        options.update({"figures_dir": str(Path(out).parent)} if out else {"plots": False})
        warn([f"{store.dir} is not writable: {REPORT_FILES[fmt]} is not written there; " +
              (f"the report goes to {out}, its figures beside it" if out else
               "the report is printed only, without figures (--out FILE writes it, its figures beside it)")])
    text, warnings = build(suite, store, fmt, options)
    if fmt == "markdown" and specs is not None:
        from harness.until_decided import report_section

        text += report_section(suite, store, specs)
    if fmt == "json" and specs is not None:
        from harness.until_decided import report_entry

        entry = report_entry(suite, store, specs)
        if entry is not None:  # without rounds the report stays byte for byte what its builder wrote
            from harness.report.shared import dumps

            text = dumps({**json.loads(text), "sequential": entry})
    warn(warnings)
    paths = ([store.dir / REPORT_FILES[fmt]] if writable else []) + ([Path(out)] if out else [])
    for path in dict.fromkeys(paths):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            if out and path == Path(out):
                raise HarnessError(f"--out {out}: cannot be written ({error.strerror or error})") from None
            # not writable after all (os.access may say yes to root on a network file system)
            warn([f"{path}: cannot be written ({error.strerror or error}); the report is printed only"])
    if echo:
        print(text, end="")


def cmd_data_prepare(args) -> None:
    from harness import data

    manifest = data.prepare(args.name, args.source, args.root)
    print(f"prepared {args.name} from {manifest['source']['kind']} in {data.data_root(args.root) / args.name}")
    print(data.summary(manifest, args.root))


def cmd_data_verify(args) -> None:
    from harness import data

    print(data.verify(args.name, args.root))


def cmd_data_sources(args) -> None:
    from harness import data

    for name in [args.name] if args.name else data.names():
        print(f"{name}:")
        for kind, description in data.sources(name):
            print(f"  {kind:28} {description}")


def require_data(specs) -> None:
    """Fail before dispatch, with the command to type, when a run's dataset is not prepared."""
    from harness import data

    for family, name in sorted({(spec.family, spec.config["dataset"]) for spec in specs}):
        data.require_prepared(name, family=family)


def cmd_report(args) -> None:
    from harness.report import FORMATS

    if args.format not in FORMATS:
        raise HarnessError(f"--format {args.format}: unknown format (known: {', '.join(FORMATS)})")
    suite, specs, store = planned(args)
    methods = sorted({spec.config["method"] for spec in specs})
    if args.baseline is not None and args.baseline not in methods:
        raise HarnessError(f"--baseline {args.baseline}: no run of this suite has that method (methods: {', '.join(methods)})")
    _write_report(suite, store, args.format, args.out, echo=True,
                  specs=specs, options={"plots": args.plots, "baseline": args.baseline, "per_task": args.per_task,
                                        "oracle": args.oracle})
    warn(stale(specs, store.scan(specs)))  # as `plan` does: records made by code changed since


def cmd_compare(args) -> None:
    """`harness compare A B` (results folders) or `harness compare SUITE --rev A --rev B` (git revisions)."""
    import tempfile

    from harness import compare
    from harness.store import results_root

    fmt = args.format or "markdown"
    if fmt not in ("markdown", "json"):
        raise HarnessError(f"--format {fmt}: unknown format (known: markdown, json)")
    if args.rev is not None:
        if len(args.rev) != 2 or len(args.paths) != 1:
            raise HarnessError("compare SUITE --rev A --rev B: give one suite and exactly two revisions")
        if args.suite:
            raise HarnessError("--suite: with --rev the suite is the command's argument")
        suite = _compare_suite(args.paths[0], required=True)
        folder = results_root(args.results) / suite.name
        with tempfile.TemporaryDirectory(prefix="harness-compare-") as temp:
            sides = [compare.read_side(rev, compare.revision_folder(folder, rev, Path(temp) / str(i)), suite.family,
                                       args.metric) for i, rev in enumerate(args.rev)]
            result = compare.compare(*sides, suite, args.metric, margin(args))
    else:
        if len(args.paths) != 2:
            raise HarnessError("compare A B: give two results folders (or SUITE --rev A --rev B)")
        suite = _compare_suite(args.suite) if args.suite else None
        name = suite.name if suite is not None else args.suite
        sides = [compare.read_side(path, compare.suite_folder(Path(path), name), suite.family if suite else None,
                                   args.metric) for path in args.paths]
        result = compare.compare(*sides, suite, args.metric, margin(args))
    print(compare.markdown(result, suite) if fmt == "markdown" else compare.as_json(result), end="" if fmt == "markdown" else "\n")
    if args.fail_on_change and result.moved:
        sys.stdout.flush()
        deltas = "/".join(f"{m:g}" for m in sorted(set(result.margins.values())))
        print(f"harness: {len(result.moved)} of {len(result.changes)} cells moved beyond δ = {deltas} "
              f"({result.margin_source or 'no margin given'}; false discovery rate 5%)", file=sys.stderr)
        raise SystemExit(1)


def margin(args) -> float | None:
    """`compare --margin`: a positive number, the change that matters (None: not given)."""
    if args.margin is None:
        return None
    try:
        value = float(args.margin)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise HarnessError(f"--margin {args.margin}: must be a positive number (the change that matters, in the metric's units)")
    return value


def _compare_suite(text: str, required: bool = False):
    """The suite a compare names: a suite file (or one in ./suites); else, without --rev, just
    the name of its results folder (None: the records' own specs say what the cells are)."""
    from harness.suite import NAME_PATTERN

    path = resolve_suite_path(text)
    if path.is_file() or required or not NAME_PATTERN.match(text):
        suite = load_suite(path)
        warn(suite.warnings)
        return suite
    return None


def _run_of(args):
    """The store and full id of the run `log` / `show` name (unique prefixes allowed)."""
    from harness.runinfo import find_run
    from harness.store import results_root

    name = args.suite
    if name is not None and (resolve_suite_path(name).is_file()):
        name = load_suite(resolve_suite_path(name)).name
    return find_run(results_root(args.results), args.run_id, name)


def cmd_log(args) -> None:
    from harness.runinfo import log_lines, log_parts, tail_count

    tail = tail_count(args.tail)
    store, run_id = _run_of(args)
    parts = log_parts(store, run_id)
    if not parts:
        raise HarnessError(f"run {store.suite}/{run_id}: no log yet ({store.log_path(run_id)})")
    for line in log_lines(parts, tail):
        sys.stdout.write(line)


def cmd_show(args) -> None:
    from harness.runinfo import show

    store, run_id = _run_of(args)
    planned_config = None
    if args.suite is not None and resolve_suite_path(args.suite).is_file():
        suite = load_suite(resolve_suite_path(args.suite))
        planned_config = next((spec.config for spec in expand(suite) if spec.run_id == run_id), None)
    print(show(store, run_id, planned_config), end="")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="Reproduce ML papers' benchmark tables from YAML suites.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("--results", default=None, help="results folder (default: $HARNESS_RESULTS or ./results)")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="every family and the names of its components, with where they come from")
    listing.add_argument("suite", nargs="?", help="also load this suite's plugins")
    listing.add_argument("--keys", nargs="?", const="", default=None, metavar="FAMILY",
                         help="instead, the keys that take a value, with their defaults (of every family, or of FAMILY)")
    listing.set_defaults(func=cmd_list)

    def suite_command(name, func, help_text):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("suite", help="suite file, or the name of one in ./suites")
        sub.add_argument("--results", default=argparse.SUPPRESS, help="results folder (also accepted before the command)")
        sub.add_argument("--filter", action="append", metavar="KEY=VALUE[,VALUE]", help="keep runs whose config matches (repeatable)")
        sub.set_defaults(func=func)
        return sub

    plan = suite_command("plan", cmd_plan, "the expanded grid, one row per run, with status")
    plan.add_argument("--format", choices=("table", "json"), default="table",
                      help="json: every run's id, status and fully resolved config")
    plan.add_argument("--estimate", action="store_true",
                      help="also the expected wall-clock and GPU-hours of the pending runs, from finished runs "
                           "of the same method, dataset and backbone in the results folder")
    plan.add_argument("--power", action="store_true",
                      help="also how many seeds each reported number and claim needs for a verdict at 80%% power, "
                           "from the finished runs")
    run = suite_command("run", cmd_run, "run every pending run")
    run.add_argument("--cluster", choices=("local", "debug", "slurm"), default="local",
                     help="local (default): each run in a process of its own on this machine; debug: in this "
                          "process, one after the other; slurm: job arrays, then return (see --wait)")
    run.add_argument("--executor", choices=("pool", "submitit"), default=None,
                     help="local: how each run gets its process. pool (default on Linux): forked from a server "
                          "that imported torch once; submitit: a fresh Python per run through submitit's local "
                          "executor (seconds slower per run; for comparison or debugging)")
    run.add_argument("--max-parallel", type=int, default=None, metavar="N",
                     help="runs at once (local default: as many as the cores hold; slurm: per job array, sbatch's %%)")
    run.add_argument("--force", action="store_true", help="rerun finished runs too")
    run.add_argument("--retry-failed", action="store_true", help="rerun failed runs too")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--wait", action="store_true", help="slurm: follow the jobs with a progress bar until all end, then report")
    run.add_argument("--max-requeues", type=int, default=3, metavar="N",
                     help="requeues after a time-out before the run is recorded as failed (default 3)")
    run.add_argument("--signal-delay-s", type=int, default=None, metavar="S",
                     help="slurm: checkpoint and requeue S to S+30 s before the time limit (default: 90, less for limits under 4 min)")
    run.add_argument("--confirm", action="store_true",
                     help="with select: after the grid, freeze each cell's configuration chosen on validation "
                          "(selection.json) and run it on the confirmation seeds (select.confirm)")
    rounds = run.add_argument_group("sequential seeds (rounds until every verdict is decided)")
    rounds.add_argument("--until-decided", action="store_true",
                        help="after the grid, add seeds in rounds to the cells whose reproduction verdict or claim is "
                             "still undecided, until all are decided (group-sequential rule) or max seeds ran")
    rounds.add_argument("--max-seeds", type=int, default=None, metavar="N",
                        help="seeds per cell at most (default: the suite's budget: max_seeds); fixed at the first round")
    rounds.add_argument("--seeds-per-round", type=int, default=None, metavar="K",
                        help="new seeds per undecided cell and round (default: the suite's budget: seeds_per_round)")
    given = run.add_argument_group("resources (override the suite's `resources` for every run)")
    given.add_argument("--gpus", type=int, default=None, metavar="N",
                       help="GPUs per run (slurm: --gpus-per-node; local: GPUs of its own among the visible ones)")
    given.add_argument("--cpus", type=int, default=None, metavar="N",
                       help="CPUs per run: torch's and the BLAS thread pools (slurm: --cpus-per-task)")
    given.add_argument("--mem-gb", type=float, default=None, metavar="GB", help="memory per run (slurm: --mem; not enforced on this machine)")
    given.add_argument("--timeout-min", type=int, default=None, metavar="MIN",
                       help="time limit per run: checkpoint and requeue before it, see --max-requeues (slurm: --time)")
    given.add_argument("--partition", default=None, help="slurm: the partition (default: the cluster's)")
    given.add_argument("--account", default=None, help="slurm: the account to charge")
    given.add_argument("--qos", default=None, help="slurm: the quality of service")
    given.add_argument("--sbatch", action="append", metavar="KEY=VALUE",
                       help="any further sbatch option, e.g. --sbatch constraint=a100 (repeatable; KEY alone for a flag)")
    status = suite_command("status", cmd_status, "done / failed / running / requeued / pending / cancelled / lost, with errors and logs")
    status.add_argument("--format", choices=("table", "json"), default="table",
                        help="json: the counts, and per run its id, status, config, error, log and job")
    data = commands.add_parser("data", help="prepare and verify datasets").add_subparsers(dest="data_command", required=True)
    prepare = data.add_parser("prepare", help="read a dataset from the files you have into the harness layout")
    prepare.add_argument("name")
    prepare.add_argument("--source", required=True, help="file or folder (`harness data sources` lists the forms)")
    prepare.add_argument("--root", default=None, help="data root (default: $HARNESS_DATA or ~/.cache/harness/data)")
    prepare.set_defaults(func=cmd_data_prepare)
    verify = data.add_parser("verify", help="check a prepared dataset against its known facts and hashes")
    verify.add_argument("name")
    verify.add_argument("--root", default=None)
    verify.set_defaults(func=cmd_data_verify)
    sources = data.add_parser("sources", help="the source forms each dataset accepts")
    sources.add_argument("name", nargs="?")
    sources.set_defaults(func=cmd_data_sources)
    report = suite_command("report", cmd_report, "tables of accuracy with intervals vs reported numbers")
    report.add_argument("--format", default="markdown", metavar="FORMAT",
                        help="markdown (REPORT.md), csv (report.csv, tidy), latex (report.tex, booktabs), json (report.json)")
    report.add_argument("--out", default=None, help="also write the report here")
    report.add_argument("--plots", action=argparse.BooleanOptionalAction, default=None,
                        help="draw the figures (PNG beside the report) and link them (default: on for markdown)")
    report.add_argument("--per-task", action="store_true",
                        help="also each task's own figures, where the family's report has them (rl: success per task)")
    report.add_argument("--oracle", action="store_true",
                        help="with select: also each cell's configuration chosen on TEST, labelled oracle "
                             "(optimistic; never a verdict)")
    report.add_argument("--baseline", default=None, metavar="METHOD",
                        help="compare every other method with this one, paired where the runs allow "
                             "(default: the suite's report.baseline)")
    add_run_commands(commands)
    return parser


def add_run_commands(commands) -> None:
    """The sub-parsers of compare, log and show."""
    compare = commands.add_parser("compare", help="how each cell moved between two results folders, or two git revisions")
    compare.add_argument("paths", nargs="+", metavar="A B | SUITE",
                         help="two results folders (results/<suite>, or results roots with --suite); with --rev, the suite")
    compare.add_argument("--rev", action="append", metavar="REV",
                         help="twice: compare the suite's committed records at these two git revisions (A, then B)")
    compare.add_argument("--suite", default=None, help="suite file (its cells and metric) or the suite's folder name")
    compare.add_argument("--metric", default=None, help="default: the family's headline metric")
    compare.add_argument("--format", default=None, metavar="FORMAT", help="markdown (default) or json")
    compare.add_argument("--margin", default=None, metavar="DELTA",
                         help="the change that matters, in the metric's units (default: the suite's report margin)")
    compare.add_argument("--fail-on-change", action="store_true",
                         help="exit 1 when any cell moved beyond the margin (false discovery rate 5%%)")
    compare.add_argument("--results", default=argparse.SUPPRESS, help="results folder (with --rev)")
    compare.set_defaults(func=cmd_compare)
    for name, func, help_text in (("log", cmd_log, "a run's log (run.log, after its older parts run.log.1, .2, ...)"),
                                  ("show", cmd_show, "a run's config, components, status, metrics, timing and env")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("run_id", help="a run id, or a unique prefix of one")
        sub.add_argument("--suite", default=None, help="look only in this suite (its name or file)")
        sub.add_argument("--results", default=argparse.SUPPRESS, help="results folder (also accepted before the command)")
        if name == "log":
            sub.add_argument("--tail", default=None, metavar="N", help="only the last N lines")
        sub.set_defaults(func=func)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "max_parallel", None) is not None and args.max_parallel < 1:
        print("harness: error: --max-parallel must be >= 1", file=sys.stderr)
        return 2
    try:
        args.func(args)
        sys.stdout.flush()
    except HarnessError as error:
        print(f"harness: error: {error}", file=sys.stderr)
        return 2
    except LaunchFailed:
        return 1
    except KeyboardInterrupt:
        print("harness: interrupted; rerun the same command to resume (finished runs are skipped, "
              "stopped ones continue from their checkpoints)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `harness plan ... | head`: the reader left; nothing to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
