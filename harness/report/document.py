"""The JSON report (``report.json``): everything the markdown shows, for tools: the cells
(their fields from the column declarations, ``harness.report.columns``), the
comparisons (every field), the claims, the runs with their status, the figures, the notes.
"""
from __future__ import annotations

import dataclasses

from harness import families
from harness.report import claims, selected
from harness.report.collect import counts, report_warnings
from harness.report.columns import CELL_COLUMNS, Table, fields
from harness.report.markdown import notes, verdict_notes
from harness.report.paired import notes as comparison_notes
from harness.report.shared import comparison_keys, dumps

# A cell's keys in the order of earlier reports; a new column's follow them.
CELL_ORDER = ("metric", "seeds", "mean", "ci95", "interval", "low", "high", "clipped_to_bounds", "per_seed",
              "train_seconds", "eval_seconds", "gpu_hours", "train_gpu_hours", "train_cpu_hours", "reported",
              "reproduction", "vs_best", "per_seed_interval")


def ordered(entry: dict, order) -> dict:
    rank = {name: i for i, name in enumerate(order)}
    return dict(sorted(entry.items(), key=lambda item: rank.get(item[0], len(rank))))


def cell_json(cell, keys: list[str]) -> dict:
    return {**{k: cell.key[k] for k in keys}, **ordered({"metric": cell.metric.name, **fields(CELL_COLUMNS, "json", cell)},
                                                        CELL_ORDER)}


def comparison_json(comparison) -> dict:
    """Every field of a comparison, its keys first."""
    entry = {name: getattr(comparison, name) for name in (f.name for f in dataclasses.fields(comparison))}
    return {**entry.pop("key"), **entry}


def run_json(run: dict, keys: list[str], family) -> dict:
    entry = {"run_id": run["run_id"], "label": run["label"], "status": run["status"], **{k: run[k] for k in keys},
             "seed": run["seed"], "metrics": {}, "samples": {}, "train_seconds": run["train_seconds"],
             "eval_seconds": run["eval_seconds"], "device": run["device"], "error": run["error"], "log": run["log"]}
    if run["status"] == "done":
        for metric in family.metrics:
            entry["metrics"][metric.name] = run[metric.name]
            if metric.samples:
                entry["samples"][metric.name] = len(run[f"{metric.name}:samples"])
    return entry


def render(report) -> str:
    """The generic report's document."""
    suite = report.suite
    family = families.get(suite.family)
    cells, comparisons, notes_by_metric = [], [], {}
    for section in report.sections:
        context = Table(section.metric, section.cells, report.keys, comparison_keys(report.keys))
        notes_by_metric[section.metric.name] = notes(section.metric) + verdict_notes(context, section.margin)
        cells += [cell_json(cell, report.keys) for cell in section.cells]
        comparisons += [comparison_json(comparison) for comparison in section.comparisons]
        if section.comparisons:
            notes_by_metric[section.metric.name] += comparison_notes(section.comparisons, section.metric,
                                                                     comparison_keys(report.keys))
    document = {
        "suite": suite.name, "family": suite.family, "paper": suite.paper, "description": suite.description,
        "counts": counts(report.runs),
        "metrics": [{"name": m.name, "direction": m.direction, "unit": m.unit, "samples": m.samples,
                     "samples_name": m.samples_name} for m in family.metrics],
        "keys": report.keys, "cells": cells, "baseline": report.baseline, "comparisons": comparisons,
        "runs": [run_json(run, report.keys, family) for run in report.runs.to_dict("records")],
        "claims": claims.json_entries(report.claims), "claims_rule": claims.RULE,
        **({"selection": selected.json_entry(report.selection)} if report.selection and report.selection.select else {}),
        "figures": [f for f in report.figures if f.get("file")], "notes": notes_by_metric,
        "warnings": report_warnings(report.scan),
    }
    return dumps(document)
