"""`harness run --cluster slurm` and `harness status` against a real Slurm (scripts/local_slurm.sh up).

Real jobs, real data, real submitit: a tiny suite as job arrays (grouped by resources,
split at MaxArraySize), a failing run, a cancelled job, a preempted run
(submitit's `job._interrupt()`), and a run that reaches a real one-minute time
limit. Skipped without a Slurm, failed instead when HARNESS_EXPECT_SLURM=1 (the
`slurm` fixture of conftest.py). The node has 2 CPUs: every run asks for 1 CPU and 2 GB.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import submitit
from conftest import TINY_SUITE, wait_until, write_suite

from harness import scheduler, status
from harness.cli import main
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite

pytestmark = pytest.mark.slurm

SLURM_TINY = TINY_SUITE.replace("  cpus: 1\n", "  cpus: 1\n  mem_gb: 2\n")


@pytest.fixture
def slurm_results(results, monkeypatch):
    """Results in tmp_path; a fast poll for --wait; every job the test launched is cancelled at the end."""
    monkeypatch.setenv("HARNESS_POLL_SECONDS", "1")
    yield results
    ids = set()
    for path in results.glob("*/launches/*.json"):
        ids |= {scheduler.base_id(job["job_id"]) for job in json.loads(path.read_text())["runs"].values()}
    if ids:
        subprocess.run(["scancel", *sorted(ids)], capture_output=True, timeout=30)


def launches(results: Path, suite: str = "tiny") -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / suite / "launches").glob("*.json"))]


def records(results: Path, suite: str = "tiny") -> dict:
    return {p.parent.name: json.loads(p.read_text()) for p in (results / suite).glob("*/record.json")}


def wait_for_records(store: Store, specs, timeout: float, seen: set | None = None) -> None:
    """Until every run has its record; fails at once when a job ends without one (with its log)."""
    def finished():
        for run_id, view in status.run_views(store, specs).views.items():
            if seen is not None:
                seen.add(view.status)
            if view.status in ("lost", "cancelled"):
                log = Path(view.log).read_text()[-3000:] if view.log and Path(view.log).exists() else ""
                raise AssertionError(f"run {run_id}: {view.why}\n{log}")
        return all(store.record_path(spec.run_id).exists() for spec in specs)

    wait_until(finished, timeout, "the records", interval=0.5)


def job_state(job_id: str, name: str) -> scheduler.JobState | None:
    return scheduler.query([job_id], {name}).get(job_id)


def harness_cli(*args: str, results: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_RESULTS": str(results), "HARNESS_POLL_SECONDS": "1"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_a_suite_runs_as_arrays_a_failure_is_recorded_and_a_second_run_submits_nothing(
        tmp_path, slurm_results, monkeypatch, capsys):
    # 5 runs: protonet 5-way seeds 0 and 1, a protonet 30-way run that fails at run time (the
    # 17-class validation split cannot give 30-way episodes), mtl 5-way seeds 0 and 1 with their
    # own resources. Two resource requests; MaxArraySize 2 splits the protonet group in 2 + 1.
    suite = write_suite(tmp_path, SLURM_TINY.replace("  shots: [1]", "  shots: [1]\n  ways: [5, 30]").replace(
        "seed: [0]", "seed: [0, 1]") + """
exclude:
  - {ways: 30, seed: 1}
  - {ways: 30, method: mtl}
overrides:
  - when: {method: mtl}
    resources: {mem_gb: 1.5}
""")
    monkeypatch.setattr(scheduler, "max_array_size", lambda default=1001: 2)
    # a failed run makes `run --wait` exit 1, after the status and the report
    assert main(["run", str(suite), "--cluster", "slurm", "--quiet", "--wait", "--max-parallel", "2"]) == 1
    out, err = capsys.readouterr()
    assert "1 of the 5 runs of this launch did not finish" in err
    (record,) = launches(slurm_results)
    assert [(a["size"], a["parallelism"], a["resources"]["mem_gb"]) for a in record["arrays"]] == [(2, 2, 2), (1, 1, 2), (2, 2, 1.5)]
    assert len({a["job_id"] for a in record["arrays"]}) == 3
    assert "submitted 5 runs in 3 job arrays" in out and "job ids: " in out

    found = records(slurm_results)
    assert len(found) == 5 and set(found) == set(record["runs"])
    by_ways = {}
    for run in found.values():
        by_ways.setdefault(run["spec"]["ways"], []).append(run)
    assert [r["status"] for r in by_ways[5]] == ["done"] * 4
    (failed,) = by_ways[30]
    assert failed["status"] == "failed" and failed["error"]["type"] == "ValueError"
    assert "Traceback" in failed["error"]["traceback"] and "30-way episodes need 30 classes" in failed["error"]["message"]
    # --wait ends with the status and the report
    assert "5 runs: 4 done, 1 failed, 0 running, 0 pending" in out and "| omniglot" in out

    assert main(["status", str(suite)]) == 0
    out = capsys.readouterr().out
    assert "4 done, 1 failed" in out and "ValueError: 30-way episodes need 30 classes" in out and "run.log" in out

    # A finished suite submits nothing: no new launch, no new submitit folder.
    assert main(["run", str(suite), "--cluster", "slurm", "--quiet"]) == 0
    assert "0 to run, 5 skipped" in capsys.readouterr().out
    assert len(launches(slurm_results)) == 1 and len(list((slurm_results / "tiny" / ".submitit").iterdir())) == 1


def test_a_cancelled_job_shows_as_cancelled_and_hangs_neither_wait_nor_status(tmp_path, slurm_results):
    suite = write_suite(tmp_path, SLURM_TINY.replace("steps: 12", "steps: 1000000").replace("val_every: 6", "val_every: 1000"))
    env = {**os.environ, "HARNESS_RESULTS": str(slurm_results), "HARNESS_POLL_SECONDS": "1"}
    waiting = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--cluster", "slurm", "--wait",
                                "--quiet", "--filter", "method=protonet"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        (record,) = wait_until(lambda: launches(slurm_results), 60, "the launch record")
        (job,) = record["runs"].values()
        wait_until(lambda: (job_state(job["job_id"], record["job_name"]) or scheduler.JobState("", "")).state == "RUNNING",
                   60, f"job {job['job_id']} to run")
        run_dir = next(iter(record["runs"]))
        wait_until(lambda: (slurm_results / "tiny" / run_dir / "running.json").exists(), 60, "the run to start")
        subprocess.run(["scancel", job["job_id"]], check=True, timeout=30)
        started = time.monotonic()
        out, _ = waiting.communicate(timeout=60)
        assert waiting.returncode == 1, out  # a cancelled run is not a success
        assert time.monotonic() - started < 30, "--wait took long to notice the cancelled job"
    finally:
        waiting.kill()
    assert "0 done, 0 failed, 0 running, 0 pending, 1 cancelled" in out and "1 of the 1 runs of this launch did not finish" in out

    status = harness_cli("status", str(suite), "--filter", "method=protonet", results=slurm_results, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "1 runs: 0 done, 0 failed, 0 running, 0 pending, 1 cancelled" in status.stdout
    assert f"job {job['job_id']} CANCELLED by" in status.stdout and job["stderr"] in status.stdout
    assert records(slurm_results) == {}


def test_a_preempted_run_requeues_resumes_and_ends_like_an_uninterrupted_run(tmp_path, slurm_results, capsys):
    # mtl with augmentation, a meta-batch and a plateau scheduler: every piece of state must survive.
    suite = write_suite(tmp_path, SLURM_TINY.replace("steps: 12", "steps: 120").replace("val_every: 6", "val_every: 30")
                        .replace("method: [protonet, mtl]", "method: [mtl]").replace("method: protonet, value", "method: mtl, value")
                        .replace("queries: 3", "queries: 3\n  meta_batch: 2\n  augment: true\n  lr_patience: 1"))
    (spec,) = list(expand(load_suite(suite)))
    reference = tmp_path / "reference"
    uninterrupted = subprocess.Popen([sys.executable, "-m", "harness.cli", "--results", str(reference), "run", str(suite),
                                      "--cluster", "debug", "--quiet"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert main(["run", str(suite), "--cluster", "slurm", "--quiet"]) == 0
        (record,) = launches(slurm_results)
        job_id = record["runs"][spec.run_id]["job_id"]
        store = Store(slurm_results, "tiny")
        log = store.log_path(spec.run_id)
        wait_until(lambda: log.exists() and "step 30/" in log.read_text(), 120, "training to pass step 30")
        submitit.SlurmJob(folder=record["folder"], job_id=job_id)._interrupt()  # SIGTERM, then USR2, as on preemption

        seen: set = set()
        wait_for_records(store, [spec], 150, seen)
        assert uninterrupted.wait(timeout=150) == 0
    finally:
        uninterrupted.kill()
    assert "requeued" in seen, seen
    text = log.read_text()
    assert "stopping at the next step boundary" in text and "resumed from checkpoint at step" in text
    assert text.count("test accuracy") == 1  # one record, written once
    result = json.loads(store.record_path(spec.run_id).read_text())
    expected = json.loads(Store(reference, "tiny").record_path(spec.run_id).read_text())
    assert result["status"] == "done" and result["details"]["resumed_from_step"] >= 30
    assert result["metrics"] == expected["metrics"]
    assert wait_until(lambda: job_state(job_id, record["job_name"]), 30, "sacct").requeues >= 1
    assert not (store.run_dir(spec.run_id) / "checkpoint.pt").exists()
    capsys.readouterr()
    assert main(["status", str(suite)]) == 0
    assert "1 runs: 1 done" in capsys.readouterr().out


@pytest.mark.slow
def test_a_real_time_limit_requeues_and_resumes_and_a_run_that_keeps_timing_out_fails(tmp_path, slurm_results, capsys):
    """timeout_min=1 and the default checkpoint signal for it (5 s before the limit): Slurm looks
    at limits every 30 s and signals up to 30 s early, so the signal comes 25 to 55 s into each
    allocation (the kill would come 60 to 90 s in). `short` (6000 steps: well over 55 s of
    training even on an idle node, where 2400 steps once finished before the signal) is cut at
    least once, resumes and finishes; `endless` may be requeued once (--max-requeues 1), so its
    second time-out fails it with submitit's reason."""
    suite = write_suite(tmp_path, SLURM_TINY.replace("  steps: 12\n", "").replace("val_every: 6", "val_every: 400")
                        .replace("method: [protonet, mtl]", "method: [protonet]")
                        .replace("  seed: [0]", "  seed: [0]\n  steps: [6000, 1000000]"))
    specs = {spec.config["steps"]: spec for spec in expand(load_suite(suite))}
    common = ["--cluster", "slurm", "--quiet", "--timeout-min", "1"]
    assert main(["run", str(suite), *common, "--filter", "steps=1000000", "--max-requeues", "1"]) == 0
    assert main(["run", str(suite), *common, "--filter", "steps=6000", "--max-requeues", "10"]) == 0
    capsys.readouterr()
    # The uninterrupted reference, meanwhile, at the lowest priority: it takes the CPU the jobs leave
    # (requeue gaps, and the core `endless` frees), so it slows neither.
    reference = tmp_path / "reference"
    uninterrupted = subprocess.Popen(["nice", "-n", "19", sys.executable, "-m", "harness.cli", "--results", str(reference),
                                      "run", str(suite), "--cluster", "debug", "--quiet", "--filter", "steps=6000"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = Store(slurm_results, "tiny")
    try:
        wait_for_records(store, list(specs.values()), 600)
        assert uninterrupted.wait(timeout=600) == 0  # generous: at nice 19 a busy machine starves it
    finally:
        uninterrupted.kill()

    short, endless = (json.loads(store.record_path(specs[n].run_id).read_text()) for n in (6000, 1000000))
    expected = json.loads(Store(reference, "tiny").record_path(specs[6000].run_id).read_text())
    assert short["status"] == "done" and short["details"]["resumed_from_step"] >= 1
    assert short["metrics"] == expected["metrics"]
    short_log = store.log_path(specs[6000].run_id).read_text()
    assert "received SIGUSR2" in short_log and "resumed from checkpoint" in short_log

    assert endless["status"] == "failed"
    assert endless["error"]["type"] == "UncompletedJobError"
    assert "timed-out too many times" in endless["error"]["message"]
    started = store.log_path(specs[1000000].run_id).read_text().count(f"run {specs[1000000].run_id}:")
    assert started == 2  # the first allocation and one requeue, no more
    assert main(["status", str(suite)]) == 0
    out = capsys.readouterr().out
    assert "2 runs: 1 done, 1 failed" in out and "UncompletedJobError: Job not requeued because: timed-out too many times" in out


def test_a_multitask_suite_runs_on_slurm_and_reports_its_optimizers(tmp_path, slurm_results, capsys):
    from test_multitask_suite import TINY

    suite = write_suite(tmp_path, TINY.replace("epochs: 2", "epochs: 1").replace("[0, 1]", "[0]").replace(
        "  cpus: 1\n", "  cpus: 1\n  mem_gb: 2\n"))
    assert main(["run", str(suite), "--cluster", "slurm", "--quiet", "--wait"]) == 0
    out = capsys.readouterr().out
    found = records(slurm_results, "tiny_mt")
    assert sorted(r["spec"]["method"] for r in found.values()) == ["pcgrad", "unitary"]
    assert all(r["status"] == "done" and set(r["metrics"]["tasks"]) == {"left", "right"} for r in found.values())
    assert all(r["env"]["host"] and r["log"] for r in found.values())
    assert "2 runs: 2 done, 0 failed, 0 running, 0 pending" in out and "## multi_mnist" in out
