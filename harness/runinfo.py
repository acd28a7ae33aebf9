"""`harness log` and `harness show`: one run, found by its id (or a unique prefix of it)
in every suite of the results folder, or in one (``--suite``). No torch here.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections import deque
from pathlib import Path

from harness import HarnessError, families
from harness.record import FINISHED, RUN_ID, RUN_LOG
from harness.store import Store

PREFIX = re.compile(r"^[0-9a-f]{1,12}$")
SHOWN_MATCHES = 5


def find_run(root: Path, prefix: str, suite: str | None = None) -> tuple[Store, str]:
    """(the run's suite store, its full run id) for a run id or a unique prefix of one."""
    if not PREFIX.match(prefix):
        raise HarnessError(f"{prefix!r}: not a run id (up to 12 lower-case hex digits)")
    if not root.is_dir():
        raise HarnessError(f"{root}: no results folder (--results, $HARNESS_RESULTS or ./results)")
    if suite is not None and not (root / suite).is_dir():
        raise HarnessError(f"--suite {suite}: no such suite folder in {root}")
    folders = [root / suite] if suite is not None else sorted(p for p in root.iterdir() if p.is_dir())
    matches = [(folder.name, run_id) for folder in folders for run_id in _run_ids(folder, prefix)]
    where = root / suite if suite is not None else root
    if not matches:
        raise HarnessError(f"run {prefix}: no run folder with that id in {where}")
    if len(matches) > 1:
        shown = ", ".join(f"{name}/{run_id}" for name, run_id in matches[:SHOWN_MATCHES])
        more = f" and {len(matches) - SHOWN_MATCHES} more" if len(matches) > SHOWN_MATCHES else ""
        raise HarnessError(f"run {prefix}: ambiguous, {len(matches)} runs match ({shown}{more}); give more digits"
                           + ("" if suite else " or --suite"))
    name, run_id = matches[0]
    return Store(root, name), run_id


def _run_ids(folder: Path, prefix: str) -> list[str]:
    if len(prefix) == 12:
        return [prefix] if (folder / prefix).is_dir() else []
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.name.startswith(prefix) and RUN_ID.match(e.name) and e.is_dir())


# ---------------------------------------------------------------- log


def log_parts(store: Store, run_id: str) -> list[Path]:
    """run.log.1, run.log.2, ... (older lines, in the order they were moved aside), then run.log."""
    folder = store.run_dir(run_id)
    rotated = [p for p in folder.glob(f"{RUN_LOG}.*") if p.suffix[1:].isdigit()]
    parts = sorted(rotated, key=lambda p: int(p.suffix[1:]))
    return parts + [folder / RUN_LOG] * (folder / RUN_LOG).is_file()


def log_lines(parts: list[Path], tail: int | None):
    """The lines of the parts in order (only the last ``tail`` of them when given)."""
    lines = deque(maxlen=tail) if tail is not None else None
    for part in parts:
        with open(part, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if lines is None:
                    yield line
                else:
                    lines.append(line)
    if lines is not None:
        yield from lines


def tail_count(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise HarnessError(f"--tail {text}: expected a number of lines (an integer >= 0)")
    return int(text)


# ---------------------------------------------------------------- show


def show(store: Store, run_id: str, planned_config: dict | None = None) -> str:
    record, problem = store.inspect_record(run_id)
    lines = [f"run {run_id} (suite {store.suite}): {status_of(store, run_id, record, problem)}"]
    label = run_label(record)
    if label:
        lines.append(f"  label: {label}")
    if problem:
        lines.append(f"  record not trusted: {problem}")
    lines += [f"  folder: {store.run_dir(run_id)}"]
    parts = log_parts(store, run_id)
    if parts:
        lines.append(f"  log: {parts[-1]}" + (f" (and {len(parts) - 1} older parts)" if len(parts) > 1 else ""))
    record = record or {}
    for key in ("started", "finished"):
        if record.get(key):
            lines.append(f"  {key}: {record[key]}")
    config = record.get("spec") if isinstance(record.get("spec"), dict) else planned_config
    lines += section("config" + (" (planned: no record yet)" if config is planned_config and config else " (resolved)"),
                     config or {}, empty="unknown (no record; give --suite with the suite file for the planned config)")
    lines += section("components", {key: component_text(part) for key, part in (record.get("components") or {}).items()},
                     empty="none recorded")
    if record.get("status") == "failed" or record.get("error"):
        lines += error_lines(record.get("error") or {})
    lines += section("metrics", {k: metric_text(v) for k, v in (record.get("metrics") or {}).items()}, empty="none")
    lines += section("timing", {k: timing_text(k, v) for k, v in (record.get("timing") or {}).items()}, empty="none")
    memory = {k: bytes_text(v) for k, v in (record.get("memory") or {}).items() if v is not None}
    if memory:
        lines += section("memory", memory)
    lines += section("env", record.get("env") or {}, empty="none")
    return "\n".join(lines) + "\n"


def run_label(record: dict | None) -> str | None:
    try:
        return families.get(record.get("family", families.DEFAULT)).run_label(record["spec"])
    except Exception:  # an unknown family, a spec without the label's keys: no label, not an error
        return None


def status_of(store: Store, run_id: str, record: dict | None, problem: str | None) -> str:
    if record is not None and not problem and record.get("status") in FINISHED:
        return record["status"]
    running = store.running_info(run_id)
    if running:
        return f"running (host {running.get('host')}, pid {running.get('pid')}, since {running.get('started')})"
    return "pending (no trusted record)" if problem else "pending (no record)"


def section(title: str, values: dict, empty: str = "") -> list[str]:
    if not values:
        return [f"{title}: {empty}"]
    width = max(len(str(k)) for k in values)
    return [f"{title}:"] + [f"  {str(k):<{width}}  {plain(v)}" for k, v in values.items()]


def plain(value) -> str:
    return json.dumps(value) if isinstance(value, (dict, list, bool)) or value is None else str(value)


def component_text(part) -> str:
    if not isinstance(part, dict):
        return plain(part)
    where = ", ".join(str(part[k]) for k in ("origin", "file") if part.get(k))
    digest = f", digest {str(part['digest'])[:12]}" if part.get("digest") else ""
    return f"{part.get('name')} v{part.get('version')}" + (f" ({where})" if where else "") + digest


def metric_text(value) -> str:
    numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)] if isinstance(value, list) else []
    if isinstance(value, list) and value and len(numbers) == len(value):
        mean = sum(numbers) / len(numbers)
        return f"{len(numbers)} values: mean {mean:.4g}, min {min(numbers):.4g}, max {max(numbers):.4g}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return text if len(text) <= 200 else text[:197] + "..."
    return plain(value)


def timing_text(name: str, value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and "second" in name and math.isfinite(value):
        if value < 1:
            return f"{value * 1000:.3g} ms"
        return f"{value:.1f} s" + (f" ({value / 3600:.2f} h)" if value >= 3600 else f" ({value / 60:.1f} min)" if value >= 120 else "")
    return plain(value)


def bytes_text(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value / 2**20:.1f} MiB"
    return plain(value)


def error_lines(error: dict) -> list[str]:
    message = str(error.get("message") or "").strip()
    lines = ["error:", f"  {error.get('type', 'Error')}: {message.splitlines()[0] if message else ''}"]
    lines += [f"  {line}" for line in message.splitlines()[1:]]
    trace = str(error.get("traceback") or "").strip().splitlines()
    if trace:
        lines += ["  traceback (last lines):"] + [f"    {line}" for line in trace[-6:]]
    return lines
