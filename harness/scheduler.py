"""What Slurm says about our jobs: `sacct`, `squeue` and `scontrol` behind small functions.

Pure Python around subprocess: no torch, no submitit. The parsers are separate from
the calls so that they are tested on canned output. Every query covers a whole
launch (or suite) in ONE command, never one per job.
"""
from __future__ import annotations

import getpass
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's own default
COMMAND_TIMEOUT_S = 60

# Latest state of a job, as sacct/squeue print it (first word, '+' stripped), by what it means for a run.
QUEUED = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"})
RUNNING = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"})
CANCELLED = frozenset({"CANCELLED"})
# Ended: the job will not run again. GONE is ours: left squeue, and no accounting says how.
ENDED = frozenset({"COMPLETED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
                   "PREEMPTED", "REVOKED", "CANCELLED", "GONE"})

_ARRAY_RANGE = re.compile(r"^(?P<base>\d+)_\[(?P<spec>[^\]]+)\]$")


class SchedulerError(Exception):
    """The scheduler could not be asked (not installed, not answering, or it said no)."""


@dataclass(frozen=True)
class JobState:
    job_id: str  # "123" or "123_4" (array task)
    state: str  # normalised: "CANCELLED", not "CANCELLED by 0"
    raw: str = ""  # as the scheduler printed it
    exit_code: str = ""
    name: str = ""
    requeues: int = 0  # earlier instances of this job (requeued after preemption or time-out)
    in_range: bool = False  # sacct gave it only inside a pending range ('123_[4-9]'), which goes stale

    @property
    def final(self) -> bool:
        return self.state in ENDED

    @property
    def describe(self) -> str:
        text = self.raw or self.state
        if self.exit_code and self.exit_code != "0:0":
            text += f", exit {self.exit_code}"
        return text


def normalise_state(raw: str) -> str:
    """'CANCELLED by 0' -> 'CANCELLED'; 'RUNNING+' (truncated) -> 'RUNNING'; '' -> 'UNKNOWN'."""
    words = raw.strip().split()
    return words[0].rstrip("+").upper() if words else "UNKNOWN"


def expand_job_id(job_id: str) -> list[str]:
    """'123_[1-3,7%2]' -> ['123_1', '123_2', '123_3', '123_7']; any other id as is."""
    match = _ARRAY_RANGE.match(job_id.strip())
    if not match:
        return [job_id.strip()]
    base, spec = match["base"], match["spec"].split("%")[0]
    ids = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            return [job_id.strip()]
        ids.extend(f"{base}_{index}" for index in range(int(first), int(last or first) + 1))
    return ids


def base_id(job_id: str) -> str:
    """The id to give `sacct -j`/`scancel`: an array task's array id ('123_4' -> '123')."""
    return str(job_id).split("_")[0]


def _rows(text: str, fields: int) -> Iterable[list[str]]:
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) >= fields:
            yield parts


def parse_sacct(text: str) -> dict[str, JobState]:
    """Output of `sacct -D -X -P -n --format=JobID,JobName,State,ExitCode` -> job id -> state.

    With -D a requeued job has one row per instance, oldest first; the last row that is
    not REQUEUED is the current one, and the others count as requeues. Pending array
    tasks come as one row ('123_[4-9%2]') and are expanded. Steps ('123.batch') are skipped.
    """
    rows: dict[str, list[tuple[str, str, str, bool]]] = {}
    for job_id, name, raw, exit_code, *_ in _rows(text, 4):
        if "." in job_id or "+" in job_id:  # a step, or a heterogeneous job component
            continue
        expanded = expand_job_id(job_id)
        for one in expanded:
            rows.setdefault(one, []).append((name, raw.strip(), exit_code.strip(), expanded != [job_id.strip()]))
    states = {}
    for job_id, instances in rows.items():
        current = [i for i in instances if normalise_state(i[1]) != "REQUEUED"] or instances
        name, raw, exit_code, in_range = current[-1]
        states[job_id] = JobState(job_id, normalise_state(raw), raw, exit_code, name,
                                  requeues=len(instances) - 1, in_range=in_range)
    return states


def parse_squeue(text: str) -> dict[str, JobState]:
    """Output of `squeue -h -r -o '%i|%j|%T|%r'` -> job id -> state."""
    states = {}
    for job_id, name, raw, *_ in _rows(text, 3):
        for one in expand_job_id(job_id):
            states[one] = JobState(one, normalise_state(raw), raw.strip(), "", name)
    return states


def parse_config(text: str) -> dict[str, str]:
    """`scontrol show config` -> {'MaxArraySize': '1001', ...}."""
    config = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            config[key.strip()] = value.strip()
    return config


def run_command(command: list[str], timeout: float = COMMAND_TIMEOUT_S) -> str:
    """stdout of a scheduler command; SchedulerError with its last line of stderr otherwise."""
    if shutil.which(command[0]) is None:
        raise SchedulerError(f"{command[0]} is not installed")
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SchedulerError(f"{command[0]} did not answer in {timeout:.0f} s") from None
    except OSError as error:
        raise SchedulerError(f"{command[0]}: {error}") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise SchedulerError(f"{command[0]} exited {done.returncode}: {lines[-1] if lines else 'no output'}")
    return done.stdout


def unreachable() -> str | None:
    """Why no job can be submitted to Slurm from here, or None: sbatch and srun installed
    (submitit needs both) and the controller answering `sinfo`."""
    for command in ("sbatch", "srun"):
        if shutil.which(command) is None:
            return f"{command} is not installed"
    try:
        run_command(["sinfo", "--noheader", "--format=%P"], timeout=30)
    except SchedulerError as error:
        return str(error)
    return None


def max_array_size(default: int = DEFAULT_MAX_ARRAY_SIZE) -> int:
    """The cluster's MaxArraySize (tasks per array), read once; `default` when unknown."""
    try:
        value = parse_config(run_command(["scontrol", "show", "config"])).get("MaxArraySize", "")
    except SchedulerError:
        return default
    return int(value) if value.isdigit() and int(value) > 0 else default


def sacct(job_ids: Iterable[str]) -> dict[str, JobState]:
    ids = sorted({base_id(j) for j in job_ids}, key=lambda s: (len(s), s))
    if not ids:
        return {}
    text = run_command(["sacct", "-D", "-X", "-P", "-n", "-j", ",".join(ids),
                        "--format=JobID,JobName,State,ExitCode"])
    return parse_sacct(text)


def squeue() -> dict[str, JobState]:
    """Every job of this user in the queue (one call; ids not in the queue are no error)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = None
    command = ["squeue", "-h", "-r", "-o", "%i|%j|%T|%r"] + (["-u", user] if user else [])
    return parse_squeue(run_command(command))


def query(job_ids: Iterable[str], names: Iterable[str] | None = None) -> dict[str, JobState]:
    """The state of each job: one `sacct` call, plus one `squeue` call only when needed.

    squeue answers when accounting is unavailable, for jobs sacct does not know yet,
    and for pending array tasks, which sacct shows only as a range ('123_[4-9%2]')
    that does not change when one of them is cancelled. An array task that left the
    queue while pending was cancelled (Slurm keeps no accounting record of it). A job
    nobody knows is absent from the answer, except that without accounting a job
    that left the queue is GONE. When `names` is given, rows with another job name
    are ignored: job ids restart after a cluster reset, and a reused id must not pass
    for ours. Raises SchedulerError when neither command answers.
    """
    wanted = sorted(set(map(str, job_ids)))
    if not wanted:
        return {}
    names = set(names) if names is not None else None

    def named(states: dict[str, JobState]) -> dict[str, JobState]:
        return {j: s for j, s in states.items() if names is None or s.name in names}

    sacct_error = None
    try:
        answered = named(sacct(wanted))  # every task of the arrays asked about
    except SchedulerError as error:
        answered, sacct_error = {}, error
    found = {j: s for j, s in answered.items() if j in wanted}
    unsure = [j for j in wanted if j not in found or found[j].in_range]
    if not unsure:
        return found
    try:
        queued = named(squeue())
    except SchedulerError:
        if sacct_error is not None:
            raise SchedulerError(f"{sacct_error}; squeue failed too") from None
        return found
    known_arrays = {base_id(j) for j in (set(answered) | set(queued)) if "_" in j}
    for job_id in unsure:
        if job_id in queued:
            found[job_id] = queued[job_id]
        elif sacct_error is not None:
            found[job_id] = JobState(job_id, "GONE", "not in the queue (no accounting)")
        elif "_" in job_id and (job_id in found or base_id(job_id) in known_arrays):
            name = found[job_id].name if job_id in found else ""
            found[job_id] = JobState(job_id, "CANCELLED", "CANCELLED while pending", "", name)
    return found
