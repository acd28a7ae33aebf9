"""Run visibility: trainers report their step and validation figures, `harness status`
shows them for running runs, and records keep the validation curve."""
from __future__ import annotations

import json

from conftest import TINY_SUITE, write_suite
from test_cli_errors import harness_cli

from harness.job import RunLog
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite


def test_status_shows_the_step_and_latest_validation_figure_of_a_running_run(tmp_path):
    suite = load_suite(write_suite(tmp_path, TINY_SUITE))
    spec = next(expand(suite))
    store = Store(tmp_path / "results", suite.name)
    marker = {"pid": 1, "host": "elsewhere", "started": "2026-12-01T00:00:00+00:00", "log": "run.log"}
    lock = store.hold_running(spec.run_id, marker)  # this process is the worker
    try:
        with RunLog(tmp_path / "run.log", lambda info: store.update_running(spec.run_id, {**marker, **info}), every=0) as log:
            log.progress(40, 100)
            log.progress(60, 100, val_accuracy=61.25)
        shown = harness_cli(tmp_path, "status", str(suite.path))
    finally:
        store.release_running(spec.run_id, lock)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if spec.run_id in line)
    assert lines[row].split()[0] == "running"
    assert lines[row + 1].strip().startswith("step 60/100, val_accuracy 61.25 (at ")


def test_trainers_report_progress_and_keep_the_validation_curve(tmp_path, one_torch_thread):
    from harness.fewshot.train import Trainer

    suite = load_suite(write_suite(tmp_path, TINY_SUITE))
    spec = next(spec for spec in expand(suite) if spec.config["method"] == "protonet")
    reported = []

    class Log:
        def __call__(self, line):
            pass

        def progress(self, step, total=None, **figures):
            reported.append((step, total, figures))

    result = Trainer(spec.config, log=Log()).run()
    validations = [(step, figures["val_accuracy"]) for step, _, figures in reported if figures]
    assert [step for step, _ in validations] == [6, 12]  # val_every 6, 12 steps
    assert [(c["step"], c["val_accuracy"]) for c in result["curve"]] == validations
    assert all(total == 12 for _, total, _ in reported) and len(reported) > len(validations)
    json.dumps(result["curve"])  # goes into the record as is
