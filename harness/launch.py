"""Dispatch RunSpecs: in-process (debug), local processes, or SLURM job arrays.

Knows RunSpecs, resources, the store and the scheduler's answers; nothing about
training. Small pure functions (grouping, splitting, sbatch parameters, GPU slots)
around thin executor calls: local runs are forked from a server that imported torch
once (``harness/pool.py``; ``--executor submitit``: a fresh Python per run through
submitit's local executor), Slurm's are submitit job arrays. What `status` shows is in
`harness/status.py`.

Every launch gets a fresh folder (``results/<suite>/.submitit/<launch id>``: logs,
submitit's files), so result files of an earlier launch are never read, and a launch
record (``results/<suite>/launches/<launch id>.json``: cluster, executor, folder, job
name, and for each run its job id and log files) that `status` and `run --wait` read
to ask the scheduler about exactly these jobs, in one query.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from harness import HarnessError, scheduler
from harness.forkserver import THREAD_VARIABLES
from harness.record import SUBMITIT
from harness.store import Store
from harness.suite import Resources

CLUSTERS = ("local", "debug", "slurm")
# How local runs get their process (`run --executor`): forked from a server that imported torch
# once, or a fresh Python each through submitit (forking torch is trusted on Linux only).
DEFAULT_EXECUTOR = "pool" if sys.platform.startswith("linux") else "submitit"
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
    elsewhere: dict = field(default_factory=dict)  # run id -> the other launcher's worker that holds it


# ---------------------------------------------------------------- pure pieces


def new_launch_id() -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def launch_folder(store: Store, launch_id: str | None = None) -> Path:
    return store.dir / SUBMITIT / (launch_id or new_launch_id())


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
    return f"{int(mem_gb)}G" if float(mem_gb).is_integer() else f"{round(mem_gb * 1024)}M"


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
    return not (resources.gpus and slots.total and len(slots.free) < slots.need(resources.gpus))


# ---------------------------------------------------------------- launching


def launch(specs, store: Store, cluster: str, resources: Resources | Callable, max_parallel: int | None = None,
           progress: bool = True, max_requeues: int = DEFAULT_MAX_REQUEUES,
           signal_delay_s: int | None = None, executor: str = DEFAULT_EXECUTOR) -> LaunchResult:
    """Dispatch ``specs``; ``resources`` is one Resources for all, or spec -> Resources;
    ``executor`` says how local runs get their processes: "pool" or "submitit"."""
    specs = list(specs)
    resources_of = resources if callable(resources) else (lambda spec, r=resources: r)
    launch_id = new_launch_id()
    result = LaunchResult(folder=launch_folder(store, launch_id), launch_id=launch_id)
    if not specs:
        return result
    if cluster == "slurm" and (problem := scheduler.unreachable()):  # before anything is written
        raise HarnessError(f"--cluster slurm: no Slurm to submit to from here ({problem}); run this on a "
                           "node of the cluster (a login node), or use --cluster local")
    store.dir.mkdir(parents=True, exist_ok=True)
    root = str(store.root.resolve())
    record = {
        "launch_id": launch_id,
        "suite": store.suite,
        "cluster": cluster,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds"),
        "folder": str(result.folder.resolve()),
        "job_name": job_name(store.suite, launch_id) if cluster == "slurm" else None,
        "executor": executor if cluster == "local" else None,
        "max_parallel": max_parallel,
        "max_requeues": max_requeues,
        "arrays": [],
        "runs": {},
    }
    if cluster == "debug":
        _run_debug(specs, root, resources_of, result, record, store, progress)
    elif cluster == "local":
        _run_local(specs, root, resources_of, result, record, store, max_parallel, progress, max_requeues, executor)
    elif cluster == "slurm":
        _submit_slurm(specs, root, resources_of, result, record, store, max_parallel, max_requeues, signal_delay_s)
    else:
        raise ValueError(f"unknown cluster {cluster!r}")
    return result


def _note(submitted) -> dict:
    """A submitit job as the launch record keeps it: its id and log files."""
    paths = getattr(submitted, "paths", None)
    return {
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
        record["runs"][spec.run_id] = _note(submitted)
        result.record_path = store.write_launch(record)
        _collect(SubmititRun(submitted, spec.run_id, store), result, store)


class SubmititRun:
    """A local run in a fresh Python through submitit (``--executor submitit``), as the
    launcher follows it."""

    def __init__(self, submitted, run_id: str, store: Store):
        self.submitted, self.run_id, self.store = submitted, run_id, store

    def done(self) -> bool:
        return self.submitted.done()

    def terminate(self) -> bool:
        """SIGTERM to the worker, once it has written its pid in its running marker."""
        pid = _worker_pid(self.store, self.run_id)
        if pid:
            _signal(pid, signal.SIGTERM)
        return bool(pid)

    def kill(self) -> None:
        process = getattr(self.submitted, "_process", None)
        for target in (_worker_pid(self.store, self.run_id), process and process.pid):
            if target:
                _signal(target, signal.SIGKILL)

    def crash(self) -> str | None:
        """The last line of what submitit says when the worker raised or died, else None."""
        try:
            self.submitted.result()
        except Exception as error:  # noqa: BLE001 - the job's own failures are records; this is its worker failing
            lines = str(error).strip().splitlines()
            return lines[-1].strip() if lines else type(error).__name__
        return None


class SubmititRuns:
    """Local runs through submitit's local executor: a fresh Python (and torch import) per
    run; it sends the time-limit signal and requeues itself.

    Ctrl-C: submitit's local controller answers SIGINT by killing its worker one second
    later, before a checkpoint can be saved. So the controllers start with SIGINT ignored
    (their workers install their own handler when they start), and ``stop_workers`` asks
    each worker to stop (SIGTERM). submitit's own ``visible_gpus`` takes indices only, so
    the Job pins GPUs itself (``Job.devices``)."""

    def __init__(self, folder: Path, max_requeues: int, store: Store):
        import submitit

        self.executor = submitit.LocalExecutor(folder=folder, max_num_timeout=max_requeues)
        self.executor.update_parameters(setup=["trap '' INT"])
        self.store = store

    def start(self, spec, job, resources: Resources, pinned: bool) -> SubmititRun:
        self.executor.update_parameters(timeout_min=resources.timeout_min, gpus_per_node=0 if pinned else resources.gpus,
                                        visible_gpus=())
        with thread_limits(resources.cpus):
            return SubmititRun(self.executor.submit(job), spec.run_id, self.store)

    def note(self, run: SubmititRun) -> dict:
        return _note(run.submitted)

    def wait(self, running: list, timeout: float) -> list:
        finished = [run for run in running if run.done()]
        if not finished:
            time.sleep(timeout)
        return finished

    def stop(self) -> None:
        pass  # a requeue after a stop is submitit's to decide

    def close(self) -> None:
        pass


class PoolRuns:
    """Local runs forked from a server that imported torch once (``harness/pool.py``)."""

    def __init__(self, folder: Path, max_requeues: int):
        from harness.pool import Pool

        self.pool = Pool(folder, max_requeues)

    def start(self, spec, job, resources: Resources, pinned: bool):
        return self.pool.start(spec.run_id, job, resources.cpus, resources.timeout_min)

    def note(self, run) -> dict:
        return {"job_id": str(run.key), "stdout": str(run.stdout), "stderr": str(run.stderr)}

    def wait(self, running: list, timeout: float) -> list:
        self.pool.wait(timeout)
        return [run for run in running if run.done()]

    def stop(self) -> None:
        self.pool.stop()

    def close(self) -> None:
        self.pool.close()


def local_runs(executor: str, folder: Path, max_requeues: int, store: Store):
    """The local executor's runner; the fork server's needs one thread to fork safely,
    else submitit's (with a warning)."""
    if executor == "submitit":
        return SubmititRuns(folder, max_requeues, store)
    runs = PoolRuns(folder, max_requeues)
    if runs.pool.threads == 1:
        return runs
    runs.close()
    print(f"warning: the fork server has {runs.pool.threads} threads after importing torch, so forking it is "
          "not safe: each run gets a fresh Python (--executor submitit) instead", file=sys.stderr)
    return SubmititRuns(folder, max_requeues, store)


def _run_local(specs, root, resources_of, result: LaunchResult, record: dict, store: Store,
               max_parallel: int | None, progress: bool, max_requeues: int, executor: str) -> None:
    """Each run in a process of its own: at most ``max_parallel`` at once (default: as many
    as the CPUs hold), each GPU run pinned to GPUs of its own; wait for all.

    Pinning: the worker sets CUDA_VISIBLE_DEVICES to its GPUs' entries (indices or UUIDs,
    as this process sees them) before CUDA starts (``Job.devices``); CPU runs see no GPU.

    A run that another launcher's worker holds (its lock) when its turn comes is skipped
    (``result.elsewhere``). Ctrl-C or SIGTERM: every worker is asked to stop and saves
    its checkpoint (``stop_workers``), then KeyboardInterrupt goes on."""
    from harness.job import Job
    from harness.pool import PoolError

    slots = GpuSlots(visible_gpus() if any(resources_of(s).gpus for s in specs) else [])
    cpus = os.cpu_count() or 1
    waiting, running = list(specs), []  # running: (run, spec, resources, gpus)
    previous_term = signal.signal(signal.SIGTERM, _interrupt)  # `kill` of the launcher stops like Ctrl-C
    bar = tqdm(total=len(specs), desc="runs", unit="run", disable=not progress)
    runner = None
    try:
        runner = local_runs(executor, result.folder, max_requeues, store)
        record["executor"] = "pool" if isinstance(runner, PoolRuns) else "submitit"
        while waiting or running:
            while waiting and can_start(resources_of(waiting[0]), [r for _, _, r, _ in running], max_parallel, cpus, slots):
                spec = waiting.pop(0)
                holder = store.running_info(spec.run_id)
                if holder is not None:  # another launcher's worker took it since the scan
                    result.elsewhere[spec.run_id] = _holder(holder)
                    bar.update(1)
                    continue
                resources = resources_of(spec)
                gpus = slots.take(slots.need(resources.gpus)) if slots.total else ()
                devices = ",".join(gpus) if slots.total or not resources.gpus else None  # None: as inherited
                run = runner.start(spec, Job(spec, root, threads=resources.cpus, devices=devices), resources, bool(slots.total))
                result.submitted.append(spec.run_id)
                record["runs"][spec.run_id] = {**runner.note(run), "visible_gpus": list(gpus)}
                result.job_ids.append(record["runs"][spec.run_id]["job_id"])
                result.record_path = store.write_launch(record)
                running.append((run, spec, resources, gpus))
            for entry in [e for e in running if e[0] in runner.wait([e[0] for e in running], POLL_SECONDS)]:
                running.remove(entry)
                slots.give_back(entry[3])
                _collect(entry[0], result, store)
                bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        if runner is not None:
            runner.stop()
            stop_workers([entry[0] for entry in running], runner)
        raise
    except PoolError as error:  # no server: its runs' processes go on, orphaned; ask them to stop at a checkpoint
        pids = runner.pool.pids() if runner is not None else []
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        going = f"; its {len(pids)} runs were asked to stop at a checkpoint: rerun to resume them" if pids else ""
        raise HarnessError(f"{error}{going}") from None
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        bar.close()
        if runner is not None:
            runner.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def stop_workers(running: list, runner, resend_seconds: float = 5.0) -> None:
    """Ask every local run to stop (SIGTERM: it saves its checkpoint at the next step
    boundary) and wait for all to exit; a second Ctrl-C kills them at once. The signal is
    sent again every ``resend_seconds`` in case one came before the run's handler was
    installed (a run whose worker cannot be signalled yet is signalled as soon as it can)."""
    alive = [run for run in running if not run.done()]
    if not alive:
        return
    print(f"harness: stopping {len(alive)} run{'s' * (len(alive) != 1)}: saving checkpoints "
          "(Ctrl-C again to kill them now)", file=sys.stderr, flush=True)
    last_sent: dict[int, float] = {}
    try:
        while alive:
            for run in alive:
                if time.monotonic() - last_sent.get(id(run), -resend_seconds) >= resend_seconds and run.terminate():
                    last_sent[id(run)] = time.monotonic()
            runner.wait(alive, POLL_SECONDS / 5)
            alive = [run for run in alive if not run.done()]
    except KeyboardInterrupt:
        for run in alive:
            run.kill()
        print(f"harness: killed {len(alive)} run{'s' * (len(alive) != 1)} without a checkpoint", file=sys.stderr)


def _worker_pid(store: Store, run_id: str) -> int | None:
    """The pid a worker of this host wrote in its running marker, or None."""
    import socket

    info = store.running_marker(run_id)
    if info is None or info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return None
    return info["pid"]


def _holder(info: dict) -> str:
    return f"host {info.get('host')}, pid {info.get('pid')}, since {info.get('started')}"


def _collect(run, result: LaunchResult, store: Store) -> None:
    """A run that ended without a record: because another launcher's worker holds it (its
    lock), or because its worker died (killed, out of memory, crashed): say which."""
    why = run.crash()
    if why is None:
        return
    holder = store.running_info(run.run_id)  # ours has ended: a lock held now is another worker's
    if holder is not None:
        result.elsewhere[run.run_id] = _holder(holder)
    else:
        result.crashed[run.run_id] = why


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
            except Exception as error:  # noqa: BLE001 - sbatch refused (bad partition, too much memory, ...)
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
                record["runs"][spec.run_id] = _note(job)
            result.record_path = store.write_launch(record)


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
        poll_seconds = float(os.environ.get("HARNESS_POLL_SECONDS", "5"))
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
