"""One run's record, and every name under ``results/<suite>/``: the one place that says what a
record holds, which statuses a run can have, and when a record is trusted.

``job.py`` writes a record (``FIELDS``); everything else reads records through
``harness.store``, which uses ``problem`` (a planned run's record) and ``folder_problem``
(any record of a results folder: `compare`, `plan --estimate`) from here. No torch.
"""
from __future__ import annotations

import json
import re

from harness import families
from harness.spec import identity_config

# ---------------------------------------------------------------- results/<suite>/ and its run folders

RUN_ID = re.compile(r"^[0-9a-f]{12}$")  # a run folder's name
RECORD = "record.json"  # in a run folder: the record, written once, atomically
RUNNING = "running.json"  # in a run folder while a worker holds RUNNING_LOCK: who, since when, progress
RUNNING_LOCK = "running.lock"
RUN_LOG = "run.log"  # and run.log.1, .2, ... (older lines)
CHECKPOINT = "checkpoint.pt"  # removed once the record is written
ATTEMPTS = "attempts.json"  # the seconds of a run's stopped attempts (preempted, Ctrl-C), removed with the checkpoint
LAUNCHES = "launches"  # <launch id>.json: which job ran which run
SUBMITIT = ".submitit"  # <launch id>/: submitit's and the fork server's logs
CACHE_DIR = ".cache"  # the store's scan cache (never committed)
ROUNDS = "rounds.json"  # sequential seeds (harness.rounds)
SELECTION = "selection.json"  # choices frozen by `run --confirm` (harness.confirmation)
REPORT_FILES = {"markdown": "REPORT.md", "csv": "report.csv", "latex": "report.tex", "json": "report.json"}
FIGURE_SUFFIX = ".png"  # the report's figures, beside REPORT.md
# What may sit in results/<suite>/ besides run folders (anything else is warned about).
KNOWN_FILES = {*REPORT_FILES.values(), SUBMITIT, LAUNCHES, ROUNDS, SELECTION}

# ---------------------------------------------------------------- statuses

# Every status a run can have, in the order `status` shows them.
STATUSES = ("done", "failed", "running", "requeued", "pending", "cancelled", "lost")
FINISHED = ("done", "failed")  # what a record says: the only statuses a record may hold
FROM_SCHEDULER = ("requeued", "cancelled", "lost")  # only the scheduler's view of a job says these
# The store's view of a planned run (a record, a worker holding its lock, or neither): what
# `plan` and the reports count.
STORE_STATUSES = tuple(status for status in STATUSES if status not in FROM_SCHEDULER)
NOT_STARTED = ("pending", "cancelled", "lost")  # `run` dispatches these again: nothing works on them
ACTIVE = ("running", "requeued")  # a worker or a queued job will still write the record

# ---------------------------------------------------------------- the record

# What job.py writes into every record (a trainer's result may add keys of its own).
FIELDS = ("status", "curve", "timing", "metrics", "components", "memory", "env", "details", "error",
          "run_id", "suite", "family", "spec", "plugins", "started", "finished", "log")


def family_of(record: dict) -> str:
    """The family a record names (records of the first family may name none)."""
    return record.get("family", families.DEFAULT)


def parse(data: bytes | str) -> tuple[object, str | None]:
    """(the JSON value, None), or (None, why it cannot be read)."""
    try:
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data), None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, unreadable(error)


def unreadable(error: Exception) -> str:
    return f"unreadable or truncated ({type(error).__name__})"


def folder_problem(record, run_id: str) -> str | None:
    """Why a JSON value is not a record of run folder ``run_id`` (whatever the plan), or None."""
    if not isinstance(record, dict) or record.get("run_id") != run_id or not isinstance(record.get("spec"), dict):
        return "not a record of this folder"
    return None


def problem(record, run_id: str, config: dict | None, family) -> str | None:
    """Why ``record`` is not a trusted record of the planned run ``run_id`` with ``config``
    (None: of any config) of ``family``, or None. Keys at their default may be absent from its
    spec (a key added since keeps old records valid)."""
    if not isinstance(record, dict):
        return "not a record (not a JSON object)"
    if record.get("run_id") != run_id:
        return f"claims run id {record.get('run_id')!r} but sits in folder {run_id}"
    if record.get("status") not in FINISHED:
        return f"has status {record.get('status')!r}"
    if config is not None:
        spec = record.get("spec")
        if not isinstance(spec, dict) or identity_config(family, spec) != identity_config(family, json.loads(json.dumps(config))):
            return "its spec differs from the planned run"
    if record["status"] == "done":
        return family.metrics_problem(record.get("metrics"))
    return None
