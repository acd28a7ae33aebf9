"""What a worker runs for one RunSpec: train, evaluate, write exactly one record.

A failure inside the run becomes a record with status "failed" (exception and
traceback), never an exception that could take other runs down.
"""
from __future__ import annotations

import datetime
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
from harness.spec import RunSpec
from harness.store import Store

CHECKPOINT = "checkpoint.pt"


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
    import torch

    device_name = platform.processor() or platform.machine()
    if device and device.startswith("cuda"):
        device_name = torch.cuda.get_device_name()
    return {
        "host": socket.gethostname(),
        "device": device,
        "device_name": device_name,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "harness": harness.__version__,
        "git_commit": git_commit(),
        "torch_threads": torch.get_num_threads(),
    }


def peak_rss_bytes() -> int:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class Job(submitit.helpers.Checkpointable):
    """A picklable callable for submitit: ``Job(spec, results_root, threads)()``.

    Checkpointable: on the scheduler's preemption/timeout signal (submitit's USR2) or
    SIGTERM, training stops at the next step boundary and saves its checkpoint; then
    submitit's own handler requeues this same callable, which resumes from it.
    """

    devices: str | None = None  # class default: Jobs pickled before this attribute existed

    def __init__(self, spec: RunSpec, results_root: str, threads: int | None = None, devices: str | None = None):
        self.spec = spec
        self.results_root = str(results_root)
        self.threads = threads
        self.devices = devices  # CUDA_VISIBLE_DEVICES for this run (local pinning); None = as inherited

    def __call__(self) -> dict:
        if self.devices is not None:  # before CUDA starts in this process
            os.environ["CUDA_VISIBLE_DEVICES"] = self.devices
        store = Store(self.results_root, self.spec.suite)
        run_id = self.spec.run_id
        log_path = store.log_path(run_id)
        store.mark_running(run_id, {"pid": os.getpid(), "host": socket.gethostname(), "started": now(), "log": str(log_path)})
        started, clock = now(), time.perf_counter()
        with open(log_path, "a", encoding="utf-8") as log_file:
            def log(line: str) -> None:
                print(line, flush=True)
                log_file.write(f"{now()} {line}\n")
                log_file.flush()

            log(f"run {run_id}: {self.spec.label()}")
            record = self._run(log, store.run_dir(run_id) / CHECKPOINT)
        record.update({
            "run_id": run_id,
            "suite": self.spec.suite,
            "spec": self.spec.config,
            "started": started,
            "finished": now(),
            "log": str(log_path),
        })
        record["timing"]["total_seconds"] = time.perf_counter() - clock
        store.write_record(record)
        store.clear_running(run_id)
        (store.run_dir(run_id) / CHECKPOINT).unlink(missing_ok=True)
        return {"run_id": run_id, "status": record["status"]}

    def _run(self, log, checkpoint: Path) -> dict:
        device = None
        try:
            import torch

            from harness import families
            from harness.training import pick_device

            if self.threads:
                torch.set_num_threads(self.threads)
            device = str(pick_device(self.spec.config["device"]))
            trainer = families.get(self.spec.family).trainer_class()(self.spec.config, checkpoint=checkpoint, log=log)
            with stop_on_signals(trainer, log):
                result = trainer.run()
            status, error = "done", None
        except Exception as exc:  # a failed run is recorded, not raised
            log(f"FAILED: {type(exc).__name__}: {exc}")
            result = {"metrics": {}, "timing": {}, "details": {}}
            status = "failed"
            error = {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}
        details = result.pop("details")
        return {
            "status": status,
            **result,
            "memory": {"cpu_peak_rss_bytes": peak_rss_bytes(), "gpu_peak_allocated_bytes": details.get("peak_gpu_bytes")},
            "env": environment(details.get("device", device)),
            "details": details,
            "error": error,
        }



class stop_on_signals:
    """While training, turn SIGTERM, SIGINT (Ctrl-C; submitit's local cancel) and
    submitit's preemption signal into a stop request.

    The trainer saves its checkpoint at the next step boundary and raises StopRequested;
    then the signal's previous handler runs (submitit's: requeue this job, then exit;
    Python's for SIGINT: KeyboardInterrupt). The next run of the same run id resumes.
    """

    def __init__(self, trainer, log):
        self.trainer, self.log = trainer, log
        self.preemption = submitit.JobEnvironment._usr_sig()
        self.signals = [signal.SIGTERM, signal.SIGINT, self.preemption]
        self.previous: dict = {}
        self.received = None

    def _handle(self, signum, frame):
        self.log(f"received {signal.Signals(signum).name}: stopping at the next step boundary")
        if self.received is None or signum == self.preemption:
            # The preemption signal (requeue) wins over the others, whatever order Python runs them in.
            self.received = (signum, frame)
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
            handler(signum, frame)  # submitit requeues and exits here
        raise SystemExit(f"stopped by {signal.Signals(signum).name}; checkpoint saved")
