"""End to end on the real Omniglot data: the local executor, records, skip, failure, kill, a run
another launcher holds, report."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import TINY_SUITE, wait_until, write_suite

from harness.cli import main
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite

RECORD_KEYS = {"run_id", "suite", "status", "spec", "metrics", "timing", "memory", "env", "started", "finished", "error"}
pytestmark = pytest.mark.slow


def records(results, suite="tiny"):
    return {p.parent.name: json.loads(p.read_text()) for p in (results / suite).glob("*/record.json")}


def test_local_executor_runs_the_suite_then_skips_it(tiny_suite, results, capsys):
    assert main(["run", str(tiny_suite), "--cluster", "local", "--quiet"]) == 0
    out = capsys.readouterr().out
    found = records(results)
    assert len(found) == 2
    for run_id, record in found.items():
        assert RECORD_KEYS <= set(record)
        assert record["status"] == "done" and record["run_id"] == run_id and record["error"] is None
        assert len(record["metrics"]["episode_accuracies"]) == 40
        assert record["metrics"]["accuracy"] > 35.0  # 5-way chance is 20%
        assert record["timing"]["train_seconds"] > 0 and record["timing"]["steps"] == 12
        assert record["memory"]["cpu_peak_rss_bytes"] > 10_000_000
        assert record["env"]["torch"] and record["env"]["host"]
        assert {"dataset", "ways", "shots", "method", "seed"} <= set(record["spec"])
    # the report was printed and written
    assert "| omniglot" in out and "no verdict: no margin" in out  # its reported number, and no margin set
    assert (results / "tiny" / "REPORT.md").read_text().count("| omniglot") == 2
    launches = list((results / "tiny" / ".submitit").iterdir())
    assert len(launches) == 1

    # A second run dispatches nothing: finished runs are skipped before submission.
    assert main(["run", str(tiny_suite), "--cluster", "local", "--quiet"]) == 0
    assert "0 to run, 2 skipped" in capsys.readouterr().out
    assert len(list((results / "tiny" / ".submitit").iterdir())) == 1
    assert records(results) == found


def test_force_reruns_and_the_record_is_deterministic(tiny_suite, results, capsys):
    assert main(["run", str(tiny_suite), "--cluster", "debug", "--quiet", "--filter", "method=protonet"]) == 0
    first = records(results)
    assert main(["run", str(tiny_suite), "--cluster", "debug", "--quiet", "--filter", "method=protonet", "--force"]) == 0
    second = records(results)
    (run_id,) = first
    assert first[run_id]["finished"] <= second[run_id]["finished"]
    assert second[run_id]["metrics"] == first[run_id]["metrics"]


def test_a_failing_run_is_recorded_and_the_others_finish(tmp_path, results, capsys):
    # 30-way episodes cannot be drawn from the 17-class validation split: that run fails at run time.
    suite = write_suite(tmp_path, TINY_SUITE.replace("  shots: [1]", "  shots: [1]\n  ways: [5, 30]").replace("method: [protonet, mtl]", "method: [protonet]"))
    assert main(["run", str(suite), "--cluster", "local", "--quiet"]) == 1  # a run of the launch failed
    assert "1 of the 2 runs of this launch did not finish" in capsys.readouterr().err
    by_ways = {r["spec"]["ways"]: r for r in records(results).values()}
    assert by_ways[5]["status"] == "done"
    assert by_ways[30]["status"] == "failed"
    assert by_ways[30]["error"]["type"] == "ValueError" and "Traceback" in by_ways[30]["error"]["traceback"]
    capsys.readouterr()
    assert main(["status", str(suite)]) == 0
    out = capsys.readouterr().out
    assert "1 done, 1 failed" in out
    assert "ValueError: 30-way episodes need 30 classes" in out and "run.log" in out
    assert main(["report", str(suite)]) == 0
    assert "## Failed runs" in capsys.readouterr().out


def test_a_run_killed_before_its_record_leaves_no_record(tiny_suite, results):
    slow = write_suite(tiny_suite.parent, TINY_SUITE.replace("steps: 12", "steps: 100000"), name="slow.yaml")
    spec = next(iter(expand(load_suite(slow))))
    store = Store(results, "tiny")
    env = {**os.environ, "HARNESS_RESULTS": str(results)}
    worker = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(slow), "--cluster", "debug",
                               "--quiet", "--filter", "method=protonet"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    running = store.run_dir(spec.run_id) / "running.json"
    deadline = time.time() + 60
    while not running.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert running.exists(), "the run never started"
    time.sleep(1.0)  # well inside training
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    assert not store.record_path(spec.run_id).exists()
    scan = store.scan([spec])
    assert scan.states[spec.run_id].status == "pending"  # the dead local worker is not "running"
    assert scan.warnings == []


def test_a_run_another_launcher_holds_is_skipped_as_running_elsewhere(tiny_suite, results):
    # Two `harness run` of the suite into one results folder at once: while this launcher trains
    # the first run, another launcher's worker (here, this test) takes the second run.
    first, second = expand(load_suite(tiny_suite))
    store = Store(results, "tiny")
    launcher = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(tiny_suite), "--quiet",
                                 "--max-parallel", "1"], env={**os.environ, "HARNESS_RESULTS": str(results)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": "2026-12-01T00:00:00+00:00", "log": "x"}
    try:
        wait_until(lambda: store.running_info(first.run_id), 120, "the first run to start")
        lock = store.hold_running(second.run_id, holder)
        try:
            _, err = launcher.communicate(timeout=600)
        finally:
            store.release_running(second.run_id, lock)
    finally:
        launcher.kill()
    assert launcher.returncode == 0, err  # not a failure of this launch
    assert (f"harness: run {second.run_id} skipped (running elsewhere): another launcher's worker holds it "
            f"(host {holder['host']}, pid {os.getpid()}, since {holder['started']})") in err
    assert "did not finish" not in err and "without a record" not in err
    assert set(records(results)) == {first.run_id}
