"""The results layout: results/<suite>/<run_id>/record.json, written atomically.

A record is trusted only when it parses, names the run id of its folder, and its
spec is the planned config of that run (keys at their default may be absent: a key
added since keeps old records valid); anything else in the folder is named in a
warning and otherwise ignored, never a crash.

A worker holds an exclusive ``flock`` on ``running.lock`` for its whole life and
writes ``running.json`` beside it; a run is "running" only while that lock is held, so
a worker killed outright (even a zombie, even with its pid reused) is seen as gone.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness import families
from harness.spec import identity_config

RECORD = "record.json"
RUNNING = "running.json"
RUNNING_LOCK = "running.lock"
RUN_LOG = "run.log"
RUN_ID = re.compile(r"^[0-9a-f]{12}$")
# What may sit in results/<suite>/ besides run folders.
KNOWN_FILES = {"REPORT.md", "report.csv", ".submitit", "launches"}
STATUSES = ("done", "failed", "running", "pending")


def results_root(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get("HARNESS_RESULTS") or "results")


def write_json_atomic(path: Path, data: dict) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target.

    A reader (or a crash at any instant) sees either the old file or the complete new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@dataclass
class RunState:
    status: str  # one of STATUSES
    record: dict | None = None
    running: dict | None = None


@dataclass
class Scan:
    states: dict = field(default_factory=dict)  # run_id -> RunState for planned runs
    warnings: list = field(default_factory=list)
    unplanned: int = 0  # valid-looking run folders not in the current plan


class Store:
    def __init__(self, root: str | os.PathLike | None, suite: str):
        self.root = results_root(root)
        self.suite = suite
        self.dir = self.root / suite

    def run_dir(self, run_id: str) -> Path:
        return self.dir / run_id

    def record_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / RECORD

    def log_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / RUN_LOG

    def write_record(self, record: dict) -> Path:
        path = self.record_path(record["run_id"])
        write_json_atomic(path, record)
        return path

    def hold_running(self, run_id: str, info: dict) -> int | None:
        """Take the run's lock and write its running marker; returns the lock's file
        descriptor (keep it open while running), or None when another worker holds it."""
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / RUNNING_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        write_json_atomic(folder / RUNNING, info)
        return fd

    def update_running(self, run_id: str, info: dict) -> None:
        """Rewrite the running marker (progress) of a run this process holds."""
        write_json_atomic(self.run_dir(run_id) / RUNNING, info)

    def release_running(self, run_id: str, fd: int) -> None:
        """Remove the running marker and the lock file, then let the lock go."""
        folder = self.run_dir(run_id)
        (folder / RUNNING).unlink(missing_ok=True)
        (folder / RUNNING_LOCK).unlink(missing_ok=True)
        os.close(fd)

    def read_record(self, run_id: str, config: dict | None = None,
                    family: str = families.DEFAULT) -> tuple[dict | None, str | None]:
        """(record, None) when valid, else (None, why it was rejected or None if absent)."""
        path = self.record_path(run_id)
        if not path.exists():
            return None, None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            return None, f"{path}: unreadable or truncated ({type(error).__name__}); treated as missing"
        problem = _record_problem(record, run_id, config, families.get(family))
        if problem:
            return None, f"{path}: {problem}; treated as missing"
        return record, None

    def scan(self, specs) -> Scan:
        """The state of every planned run, plus warnings about anything damaged or foreign."""
        scan = Scan()
        planned = {spec.run_id: spec for spec in specs}
        if self.dir.is_dir():
            for entry in sorted(self.dir.iterdir()):
                if entry.name in KNOWN_FILES or entry.name.startswith(".") and entry.is_dir():
                    continue
                if not (entry.is_dir() and RUN_ID.match(entry.name)):
                    scan.warnings.append(f"{entry}: not a run folder of this harness; ignored")
                elif entry.name not in planned and (entry / RECORD).exists():
                    scan.unplanned += 1
        for run_id, spec in planned.items():
            record, problem = self.read_record(run_id, spec.config, spec.family)
            if problem:
                scan.warnings.append(problem)
            if record is not None:
                scan.states[run_id] = RunState(record["status"], record=record)
                continue
            running = self._running_info(run_id)
            scan.states[run_id] = RunState("running" if running else "pending", running=running)
        return scan

    def _running_info(self, run_id: str) -> dict | None:
        path = self.run_dir(run_id) / RUNNING
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict) or not _lock_held(self.run_dir(run_id) / RUNNING_LOCK):
            return None  # its worker died without a record: the run is pending again
        return info


def _lock_held(path: Path) -> bool:
    """Whether some process holds the flock on ``path`` (a file that cannot be locked here,
    e.g. on a file system without locks, counts as held: the marker is trusted)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as error:
        return error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) or error.errno == errno.ENOLCK
    finally:
        os.close(fd)
    return False


def _record_problem(record, run_id: str, config: dict | None, family) -> str | None:
    if not isinstance(record, dict):
        return "not a record (not a JSON object)"
    if record.get("run_id") != run_id:
        return f"claims run id {record.get('run_id')!r} but sits in folder {run_id}"
    if record.get("status") not in ("done", "failed"):
        return f"has status {record.get('status')!r}"
    if config is not None:
        spec = record.get("spec")
        if not isinstance(spec, dict) or identity_config(family, spec) != identity_config(family, json.loads(json.dumps(config))):
            return "its spec differs from the planned run"
    if record["status"] == "done":
        return family.metrics_problem(record.get("metrics"))
    return None
