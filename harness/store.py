"""The results folder, read and written: results/<suite>/<run_id>/record.json, written
atomically; every name in it, the statuses and the record's checks are ``harness.record``'s.
Records are read only here: ``scan`` (planned runs), ``read_record``, ``inspect_record``
(`show`), ``records_in`` (any record of a folder: `compare`, `plan --estimate`).

A record is trusted only when it parses, names the run id of its folder, and its
spec is the planned config of that run (keys at their default may be absent: a key
added since keeps old records valid); anything else in the folder is named in a
warning (a ``ScanWarning``) and otherwise ignored, never a crash.

A worker holds an exclusive ``flock`` on ``running.lock`` for its whole life and
writes ``running.json`` beside it; a run is "running" only while that lock is held, so
a worker killed outright (even a zombie, even with its pid reused) is seen as gone.

``Store.scan`` keeps a cache in ``results/<suite>/.cache/`` (never committed: it holds
its own ``.gitignore``) so that 10,000 records are not parsed again by every command.
``record.json`` stays the single source of truth: a cache entry is used only while the
record file has the same (device, inode, size, mtime_ns, ctime_ns) as when the entry
was made (an atomic rewrite makes a new inode, so a replaced, rewritten or deleted
record never matches), for the same family schema and validation code (the planned
config enters through the run id, the hash of its identity), and when its bytes pass
their crc32. Records written in the last few seconds are not cached (a rewrite within
one timestamp tick could keep the key). Anything wrong with the cache (missing,
truncated, garbage, from another version, not writable) only makes the scan parse the
records, and the cache is rebuilt. ``HARNESS_STORE_CACHE=off`` turns it off.

In the records ``scan`` returns, each declared metric's samples list
(``metrics[metric.samples]``, e.g. per-episode accuracies) is a read-only numpy array
(float64, or int64 when every value is an integer) of exactly the record's values, with
or without the cache; other lists stay lists. ``read_record`` gives the plain JSON.
"""
from __future__ import annotations

import errno
import fcntl
import gc
import hashlib
import json
import marshal
import os
import re
import tempfile
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness import HarnessError, families
from harness.keys import REQUIRED
from harness.record import (
    CACHE_DIR,
    FIGURE_SUFFIX,
    FINISHED,
    KNOWN_FILES,
    LAUNCHES,
    RECORD,
    RUN_ID,
    RUN_LOG,
    RUNNING,
    RUNNING_LOCK,
    family_of,
    folder_problem,
    parse,
    unreadable,
)
from harness.record import problem as record_problem
from harness.spec import identity_config

CACHE_ENV = "HARNESS_STORE_CACHE"  # "off" (or 0, no, false): parse every record, write no cache


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


class RunState:
    """A planned run's state. ``record`` may be read lazily (``load``): a store-cache hit
    knows the status and the record's components without reading the record itself, which
    is all `plan` and `status` need."""

    def __init__(self, status: str, record: dict | None = None, running: dict | None = None, load=None,
                 components: list | None = None):
        self.status = status  # one of harness.record.STORE_STATUSES
        self.running = running
        self._record, self._load, self._components = record, load, components

    @property
    def record(self) -> dict | None:
        if self._load is not None:
            self._record, self._load = self._load(), None
        return self._record

    @property
    def components(self) -> list:
        """[[key, name, version, digest, file], ...] of the record's ``components``."""
        if self._components is None:
            self._components = component_summary(self.record)
        return self._components

    def __repr__(self) -> str:
        return f"RunState({self.status!r})"


def component_summary(record: dict | None) -> list:
    """What staleness checks need of a record: each component's key, name, version, digest, file."""
    parts = (record or {}).get("components")
    if not isinstance(parts, dict):
        return []
    return [[key, part.get("name"), str(part.get("version")), part.get("digest"), part.get("file")]
            for key, part in parts.items() if isinstance(part, dict) and {"name", "version", "digest"} <= set(part)]


class ScanWarning(str):
    """Something in a results folder the store ignored: ``kind`` (FOREIGN: not a run folder;
    REJECTED: a record not trusted, the run treated as having none; LAUNCH: a damaged launch
    record), the ``path`` at fault, and the ``message``. A str (``"<path>: <message>"``, the
    text printed): whatever prints, joins or serialises warnings is unchanged; code that
    picks some out filters on ``kind``."""

    FOREIGN, REJECTED, LAUNCH = "foreign", "rejected", "launch"

    def __new__(cls, kind: str, path, message: str):
        warning = super().__new__(cls, f"{path}: {message}")
        warning.kind, warning.path, warning.message = kind, str(path), message
        return warning

    def __reduce__(self):
        return ScanWarning, (self.kind, self.path, self.message)


@dataclass
class Scan:
    states: dict = field(default_factory=dict)  # run_id -> RunState for planned runs
    warnings: list = field(default_factory=list)  # ScanWarning
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

    def writable(self) -> bool:
        """Whether this process may write into the suite's folder (or create it): not on a
        read-only mount or in a colleague's folder, where the commands that read (`plan`,
        `status`, `report`, `compare`, `show`) write nothing there."""
        folder = self.dir
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return os.access(folder, os.W_OK)

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
        """(record, None) when valid, else (None, why it was rejected or None if absent).
        The record as record.json holds it (lists stay lists); no cache."""
        path = self.record_path(run_id)
        if not path.exists():
            return None, None
        record, problem = _read_json(path)
        problem = problem or record_problem(record, run_id, config, families.get(family))
        if problem:
            return None, _rejected(path, problem)
        return record, None

    def inspect_record(self, run_id: str) -> tuple[dict | None, str | None]:
        """What `show` needs: the record (trusted or not, as long as it is a JSON object; None
        when absent) and why it is not trusted (None when it is), checked against the family
        it names and no planned config."""
        path = self.record_path(run_id)
        if not path.exists():
            return None, None
        raw, problem = _read_json(path)
        if problem:
            return None, f"{path}: {problem}"
        found = raw if isinstance(raw, dict) else None
        try:
            family = families.get(family_of(raw) if found else families.DEFAULT)
        except HarnessError as error:  # a family no plugin provides here
            return found, str(error)
        problem = record_problem(raw, run_id, None, family)
        return (raw, None) if not problem else (found, _rejected(path, problem))

    def scan(self, specs) -> Scan:
        """The state of every planned run, plus warnings about anything damaged or foreign."""
        scan = Scan()
        planned = {spec.run_id: spec for spec in specs}
        present = self._run_folders(planned, scan)
        cache = self._cache() if present and cache_enabled() else None
        with gc_paused():  # many small containers, no cycles: collections would only cost time
            for run_id, spec in planned.items():
                record, problem = self._scan_record(run_id, spec, cache) if run_id in present else (None, None)
                if problem:
                    scan.warnings.append(problem)
                if isinstance(record, RunState):  # a cache hit: the record is read when asked for
                    scan.states[run_id] = record
                    continue
                if record is not None:
                    scan.states[run_id] = RunState(record["status"], record=record)
                    continue
                running = self._running_info(run_id) if run_id in present else None
                scan.states[run_id] = RunState("running" if running else "pending", running=running)
        if cache is not None:
            cache.save()
        return scan

    def _run_folders(self, planned: dict, scan: Scan) -> set:
        """The planned runs that have a folder; warns about foreign entries, counts unplanned records."""
        try:
            entries = sorted(os.scandir(self.dir), key=lambda entry: entry.name)
        except OSError:  # no results yet (or not a folder)
            return set()
        present = set()
        for entry in entries:
            is_dir = entry.is_dir()
            if entry.name in KNOWN_FILES or entry.name.startswith(".") and is_dir or \
                    entry.name.endswith(FIGURE_SUFFIX) and not is_dir:
                continue
            if not (is_dir and RUN_ID.match(entry.name)):
                scan.warnings.append(ScanWarning(ScanWarning.FOREIGN, self.dir / entry.name,
                                                 "not a run folder of this harness; ignored"))
            elif entry.name in planned:
                present.add(entry.name)
            elif os.path.exists(os.path.join(entry.path, RECORD)):
                scan.unplanned += 1
        return present

    def _cache(self) -> RecordCache:
        """This store's cache, kept between scans of one process (entries are still checked each time)."""
        if getattr(self, "_record_cache", None) is None:
            self._record_cache = RecordCache(self.dir / CACHE_DIR)
        return self._record_cache

    def _scan_record(self, run_id: str, spec, cache) -> tuple[dict | None, str | None]:
        """Like ``read_record`` (with samples as arrays), through the cache when one is given."""
        path = os.path.join(self.dir, run_id, RECORD)  # a str: pathlib is slow at 10,000 records
        family = families.get(spec.family)
        key = None
        if cache is not None:
            try:
                key = file_key(os.stat(path))
            except FileNotFoundError:
                return None, None
            except OSError:
                key = None  # the read below says what is wrong
            if key is not None:
                hit = cache.get(run_id, key, family, fallback=lambda: self._reread(run_id, spec, cache))
                if hit is not None:
                    record, problem = hit
                    return record, problem and _rejected(path, problem)
        try:
            data, read_key = _read_stable(path)
        except FileNotFoundError:
            return None, None
        except OSError as error:
            return None, _rejected(path, unreadable(error))
        record, problem = _checked(data, run_id, spec.config, family)
        if cache is not None and read_key is not None:
            cache.put(run_id, read_key, family, record, problem)
        return record, problem and _rejected(path, problem)

    def _reread(self, run_id: str, spec, cache) -> dict | None:
        """The record from its file (samples as arrays), when the cache cannot give it after all;
        the cache learns it again (saved when this process ends)."""
        try:
            data, read_key = _read_stable(os.path.join(self.dir, run_id, RECORD))
        except OSError:
            return None
        family = families.get(spec.family)
        record, problem = _checked(data, run_id, spec.config, family)
        if read_key is not None:
            cache.put(run_id, read_key, family, record, problem)
            cache.save_at_exit()
        return record

    def running_info(self, run_id: str) -> dict | None:
        """The running marker of a run whose worker still holds its lock, else None."""
        return self._running_info(run_id)

    def _running_info(self, run_id: str) -> dict | None:
        info = self.running_marker(run_id)
        if info is None or not _lock_held(self.run_dir(run_id) / RUNNING_LOCK):
            return None  # its worker died without a record: the run is pending again
        return info

    def running_marker(self, run_id: str) -> dict | None:
        """The run's running marker as its worker last wrote it (whether or not the worker
        still holds the lock), or None."""
        try:
            info = json.loads((self.run_dir(run_id) / RUNNING).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    # -- launch records: results/<suite>/launches/<launch id>.json

    def launches_dir(self) -> Path:
        return self.dir / LAUNCHES

    def write_launch(self, launch: dict) -> Path:
        path = self.launches_dir() / f"{launch['launch_id']}.json"
        write_json_atomic(path, launch)
        return path

    def read_launches(self) -> tuple[list[dict], list[ScanWarning]]:
        """Every launch record of the suite, oldest first, and warnings about damaged ones."""
        launches, warnings = [], []
        folder = self.launches_dir()
        if not folder.is_dir():
            return launches, warnings
        for path in sorted(folder.glob("*.json")):
            try:
                launch = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                warnings.append(ScanWarning(ScanWarning.LAUNCH, path, f"unreadable launch record ({type(error).__name__}); ignored"))
                continue
            if not isinstance(launch, dict) or not isinstance(launch.get("runs"), dict):
                warnings.append(ScanWarning(ScanWarning.LAUNCH, path, "not a launch record; ignored"))
                continue
            launches.append(launch)
        launches.sort(key=lambda launch: (str(launch.get("created", "")), str(launch.get("launch_id", ""))))
        return launches, warnings


def records_in(folder: Path):
    """Every record of a results folder (``results/<suite>``) whatever the plan, for `compare`
    and `plan --estimate` (a planned run's record is read by ``Store.scan``): per run folder
    holding a record file, in name order, (run id, the file, the record or None, why it is not
    a record of its folder or None)."""
    for entry in sorted(folder.iterdir()):
        path = entry / RECORD
        if not (RUN_ID.match(entry.name) and path.is_file()):
            continue
        record, problem = _read_json(path)
        problem = problem or folder_problem(record, entry.name)
        yield entry.name, path, None if problem else record, problem


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


# ---------------------------------------------------------------- reading records


def cache_enabled() -> bool:
    return os.environ.get(CACHE_ENV, "on").strip().lower() not in ("off", "0", "no", "false")


def _rejected(path, problem: str) -> ScanWarning:
    return ScanWarning(ScanWarning.REJECTED, path, f"{problem}; treated as missing")


def _read_json(path) -> tuple[object, str | None]:
    """(the file's JSON value, None), or (None, why it cannot be read)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return None, unreadable(error)
    return parse(data)


def file_key(stat: os.stat_result) -> tuple:
    """What changes whenever a file is replaced or rewritten (an atomic write makes a new inode)."""
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


RACY_NS = 3 * 10**9  # a file changed this recently may change again without changing its key


def _read_stable(path) -> tuple[bytes, tuple | None]:
    """The file's bytes and the key of exactly those bytes (None when the file changed while
    it was read, or so recently that its key cannot yet be trusted to change with it)."""
    with open(path, "rb") as handle:
        before = file_key(os.fstat(handle.fileno()))
        data = handle.read()
        after = file_key(os.fstat(handle.fileno()))
    settled = time.time_ns() - max(before[3], before[4]) > RACY_NS
    return data, before if before == after and settled else None


def _checked(data: bytes, run_id: str, config: dict, family) -> tuple[dict | None, str | None]:
    """(record with its samples as arrays, None) when valid, else (None, the problem)."""
    record, problem = parse(data)
    problem = problem or record_problem(record, run_id, config, family)
    if problem:
        return None, problem
    return with_sample_arrays(record, family), None


def with_sample_arrays(record: dict, family) -> dict:
    """The record with each declared metric's samples list as a read-only numpy array."""
    metrics = record.get("metrics")
    if isinstance(metrics, dict):
        for metric in family.metrics:
            if metric.samples and isinstance(metrics.get(metric.samples), list):
                metrics[metric.samples] = _sample_array(metrics[metric.samples])
    return record


def _sample_array(values: list):
    """A flat list of numbers as a read-only float64 (int64 if all are integers) array;
    anything else (bools, None, nested lists, huge integers) is left as it is."""
    import numpy as np

    try:
        array = np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        return values
    if array.ndim != 1 or array.dtype not in (np.float64, np.int64):
        return values
    array.flags.writeable = False
    return array


@contextmanager
def gc_paused():
    """No cyclic garbage collection while many small, acyclic containers (parsed records) are made."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ---------------------------------------------------------------- the scan cache

CACHE_FORMAT = f"4.{marshal.version}"  # bump whenever the layout, the validation or the sample conversion changes
CACHE_INDEX = "index.bin"
CACHE_LOCK = "lock"
CACHE_MAGIC = b"harness-store-cache"
SEGMENT = re.compile(r"^seg-[0-9a-f]{16}\.bin$")
SAMPLE_DTYPES = ("<f8", "<i8", ">f8", ">i8")
MAX_SEGMENTS = 8  # more (or more than half of their bytes dead): rewrite the live entries as one
# entry fields: the record file's key (5), family fingerprint, problem, segment, offset, length, arrays, crc32,
# summary ([status, component_summary] of a valid record: what plan and status read without the record)
KEY, FINGERPRINT, PROBLEM, SEG, OFFSET, LENGTH, ARRAYS, CRC, SUMMARY = slice(0, 5), 5, 6, 7, 8, 9, 10, 11, 12
ENTRY_FIELDS = 13


class RecordCache:
    """``results/<suite>/.cache/``: ``index.bin`` (marshal, under a crc32) says, per run id, which record file (its
    key) and which family schema an entry was made from, the verdict (a problem, or a valid
    record), and where the record's bytes are: in a ``seg-*.bin`` segment, its sample
    arrays (raw float64/int64) then the rest of the record as compact JSON, under a crc32.
    Segments are written once and never changed; each save adds one and rewrites the index
    atomically. Every read failure is a miss."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.entries, self.sizes = _read_index(folder / CACHE_INDEX)
        self.segments: dict[str, bytes | None] = {}
        self.verified: set = set()  # (segment, offset) whose crc passed in this process
        self.added: dict[str, tuple[list, bytes]] = {}
        self.stale: dict[str, list] = {}
        self.fingerprints: dict[tuple, str] = {}
        self.present: dict[str, bool] = {}  # segment -> there at its size (stat)
        self.saving_at_exit = False

    def fingerprint(self, family) -> str:
        known = (family.name, id(family))
        if known not in self.fingerprints:
            self.fingerprints[known] = family_fingerprint(family)
        return self.fingerprints[known]

    def get(self, run_id: str, key: tuple, family, fallback=None) -> tuple | None:
        """(state, None) or (None, problem) cached for this exact record file; None: a miss.
        The state is a RunState whose record is decoded when first asked for (the bytes
        checked then); should they fail then, ``fallback`` reads the record file instead."""
        added = self.added.get(run_id)
        entry = added[0] if added else self.entries.get(run_id)
        if entry is None:
            return None
        try:
            if tuple(entry[KEY]) != key or entry[FINGERPRINT] != self.fingerprint(family):
                self.stale[run_id] = entry
                return None
            if entry[PROBLEM] is not None:
                return (None, entry[PROBLEM]) if isinstance(entry[PROBLEM], str) else None
            status, components = entry[SUMMARY]
            if status in FINISHED and isinstance(components, list) and not added and self._present(entry[SEG]):
                load = lambda: self._entry_record(run_id, entry, fallback)
                return RunState(status, load=load, components=components), None
        except (TypeError, ValueError, IndexError, KeyError, AttributeError):
            self.stale[run_id] = entry
            return None
        return self._eager(run_id, entry, added)

    def _present(self, name) -> bool:
        """The segment is there at the size the index says (a stat, not a read: its bytes are
        checked when a record is decoded from them)."""
        if name in self.segments:
            return self.segments[name] is not None
        if name not in self.present:
            try:
                self.present[name] = isinstance(name, str) and bool(SEGMENT.match(name)) and \
                    os.stat(self.folder / name).st_size == self.sizes.get(name)
            except OSError:
                self.present[name] = False
        return self.present[name]

    def save_at_exit(self) -> None:
        """Save what lazy reads learnt once this process ends (at most once)."""
        if not self.saving_at_exit:
            import atexit

            self.saving_at_exit = True
            atexit.register(self.save)

    def _entry_record(self, run_id: str, entry: list, fallback) -> dict | None:
        hit = self._eager(run_id, entry, None)
        if hit is not None:
            return hit[0]
        return fallback() if fallback is not None else None

    def _eager(self, run_id: str, entry: list, added) -> tuple | None:
        """(record, None) decoded from the entry's bytes now; None when they cannot be used."""
        try:
            if added:  # made by this process from the record just read
                record = self._record(added[1], 0, entry, checked=True)
            else:
                buffer = self._segment(entry[SEG])
                checked = (entry[SEG], entry[OFFSET]) in self.verified
                record = self._record(buffer, entry[OFFSET], entry, checked) if buffer is not None else None
                if record is not None:
                    self.verified.add((entry[SEG], entry[OFFSET]))
        except (TypeError, ValueError, IndexError, KeyError, AttributeError):
            record = None  # a malformed entry: a miss
        if record is None:
            self.stale[run_id] = entry
            return None
        return record, None

    def _record(self, buffer: bytes, offset: int, entry: list, checked: bool) -> dict | None:
        """The entry's record from its bytes; None when they fail their crc32 (unless already
        ``checked``) or do not hold what the entry says."""
        import numpy as np

        length = entry[LENGTH]
        if not (isinstance(offset, int) and isinstance(length, int) and 0 <= offset and offset + length <= len(buffer)):
            return None
        end = offset + length
        if not checked and zlib.crc32(memoryview(buffer)[offset:end]) != entry[CRC]:
            return None
        arrays, position = {}, offset
        for name, dtype, count in entry[ARRAYS]:
            if dtype not in SAMPLE_DTYPES:
                return None
            arrays[name] = np.frombuffer(buffer, dtype=dtype, count=count, offset=position)
            position += arrays[name].nbytes
        try:
            record = marshal.loads(buffer[position:end])
        except (EOFError, ValueError, TypeError):
            return None
        if not isinstance(record, dict) or record.get("status") not in FINISHED:
            return None
        metrics = record.get("metrics")
        if arrays and not isinstance(metrics, dict):
            return None
        for name, array in arrays.items():
            if metrics.get(name, 0) is not None:  # the placeholder the array replaces
                return None
            metrics[name] = array
        return record

    def _segment(self, name) -> bytes | None:
        """The segment's bytes, or None when it is missing or not the size the index says.
        Read into this process (not mapped): what was checked cannot change afterwards."""
        if name not in self.segments:
            data = None
            if isinstance(name, str) and SEGMENT.match(name):
                try:
                    data = (self.folder / name).read_bytes()
                except OSError:
                    data = None
            self.segments[name] = data if data and len(data) == self.sizes.get(name) else None
        return self.segments[name]

    def put(self, run_id: str, key: tuple, family, record: dict | None, problem: str | None) -> None:
        arrays, payload = ([], b"") if record is None else _packed(record)
        summary = None if record is None else [record["status"], component_summary(record)]
        entry = [*key, self.fingerprint(family), problem, None, 0, len(payload), arrays, zlib.crc32(payload), summary]
        self.added[run_id] = (entry, payload)
        self.stale.pop(run_id, None)

    def save(self) -> None:
        """Write what this scan learnt: one new segment and the merged index. Skipped when
        another process is saving, or when the folder cannot be written."""
        if not self.added and not self.stale:
            return
        if not os.access(self.folder.parent, os.W_OK):
            return  # a read-only results folder: its cache is read, never written
        try:
            self.folder.mkdir(exist_ok=True)
            ignore = self.folder / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# the store's cache: rebuilt from the records when missing\n*\n")
            with _exclusive(self.folder / CACHE_LOCK) as locked:
                if locked:
                    self._save_locked()
        except (OSError, ValueError, TypeError, KeyError, IndexError):
            pass  # a read-only results folder, a strange index: the records are parsed again next time

    def _save_locked(self) -> None:
        entries, sizes = _read_index(self.folder / CACHE_INDEX)  # what others saved meanwhile
        for run_id, seen in self.stale.items():
            if entries.get(run_id) == seen:
                del entries[run_id]
        with_payload = [(run_id, entry, payload) for run_id, (entry, payload) in self.added.items() if payload]
        entries.update({run_id: entry for run_id, (entry, payload) in self.added.items() if not payload})
        if with_payload:
            name, offsets = self._write_segment([payload for _, _, payload in with_payload])
            sizes[name] = len(self.segments[name])
            for (run_id, entry, _), offset in zip(with_payload, offsets):
                entry[SEG], entry[OFFSET] = name, offset
                entries[run_id] = entry
        self.entries, self.sizes = entries, sizes
        if self._wasteful():
            self._compact()
        live = {entry[SEG] for entry in self.entries.values() if entry[SEG] is not None}
        self.sizes = {name: size for name, size in self.sizes.items() if name in live}
        _write_index(self.folder / CACHE_INDEX, self.entries, self.sizes)
        self.added, self.stale = {}, {}
        # forget dead segments (a long `run --wait` saves often; arrays still in use keep theirs mapped)
        self.segments = {name: data for name, data in self.segments.items() if name in live}
        self.verified = {checked for checked in self.verified if checked[0] in live}
        for path in self.folder.glob("seg-*.bin"):
            if path.name not in live:
                path.unlink(missing_ok=True)

    def _write_segment(self, payloads: list[bytes]) -> tuple[str, list[int]]:
        offsets, chunks, position = [], [], 0
        for payload in payloads:
            offsets.append(position)
            padding = -len(payload) % 8  # keeps every entry's arrays 8-byte aligned
            chunks += [payload, b"\0" * padding]
            position += len(payload) + padding
        data = b"".join(chunks)
        name = f"seg-{os.urandom(8).hex()}.bin"
        _replace_with(self.folder / name, data)
        self.segments[name] = data
        self.verified.update((name, offset) for offset in offsets)
        return name, offsets

    def _wasteful(self) -> bool:
        used = sum(entry[LENGTH] for entry in self.entries.values() if entry[SEG] is not None)
        return len(self.sizes) > MAX_SEGMENTS or used < sum(self.sizes.values()) / 2

    def _compact(self) -> None:
        """Rewrite every live entry into one segment (entries that cannot be read are dropped)."""
        keep = []
        for run_id, entry in list(self.entries.items()):
            if entry[SEG] is None:
                continue
            buffer = self._segment(entry[SEG])
            payload = buffer[entry[OFFSET]:entry[OFFSET] + entry[LENGTH]] if buffer is not None else b""
            if len(payload) != entry[LENGTH] or zlib.crc32(payload) != entry[CRC]:
                del self.entries[run_id]
                continue
            keep.append((entry, payload))
        self.sizes = {}
        if keep:
            name, offsets = self._write_segment([payload for _, payload in keep])
            self.sizes[name] = len(self.segments[name])
            for (entry, _), offset in zip(keep, offsets):
                entry[SEG], entry[OFFSET] = name, offset


def _packed(record: dict) -> tuple[list, bytes]:
    """(arrays: [[name, dtype, count]...], bytes): the record's sample arrays, then the rest of
    the record in marshal's format (the fastest to read of the standard library's; the
    index's format line names the marshal version) with ``None`` where each array was."""
    metrics = record.get("metrics")
    arrays = {name: value for name, value in metrics.items() if hasattr(value, "dtype")} if isinstance(metrics, dict) else {}
    rest = {**record, "metrics": {**metrics, **dict.fromkeys(arrays)}} if arrays else record
    text = marshal.dumps(rest)
    return ([[name, array.dtype.str, len(array)] for name, array in arrays.items()],
            b"".join(array.tobytes() for array in arrays.values()) + text)


def _read_index(path: Path) -> tuple[dict, dict]:
    """(run id -> entry, segment -> size); empty when missing, from another format, or damaged."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}, {}
    header, _, body = data.partition(b"\n")
    if header.split() != [CACHE_MAGIC, CACHE_FORMAT.encode(), b"%08x" % zlib.crc32(body)]:
        return {}, {}
    try:
        index = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return {}, {}
    entries, sizes = (index.get("entries"), index.get("segments")) if isinstance(index, dict) else (None, None)
    if not isinstance(entries, dict) or not isinstance(sizes, dict):
        return {}, {}
    sizes = {name: size for name, size in sizes.items() if type(size) is int}
    return {run_id: entry for run_id, entry in entries.items() if isinstance(entry, list) and len(entry) == ENTRY_FIELDS}, sizes


def _write_index(path: Path, entries: dict, sizes: dict) -> None:
    body = marshal.dumps({"segments": sizes, "entries": entries})
    _replace_with(path, CACHE_MAGIC + b" %s %08x\n" % (CACHE_FORMAT.encode(), zlib.crc32(body)) + body)


def _replace_with(path: Path, data: bytes) -> None:
    """Atomic, without fsync: a cache file torn by a crash fails its checks and is rebuilt."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@contextmanager
def _exclusive(path: Path):
    """Yields whether this process got the lock (never waits)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def family_fingerprint(family) -> str:
    """What a cached verdict depends on besides the record's bytes and the run id: the family's
    keys and their defaults, its metrics, and the code that validates and converts records."""
    keys = sorted((name, "required" if key.default is REQUIRED else repr(key.default)) for name, key in family.keys.items())
    metrics = [(metric.name, metric.samples) for metric in family.metrics]
    code = [_code_text(function.__code__) for function in
            (record_problem, identity_config, type(family).metrics_problem, with_sample_arrays, _sample_array)]
    text = repr((CACHE_FORMAT, family.name, family.version, type(family).__qualname__, keys, metrics, code))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _code_text(code) -> str:
    consts = [_code_text(const) if hasattr(const, "co_code") else repr(const) for const in code.co_consts]
    return repr((code.co_code, code.co_names, consts))
