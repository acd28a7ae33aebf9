"""What a worker runs for one RunSpec: train, evaluate, write exactly one record.

A failure inside the run becomes a record with status "failed" (exception and
traceback), never an exception that could take other runs down. So does a trainer that
breaks the metrics contract (``contract_problem``): a done record always holds every
declared metric, finite, within its bounds, and the mean of its samples.

The worker measures the run's memory itself, once: the process's peak RSS and, when the
run used CUDA, the peak bytes torch allocated on the GPU (reset before the trainer starts).
"""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import submitit

import harness
from harness import HarnessError
from harness.api import load_target
from harness.record import ATTEMPTS, CHECKPOINT
from harness.spec import RunSpec
from harness.store import Store, write_json_atomic

ALREADY_DONE = "already done by another worker"
SAMPLES_TOLERANCE = 1e-9  # relative: the samples' mean and the number differ by float rounding only


class MetricsContractError(HarnessError):
    """A trainer returned metrics its family's declaration does not allow."""


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(harness.__file__).parent,
            capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def environment(device: str | None) -> dict:
    """Where the run ran. Never raises: it is written into failed records too."""
    found = {"host": socket.gethostname(), "device": device, "device_name": platform.processor() or platform.machine(),
             "python": platform.python_version(), "harness": harness.__version__, "git_commit": git_commit()}
    torch = sys.modules.get("torch")
    if torch is not None:
        found.update({"torch": torch.__version__, "torch_threads": torch.get_num_threads()})
        if device and device.startswith("cuda"):
            try:
                found["device_name"] = torch.cuda.get_device_name(device)
            except Exception as error:  # no usable GPU: the record says so instead of crashing
                found["device_name"] = f"unavailable ({type(error).__name__})"
    return found


def peak_rss_bytes() -> int:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _cuda():
    """torch.cuda when torch is loaded and CUDA was started in this process, else None."""
    torch = sys.modules.get("torch")
    return torch.cuda if torch is not None and torch.cuda.is_initialized() else None


def reset_gpu_peak() -> None:
    cuda = _cuda()
    for device in range(cuda.device_count() if cuda else 0):
        cuda.reset_peak_memory_stats(device)


def gpu_peak_bytes() -> int | None:
    """The most bytes torch had allocated at once on any GPU since ``reset_gpu_peak``; None
    when the run never started CUDA."""
    cuda = _cuda()
    if cuda is None:
        return None
    return max((cuda.max_memory_allocated(device) for device in range(cuda.device_count())), default=None)


def _number(value) -> bool:
    """A finite int or float (what a JSON record holds; numpy scalars other than float64 are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def contract_problem(family, result) -> str | None:
    """How a trainer's result breaks the family's metrics contract (harness.api), or None:
    every declared metric and validation metric is a finite number within its bounds; a
    metric's samples are a list of finite numbers within its bounds whose mean is the
    number (absent only where the metric says ``samples_required=False``)."""
    if not isinstance(result, dict) or not isinstance(result.get("metrics"), dict):
        return f"run() returned {type(result).__name__}, not a dict with metrics, timing and details"
    metrics = result["metrics"]
    for metric in (*family.metrics, *family.validation):
        name, value, bounds = metric.name, metrics.get(metric.name), metric.bounds
        if name not in metrics:
            return f"metrics.{name} is missing"
        if not _number(value):
            return f"metrics.{name} is {value!r}, not a finite number"
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            return f"metrics.{name} is {value!r}, outside its bounds [{bounds[0]:g}, {bounds[1]:g}]"
        if not metric.samples:
            continue
        samples = metrics.get(metric.samples)
        if samples is None:
            if metric.samples_required:
                return f"metrics.{metric.samples} (the samples of {name}) is missing"
            continue
        if not isinstance(samples, list) or not samples or not all(map(_number, samples)):
            return f"metrics.{metric.samples} (the samples of {name}) must be a non-empty list of finite numbers"
        if bounds is not None and not bounds[0] <= min(samples) <= max(samples) <= bounds[1]:
            return (f"metrics.{metric.samples} (the samples of {name}) go from {min(samples):g} to "
                    f"{max(samples):g}, outside its bounds [{bounds[0]:g}, {bounds[1]:g}]")
        mean = math.fsum(samples) / len(samples)
        if not math.isclose(mean, value, rel_tol=SAMPLES_TOLERANCE, abs_tol=SAMPLES_TOLERANCE):
            return (f"metrics.{name} is {value!r}, but the mean of its {len(samples)} samples "
                    f"metrics.{metric.samples} is {mean!r} (the number must be their mean)")
    return None


class Job(submitit.helpers.Checkpointable):
    """A picklable callable for submitit: ``Job(spec, results_root, threads)()``.

    Checkpointable: on the scheduler's preemption/timeout signal (submitit's USR2) or
    SIGTERM, training stops at the next step boundary and saves its checkpoint; then
    submitit's own handler requeues this same callable, which resumes from it.
    """

    devices: str | None = None  # class defaults: Jobs pickled before these attributes existed
    replaces: str | None = None

    def __init__(self, spec: RunSpec, results_root: str, threads: int | None = None, devices: str | None = None,
                 replaces: str | None = None):
        self.spec = spec
        self.results_root = str(results_root)
        self.threads = threads
        self.devices = devices  # CUDA_VISIBLE_DEVICES for this run (local pinning); None = as inherited
        # A forced rerun: the "finished" stamp of the done record it is meant to replace. Any
        # other valid done record found once the run's lock is held was written by another
        # worker since this run was planned: the run is not trained again.
        self.replaces = replaces

    def __call__(self) -> dict:
        if self.devices is not None:  # before CUDA starts in this process
            os.environ["CUDA_VISIBLE_DEVICES"] = self.devices
        store = Store(self.results_root, self.spec.suite)
        run_id = self.spec.run_id
        log_path = store.log_path(run_id)
        marker = {"pid": os.getpid(), "host": socket.gethostname(), "started": now(), "log": str(log_path)}
        lock = store.hold_running(run_id, marker)
        if lock is None:
            raise RuntimeError(f"run {run_id} is already running in another worker (its lock is held)")
        if self._done_by_another(store):
            store.release_running(run_id, lock)
            print(f"run {run_id}: {ALREADY_DONE}; not trained again", flush=True)
            return {"run_id": run_id, "status": "done", "skipped": ALREADY_DONE}
        attempts = store.run_dir(run_id) / ATTEMPTS
        try:
            started, clock = now(), time.perf_counter()
            try:
                with RunLog(log_path, lambda info: store.update_running(run_id, {**marker, **info})) as log:
                    record = self._run(log, store.run_dir(run_id) / CHECKPOINT)
            except BaseException:  # stopped (preemption, time-out, Ctrl-C): its time counts in the run's total
                earlier_attempts(attempts, add=time.perf_counter() - clock)
                raise
            record.update({
                "run_id": run_id,
                "suite": self.spec.suite,
                "family": self.spec.family,
                "spec": self.spec.config,
                "plugins": list(self.spec.plugins),
                "started": started,
                "finished": now(),
                "log": f"{self.spec.suite}/{run_id}/{log_path.name}",  # relative to the results folder
            })
            earlier = earlier_attempts(attempts)
            # The wall-clock of every attempt: a run resumed after a preemption cost its earlier attempts too.
            record["timing"]["total_seconds"] = sum(earlier) + time.perf_counter() - clock
            record["timing"]["attempts"] = len(earlier) + 1
            store.write_record(record)
            (store.run_dir(run_id) / CHECKPOINT).unlink(missing_ok=True)
            attempts.unlink(missing_ok=True)
        finally:
            store.release_running(run_id, lock)
        return {"run_id": run_id, "status": record["status"]}

    def _done_by_another(self, store: Store) -> bool:
        """Whether a valid done record of this run, other than the one a forced rerun
        replaces, is there (read with the lock held: no worker can be writing one)."""
        try:
            from harness import plugins

            plugins.activate(self.spec.plugins)  # a plugin family's records are checked by its declaration
            record, _ = store.read_record(self.spec.run_id, self.spec.config, self.spec.family)
        except Exception:  # a broken plugin: the run itself records why it cannot start
            return False
        return record is not None and record["status"] == "done" and record.get("finished") != self.replaces

    def _run(self, log, checkpoint: Path) -> dict:
        device = self.spec.config.get("device")
        code = None
        try:
            from harness import families, plugins
            from harness.spec import components

            plugins.activate(self.spec.plugins)  # before the label: a suite's plugin may declare the family
            family = families.get(self.spec.family)
            log(f"run {self.spec.run_id}: {family.run_label(self.spec.config)}")
            code = components(family, self.spec.config)
            trainer_class = load_target(family.trainer)
            if self.threads and "torch" in sys.modules:  # in-process (debug); workers got OMP_NUM_THREADS
                sys.modules["torch"].set_num_threads(self.threads)
            reset_gpu_peak()
            with stop_on_signals(log) as stop:  # before the trainer loads data: no signal is lost
                trainer = stop.attach(trainer_class(self.spec.config, checkpoint=checkpoint, log=log))
                result = trainer.run()
            problem = contract_problem(family, result)
            if problem:
                raise MetricsContractError(f"{family.trainer} broke the metrics contract: {problem}")
            status, error = "done", None
        except Exception as exc:  # a failed run is recorded, not raised
            log(f"FAILED: {type(exc).__name__}: {exc}")
            result = {"metrics": {}, "timing": {}, "details": {}}
            status = "failed"
            error = {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}
        details = result.pop("details", None) or {}
        used_cpu = str(details.get("device") or device).startswith("cpu")
        return {
            "status": status,
            "curve": result.pop("curve", None),
            "timing": {},
            **result,
            "components": code,
            "memory": {"cpu_peak_rss_bytes": peak_rss_bytes(),
                       "gpu_peak_allocated_bytes": None if used_cpu else gpu_peak_bytes()},
            "env": environment(details.get("device", device)),
            "details": details,
            "error": error,
        }



def earlier_attempts(path: Path, add: float | None = None) -> list[float]:
    """The seconds of a run's earlier, stopped attempts (``ATTEMPTS`` in its folder), after
    adding ``add`` when given. Unreadable: none (the total then counts from this attempt)."""
    try:
        seconds = [float(s) for s in json.loads(path.read_text())["seconds"]]
    except (OSError, ValueError, KeyError, TypeError):
        seconds = []
    if add is not None:
        seconds.append(add)
        try:
            write_json_atomic(path, {"seconds": seconds})
        except OSError:
            pass  # a stopped run's own exception matters more than its bookkeeping
    return seconds


LOG_LIMIT_BYTES = 256 * 1024  # a run.log beyond this moves to run.log.1, .2, ... (kept, never committed)


class RunLog:
    """What a trainer gets as ``log``: ``log(line)`` prints the line and appends it, time
    stamped, to the run's log; ``log.progress(step, total=None, **figures)`` says where
    the run is (``harness status`` shows it), written at most every ``every`` seconds.
    ``run.log`` stays under LOG_LIMIT_BYTES: older lines move to numbered files beside it."""

    def __init__(self, path: Path, publish, every: float = 10.0, limit: int = LOG_LIMIT_BYTES):
        self.path, self.publish, self.every, self.limit = path, publish, every, limit
        self.last = -math.inf

    def __enter__(self):
        self.file = open(self.path, "a", encoding="utf-8")
        return self

    def __exit__(self, *exc):
        self.file.close()
        return False

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        self.file.write(f"{now()} {line}\n")
        self.file.flush()
        if self.file.tell() > self.limit:
            self.file.close()
            number = 1
            while self.path.with_name(f"{self.path.name}.{number}").exists():
                number += 1
            self.path.rename(self.path.with_name(f"{self.path.name}.{number}"))
            self.file = open(self.path, "a", encoding="utf-8")

    def progress(self, step: int, total: int | None = None, **figures) -> None:
        if time.monotonic() - self.last < self.every and not figures:
            return
        self.last = time.monotonic()
        try:
            self.publish({"step": int(step), "total": total, "figures": figures, "updated": now()})
        except OSError:
            pass  # progress is for people watching; never a reason for a run to fail


class stop_on_signals:
    """While a run loads and trains, turn SIGTERM, SIGINT (Ctrl-C) and submitit's
    preemption signal into a stop request.

    The trainer saves its checkpoint at the next step boundary and raises StopRequested;
    then the signal's previous handler runs (submitit's for its preemption signal: requeue
    this job, then exit), and the run ends with SystemExit. A signal that comes while the
    trainer is still being built is passed on when it is attached. The next run of the
    same run id resumes.
    """

    def __init__(self, log):
        self.log = log
        self.trainer = None
        self.preemption = submitit.JobEnvironment._usr_sig()
        self.signals = [signal.SIGTERM, signal.SIGINT, self.preemption]
        self.previous: dict = {}
        self.received = None

    def attach(self, trainer):
        self.trainer = trainer
        if self.received is not None:
            trainer.stop_requested = True
        return trainer

    def _handle(self, signum, frame):
        self.log(f"received {signal.Signals(signum).name}: stopping at the next step boundary")
        if self.received is None or signum == self.preemption:
            # The preemption signal (requeue) wins over the others, whatever order Python runs them in.
            self.received = (signum, frame)
        if self.trainer is not None:
            self.trainer.stop_requested = True

    def __enter__(self):
        for signum in self.signals:
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind, value, traceback_):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        if self.received is None or kind is None:
            return False  # no signal, or it came after training: finish and write the record
        signum, frame = self.received
        handler = self.previous.get(signum)
        if callable(handler):
            handler(signum, frame)  # submitit requeues and exits here; Python's SIGINT raises KeyboardInterrupt
        raise SystemExit(f"stopped by {signal.Signals(signum).name}; checkpoint saved")
