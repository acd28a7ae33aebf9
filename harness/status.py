"""What `harness status` shows: each run's record merged with what the scheduler says
about its latest job, read from the launch records (``results/<suite>/launches/``).

No torch, no submitit: the records, the launch records and ONE scheduler query.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness import scheduler
from harness.record import ACTIVE, FINISHED
from harness.store import RunState, Store

# ---------------------------------------------------------------- launch records (Store.read_launches)


def latest_jobs(launches: list[dict], run_ids: Iterable[str]) -> dict[str, dict]:
    """run id -> its job in the latest launch that dispatched it:
    {job_id, cluster, job_name, stdout, stderr, launch_id}."""
    wanted, jobs = set(run_ids), {}
    for launch in launches:  # oldest first: later launches win
        for run_id, job in launch["runs"].items():
            if run_id in wanted and isinstance(job, dict) and job.get("job_id") is not None:
                jobs[run_id] = {**job, "job_id": str(job["job_id"]), "cluster": launch.get("cluster"),
                                "job_name": launch.get("job_name"), "launch_id": launch.get("launch_id")}
    return jobs


# ---------------------------------------------------------------- records + scheduler


@dataclass
class RunView:
    """One run as `status` shows it: the record's word when there is one, else the scheduler's."""

    status: str  # one of harness.record.STATUSES
    record: dict | None = None
    running: dict | None = None  # running.json of a local or Slurm worker
    job: dict | None = None  # its job in the latest launch
    job_state: scheduler.JobState | None = None
    queued: bool = False  # pending in the scheduler's queue (not to be dispatched again)
    why: str = ""  # one line: the scheduler's state, exit code, requeues
    log: str | None = None

    @property
    def active(self) -> bool:
        """A worker or a queued job will still produce this run's record."""
        return self.status in ACTIVE or self.queued


def merge_state(state: RunState, job: dict | None, states: dict | None) -> RunView:
    """Combine the store's view of a run with the scheduler's view of its latest job.

    ``states`` is the scheduler's answer (job id -> JobState) or None when it was not
    asked or could not answer. A valid record always wins (done, failed). Without one:
    the job queued (pending, or requeued after a preemption or time-out), running, or
    ended: cancelled, or lost (the scheduler ended it and it wrote no record; a job the
    scheduler does not know at all is lost too).
    """
    if state.status in FINISHED:
        return RunView(state.status, record=state.record, job=job, log=(state.record or {}).get("log"))
    fallback = RunView(state.status, running=state.running, job=job,
                       log=(state.running or {}).get("log"))
    if job is None or job.get("cluster") != "slurm" or states is None:
        return fallback
    job_id = job["job_id"]
    found = states.get(job_id)
    stderr = job.get("stderr")
    if found is None:
        return RunView("lost", running=state.running, job=job, why=f"job {job_id} is unknown to the scheduler",
                       log=stderr)
    requeued = f", requeued {found.requeues}x" if found.requeues else ""
    view = RunView("pending", running=state.running, job=job, job_state=found,
                   why=f"job {job_id} {found.describe}{requeued}", log=stderr)
    if found.state in scheduler.QUEUED:
        if found.requeues or found.state != "PENDING":
            view.status = "requeued"
        else:
            view.queued = True
    elif found.state in scheduler.CANCELLED:
        view.status = "cancelled"
    elif found.state in scheduler.ENDED:
        view.status = "lost"
        view.why += " without writing a record"
    else:  # running, or a state we do not know: something still works on it
        view.status = "running"
        view.log = (state.running or {}).get("log") or stderr
    return view


def query_scheduler(jobs: dict[str, dict]) -> tuple[dict | None, str | None]:
    """ONE scheduler query for the Slurm jobs among ``jobs``: (job id -> JobState, or None
    and why, when no Slurm answers)."""
    slurm = [job for job in jobs.values() if job.get("cluster") == "slurm"]
    if not slurm:
        return {}, None
    names = {job["job_name"] for job in slurm if job.get("job_name")}
    try:
        return scheduler.query([job["job_id"] for job in slurm], names or None), None
    except scheduler.SchedulerError as error:
        return None, f"Slurm not reachable ({error}): showing what the records say"


@dataclass
class SuiteView:
    views: dict  # run id -> RunView, in plan order
    warnings: list
    unplanned: int = 0  # records of runs no longer in the plan
    scan: object = None  # the store's scan behind it


def run_views(store: Store, specs) -> SuiteView:
    """Every planned run's view: records, launch records, and one scheduler query.

    The scheduler is asked first and the records read after, so a job that finished
    between the two is never mistaken for one that ended without a record.
    """
    specs = list(specs)
    launches, warnings = store.read_launches()
    scan = store.scan(specs)
    warnings = scan.warnings + warnings
    open_runs = [spec.run_id for spec in specs if scan.states[spec.run_id].status not in FINISHED]
    jobs = latest_jobs(launches, open_runs)
    states, problem = query_scheduler(jobs)
    if problem:
        warnings.append(problem)
    if jobs:
        by_id = {spec.run_id: spec for spec in specs}
        rescan = store.scan([by_id[run_id] for run_id in jobs])  # records that appeared meanwhile
        scan.states.update(rescan.states)
    views = {spec.run_id: merge_state(scan.states[spec.run_id], jobs.get(spec.run_id), states) for spec in specs}
    return SuiteView(views, warnings, scan.unplanned, scan)
