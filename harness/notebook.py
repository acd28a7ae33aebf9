"""`harness.runs` and `harness.cells`: a suite's runs and its report's cells as pandas
DataFrames, for notebooks and scripts. They plan the suite as `harness plan` does (the
runs of sequential rounds and of confirmation included) and compute the report's model as
`harness report` does; no torch. Warnings (a suite's, the store's, stale sources) come as
Python warnings; bad input raises ``HarnessError`` with the command line's message.
"""
from __future__ import annotations

import numbers
import warnings
from pathlib import Path

import pandas as pd

from harness import families
from harness.spec import expand
from harness.suite import load_suite


def _planned(suite, results):
    """(the suite, its planned runs, its store, the store scan of them), warnings raised."""
    from harness import cli
    from harness.staleness import stale_warnings

    loaded = load_suite(cli.resolve_suite_path(str(suite)))
    store = cli.results_store(results, loaded.name)
    specs = list(expand(loaded, cli.round_configs(loaded, store, quiet=True) + cli.confirmation_configs(loaded, store)))
    scan = store.scan(specs)
    for message in [*loaded.warnings, *scan.warnings, *stale_warnings(specs, scan)]:
        warnings.warn(message, stacklevel=3)
    return loaded, specs, store, scan


def _scalar(value) -> bool:
    return value is None or isinstance(value, (numbers.Number, str))


def runs(suite: str | Path, results: str | Path | None = None) -> pd.DataFrame:
    """One row per planned run of ``suite`` (a suite file, or the name of one in ./suites):
    run_id, label, status, every config key, every metric and validation metric the family
    declares (and any other number its record holds; per-unit samples left out), the
    timing (``timing:NAME`` where NAME is a config key too), and for a failed run its error's first line; the log's path. ``results``: the
    results folder (default: $HARNESS_RESULTS or ./results)."""
    loaded, specs, store, scan = _planned(suite, results)
    family = families.get(loaded.family)
    declared = [metric.name for metric in (*family.metrics, *family.validation)]
    rows = []
    for spec in specs:
        state = scan.states[spec.run_id]
        record = state.record or {}
        metrics = record.get("metrics") or {}
        error = record.get("error") or {}
        message = (error.get("message") or "").strip().splitlines() if state.status == "failed" else []
        row = {"run_id": spec.run_id, "label": spec.label(), "status": state.status, **spec.config}
        row.update({name: metrics.get(name) for name in declared})
        row.update({name: value for name, value in metrics.items() if name not in row and _scalar(value)})
        for name, value in (record.get("timing") or {}).items():  # `steps` done is no config's `steps`
            if _scalar(value):
                row[f"timing:{name}" if name in row else name] = value
        row["error"] = f"{error.get('type', 'Error')}: {message[0]}" if message else None
        row["log"] = str(store.root / record["log"]) if record.get("log") else None
        rows.append(row)
    return pd.DataFrame(rows)


def cells(suite: str | Path, results: str | Path | None = None) -> pd.DataFrame:
    """The report's cells of ``suite``, one row per cell and metric, computed as `harness
    report` computes them (the family's own report where it has one; with a suite's
    ``select:``, the cells chosen on validation): the cell's keys, the metric, its seeds (how
    many, each one's value and run id), the mean and its 95% interval across seeds (clipped to the
    metric's bounds), the reported number and the reproduction verdict, the verdict against
    the best of its group, each part's (task's) mean (``part:NAME``), and the cost figures."""
    from harness.report.columns import best_fields, mean_fields, reported_fields
    from harness.report.sequential import report_model

    loaded, specs, store, _ = _planned(suite, results)
    report = report_model(loaded, store, specs)
    rows = []
    for section in report.sections:
        for cell in section.cells:
            row = {**{key: cell.key[key] for key in report.keys}, "metric": section.metric.name,
                   "seeds": cell.interval.n, "per_seed": cell.by_seed, "run_ids": [seed.run_id for seed in cell.seeds], "samples": cell.samples}
            found = mean_fields(cell)
            row.update({"mean": found.pop("value"), **found, **reported_fields(cell), **best_fields(cell)})
            for name, interval in cell.parts.items():
                row.update({f"part:{name}": interval.mean, f"part:{name}:ci95": interval.half_width})
            row.update(cell.cost)
            row.update(cell.ratios)
            rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else [*report.keys, "metric", "seeds", "mean", "ci95"])
