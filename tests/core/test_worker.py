"""The worker (harness/job.py) through the real CLI, with a tiny plugin family whose trainer
returns what each case says: a trainer that breaks the metrics contract gets a failed
record with one line naming it and the metric, never a done one; two launches of one
suite into one results folder train each run once; a forced rerun still trains."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

FAMILY = '''
from harness.api import REQUIRED, Family, Key, Metric, Registry, register

DATASETS = Registry("contract.dataset")
METHODS = Registry("contract.method")
KEYS = {"dataset": Key(str, REQUIRED, "d", choices=DATASETS), "method": Key(str, REQUIRED, "m", choices=METHODS),
        "seed": Key(int, REQUIRED, "s", minimum=0), "case": Key(str, "good", "what the trainer returns")}
FAMILY = Family(
    name="contract", version="1", help="a trainer returning fixed metrics", keys=KEYS,
    trainer="contract_train:Trainer", check="contract_train:hold", report="contract_train:report",
    metrics=(Metric("accuracy", "higher", "%", samples="correct", bounds=(0, 100)),
             Metric("miou", "higher", "%", samples="pixels", samples_required=False, bounds=(0, 100))),
    validation=(Metric("val_accuracy", "higher", "%", bounds=(0, 100)),),
)


@register("contract.dataset", "toy", version="1")
class Toy:
    pass


@register("contract.method", "fixed", version="1")
class Fixed:
    pass
'''

TRAINER = '''
import os
import time
from pathlib import Path

import numpy

GOOD = {"accuracy": 50.0, "correct": [0.0, 100.0, 50.0, 50.0], "miou": 40.0, "val_accuracy": 60.0}
CASES = {
    "good": GOOD,
    "no_pixels": GOOD,  # miou's samples are optional
    "missing": {k: v for k, v in GOOD.items() if k != "accuracy"},
    "nan": {**GOOD, "accuracy": float("nan")},
    "text": {**GOOD, "accuracy": "50"},
    "numpy_scalar": {**GOOD, "accuracy": numpy.float32(50.0)},  # no JSON number
    "no_samples": {k: v for k, v in GOOD.items() if k != "correct"},
    "fractions": {**GOOD, "correct": [0.0, 1.0, 0.5, 0.5]},  # a % metric's samples as 0/1
    "not_the_mean": {**GOOD, "correct": [0.0, 100.0, 100.0, 100.0]},
    "out_of_bounds": {**GOOD, "miou": 140.0},
    "samples_out_of_bounds": {**GOOD, "correct": [-100.0, 200.0, 50.0, 50.0]},
    "no_validation": {k: v for k, v in GOOD.items() if k != "val_accuracy"},
    "validation_inf": {**GOOD, "val_accuracy": float("inf")},
}


class Trainer:
    def __init__(self, config, checkpoint=None, log=print):
        self.config, self.stop_requested = config, False

    def run(self):
        metrics = dict(CASES[self.config["case"]])
        if self.config["case"] == "good":
            metrics["pixels"] = [30.0, 50.0]
        return {"metrics": metrics, "timing": {"train_seconds": 0.0}, "details": {"device": "cpu"}}


def report(suite, store, fmt, options=None):
    """No tables: the generic report does not yet take a run without optional samples."""
    return "contract: no report", []


def hold(config, cluster=None, gpus=0):
    """The family's check, run by the launcher before dispatch: with CONTRACT_HOLD set,
    wait until that file exists (a launch that planned its runs and dispatches them later)."""
    path = os.environ.get("CONTRACT_HOLD")
    if path:
        Path(path + ".waiting").touch()
        deadline = time.monotonic() + 120
        while not Path(path).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    return None
'''

SUITE = """
name: contract
family: contract
paper: test
plugins: [family.py]
grid:
  dataset: [toy]
  method: [fixed]
  case: {cases}
  seed: {seeds}
"""


def setup(folder: Path, cases: list, seeds: list) -> Path:
    (folder / "family.py").write_text(textwrap.dedent(FAMILY))
    (folder / "contract_train.py").write_text(textwrap.dedent(TRAINER))
    suite = folder / "suite.yaml"
    suite.write_text(textwrap.dedent(SUITE.format(cases=cases, seeds=seeds)))
    return suite


def command(folder: Path, *args: str) -> list:
    return [sys.executable, "-m", "harness.cli", *args, "--results", str(folder / "results")]


def cli(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command(folder, *args), cwd=folder, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=300)


def records(folder: Path) -> dict:
    """case (and seed) -> record."""
    found = {}
    for path in (folder / "results" / "contract").glob("*/record.json"):
        record = json.loads(path.read_text())
        found[(record["spec"]["case"], record["spec"]["seed"])] = record
    return found


BROKEN = {
    "missing": "metrics.accuracy is missing",
    "nan": "metrics.accuracy is nan, not a finite number",
    "text": "metrics.accuracy is '50', not a finite number",
    "numpy_scalar": "metrics.accuracy is np.float32(50.0), not a finite number",
    "no_samples": "metrics.correct (the samples of accuracy) is missing",
    "fractions": "metrics.accuracy is 50.0, but the mean of its 4 samples metrics.correct is 0.5",
    "not_the_mean": "metrics.accuracy is 50.0, but the mean of its 4 samples metrics.correct is 75.0",
    "out_of_bounds": "metrics.miou is 140.0, outside its bounds [0, 100]",
    "samples_out_of_bounds": "metrics.correct (the samples of accuracy) go from -100 to 200, outside its bounds",
    "no_validation": "metrics.val_accuracy is missing",
    "validation_inf": "metrics.val_accuracy is inf, not a finite number",
}


def test_a_trainer_breaking_the_metrics_contract_gets_a_failed_record_naming_it_and_the_metric(tmp_path):
    suite = setup(tmp_path, ["good", "no_pixels", *BROKEN], [0])
    first = cli(tmp_path, "run", str(suite), "--cluster", "debug", "--quiet")
    assert first.returncode == 1, first.stderr[-2000:]
    assert f"{len(BROKEN)} of the {len(BROKEN) + 2} runs of this launch did not finish" in first.stderr
    found = {case: record for (case, _), record in records(tmp_path).items()}
    assert set(found) == {"good", "no_pixels", *BROKEN}
    for case in ("good", "no_pixels"):
        assert found[case]["status"] == "done" and found[case]["error"] is None
        assert found[case]["memory"]["gpu_peak_allocated_bytes"] is None  # the worker measures; a CPU run has none
        assert found[case]["memory"]["cpu_peak_rss_bytes"] > 1_000_000
    for case, problem in BROKEN.items():
        record = found[case]
        assert record["status"] == "failed", (case, record["status"])
        error = record["error"]
        assert error["type"] == "MetricsContractError" and "\n" not in error["message"]
        assert error["message"].startswith("contract_train:Trainer broke the metrics contract: "), error["message"]
        assert problem in error["message"], (case, error["message"])
        log = (tmp_path / "results" / record["log"]).read_text()
        assert f"FAILED: MetricsContractError: contract_train:Trainer broke the metrics contract: {problem}" in log
    # failed, not "done but unreportable": the next launch does not run them again
    again = cli(tmp_path, "run", str(suite), "--cluster", "debug", "--quiet")
    assert f"0 to run, {len(BROKEN) + 2} skipped" in again.stdout, again.stdout


def start_lines(folder: Path) -> dict:
    """run id -> how many times its worker started training it (the run log's first line)."""
    return {path.parent.name: sum(line.split(" ", 1)[1].startswith(f"run {path.parent.name}: ")
                                  for line in path.read_text().splitlines())
            for path in (folder / "results" / "contract").glob("*/run.log")}


def test_two_launches_into_one_results_folder_train_each_run_once(tmp_path):
    """Launch B plans both runs while they are pending, then waits (the family's check) until
    launch A has finished them: B's workers find A's records and train nothing."""
    suite = setup(tmp_path, ["good"], [0, 1])
    hold = tmp_path / "go"
    late = subprocess.Popen(command(tmp_path, "run", str(suite), "--cluster", "debug", "--quiet"), cwd=tmp_path,
                            env={**os.environ, "CONTRACT_HOLD": str(hold)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not Path(f"{hold}.waiting").exists() and time.monotonic() < deadline and late.poll() is None:
            time.sleep(0.1)
        assert Path(f"{hold}.waiting").exists(), late.communicate()
        early = cli(tmp_path, "run", str(suite), "--cluster", "debug", "--quiet")
        assert early.returncode == 0, early.stderr[-2000:]
        done = {run_id: json.loads((tmp_path / "results" / "contract" / run_id / "record.json").read_text())
                for run_id in start_lines(tmp_path)}
        hold.touch()
        out, err = late.communicate(timeout=300)
    finally:
        late.kill()
    assert late.returncode == 0, err[-2000:]
    assert "2 to run, 0 skipped" in out  # B had planned both before A ran them
    counts = start_lines(tmp_path)
    assert len(counts) == 2 and set(counts.values()) == {1}, counts
    again = {run_id: json.loads((tmp_path / "results" / "contract" / run_id / "record.json").read_text())
             for run_id in counts}
    assert again == done  # A's records, untouched


def test_a_suites_plugin_family_runs_in_local_worker_processes(tmp_path):
    """A worker process loads the suite's plugins before it names the run (its family's label)."""
    suite = setup(tmp_path, ["good"], [0, 1])
    result = cli(tmp_path, "run", str(suite), "--cluster", "local", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    assert {key: r["status"] for key, r in records(tmp_path).items()} == {("good", 0): "done", ("good", 1): "done"}


JOB = ("import json, sys; from harness.job import Job; from harness.spec import expand; "
       "from harness.suite import load_suite; "
       "spec, = expand(load_suite(sys.argv[1])); replaces = sys.argv[3] or None; "
       "print(json.dumps(Job(spec, sys.argv[2], replaces=replaces)()))")


def test_a_worker_skips_a_run_another_finished_but_a_forced_rerun_trains_again(tmp_path):
    suite = setup(tmp_path, ["good"], [0])
    assert cli(tmp_path, "run", str(suite), "--cluster", "debug", "--quiet").returncode == 0
    (record,) = records(tmp_path).values()

    def job(replaces: str) -> dict:
        done = subprocess.run([sys.executable, "-c", JOB, str(suite), str(tmp_path / "results"), replaces],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.splitlines()[-1])

    run_id = record["run_id"]
    assert job("") == {"run_id": run_id, "status": "done", "skipped": "already done by another worker"}
    assert start_lines(tmp_path) == {run_id: 1}
    assert not (tmp_path / "results" / "contract" / run_id / "running.json").exists()  # the lock was let go
    assert job(record["finished"]) == {"run_id": run_id, "status": "done"}  # it replaces that record: trained
    assert start_lines(tmp_path) == {run_id: 2}


@pytest.fixture(autouse=True)
def _own_results(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_RESULTS", str(tmp_path / "results"))


def test_the_stopped_attempts_seconds_add_up_and_an_unreadable_file_counts_none(tmp_path):
    from harness.job import earlier_attempts

    path = tmp_path / "attempts.json"
    assert earlier_attempts(path) == []
    earlier_attempts(path, add=3.0)
    assert earlier_attempts(path, add=2.0) == [3.0, 2.0] == earlier_attempts(path)
    path.write_text("{not json")
    assert earlier_attempts(path) == []  # the total then counts this attempt only, and the run is not failed
    assert earlier_attempts(tmp_path / "missing" / "attempts.json", add=1.0) == [1.0]  # unwritable: no error
