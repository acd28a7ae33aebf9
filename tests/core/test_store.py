"""The results store: atomic records, trust only matching records, warnings for damage."""
import json
import os

import pytest

from harness.spec import expand
from harness.store import Store, write_json_atomic
from harness.suite import load_suite


def fake_record(spec, status="done", accuracies=(80.0, 90.0)):
    return {"run_id": spec.run_id, "suite": spec.suite, "status": status, "spec": spec.config,
            "metrics": {"accuracy": sum(accuracies) / len(accuracies), "episode_accuracies": list(accuracies)},
            "timing": {}, "memory": {}, "env": {}, "started": "", "finished": "", "error": None}


@pytest.fixture
def planned(tiny_suite, tmp_path):
    suite = load_suite(tiny_suite)
    return suite, list(expand(suite)), Store(tmp_path / "results", suite.name)


def test_atomic_write_failure_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    write_json_atomic(path, {"version": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", crash)
    with pytest.raises(OSError):
        write_json_atomic(path, {"version": 2})
    assert json.loads(path.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_valid_records_give_done_and_failed(planned):
    suite, specs, store = planned
    store.write_record(fake_record(specs[0]))
    store.write_record(fake_record(specs[1], status="failed"))
    scan = store.scan(specs)
    assert [scan.states[s.run_id].status for s in specs] == ["done", "failed"]
    assert scan.warnings == []


@pytest.mark.parametrize("damage, phrase", [
    (lambda path, spec: path.write_text('{"run_id": "' + spec.run_id + '", "stat'), "truncated"),
    (lambda path, spec: path.write_bytes(b"\xff\xfe\x00garbage"), "truncated"),
    (lambda path, spec: path.write_text("[1, 2, 3]"), "not a record"),
    (lambda path, spec: path.write_text(json.dumps({**fake_record(spec), "run_id": "0" * 12})), "claims run id"),
    (lambda path, spec: path.write_text(json.dumps({**fake_record(spec), "spec": {**spec.config, "seed": 99}})), "spec differs"),
    (lambda path, spec: path.write_text(json.dumps({**fake_record(spec), "status": "weird"})), "status"),
])
def test_damaged_record_is_a_warning_and_the_run_is_pending(planned, damage, phrase):
    suite, specs, store = planned
    path = store.record_path(specs[0].run_id)
    path.parent.mkdir(parents=True)
    damage(path, specs[0])
    scan = store.scan(specs)
    assert scan.states[specs[0].run_id].status == "pending"
    assert len(scan.warnings) == 1 and str(path) in scan.warnings[0] and phrase in scan.warnings[0]


def test_foreign_files_are_named_not_fatal(planned):
    suite, specs, store = planned
    store.dir.mkdir(parents=True)
    (store.dir / "notes.txt").write_text("hello")
    (store.dir / "not-a-run").mkdir()
    scan = store.scan(specs)
    assert len(scan.warnings) == 2
    assert any("notes.txt" in w for w in scan.warnings) and any("not-a-run" in w for w in scan.warnings)


def test_running_means_a_worker_holds_the_runs_lock(planned):
    suite, specs, store = planned
    import signal
    import subprocess
    import sys
    import time

    hold = ("import sys, time; from harness.store import Store; "
            f"store = Store({str(store.root)!r}, {suite.name!r}); "
            "fd = store.hold_running(sys.argv[1], {'pid': 0}); print('held', flush=True); ")
    # a worker that wrote its marker and exited without a record: its lock went with it
    subprocess.run([sys.executable, "-c", hold + "import os; os._exit(0)", specs[0].run_id], check=True)
    assert (store.run_dir(specs[0].run_id) / "running.json").exists()
    # a worker killed outright and not yet reaped (a zombie: its pid still answers kill 0)
    worker = subprocess.Popen([sys.executable, "-c", hold + "time.sleep(60)", specs[1].run_id], stdout=subprocess.PIPE, text=True)
    assert worker.stdout.readline().strip() == "held"
    assert store.scan(specs).states[specs[1].run_id].status == "running"
    os.kill(worker.pid, signal.SIGKILL)
    time.sleep(0.2)
    os.kill(worker.pid, 0)  # still there as a zombie
    scan = store.scan(specs)
    assert scan.states[specs[0].run_id].status == "pending"
    assert scan.states[specs[1].run_id].status == "pending"
    worker.wait()
    # this process holds a run: running, and a second worker cannot take it
    fd = store.hold_running(specs[0].run_id, {"pid": os.getpid()})
    assert store.scan(specs).states[specs[0].run_id].status == "running"
    assert store.hold_running(specs[0].run_id, {"pid": 0}) is None
    store.release_running(specs[0].run_id, fd)
    assert store.scan(specs).states[specs[0].run_id].status == "pending"
    assert not any(store.run_dir(specs[0].run_id).glob("running.*"))


def test_a_long_run_log_moves_its_older_lines_aside_and_loses_none(tmp_path):
    from harness.job import RunLog

    path = tmp_path / "run.log"
    with RunLog(path, publish=lambda info: None, limit=2000) as log:
        for i in range(200):
            log(f"line {i:03d} " + "x" * 30)
    parts = sorted(tmp_path.glob("run.log.*"), key=lambda p: int(p.suffix[1:])) + [path]
    assert len(parts) > 2 and all(p.stat().st_size <= 2000 + 100 for p in parts)
    lines = [line for p in parts for line in p.read_text().splitlines()]
    assert [line.split(" ")[2] for line in lines] == [f"{i:03d}" for i in range(200)]


def test_reports_and_figures_beside_the_runs_are_not_foreign(planned):
    suite, specs, store = planned
    store.dir.mkdir(parents=True)
    for name in ("REPORT.md", "report.csv", "report.tex", "report.json", "accuracy_vs_training_cost.png"):
        (store.dir / name).write_text("x")
    (store.dir / "figure.png.d").mkdir()  # a folder is not a figure
    scan = store.scan(specs)
    assert len(scan.warnings) == 1 and "figure.png.d" in scan.warnings[0]
    assert [scan.states[s.run_id].status for s in specs] == ["pending", "pending"]


def test_records_of_runs_no_longer_planned_are_counted(planned):
    suite, specs, store = planned
    store.write_record(fake_record(specs[0]))
    store.write_record(fake_record(specs[1]))
    scan = store.scan(specs[1:])
    assert scan.unplanned == 1 and list(scan.states) == [specs[1].run_id] and scan.warnings == []
