"""Dispatch RunSpecs through submitit: in-process (debug), local subprocesses, or SLURM.

Knows RunSpecs, resources and the store; nothing about training. Every launch gets a
fresh submitit folder, so stale result files of an earlier launch are never read.
"""
from __future__ import annotations

import datetime
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import submitit
from tqdm import tqdm

from harness.job import Job
from harness.store import Store
from harness.suite import Resources

CLUSTERS = ("local", "debug", "slurm")
POLL_SECONDS = 0.5


@dataclass
class LaunchResult:
    folder: Path
    submitted: list = field(default_factory=list)  # run ids
    job_ids: list = field(default_factory=list)
    crashed: dict = field(default_factory=dict)  # run id -> why the worker died without a record


def launch_folder(store: Store) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return store.dir / ".submitit" / f"{stamp}-{uuid.uuid4().hex[:6]}"


def default_parallel(resources: Resources) -> int:
    if resources.gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        count = len([g for g in visible.split(",") if g]) if visible is not None else _cuda_count()
        return max(1, count // resources.gpus)
    return max(1, (os.cpu_count() or 1) // resources.cpus)


def _cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def launch(specs, store: Store, cluster: str, resources: Resources,
           max_parallel: int | None = None, progress: bool = True) -> LaunchResult:
    specs = list(specs)
    result = LaunchResult(folder=launch_folder(store))
    if not specs:
        return result
    store.dir.mkdir(parents=True, exist_ok=True)
    jobs = [Job(spec, str(store.root), threads=resources.cpus) for spec in specs]
    if cluster == "debug":
        _run_debug(jobs, result, progress)
    elif cluster == "local":
        _run_local(jobs, result, resources, max_parallel or default_parallel(resources), progress)
    elif cluster == "slurm":
        _submit_slurm(jobs, result, resources, max_parallel)
    else:
        raise ValueError(f"unknown cluster {cluster!r}")
    return result


def _run_debug(jobs, result: LaunchResult, progress: bool) -> None:
    executor = submitit.DebugExecutor(folder=result.folder)
    for job in tqdm(jobs, desc="runs", unit="run", disable=not progress):
        submitted = executor.submit(job)
        result.submitted.append(job.spec.run_id)
        result.job_ids.append(submitted.job_id)
        _collect(submitted, job, result)


def _run_local(jobs, result: LaunchResult, resources: Resources, parallel: int, progress: bool) -> None:
    """Run at most ``parallel`` jobs at once, each in its own process; wait for all."""
    executor = submitit.LocalExecutor(folder=result.folder)
    executor.update_parameters(timeout_min=resources.timeout_min, gpus_per_node=resources.gpus)
    waiting, running = list(jobs), []
    bar = tqdm(total=len(jobs), desc="runs", unit="run", disable=not progress)
    try:
        while waiting or running:
            while waiting and len(running) < parallel:
                job = waiting.pop(0)
                submitted = executor.submit(job)
                result.submitted.append(job.spec.run_id)
                result.job_ids.append(submitted.job_id)
                running.append((submitted, job))
            finished = [(s, j) for s, j in running if s.done()]
            for submitted, job in finished:
                running.remove((submitted, job))
                _collect(submitted, job, result)
                bar.update(1)
            if not finished:
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        for submitted, _ in running:
            submitted.cancel(check=False)
        raise
    finally:
        bar.close()


def _collect(submitted, job: Job, result: LaunchResult) -> None:
    """A worker that died (killed, out of memory) leaves no record: say why."""
    try:
        submitted.result()
    except Exception as error:  # the job's own failures are records; this is the worker dying
        first = str(error).strip().splitlines()
        result.crashed[job.spec.run_id] = first[-1] if first else type(error).__name__


def _submit_slurm(jobs, result: LaunchResult, resources: Resources, max_parallel: int | None) -> None:
    executor = submitit.AutoExecutor(folder=result.folder, cluster="slurm")
    parameters = {
        "timeout_min": resources.timeout_min,
        "gpus_per_node": resources.gpus,
        "cpus_per_task": resources.cpus,
        "mem_gb": resources.mem_gb,
        "slurm_array_parallelism": max_parallel or len(jobs),
        "name": f"harness-{jobs[0].spec.suite}",
    }
    for name in ("partition", "account", "qos"):
        if getattr(resources, name):
            parameters[f"slurm_{name}"] = getattr(resources, name)
    if resources.sbatch_args:
        parameters["slurm_additional_parameters"] = dict(resources.sbatch_args)
    executor.update_parameters(**parameters)
    with executor.batch():
        submitted = [executor.submit(job) for job in jobs]
    result.submitted = [job.spec.run_id for job in jobs]
    result.job_ids = [s.job_id for s in submitted]
