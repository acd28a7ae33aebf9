"""Local runs forked from the fork server (harness/pool.py, harness/forkserver.py), with
a probe family (a suite's local plugin) whose trainer reports what its process looks
like, or crashes the way it is told to: no state passes from one run to the next, a
crash ends only its own run, thread counts and GPUs are each run's own, time limits
requeue and then fail as submitit's local executor does, and a launcher that dies
takes no run down with it unsaved. Real processes and signals throughout."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import wait_until

from harness import launch, pool
from harness.job import Job
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite

pytestmark = pytest.mark.slow

FAMILY = '''
"""A family whose trainer reports its process, or fails the way config["action"] says. No torch here."""
from harness.api import REQUIRED, Family, Key, Metric, Registry, register

DATASETS = Registry("probe.dataset")
METHODS = Registry("probe.method")


@register("probe.dataset", "none", version="1")
class NoData:
    """No data."""


@register("probe.method", "probe", version="1")
class Probe:
    """See probe_train.py."""


FAMILY = Family(
    name="probe", version="1", help="reports what its process looks like",
    keys={"dataset": Key(str, REQUIRED, "dataset", choices=DATASETS),
          "method": Key(str, REQUIRED, "method", choices=METHODS),
          "seed": Key(int, REQUIRED, "seed", minimum=0),
          "action": Key(str, "report", "report, pollute, raise, sigkill, segfault, exit, stubborn"),
          "steps": Key(int, 1, "steps of step_s seconds", minimum=1),
          "step_s": Key(float, 0.0, "seconds a step sleeps", minimum=0.0)},
    trainer="probe_train:Trainer",
    metrics=(Metric("steps_done", "higher", ""),),
)
'''

TRAINER = '''
import ctypes
import json
import os
import random
import signal
import string
import time
from pathlib import Path

import numpy
import torch
from harness.api import StopRequested


def blas_threads():
    from threadpoolctl import threadpool_info

    return sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})


class Trainer:
    def __init__(self, config, checkpoint=None, log=print):
        self.config, self.log, self.stop_requested = config, log, False
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.step = 0
        if self.checkpoint and self.checkpoint.exists():
            self.step = json.loads(self.checkpoint.read_text())["step"]
            log(f"resumed from checkpoint at step {self.step}")

    def run(self):
        seen = {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "omp": os.environ.get("OMP_NUM_THREADS"),
                "torch_threads": torch.get_num_threads(), "blas_threads": blas_threads(),
                "torch_draw": torch.rand(1).item(), "numpy_draw": float(numpy.random.rand()),
                "letters": string.ascii_letters[:3], "polluted": os.environ.get("PROBE_POLLUTED"),
                "started": time.time(), "pid": os.getpid()}
        action = self.config["action"]
        if action == "pollute":  # everything a run could leave behind in a process that goes on
            torch.set_num_threads(3)
            torch.manual_seed(99)
            numpy.random.seed(99)
            random.seed(99)
            os.environ["PROBE_POLLUTED"] = "1"
            string.ascii_letters = "patched"
        elif action == "raise":
            raise ValueError("the probe fails on purpose")
        elif action == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif action == "segfault":
            ctypes.string_at(0)
        elif action == "exit":
            os._exit(3)
        while self.step < self.config["steps"]:
            time.sleep(self.config["step_s"])
            self.step += 1
            if self.stop_requested and action != "stubborn":
                self.checkpoint.write_text(json.dumps({"step": self.step}))
                raise StopRequested(f"stopped at step {self.step}")
        seen["ended"] = time.time()
        return {"metrics": {"steps_done": float(self.step)}, "timing": {"train_seconds": 0.0, "eval_seconds": 0.0},
                "details": {"device": "cpu", "seen": seen}}
'''

SUITE = """
name: probe
family: probe
plugins: [probe.py]
paper: test
grid:
  dataset: [none]
  method: [probe]
  seed: [0]
resources: {cpus: 1, mem_gb: 1, timeout_min: 10}
"""


def probe_suite(folder: Path, grid: str = "", extra: str = "", name: str = "suite.yaml") -> Path:
    (folder / "probe.py").write_text(textwrap.dedent(FAMILY))
    (folder / "probe_train.py").write_text(textwrap.dedent(TRAINER))
    text = SUITE.replace("  seed: [0]\n", "  seed: [0]\n" + grid) if grid else SUITE
    path = folder / name
    path.write_text(text + extra)
    return path


def cli(folder: Path, results: Path, *args: str, timeout: float = 300, env: dict | None = None):
    environment = {**os.environ, "HARNESS_RESULTS": str(results), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], check=False, cwd=folder, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def records(results: Path, suite: str = "probe") -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(results.glob(f"{suite}/*/record.json"))]


def comparable(seen: dict) -> dict:
    """What a run's process looked like, without what differs between any two processes."""
    return {key: value for key, value in seen.items() if key not in ("started", "ended", "pid", "torch_draw", "numpy_draw")}


def test_no_state_passes_between_runs_and_a_forked_run_is_like_a_fresh_process(tmp_path):
    suite = probe_suite(tmp_path, grid="  action: [pollute, report]\n")
    after = cli(tmp_path, tmp_path / "after", "run", str(suite), "--quiet", "--max-parallel", "1")
    assert after.returncode == 0, after.stderr
    by_action = {r["spec"]["action"]: r for r in records(tmp_path / "after")}
    assert by_action["pollute"]["details"]["seen"]["ended"] <= by_action["report"]["details"]["seen"]["started"]
    alone = cli(tmp_path, tmp_path / "alone", "run", str(suite), "--quiet", "--filter", "action=report")
    fresh = cli(tmp_path, tmp_path / "fresh", "run", str(suite), "--quiet", "--filter", "action=report",
                "--executor", "submitit")
    assert alone.returncode == 0 and fresh.returncode == 0, alone.stderr + fresh.stderr
    (alone_record,), (fresh_record,) = records(tmp_path / "alone"), records(tmp_path / "fresh")
    seen = by_action["report"]["details"]["seen"]
    assert comparable(seen) == comparable(alone_record["details"]["seen"]) == comparable(fresh_record["details"]["seen"])
    assert seen["torch_threads"] == 1 and seen["letters"] == "abc" and seen["polluted"] is None
    # torch's and numpy's global generators are seeded afresh in each run, as in a new process: not
    # the state the polluting run left, and not the server's (each run draws differently)
    import numpy
    import torch

    assert seen["torch_draw"] != torch.rand(1, generator=torch.Generator().manual_seed(99)).item()
    assert seen["numpy_draw"] != numpy.random.RandomState(99).rand()
    polluter = by_action["pollute"]["details"]["seen"]
    assert seen["torch_draw"] != polluter["torch_draw"] and seen["numpy_draw"] != polluter["numpy_draw"]
    launches = [json.loads(p.read_text()) for p in (tmp_path / "after" / "probe" / "launches").glob("*.json")]
    assert [(lr["cluster"], lr["executor"]) for lr in launches] == [("local", "pool")]
    for run in launches[0]["runs"].values():
        assert Path(run["stdout"]).read_text().startswith("run ")  # each run's own log files


def test_a_crash_ends_only_its_own_run(tmp_path):
    suite = probe_suite(tmp_path, grid="  action: [raise, sigkill, segfault, exit, report]\n")
    done = cli(tmp_path, tmp_path / "results", "run", str(suite), "--quiet", "--max-parallel", "2")
    assert done.returncode == 1, done.stderr
    by_action = {r["spec"]["action"]: r for r in records(tmp_path / "results")}
    assert set(by_action) == {"raise", "report"}
    assert by_action["raise"]["status"] == "failed" and by_action["raise"]["error"]["type"] == "ValueError"
    assert by_action["report"]["status"] == "done"
    warnings = [line for line in done.stderr.splitlines() if "ended without a record" in line]
    assert len(warnings) == 3, done.stderr
    assert any("killed by SIGKILL (out of memory, or killed by hand)" in line for line in warnings)
    assert any("killed by SIGSEGV (segmentation fault)" in line for line in warnings)
    assert any("exited with code 3" in line for line in warnings)
    assert "4 of the 5 runs of this launch did not finish" in done.stderr  # the failed record too
    plan = cli(tmp_path, tmp_path / "results", "plan", str(suite))
    assert plan.stdout.splitlines()[-1] == "5 runs: 1 done, 1 failed, 0 running, 3 pending"


def test_each_run_gets_its_own_threads_and_gpus(tmp_path):
    # Two GPUs named as CUDA_VISIBLE_DEVICES names them (no GPU is touched: the probe only reads its
    # environment); three one-GPU runs, so one waits for a free GPU; a CPU run with 2 CPUs beside them.
    suite = probe_suite(tmp_path, grid="  step_s: [0.3]\n  steps: [3]\n", extra="""
overrides:
  - when: {seed: 0}
    resources: {cpus: 2}
  - when: {seed: [1, 2, 3]}
    resources: {gpus: 1}
""").resolve()
    suite.write_text(suite.read_text().replace("seed: [0]", "seed: [0, 1, 2, 3]"))
    done = cli(tmp_path, tmp_path / "results", "run", str(suite), "--quiet", "--max-parallel", "4",
               env={"CUDA_VISIBLE_DEVICES": "GPU-aaaa,GPU-bbbb"})
    assert done.returncode == 0, done.stderr
    seen = {r["spec"]["seed"]: r["details"]["seen"] for r in records(tmp_path / "results")}
    assert (seen[0]["cuda_visible_devices"], seen[0]["omp"], seen[0]["torch_threads"], seen[0]["blas_threads"]) == ("", "2", 2, [2])
    gpu_runs = [seen[seed] for seed in (1, 2, 3)]
    assert all((s["omp"], s["torch_threads"], s["blas_threads"]) == ("1", 1, [1]) for s in gpu_runs)
    assert {s["cuda_visible_devices"] for s in gpu_runs} == {"GPU-aaaa", "GPU-bbbb"}
    for a in gpu_runs:
        for b in gpu_runs:
            if a is not b and a["started"] < b["ended"] and b["started"] < a["ended"]:  # at once
                assert a["cuda_visible_devices"] != b["cuda_visible_devices"]


def test_kill_of_the_launcher_stops_every_run_at_a_checkpoint_with_one_line(tmp_path):
    suite = probe_suite(tmp_path, grid="  step_s: [0.1]\n  steps: [100000]\n")
    suite.write_text(suite.read_text().replace("seed: [0]", "seed: [0, 1]"))
    results = tmp_path / "results"
    launcher = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--quiet"], cwd=tmp_path,
                                env={**os.environ, "HARNESS_RESULTS": str(results)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_until(lambda: len(list(results.glob("probe/*/running.json"))) == 2, 120, "both runs to start")
        time.sleep(1)
        launcher.terminate()  # `kill PID`: the launcher alone
        _, err = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    assert launcher.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3, err
    assert len(list(results.glob("probe/*/checkpoint.pt"))) == 2 and not list(results.glob("probe/*/running.json"))


def test_a_killed_launcher_leaves_no_run_going_and_every_checkpoint_saved(tmp_path):
    suite = probe_suite(tmp_path, grid="  step_s: [0.1]\n  steps: [100000]\n")
    results = tmp_path / "results"
    env = {**os.environ, "HARNESS_RESULTS": str(results)}
    launcher = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--quiet"], cwd=tmp_path,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        (running,) = wait_until(lambda: list(results.glob("probe/*/running.json")), 120, "the run to start")
        time.sleep(1)  # training
        launcher.kill()  # the launcher alone: its server and the run live on, without it
        launcher.wait(timeout=30)
        run_dir = running.parent
        wait_until(lambda: (run_dir / "checkpoint.pt").exists(), 60, "the run to save its checkpoint")
        store = Store(results, "probe")
        wait_until(lambda: store.running_info(run_dir.name) is None, 60, "the run to end")
    finally:
        try:
            os.killpg(launcher.pid, signal.SIGKILL)  # whatever is left of the group (nothing, if all went well)
        except ProcessLookupError:
            pass
    log = (run_dir / "run.log").read_text()
    assert "received SIGTERM: stopping at the next step boundary" in log
    plan = cli(tmp_path, results, "plan", str(suite))
    assert plan.stdout.splitlines()[-1] == "1 runs: 0 done, 0 failed, 0 running, 1 pending"


# ---------------------------------------------------------------- the pool itself: time limits


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One fork server for the tests below (max_requeues is set per test)."""
    folder = tmp_path_factory.mktemp("pool")
    started = pool.Pool(folder / "launch", max_requeues=3)
    assert started.threads == 1  # forking it is safe
    yield started
    started.close()


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    """One folder for the probe plugin of the tests below: this process loads it once."""
    return tmp_path_factory.mktemp("probe")


def probe_spec(folder: Path, name: str, **config) -> object:
    grid = "".join(f"  {key}: [{value}]\n" for key, value in config.items())
    return next(expand(load_suite(probe_suite(folder, grid=grid, name=f"{name}.yaml"))))


def follow(server, until, timeout: float = 120, what: str = "the run to end"):
    """Follow the server's runs until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        server.wait(0.05)


def test_a_time_limit_requeues_from_the_checkpoint_then_fails(server, plugin, tmp_path, monkeypatch):
    monkeypatch.setattr(pool, "SIGNAL_DELAY_S", 1.5)  # limit 3 s: USR2 1.5 s into each start
    monkeypatch.setattr(server, "max_requeues", 1)
    spec = probe_spec(plugin, "limit", step_s=0.05, steps=100000)
    results = tmp_path / "results"
    run = server.start(spec.run_id, Job(spec, str(results), threads=1, devices=""), cpus=1, timeout_min=0.05)
    follow(server, run.done)
    assert run.crash() is None and run.starts == 2  # the first start and one requeue
    record, _ = Store(results, "probe").read_record(spec.run_id, spec.config, "probe")
    assert record["status"] == "failed" and record["error"]["type"] == "UncompletedJobError"
    assert record["error"]["message"] == "Job not requeued because: timed-out too many times."
    log = Store(results, "probe").log_path(spec.run_id).read_text()
    assert log.count(f"run {spec.run_id}:") == 2 and "resumed from checkpoint at step" in log


def test_a_preemption_requeues_without_counting_a_time_out(server, plugin, tmp_path, monkeypatch):
    monkeypatch.setattr(server, "max_requeues", 0)
    spec = probe_spec(plugin, "preempted", step_s=0.05, steps=60)
    results = tmp_path / "results"
    run = server.start(spec.run_id, Job(spec, str(results), threads=1, devices=""), cpus=1, timeout_min=60)
    log = Store(results, "probe").log_path(spec.run_id)
    follow(server, lambda: run.pid and log.exists() and "run " in log.read_text(), what="the run to start")
    time.sleep(0.5)  # training
    os.kill(run.pid, signal.SIGUSR2)  # long before its limit: a preemption, as Slurm's
    follow(server, run.done)
    record, _ = Store(results, "probe").read_record(spec.run_id, spec.config, "probe")
    assert run.starts == 2 and record["status"] == "done" and record["metrics"]["steps_done"] == 60
    assert "resumed from checkpoint at step" in log.read_text()


def test_a_run_that_does_not_stop_is_killed_at_its_limit(server, plugin, tmp_path, monkeypatch):
    monkeypatch.setattr(pool, "SIGNAL_DELAY_S", 1.0)
    spec = probe_spec(plugin, "stubborn", action="stubborn", step_s=0.05, steps=100000)
    run = server.start(spec.run_id, Job(spec, str(tmp_path / "results"), threads=1, devices=""), cpus=1,
                       timeout_min=0.04)
    follow(server, run.done)
    assert run.crash().startswith("killed at its time limit (0.04 min)")


def test_a_run_another_worker_holds_is_reported_as_running_elsewhere(server, plugin, tmp_path):
    spec = probe_spec(plugin, "held")
    store = Store(tmp_path / "results", "probe")
    lock = store.hold_running(spec.run_id, {"pid": 4242, "host": "elsewhere", "started": "then"})
    try:
        run = server.start(spec.run_id, Job(spec, str(store.root), threads=1, devices=""), cpus=1, timeout_min=10)
        follow(server, run.done)
        assert "already running in another worker" in run.crash()
        result = launch.LaunchResult(folder=tmp_path)
        launch._collect(run, result, store)
    finally:
        store.release_running(spec.run_id, lock)
    assert result.elsewhere == {spec.run_id: "host elsewhere, pid 4242, since then"} and not result.crashed
