"""Dispatch RunSpecs through submitit: in-process (debug), local subprocesses, or SLURM.

Knows RunSpecs, resources, the store and the scheduler's answers; nothing about
training. Small pure functions (grouping, splitting, sbatch parameters, GPU slots)
around thin submitit calls; what `status` shows is in `harness/status.py`.

Every launch gets a fresh submitit folder (``results/<suite>/.submitit/<launch id>``),
so result files of an earlier launch are never read, and a launch record
(``results/<suite>/launches/<launch id>.json``: cluster, folder, job name, and for
each run its job id and log files) that `status` and `run --wait` read to ask the
scheduler about exactly these jobs, in one query.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm

from harness import HarnessError, scheduler
from harness.status import write_launch
from harness.store import Store
from harness.suite import Resources

CLUSTERS = ("local", "debug", "slurm")
POLL_SECONDS = 0.5  # local executor: how often finished processes are looked for
DEFAULT_MAX_REQUEUES = 3  # submitit's max_num_timeout: requeues after a time-out before the run fails


@dataclass
class LaunchResult:
    folder: Path
    launch_id: str = ""
    record_path: Path | None = None  # results/<suite>/launches/<launch id>.json
    submitted: list = field(default_factory=list)  # run ids
    job_ids: list = field(default_factory=list)
    arrays: list = field(default_factory=list)  # slurm: one dict per sbatch call (job id, size, resources)
    crashed: dict = field(default_factory=dict)  # run id -> why the worker died without a record


# ---------------------------------------------------------------- pure pieces


def new_launch_id() -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def launch_folder(store: Store, launch_id: str | None = None) -> Path:
    return store.dir / ".submitit" / (launch_id or new_launch_id())


def job_name(suite: str, launch_id: str) -> str:
    """Unique per launch: a job id reused after a cluster reset never matches our name."""
    return f"harness-{suite}-{launch_id.rsplit('-', 1)[-1]}"


def group_by_resources(specs: Iterable, resources_of: Callable) -> list[tuple[Resources, list]]:
    """One group per distinct resource request, in order of first appearance."""
    groups: dict[tuple, tuple[Resources, list]] = {}
    for spec in specs:
        resources = resources_of(spec)
        groups.setdefault(resources.key(), (resources, []))[1].append(spec)
    return list(groups.values())


def chunks(items: list, size: int) -> list[list]:
    """Consecutive pieces of at most ``size`` items (arrays above MaxArraySize are split)."""
    if size < 1:
        raise ValueError("chunk size must be >= 1")
    return [items[i:i + size] for i in range(0, len(items), size)]


def default_signal_delay(timeout_min: int) -> int:
    """Seconds before the time limit for Slurm's checkpoint signal (``--signal=USR2@S``).

    Slurm looks at time limits every 30 s and sends the signal at the first look where
    at most S + 30 s remain, so it arrives S to S + 30 s before the limit (and the kill
    0 to 30 s after it). submitit's 90 s for long jobs; for short ones, the signal comes
    no earlier than half way: 1 min -> 5 (signal 25 to 55 s in), 2 min -> 30, 3 min -> 60.
    """
    return int(min(90, max(5, timeout_min * 30 - 30)))


def signal_delay_problem(signal_delay_s: int, timeout_min: int) -> str | None:
    """Why a signal delay would let the checkpoint signal hit a job as it starts, or None.

    The signal may come as early as timeout - S - 30 s into the job; before the job has
    installed its handlers, USR2 kills it.
    """
    earliest = timeout_min * 60 - signal_delay_s - 30
    if earliest < 10:
        return (f"with a {timeout_min} min time limit Slurm may send the checkpoint signal {max(0, earliest)} s "
                f"into the job (it sends it up to 30 s early); use less than {timeout_min * 60 - 40}")
    return None


def sbatch_memory(mem_gb: float) -> str:
    return f"{int(mem_gb)}G" if float(mem_gb).is_integer() else f"{int(round(mem_gb * 1024))}M"


def slurm_parameters(resources: Resources, count: int, name: str, max_parallel: int | None = None,
                     signal_delay_s: int | None = None) -> dict:
    """submitit SlurmExecutor parameters for one sbatch call of ``count`` runs."""
    parameters = {
        "job_name": name,
        "time": int(resources.timeout_min),
        "cpus_per_task": int(resources.cpus),
        "mem": sbatch_memory(resources.mem_gb),
        "signal_delay_s": int(signal_delay_s if signal_delay_s is not None else default_signal_delay(resources.timeout_min)),
        "array_parallelism": max(1, min(count, max_parallel or count)),
    }
    if resources.gpus:
        parameters["gpus_per_node"] = int(resources.gpus)
    for key in ("partition", "account", "qos"):
        if getattr(resources, key):
            parameters[key] = getattr(resources, key)
    extra = {key.replace("-", "_"): value for key, value in resources.sbatch_args.items() if value is not False}
    if extra:
        parameters["additional_parameters"] = extra
    return parameters


def describe_resources(resources: Resources) -> str:
    parts = [f"{resources.cpus} cpu", f"{resources.mem_gb:g} GB", f"{resources.timeout_min} min"]
    if resources.gpus:
        parts.insert(0, f"{resources.gpus} gpu")
    for key in ("partition", "account", "qos"):
        if getattr(resources, key):
            parts.append(f"{key} {getattr(resources, key)}")
    parts += [f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}") for k, v in sorted(resources.sbatch_args.items())]
    return ", ".join(parts)


def parse_visible_devices(text: str | None) -> list[str] | None:
    """CUDA_VISIBLE_DEVICES -> its entries as written (indices, GPU-/MIG- UUIDs); None when
    unset (all GPUs), [] when empty."""
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


def visible_gpus() -> list[str] | None:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES's entries, else every GPU torch sees."""
    parsed = parse_visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"))
    return parsed if parsed is not None else [str(index) for index in range(_cuda_count())]


def _cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


class GpuSlots:
    """Which visible GPUs are free; a run takes ``gpus`` of them for itself until it ends."""

    def __init__(self, gpus: Iterable[str]):
        self.order = list(gpus)
        self.free = list(self.order)
        self.total = len(self.free)

    def need(self, gpus: int) -> int:
        """GPUs a run asking for ``gpus`` gets: all of them when it asks for more than exist."""
        return min(gpus, self.total)

    def take(self, count: int) -> tuple[str, ...] | None:
        """``count`` free GPUs (first listed first), or None when too few are free now."""
        if count <= 0:
            return ()
        if count > len(self.free):
            return None
        taken, self.free = tuple(self.free[:count]), self.free[count:]
        return taken

    def give_back(self, gpus: Iterable[str]) -> None:
        returned = set(self.free) | set(gpus)
        self.free = [gpu for gpu in self.order if gpu in returned]


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS")


class thread_limits:
    """While submitting: the thread pools of the workers (torch, BLAS, OpenMP) sized to the
    run's CPUs, through the environment they inherit (local controllers copy it; sbatch
    exports it)."""

    def __init__(self, cpus: int):
        self.cpus = str(int(cpus))

    def __enter__(self):
        self.saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
        os.environ.update({name: self.cpus for name in THREAD_VARIABLES})

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        return False


def can_start(resources: Resources, running: list[Resources], cap: int | None, cpus: int,
              slots: GpuSlots) -> bool:
    """Local executor admission: below the cap (or, without one, within the machine's CPUs),
    and enough free GPUs when the run wants some and the machine has any."""
    if cap is not None and len(running) >= cap:
        return False
    if cap is None and running and sum(r.cpus for r in running) + resources.cpus > cpus:
        return False
    if resources.gpus and slots.total and len(slots.free) < slots.need(resources.gpus):
        return False
    return True


# ---------------------------------------------------------------- launching


def launch(specs, store: Store, cluster: str, resources: Resources | Callable, max_parallel: int | None = None,
           progress: bool = True, max_requeues: int = DEFAULT_MAX_REQUEUES,
           signal_delay_s: int | None = None) -> LaunchResult:
    """Dispatch ``specs``; ``resources`` is one Resources for all, or spec -> Resources."""
    specs = list(specs)
    resources_of = resources if callable(resources) else (lambda spec, r=resources: r)
    launch_id = new_launch_id()
    result = LaunchResult(folder=launch_folder(store, launch_id), launch_id=launch_id)
    if not specs:
        return result
    store.dir.mkdir(parents=True, exist_ok=True)
    root = str(store.root.resolve())
    record = {
        "launch_id": launch_id,
        "suite": store.suite,
        "cluster": cluster,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds"),
        "folder": str(result.folder.resolve()),
        "job_name": job_name(store.suite, launch_id) if cluster == "slurm" else None,
        "max_parallel": max_parallel,
        "max_requeues": max_requeues,
        "arrays": [],
        "runs": {},
    }
    if cluster == "debug":
        _run_debug(specs, root, resources_of, result, record, store, progress)
    elif cluster == "local":
        _run_local(specs, root, resources_of, result, record, store, max_parallel, progress, max_requeues)
    elif cluster == "slurm":
        _submit_slurm(specs, root, resources_of, result, record, store, max_parallel, max_requeues, signal_delay_s)
    else:
        raise ValueError(f"unknown cluster {cluster!r}")
    return result


def _note(record: dict, run_id: str, submitted) -> None:
    paths = getattr(submitted, "paths", None)
    record["runs"][run_id] = {
        "job_id": str(submitted.job_id),
        "stdout": str(paths.stdout) if paths is not None else None,
        "stderr": str(paths.stderr) if paths is not None else None,
    }


def _run_debug(specs, root, resources_of, result: LaunchResult, record: dict, store: Store, progress: bool) -> None:
    import submitit

    from harness.job import Job

    executor = submitit.DebugExecutor(folder=result.folder)
    for spec in tqdm(specs, desc="runs", unit="run", disable=not progress):
        job = Job(spec, root, threads=resources_of(spec).cpus)
        submitted = executor.submit(job)
        result.submitted.append(spec.run_id)
        result.job_ids.append(submitted.job_id)
        _note(record, spec.run_id, submitted)
        result.record_path = write_launch(store, record)
        _collect(submitted, spec.run_id, result)


def _run_local(specs, root, resources_of, result: LaunchResult, record: dict, store: Store,
               max_parallel: int | None, progress: bool, max_requeues: int) -> None:
    """Each run in its own process: at most ``max_parallel`` at once (default: as many as
    the CPUs hold), each GPU run pinned to GPUs of its own; wait for all.

    Pinning: the worker sets CUDA_VISIBLE_DEVICES to its GPUs' entries (indices or UUIDs,
    as this process sees them) before CUDA starts (``Job.devices``); CPU runs then see no
    GPU. submitit's own ``visible_gpus`` takes indices only, so it is not used.

    Ctrl-C: submitit's local controller answers SIGINT by killing its worker one second
    later, before a checkpoint can be saved. So the controllers start with SIGINT ignored
    (their workers install their own handler when they start), and on Ctrl-C this process
    asks each worker to stop (SIGTERM, see ``stop_workers``) and waits until every one has
    saved its checkpoint and exited."""
    import submitit

    from harness.job import Job

    executor = submitit.LocalExecutor(folder=result.folder, max_num_timeout=max_requeues)
    executor.update_parameters(setup=["trap '' INT"])
    slots = GpuSlots(visible_gpus() if any(resources_of(s).gpus for s in specs) else [])
    cpus = os.cpu_count() or 1
    waiting, running = list(specs), []  # running: (submitted, spec, resources, gpus)
    bar = tqdm(total=len(specs), desc="runs", unit="run", disable=not progress)
    previous_term = signal.signal(signal.SIGTERM, _interrupt)  # `kill` of the launcher stops like Ctrl-C
    try:
        while waiting or running:
            while waiting and can_start(resources_of(waiting[0]), [r for _, _, r, _ in running], max_parallel, cpus, slots):
                spec = waiting.pop(0)
                resources = resources_of(spec)
                gpus = slots.take(slots.need(resources.gpus)) if slots.total else ()
                executor.update_parameters(timeout_min=resources.timeout_min,
                                           gpus_per_node=0 if slots.total else resources.gpus, visible_gpus=())
                devices = ",".join(gpus) if slots.total else None  # None: leave the environment as it is
                with thread_limits(resources.cpus):
                    submitted = executor.submit(Job(spec, root, threads=resources.cpus, devices=devices))
                result.submitted.append(spec.run_id)
                result.job_ids.append(submitted.job_id)
                _note(record, spec.run_id, submitted)
                record["runs"][spec.run_id]["visible_gpus"] = list(gpus)
                result.record_path = write_launch(store, record)
                running.append((submitted, spec, resources, gpus))
            finished = [entry for entry in running if entry[0].done()]
            for entry in finished:
                running.remove(entry)
                slots.give_back(entry[3])
                _collect(entry[0], entry[1].run_id, result)
                bar.update(1)
            if not finished:
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        bar.close()
        stop_workers([(entry[0], entry[1].run_id) for entry in running], store)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        bar.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def stop_workers(running: list, store: Store, resend_seconds: float = 5.0) -> None:
    """Ask every local worker to stop (SIGTERM: it saves its checkpoint at the next step
    boundary) and wait for all to exit; a second Ctrl-C kills them at once. A worker that
    has not written its running marker yet is signalled as soon as it has; the signal is
    sent again every ``resend_seconds`` in case one came before its handler was installed."""
    alive = [(job, run_id) for job, run_id in running if not job.done()]
    if not alive:
        return
    print(f"harness: stopping {len(alive)} run{'s' * (len(alive) != 1)}: saving checkpoints "
          "(Ctrl-C again to kill them now)", file=sys.stderr, flush=True)
    last_sent: dict[str, float] = {}
    try:
        while alive:
            for job, run_id in alive:
                pid = _worker_pid(store, run_id)
                if pid and time.monotonic() - last_sent.get(run_id, -resend_seconds) >= resend_seconds:
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                    last_sent[run_id] = time.monotonic()
            time.sleep(POLL_SECONDS / 5)
            alive = [(job, run_id) for job, run_id in alive if not job.done()]
    except KeyboardInterrupt:
        for job, run_id in alive:
            pid = _worker_pid(store, run_id)
            for target in (pid, getattr(job, "_process", None) and job._process.pid):
                if target:
                    try:
                        os.kill(target, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        print(f"harness: killed {len(alive)} run{'s' * (len(alive) != 1)} without a checkpoint", file=sys.stderr)


def _worker_pid(store: Store, run_id: str) -> int | None:
    """The pid a worker of this host wrote in its running marker, or None."""
    import json
    import socket

    try:
        info = json.loads((store.run_dir(run_id) / "running.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return None
    return info["pid"]


def _collect(submitted, run_id: str, result: LaunchResult) -> None:
    """A worker that died (killed, out of memory) leaves no record: say why."""
    try:
        submitted.result()
    except Exception as error:  # the job's own failures are records; this is the worker dying
        first = str(error).strip().splitlines()
        result.crashed[run_id] = first[-1] if first else type(error).__name__


def _submit_slurm(specs, root, resources_of, result: LaunchResult, record: dict, store: Store,
                  max_parallel: int | None, max_requeues: int, signal_delay_s: int | None) -> None:
    """One job array per distinct resource request, split at the cluster's MaxArraySize;
    the launch record is rewritten after each sbatch, so what was submitted is never lost."""
    import submitit

    from harness.job import Job

    size = scheduler.max_array_size()
    for resources, group in group_by_resources(specs, resources_of):
        for chunk in chunks(group, size):
            executor = submitit.SlurmExecutor(folder=result.folder, max_num_timeout=max_requeues)
            parameters = slurm_parameters(resources, len(chunk), record["job_name"], max_parallel, signal_delay_s)
            try:
                executor.update_parameters(**parameters)
                with thread_limits(resources.cpus), executor.batch():
                    submitted = [executor.submit(Job(spec, root, threads=resources.cpus)) for spec in chunk]
            except Exception as error:  # sbatch refused (bad partition, too much memory, ...)
                lines = [line for line in str(error).strip().splitlines() if line.strip()]
                done = f"; {len(result.submitted)} runs were submitted before (see {result.record_path})" if result.submitted else ""
                raise HarnessError(f"sbatch failed for {len(chunk)} runs ({describe_resources(resources)}): "
                                   f"{lines[-1] if lines else type(error).__name__}{done}") from None
            array = {"job_id": scheduler.base_id(submitted[0].job_id), "size": len(chunk),
                     "parallelism": parameters["array_parallelism"], "resources": _resources_dict(resources)}
            record["arrays"].append(array)
            result.arrays.append(array)
            for spec, job in zip(chunk, submitted):
                result.submitted.append(spec.run_id)
                result.job_ids.append(job.job_id)
                _note(record, spec.run_id, job)
            result.record_path = write_launch(store, record)


def _resources_dict(resources: Resources) -> dict:
    return dataclasses.asdict(resources)


# ---------------------------------------------------------------- waiting


def wait(store: Store, result: LaunchResult, poll_seconds: float | None = None, progress: bool = True,
         give_up_after: int = 20) -> dict[str, scheduler.JobState]:
    """Follow a Slurm launch until every job has ended: ONE scheduler query per poll for
    all its jobs (never submitit's per-job watchers, never a wait on a result file, so a
    cancelled or killed job cannot hang it). Stops after ``give_up_after`` failed queries
    in a row. Returns the last states."""
    if poll_seconds is None:
        poll_seconds = float(os.environ.get("HARNESS_POLL_SECONDS", 5))
    job_ids = list(result.job_ids)
    names = {job_name(store.suite, result.launch_id)}
    states: dict[str, scheduler.JobState] = {}
    missing_polls: dict[str, int] = {}
    failures = 0
    bar = tqdm(total=len(job_ids), desc="jobs", unit="job", disable=not progress, file=sys.stderr)
    try:
        while True:
            try:
                states = scheduler.query(job_ids, names)
                failures = 0
            except scheduler.SchedulerError as error:
                failures += 1
                if failures >= give_up_after:
                    print(f"warning: stopped waiting: {error}", file=sys.stderr)
                    return states
                time.sleep(poll_seconds)
                continue
            ended = 0
            for job_id in job_ids:
                if job_id in states:
                    missing_polls.pop(job_id, None)
                    ended += states[job_id].final
                else:  # left the queue and unknown to accounting: gone once it stays so
                    missing_polls[job_id] = missing_polls.get(job_id, 0) + 1
                    ended += missing_polls[job_id] >= 3
            tally: dict[str, int] = {}
            for state in states.values():
                tally[state.state.lower()] = tally.get(state.state.lower(), 0) + 1
            bar.n = ended
            bar.set_postfix_str(", ".join(f"{n} {s}" for s, n in sorted(tally.items())), refresh=False)
            bar.refresh()
            if ended == len(job_ids):
                return states
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        print("stopped waiting; the jobs go on (harness status shows them)", file=sys.stderr)
        return states
    finally:
        bar.close()
