"""The launcher's pure parts, with no Slurm and no GPU: grouping by resources, array
splitting, sbatch parameters, sacct/squeue parsing, the merge of records with the
scheduler's view, GPU slots of the local executor, and what `run` dispatches."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import TINY_SUITE, write_suite

from harness import launch, scheduler, status
from harness.cli import main
from harness.scheduler import JobState
from harness.spec import expand
from harness.store import RunState, Store
from harness.suite import Resources, SuiteError, load_suite

MIXED = TINY_SUITE.replace("  seed: [0]", "  seed: [0, 1]") + """
overrides:
  - when: {method: mtl}
    resources: {mem_gb: 8, sbatch_args: {constraint: big}}
  - when: {method: mtl, seed: 1}
    set: {lr: 0.002}
    resources: {timeout_min: 20}
"""


def fake_record(spec, status="done"):
    return {"run_id": spec.run_id, "suite": spec.suite, "status": status, "spec": spec.config,
            "metrics": {"accuracy": 50.0, "episode_accuracies": [50.0]}, "timing": {}, "memory": {}, "env": {},
            "started": "", "finished": "", "log": "run.log",
            "error": None if status == "done" else {"type": "ValueError", "message": "boom\nmore", "traceback": "Traceback"}}


# ---------------------------------------------------------------- resources per run, grouping, splitting

def test_override_resources_give_one_group_per_distinct_request(tmp_path):
    suite = load_suite(write_suite(tmp_path, MIXED))
    specs = list(expand(suite))
    groups = launch.group_by_resources(specs, lambda spec: suite.resources_for(spec.config))
    got = [(r.mem_gb, r.timeout_min, r.sbatch_args, sorted((s.config["method"], s.config["seed"]) for s in group))
           for r, group in groups]
    assert got == [
        (4.0, 10, {}, [("protonet", 0), ("protonet", 1)]),
        (8, 10, {"constraint": "big"}, [("mtl", 0)]),
        (8, 20, {"constraint": "big"}, [("mtl", 1)]),
    ]
    # overrides' resources never change run ids: only `set` does
    assert len({s.run_id for s in specs}) == 4


def test_command_line_resources_override_everything_and_merge_sbatch_args():
    base = Resources(cpus=2, sbatch_args={"constraint": "a100", "exclusive": True})
    merged = base.updated({"cpus": 4, "partition": "gpu", "sbatch_args": {"constraint": "h100"}})
    assert (merged.cpus, merged.partition, merged.sbatch_args) == (4, "gpu", {"constraint": "h100", "exclusive": True})
    assert merged.key() != base.key() and Resources().key() == Resources().key()


@pytest.mark.parametrize("text, fragments", [
    ("overrides:\n  - when: {method: mtl}\n    resources: {gpu: 1}\n", ["overrides[0].resources.gpu", "did you mean 'gpus'"]),
    ("overrides:\n  - when: {method: mtl}\n    resources: {cpus: 0}\n", ["overrides[0].resources.cpus", ">= 1"]),
    ("overrides:\n  - when: {method: mtl}\n", ["overrides[0].set", "missing"]),
    ("resources:\n  sbatch_args: {array: 0-3}\n", ["resources.sbatch_args.array", "set by the harness"]),
])
def test_bad_override_resources_are_one_line_errors(tmp_path, text, fragments):
    base = TINY_SUITE.split("resources:")[0]
    with pytest.raises(SuiteError) as caught:
        load_suite(write_suite(tmp_path, base + text))
    message = str(caught.value)
    assert "\n" not in message and all(f in message for f in fragments), message


def test_arrays_are_split_at_max_array_size():
    assert [len(c) for c in launch.chunks(list(range(2501)), 1001)] == [1001, 1001, 499]
    assert launch.chunks([1, 2], 1001) == [[1, 2]]
    assert launch.chunks([], 5) == []


def test_max_array_size_is_read_from_scontrol_once_with_a_default(monkeypatch):
    calls = []

    def fake(command, timeout=60):
        calls.append(command)
        return "Configuration data as of 2024-01-01T00:00:00\nMaxArraySize            = 40\nMaxJobCount = 10000\n"

    monkeypatch.setattr(scheduler, "run_command", fake)
    assert scheduler.max_array_size() == 40 and calls == [["scontrol", "show", "config"]]

    def broken(command, timeout=60):
        raise scheduler.SchedulerError("scontrol is not installed")

    monkeypatch.setattr(scheduler, "run_command", broken)
    assert scheduler.max_array_size() == 1001


def test_sbatch_parameters():
    resources = Resources(gpus=2, cpus=8, mem_gb=1.5, timeout_min=90, partition="gpu", account=None, qos="high",
                          sbatch_args={"constraint": "a100", "exclusive": True, "requeue": False, "mail-type": "END"})
    parameters = launch.slurm_parameters(resources, count=10, name="harness-x-abc123", max_parallel=4)
    assert parameters == {
        "job_name": "harness-x-abc123", "time": 90, "cpus_per_task": 8, "mem": "1536M", "gpus_per_node": 2,
        "signal_delay_s": 90, "array_parallelism": 4, "partition": "gpu", "qos": "high",
        "additional_parameters": {"constraint": "a100", "exclusive": True, "mail_type": "END"},
    }
    small = launch.slurm_parameters(Resources(mem_gb=2, timeout_min=1), count=3, name="n")
    assert (small["mem"], small["array_parallelism"], small["signal_delay_s"]) == ("2G", 3, 5)
    assert "gpus_per_node" not in small and "partition" not in small
    assert launch.slurm_parameters(Resources(), count=3, name="n", max_parallel=10)["array_parallelism"] == 3
    assert [launch.default_signal_delay(m) for m in (1, 2, 3, 4, 60)] == [5, 30, 60, 90, 90]
    for minutes in (1, 2, 3, 4, 60):  # the default never lets the signal come before the job starts
        assert launch.signal_delay_problem(launch.default_signal_delay(minutes), minutes) is None
    assert "30 s early" in launch.signal_delay_problem(45, 1) and launch.signal_delay_problem(20, 1) is None


# ---------------------------------------------------------------- what the scheduler says

SACCT = """\
100_0|harness-t-abc123|COMPLETED|0:0
100_1|harness-t-abc123|CANCELLED by 0|0:0
100_2|harness-t-abc123|REQUEUED|0:0
100_3|harness-t-abc123|TIMEOUT|0:0
100_2|harness-t-abc123|RUNNING|0:0
100_[4-6%2]|harness-t-abc123|PENDING|0:0
101|harness-t-abc123|NODE_FAIL|1:0
102|harness-t-abc123|OUT_OF_MEMORY|0:125
103|harness-t-abc123|REQUEUED|0:0
103|harness-t-abc123|PENDING|0:0
104|someone-else|RUNNING|0:0
100_0.batch|batch|COMPLETED|0:0
"""


def test_parse_sacct_states_requeues_and_pending_arrays():
    states = scheduler.parse_sacct(SACCT)
    assert {j: s.state for j, s in states.items()} == {
        "100_0": "COMPLETED", "100_1": "CANCELLED", "100_2": "RUNNING", "100_3": "TIMEOUT",
        "100_4": "PENDING", "100_5": "PENDING", "100_6": "PENDING",
        "101": "NODE_FAIL", "102": "OUT_OF_MEMORY", "103": "PENDING", "104": "RUNNING",
    }
    assert states["100_1"].raw == "CANCELLED by 0" and states["100_1"].final
    assert states["100_2"].requeues == 1 and not states["100_2"].final
    assert states["103"].requeues == 1 and states["100_0"].requeues == 0
    assert states["102"].describe == "OUT_OF_MEMORY, exit 0:125"
    assert scheduler.expand_job_id("7_[1,3-4]") == ["7_1", "7_3", "7_4"]
    assert scheduler.expand_job_id("7_[bad]") == ["7_[bad]"]
    assert scheduler.base_id("7_3") == "7" and scheduler.base_id("8") == "8"


def test_parse_squeue():
    states = scheduler.parse_squeue("200_0|harness-t-abc123|RUNNING|None\n200_1|harness-t-abc123|PENDING|JobArrayTaskLimit\n")
    assert {j: s.state for j, s in states.items()} == {"200_0": "RUNNING", "200_1": "PENDING"}


def test_query_is_one_sacct_call_filters_foreign_names_and_asks_squeue_only_for_the_rest(monkeypatch):
    calls = []

    def fake(command, timeout=60):
        calls.append(command[0])
        if command[0] == "sacct":
            calls.append(command[command.index("-j") + 1])
            return SACCT
        return "105|harness-t-abc123|PENDING|Priority\n"

    monkeypatch.setattr(scheduler, "run_command", fake)
    states = scheduler.query(["100_0", "100_1", "101", "104"], names={"harness-t-abc123"})
    # one sacct call with the array ids (not one per task); squeue once for the job sacct did not vouch for
    assert set(states) == {"100_0", "100_1", "101"} and calls == ["sacct", "100,101,104", "squeue"]  # 104: not ours
    calls.clear()
    assert set(scheduler.query(["100_0", "101"])) == {"100_0", "101"} and calls == ["sacct", "100,101"]


def test_pending_array_tasks_are_checked_in_squeue_and_cancelled_ones_found(monkeypatch):
    # sacct keeps showing '400_[0-2%1]' PENDING after 400_2 was cancelled while pending; later, once
    # the array ran, it has no row at all for 400_2.
    answers = {
        "sacct": "400_[0-2%1]|harness-t-abc123|PENDING|0:0\n",
        "squeue": "400_0|harness-t-abc123|PENDING|Resources\n400_1|harness-t-abc123|PENDING|JobArrayTaskLimit\n",
    }
    monkeypatch.setattr(scheduler, "run_command", lambda command, timeout=60: answers[command[0]])
    states = scheduler.query(["400_0", "400_1", "400_2"], names={"harness-t-abc123"})
    assert {j: s.state for j, s in states.items()} == {"400_0": "PENDING", "400_1": "PENDING", "400_2": "CANCELLED"}
    assert states["400_2"].raw == "CANCELLED while pending"
    answers["sacct"] = "400_0|harness-t-abc123|COMPLETED|0:0\n400_1|harness-t-abc123|RUNNING|0:0\n"
    answers["squeue"] = "400_1|harness-t-abc123|RUNNING|None\n"
    states = scheduler.query(["400_0", "400_1", "400_2", "401_0"], names={"harness-t-abc123"})
    assert {j: s.state for j, s in states.items()} == {"400_0": "COMPLETED", "400_1": "RUNNING", "400_2": "CANCELLED"}


def test_query_without_accounting_uses_squeue_and_calls_jobs_that_left_it_gone(monkeypatch):
    def fake(command, timeout=60):
        if command[0] == "sacct":
            raise scheduler.SchedulerError("sacct exited 1: Slurm accounting storage is disabled")
        return "300_1|n|RUNNING|None\n"

    monkeypatch.setattr(scheduler, "run_command", fake)
    states = scheduler.query(["300_0", "300_1"])
    assert (states["300_0"].state, states["300_1"].state) == ("GONE", "RUNNING")
    assert states["300_0"].final and not states["300_1"].final

    def down(command, timeout=60):
        raise scheduler.SchedulerError(f"{command[0]} exited 1: cannot connect")

    monkeypatch.setattr(scheduler, "run_command", down)
    with pytest.raises(scheduler.SchedulerError):
        scheduler.query(["300_0"])


# ---------------------------------------------------------------- records + scheduler -> status

JOB = {"job_id": "100_1", "cluster": "slurm", "job_name": "harness-t-abc123", "stderr": "/x/100_1_0_log.err"}


def state(job_state, raw=None, requeues=0, exit_code="0:0"):
    return {"100_1": JobState("100_1", job_state, raw or job_state, exit_code, "harness-t-abc123", requeues)}


@pytest.mark.parametrize("store_status, states, expected, queued", [
    ("pending", state("PENDING"), "pending", True),
    ("pending", state("PENDING", requeues=1), "requeued", False),
    ("running", state("REQUEUED"), "requeued", False),
    ("pending", state("RUNNING"), "running", False),
    ("running", state("RUNNING", requeues=2), "running", False),
    ("running", state("CANCELLED", "CANCELLED by 0"), "cancelled", False),
    ("running", state("TIMEOUT"), "lost", False),
    ("running", state("NODE_FAIL", exit_code="1:0"), "lost", False),
    ("running", state("OUT_OF_MEMORY", exit_code="0:125"), "lost", False),
    ("running", state("COMPLETED"), "lost", False),
    ("pending", {}, "lost", False),  # the scheduler does not know the job (cluster reset)
    ("running", None, "running", False),  # no scheduler reachable: what the store says
    ("pending", None, "pending", False),
])
def test_merge_of_store_and_scheduler(store_status, states, expected, queued):
    view = status.merge_state(RunState(store_status, running={"host": "n1"} if store_status == "running" else None),
                              JOB, states)
    assert (view.status, view.queued) == (expected, queued)
    assert view.active == (expected in ("running", "requeued") or queued)
    if expected in ("cancelled", "lost"):
        assert view.log == JOB["stderr"] and "100_1" in view.why


def test_a_valid_record_always_wins():
    record = {"status": "failed", "log": "/r/run.log"}
    for states in (state("RUNNING"), state("CANCELLED"), {}, None):
        view = status.merge_state(RunState("failed", record=record), JOB, states)
        assert (view.status, view.log) == ("failed", "/r/run.log")


def test_local_launches_keep_the_store_view():
    view = status.merge_state(RunState("running", running={"pid": 1}), {**JOB, "cluster": "local"}, state("CANCELLED"))
    assert view.status == "running"


def write_launch_record(store, launch_id, cluster, runs, created):
    return store.write_launch({"launch_id": launch_id, "cluster": cluster, "created": created,
                                "job_name": launch.job_name(store.suite, launch_id), "runs": runs})


def test_status_combines_records_launches_and_one_scheduler_query(tmp_path, results, monkeypatch, capsys):
    suite_path = write_suite(tmp_path, TINY_SUITE.replace("seed: [0]", "seed: [0, 1, 2]"))
    specs = list(expand(load_suite(suite_path)))
    assert len(specs) == 6
    store = Store(results, "tiny")
    store.write_record(fake_record(specs[0]))
    store.write_record(fake_record(specs[1], "failed"))
    old = {s.run_id: {"job_id": f"50_{i}", "stderr": f"/old/50_{i}.err"} for i, s in enumerate(specs)}
    write_launch_record(store, "20240101-000000-aaaaaa", "slurm", old, "2024-01-01T00:00:00")
    logs = tmp_path / "submitit"
    logs.mkdir()
    new = {s.run_id: {"job_id": f"60_{i}", "stderr": str(logs / f"60_{i}.err")} for i, s in enumerate(specs[2:], start=2)}
    for job in new.values():
        Path(job["stderr"]).write_text("slurmstepd: error: *** JOB CANCELLED ***\n")
    Path(new[specs[4].run_id]["stderr"]).unlink()  # a task cancelled while pending never wrote a log
    write_launch_record(store, "20240102-000000-bbbbbb", "slurm", new, "2024-01-02T00:00:00")
    (store.dir / "launches" / "broken.json").write_text("{")
    name = launch.job_name("tiny", "20240102-000000-bbbbbb")
    answer = {"60_2": JobState("60_2", "RUNNING", "RUNNING", "0:0", name),
              "60_3": JobState("60_3", "PENDING", "PENDING", "0:0", name, requeues=1),
              "60_4": JobState("60_4", "CANCELLED", "CANCELLED by 0", "0:0", name),
              "60_5": JobState("60_5", "OUT_OF_MEMORY", "OUT_OF_MEMORY", "0:125", name)}
    queries = []

    def fake_query(job_ids, names=None):
        queries.append((sorted(job_ids), names))
        return answer

    monkeypatch.setattr(scheduler, "query", fake_query)
    assert main(["status", str(suite_path)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    # one query, only for the jobs of runs without a record, from their latest launch
    assert queries == [(["60_2", "60_3", "60_4", "60_5"], {name})]
    assert "6 runs: 1 done, 1 failed, 1 running, 1 requeued, 0 pending, 1 cancelled, 1 lost" in out
    assert "ValueError: boom" in out and "run.log" in out
    assert "job 60_4 CANCELLED by 0" in out and "60_4.err" not in out  # no log file: no log line
    assert "job 60_5 OUT_OF_MEMORY, exit 0:125 without writing a record" in out and str(logs / "60_5.err") in out
    assert "job 60_3 PENDING, requeued 1x" in out
    assert "broken.json: unreadable launch record" in captured.err

    # `run` dispatches the cancelled and the lost run, never the running or requeued one
    dispatched = []

    def fake_launch(specs, store, cluster, resources, *args, **kwargs):
        dispatched.extend(spec.run_id for spec in specs)
        return launch.LaunchResult(folder=tmp_path / "x", launch_id="20240103-000000-cccccc")

    monkeypatch.setattr(launch, "launch", fake_launch)
    assert main(["run", str(suite_path), "--cluster", "slurm", "--quiet"]) == 0
    assert dispatched == [specs[4].run_id, specs[5].run_id]
    assert "2 to run, 4 skipped" in capsys.readouterr().out
    dispatched.clear()
    assert main(["run", str(suite_path), "--cluster", "slurm", "--quiet", "--force"]) == 0
    assert dispatched == [specs[0].run_id, specs[1].run_id, specs[4].run_id, specs[5].run_id]
    assert "(2 runs still queued or running are not dispatched again)" in capsys.readouterr().out


def test_status_without_a_reachable_scheduler_falls_back_to_the_records(tmp_path, results, monkeypatch, capsys):
    suite_path = write_suite(tmp_path)
    specs = list(expand(load_suite(suite_path)))
    store = Store(results, "tiny")
    write_launch_record(store, "20240101-000000-aaaaaa", "slurm", {specs[0].run_id: {"job_id": "9"}}, "2024")

    def down(job_ids, names=None):
        raise scheduler.SchedulerError("sinfo is not installed")

    monkeypatch.setattr(scheduler, "query", down)
    assert main(["status", str(suite_path)]) == 0
    captured = capsys.readouterr()
    assert "2 runs: 0 done, 0 failed, 0 running, 2 pending" in captured.out
    assert "Slurm not reachable" in captured.err


def test_no_scheduler_query_when_every_run_has_a_record(tmp_path, results, monkeypatch, capsys):
    suite_path = write_suite(tmp_path)
    specs = list(expand(load_suite(suite_path)))
    store = Store(results, "tiny")
    for spec in specs:
        store.write_record(fake_record(spec))
    write_launch_record(store, "20240101-000000-aaaaaa", "slurm", {specs[0].run_id: {"job_id": "9"}}, "2024")
    monkeypatch.setattr(scheduler, "query", lambda *a, **k: pytest.fail("queried the scheduler"))
    assert main(["status", str(suite_path)]) == 0
    assert "2 done" in capsys.readouterr().out


@pytest.mark.parametrize("flags, fragment", [
    (["--gpus", "-1"], "--gpus -1: must be >= 0"),
    (["--cpus", "0"], "--cpus 0: must be >= 1"),
    (["--sbatch", "array=0-3"], "array is set by the harness"),
    (["--sbatch", "=x"], "expected KEY=VALUE"),
    (["--max-requeues", "-1"], "--max-requeues -1: must be >= 0"),
    (["--signal-delay-s", "0"], "--signal-delay-s 0: must be >= 1"),
    (["--signal-delay-s", "45", "--timeout-min", "1"], "use less than 20"),
])
def test_bad_resource_flags_are_one_line_errors_and_launch_nothing(tiny_suite, results, monkeypatch, capsys, flags, fragment):
    monkeypatch.setattr(launch, "launch", lambda *a, **k: pytest.fail("launched"))
    assert main(["run", str(tiny_suite), "--cluster", "slurm", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert not (results / "tiny").exists()


def test_command_line_resources_reach_every_run(tmp_path, results, monkeypatch, capsys):
    suite = write_suite(tmp_path, MIXED)
    seen = {}

    def fake_launch(specs, store, cluster, resources, max_parallel=None, **kwargs):
        seen.update({(s.config["method"], s.config["seed"]): resources(s) for s in specs})
        seen["kwargs"] = kwargs
        return launch.LaunchResult(folder=tmp_path / "x", launch_id="20240103-000000-cccccc")

    monkeypatch.setattr(launch, "launch", fake_launch)
    assert main(["run", str(suite), "--cluster", "slurm", "--partition", "p", "--mem-gb", "3", "--sbatch", "constraint=x",
                 "--sbatch", "exclusive", "--max-requeues", "1", "--signal-delay-s", "45"]) == 0
    assert seen[("mtl", 1)] == Resources(cpus=1, mem_gb=3.0, timeout_min=20, partition="p",
                                         sbatch_args={"constraint": "x", "exclusive": True})
    assert seen[("protonet", 0)].sbatch_args == {"constraint": "x", "exclusive": True}
    assert seen["kwargs"]["max_requeues"] == 1 and seen["kwargs"]["signal_delay_s"] == 45


# ---------------------------------------------------------------- the local executor's GPU slots

def test_gpu_slots_pin_one_run_per_gpu():
    slots = launch.GpuSlots(["5", "2"])
    one_gpu = Resources(gpus=1)
    assert launch.can_start(one_gpu, [], None, 64, slots)
    first = slots.take(1)
    second = slots.take(1)
    assert (first, second) == (("5",), ("2",))
    assert not launch.can_start(one_gpu, [one_gpu, one_gpu], None, 64, slots)  # both GPUs taken
    assert launch.can_start(Resources(gpus=0), [one_gpu, one_gpu], None, 64, slots)  # a CPU run may still go
    slots.give_back(first)
    assert slots.take(1) == ("5",)
    # a run asking more GPUs than exist gets them all instead of waiting forever
    big = launch.GpuSlots(["0", "1"])
    assert big.need(4) == 2 and launch.can_start(Resources(gpus=4), [], None, 64, big) and big.take(big.need(4)) == ("0", "1")


def test_local_admission_cap_and_cpus():
    slots = launch.GpuSlots([])
    two = Resources(cpus=2)
    assert launch.can_start(two, [two], None, 4, slots) and not launch.can_start(two, [two, two], None, 4, slots)
    assert launch.can_start(Resources(cpus=16), [], None, 4, slots)  # alone, a big run still runs
    assert not launch.can_start(two, [two], 1, 64, slots)  # --max-parallel is the cap when given
    assert launch.can_start(two, [two, two, two], 4, 4, slots)  # ... and then CPUs are not counted


def test_visible_devices_parsing():
    assert launch.parse_visible_devices(None) is None
    assert launch.parse_visible_devices("") == []
    assert launch.parse_visible_devices("3, 1") == ["3", "1"]
    assert launch.parse_visible_devices("GPU-5d6c1a2b,MIG-aa/1/2") == ["GPU-5d6c1a2b", "MIG-aa/1/2"]


class FakeJob:
    def __init__(self, job_id, log):
        self.job_id, self.log, self.polls = job_id, log, 0
        self.paths = None

    def done(self):
        self.polls += 1
        return self.polls > 2

    def result(self):
        return {}


class FakeLocalExecutor:
    """Records each submission's GPUs and which others were running at that moment."""

    instances: ClassVar[list] = []

    def __init__(self, folder, max_num_timeout=3):
        self.parameters, self.jobs = {}, []
        FakeLocalExecutor.instances.append(self)

    def update_parameters(self, **parameters):
        self.parameters.update(parameters)

    def submit(self, job):
        running = [j for j in self.jobs if j.polls <= 2]
        assert self.parameters["visible_gpus"] == () and self.parameters["gpus_per_node"] == 0  # the Job pins
        fake = FakeJob(str(len(self.jobs)), (job.devices, [r.devices for r in running]))
        fake.devices = job.devices
        self.jobs.append(fake)
        return fake


@pytest.mark.parametrize("visible", ["4,7", "GPU-4a1b,MIG-7c2d/1/0"])
def test_local_executor_pins_each_gpu_run_to_its_own_gpus(tmp_path, results, monkeypatch, visible):
    import submitit

    suite = load_suite(write_suite(tmp_path, TINY_SUITE.replace("seed: [0]", "seed: [0, 1, 2]")))
    specs = list(expand(suite))
    monkeypatch.setattr(submitit, "LocalExecutor", FakeLocalExecutor)
    monkeypatch.setattr(launch, "POLL_SECONDS", 0.001)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    FakeLocalExecutor.instances.clear()
    result = launch.launch(specs, Store(results, "tiny"), "local",
                           lambda spec: Resources(gpus=1 if spec.config["method"] == "mtl" else 0),
                           progress=False, executor="submitit")
    (executor,) = FakeLocalExecutor.instances
    assert len(result.submitted) == 6
    for job, spec in zip(executor.jobs, specs):
        devices, others = job.log
        if spec.config["method"] == "mtl":
            assert devices in visible.split(",")  # exactly one GPU, as the parent names it
            assert devices not in others  # never shares a GPU with a running run
        else:
            assert devices == ""  # CPU runs see no GPU
    record = json.loads(result.record_path.read_text())
    assert record["cluster"] == "local" and set(record["runs"]) == {s.run_id for s in specs}


def test_a_pinned_job_sets_cuda_visible_devices_before_it_starts(tmp_path, monkeypatch):
    from harness.job import Job

    suite = load_suite(write_suite(tmp_path, TINY_SUITE))
    spec = next(expand(suite))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    seen = {}
    monkeypatch.setattr(Job, "_run", lambda self, log, checkpoint: seen.setdefault("env", os.environ["CUDA_VISIBLE_DEVICES"])
                        and {"status": "failed", "metrics": {}, "timing": {}, "error": None})
    Job(spec, str(tmp_path / "results"), devices="MIG-7c2d/1/0")()
    assert seen["env"] == "MIG-7c2d/1/0"


# ---------------------------------------------------------------- `run`'s command line


def test_slurm_where_no_slurm_answers_is_one_line_and_launches_nothing(tmp_path):
    from test_cli_errors import assert_nothing_written, assert_one_line_error

    suite = write_suite(tmp_path)
    bare = tmp_path / "bin"  # a PATH without Slurm's commands: this machine as a laptop has it
    bare.mkdir()
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "--cluster", "slurm"], check=False,
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PATH": str(bare), "HARNESS_RESULTS": str(tmp_path / "results")})
    assert_one_line_error(result, "--cluster slurm: no Slurm to submit to from here (sbatch is not installed)",
                          "or use --cluster local")
    assert_nothing_written(tmp_path)


@pytest.mark.skipif(not all(shutil.which(c) for c in ("sbatch", "srun", "sinfo")), reason="Slurm's commands are not installed")
def test_slurm_whose_controller_does_not_answer_is_one_line_and_launches_nothing(tmp_path):
    from test_cli_errors import assert_nothing_written, assert_one_line_error

    suite = write_suite(tmp_path)
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "--cluster", "slurm"], check=False,
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "SLURM_CONF": str(tmp_path / "no-slurm.conf"),
                                 "HARNESS_RESULTS": str(tmp_path / "results")})
    assert_one_line_error(result, "--cluster slurm: no Slurm to submit to from here (sinfo")
    assert_nothing_written(tmp_path)


def test_every_run_flag_says_what_it_does():
    from harness.cli import build_parser

    commands = next(action for action in build_parser()._actions if action.dest == "command")
    run = commands.choices["run"]
    silent = [action.option_strings[0] for action in run._actions if action.option_strings and not action.help]
    assert silent == []


@pytest.mark.parametrize("flags, fragment", [
    (["--cluster", "slurm", "--executor", "pool"], "--executor pool: only for --cluster local"),
    (["--cluster", "debug", "--executor", "submitit"], "--executor submitit: only for --cluster local"),
])
def test_executor_is_for_local_runs_only(tmp_path, flags, fragment):
    from test_cli_errors import (
        assert_nothing_written,
        assert_one_line_error,
        harness_cli,
    )

    assert_one_line_error(harness_cli(tmp_path, "run", str(write_suite(tmp_path)), *flags), fragment)
    assert_nothing_written(tmp_path)
