"""Collecting: a suite's records -> one runs frame (one row per planned run), from one
store scan. Statistics are computed later (``harness.report.cells``), never stored. The
generic row holds what the generic report needs; a family report passes its own.
"""
from __future__ import annotations

from pathlib import PurePath

import pandas as pd

from harness import families
from harness.record import FIGURE_SUFFIX, REPORT_FILES, STORE_STATUSES
from harness.report.shared import first_line, group_keys
from harness.spec import expand
from harness.store import ScanWarning, gc_paused


def collect(suite, store, row=None, specs=None):
    """(the runs frame, the store scan). ``row(spec, state) -> dict``: one run as a row
    (default: ``generic_row``'s); ``specs``: the suite's runs when the caller has
    expanded them already."""
    specs = list(expand(suite)) if specs is None else list(specs)
    scan = store.scan(specs)
    row = row or generic_row(suite)
    validation = [m.name for m in families.get(suite.family).validation] if suite.select is not None else []
    with gc_paused():  # the records are decoded here (lazily): many small acyclic containers
        rows = [row(spec, scan.states[spec.run_id]) for spec in specs]
        for found, spec in zip(rows, specs):  # what model selection chooses by (``harness.report.selected``)
            metrics = (scan.states[spec.run_id].record or {}).get("metrics") or {}
            found.update({name: metrics.get(name) for name in validation})
    return pd.DataFrame(rows), scan


def generic_row(suite):
    """The generic report's row of a run: its keys, seed, status, timing, the resources it
    asked for, and each declared metric (with its samples)."""
    family = families.get(suite.family)
    keys = group_keys(suite)
    costs = cost_fields(suite)

    def row(spec, state) -> dict:
        record = state.record or {}
        metrics = record.get("metrics") or {}
        config = spec.config
        found = {name: config[name] for name in keys}
        found.update({
            "seed": config["seed"], "run_id": spec.run_id, "label": spec.label(), "status": state.status,
            "config": config, **costs(config, record),
            "error": first_line((record.get("error") or {}).get("message")) if state.status == "failed" else None,
            "log": record.get("log"),
        })
        for metric in family.metrics:
            found[metric.name] = metrics.get(metric.name)
            if metric.samples:
                found[f"{metric.name}:samples"] = metrics.get(metric.samples)
        return found

    return row


def cost_fields(suite):
    """``(config, record) -> dict``: a run's timing, device and the resources it asked for
    (overrides included; memoised per config), as every family's runs frame has them (the
    cost columns and a claim's ``cost_at_most``)."""
    resources = {}

    def fields(config: dict, record: dict) -> dict:
        timing, env = record.get("timing") or {}, record.get("env") or {}
        asked = resources.get(id(config)) or resources.setdefault(id(config), suite.resources_for(config))
        return {"train_seconds": timing.get("train_seconds"), "eval_seconds": timing.get("eval_seconds"),
                "total_seconds": timing.get("total_seconds"), "device": env.get("device"),
                "device_name": env.get("device_name"), "gpus": asked.gpus, "cpus": asked.cpus}

    return fields


def report_warnings(scan) -> list[str]:
    """The store's warnings, less those about the report's own files (REPORT.md and its
    siblings, the plots): a report regenerates to the same text whatever was there."""
    def own(warning) -> bool:
        name = PurePath(warning.path).name
        return warning.kind == ScanWarning.FOREIGN and (name in REPORT_FILES.values() or name.endswith(FIGURE_SUFFIX))

    return [w for w in scan.warnings if not own(w)]


def counts(runs) -> dict:
    found = runs["status"].value_counts().to_dict() if len(runs) else {}
    return {status: int(found.get(status, 0)) for status in STORE_STATUSES}
