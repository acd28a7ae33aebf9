"""What a worker runs for one RunSpec: train, evaluate, write exactly one record.

A failure inside the run becomes a record with status "failed" (exception and
traceback), never an exception that could take other runs down.
"""
from __future__ import annotations

import datetime
import os
import platform
import resource
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import harness
from harness.spec import RunSpec
from harness.store import Store


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


class Job:
    """A picklable callable for submitit: ``Job(spec, results_root, threads)()``."""

    def __init__(self, spec: RunSpec, results_root: str, threads: int | None = None):
        self.spec = spec
        self.results_root = str(results_root)
        self.threads = threads

    def __call__(self) -> dict:
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
            record = self._run(log)
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
        return {"run_id": run_id, "status": record["status"]}

    def _run(self, log) -> dict:
        device = None
        try:
            import torch

            from harness.fewshot import train

            if self.threads:
                torch.set_num_threads(self.threads)
            device = str(train.pick_device(self.spec.config["device"]))
            result = train.run(self.spec.config, log=log)
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

