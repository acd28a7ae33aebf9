"""`harness.runs` / `harness.cells` (harness/notebook.py), `python -m harness` and
`harness status --format json`: on the committed quick start's records, on a model-selection
sweep run for real, and on bad input through the real command line."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_suite
from test_launch import fake_record
from test_model_selection import SUITE as SWEEP_WITH_CONFIRMATION

import harness
from harness import plugins
from harness.cli import main
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]
TRADEOFF = Path(__file__).parents[1] / "data" / "tradeoff.py"


def python(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


NOTEBOOK = """
import json, sys, warnings
warnings.simplefilter("ignore")
import harness
cheap = not any(name in sys.modules for name in ("pandas", "harness.notebook", "harness.cli"))
runs = harness.runs("suites/quickstart.yaml", results="results")
cells = harness.cells("quickstart")
by_hand = runs.groupby(["shots", "method"])["accuracy"].mean().to_dict()
print(json.dumps({"cheap": cheap, "torch": "torch" in sys.modules, "runs": len(runs),
                  "status": sorted(set(runs["status"])), "columns": list(runs.columns),
                  "cells": [{k: row[k] for k in ("shots", "method", "metric", "seeds", "mean", "low", "high", "run_ids")}
                            for row in cells.to_dict("records")],
                  "by_hand": {f"{s} {m}": v for (s, m), v in by_hand.items()}}))
"""


def test_runs_and_cells_of_the_committed_quick_start_import_no_torch():
    result = python("-c", NOTEBOOK)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["cheap"] and not found["torch"]
    assert found["runs"] == 8 and found["status"] == ["done"]
    for column in ("run_id", "label", "ways", "shots", "method", "seed", "lr", "accuracy", "val_accuracy",
                   "train_seconds", "total_seconds", "error", "log"):
        assert column in found["columns"], column
    assert "episode_accuracies" not in found["columns"]  # per-unit samples are not a column
    assert "timing:steps" in found["columns"]  # the steps a run did, beside the config's `steps`
    cells = found["cells"]
    assert len(cells) == 4 and {c["metric"] for c in cells} == {"accuracy"}
    for cell in cells:  # each cell is the mean of its two seeds' runs, within its interval
        assert cell["seeds"] == 2 and len(cell["run_ids"]) == 2
        assert cell["mean"] == pytest.approx(found["by_hand"][f"{cell['shots']} {cell['method']}"])
        assert cell["low"] < cell["mean"] < cell["high"] <= 100
    # the committed report's table says the same
    report = (ROOT / "results" / "quickstart" / "REPORT.md").read_text()
    assert all(f"{cell['mean']:.2f}" in report for cell in cells)


SWEEP = SWEEP_WITH_CONFIRMATION.replace(", confirm: [10, 11]", "")  # chosen on validation, no confirmation


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    plugins.reset()
    (tmp_path / "suites").mkdir()
    shutil.copy(TRADEOFF, tmp_path / "suites" / "tradeoff.py")
    (tmp_path / "suites" / "sweep.yaml").write_text(SWEEP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_RESULTS", str(tmp_path / "results"))
    yield tmp_path
    plugins.reset()


def test_with_select_the_cells_are_the_validation_chosen_runs(sweep, capsys):
    before = harness.runs("suites/sweep.yaml")
    assert len(before) == 9 and set(before["status"]) == {"pending"} and before["score"].isna().all()
    assert main(["run", "sweep", "--cluster", "debug", "--quiet"]) == 0
    runs = harness.runs("sweep")
    assert set(runs["status"]) == {"done"} and runs["val_score"].notna().all()
    (cell,) = harness.cells("sweep").to_dict("records")
    chosen = runs[runs["run_id"].isin(cell["run_ids"])]
    # validation's best lr (0.2), whose test score is the worst: the report's choice, not the oracle's
    assert set(chosen["lr"]) == {0.2} and len(chosen) == 3
    assert cell["mean"] == pytest.approx(chosen["score"].mean())
    assert cell["mean"] < runs[runs["lr"] == 0.05]["score"].mean()
    assert "lr" not in cell  # selected over: not a key of the cell


def test_bad_input_raises_the_command_lines_one_line_error(tmp_path):
    with pytest.raises(harness.HarnessError) as missing:
        harness.runs(tmp_path / "nope.yaml")
    cli = python("-m", "harness", "plan", str(tmp_path / "nope.yaml"))
    assert cli.returncode == 2 and cli.stderr.strip() == f"harness: error: {missing.value}"
    a_file = tmp_path / "results"
    a_file.write_text("")
    with pytest.raises(harness.HarnessError) as bad:
        harness.cells(ROOT / "suites" / "quickstart.yaml", results=a_file)
    assert str(bad.value) == f"--results {a_file}: is a file, not a folder"
    cli = python("-m", "harness", "--results", str(a_file), "report", "suites/quickstart.yaml")
    assert cli.returncode == 2 and cli.stderr.strip() == f"harness: error: {bad.value}"
    with pytest.raises(AttributeError):
        harness.no_such_function  # noqa: B018


def test_python_dash_m_harness_is_the_harness_command(tmp_path):
    assert python("-m", "harness", "--version").stdout.strip() == f"harness {harness.__version__}"
    plan = python("-m", "harness", "plan", "quickstart", "--format", "json")
    assert plan.returncode == 0 and plan.stdout == python("-m", "harness.cli", "plan", "quickstart", "--format", "json").stdout
    assert len(json.loads(plan.stdout)["runs"]) == 8
    assert python("-m", "harness", "plan").returncode == 2  # argparse's usage error
    bad = python("-m", "harness", "plan", "nope")
    assert bad.returncode == 2 and bad.stderr.strip() == "harness: error: nope: no such file"


def test_status_as_json(tmp_path):
    suite_path = write_suite(tmp_path)
    specs = list(expand(load_suite(suite_path)))
    store = Store(tmp_path / "results", "tiny")
    store.write_record({**fake_record(specs[0], "failed"), "log": f"tiny/{specs[0].run_id}/run.log"})
    result = python("-m", "harness", "status", str(suite_path), "--format", "json", cwd=tmp_path,
                    HARNESS_RESULTS=str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["suite"] == "tiny" and document["counts"]["failed"] == 1 and document["counts"]["pending"] == 1
    failed, pending = document["runs"]
    assert failed["run_id"] == specs[0].run_id and failed["status"] == "failed"
    assert failed["config"] == json.loads(json.dumps(specs[0].config))
    assert failed["error"]["type"] == "ValueError" and failed["error"]["message"].startswith("boom")
    assert failed["log"] == str(tmp_path / "results" / "tiny" / specs[0].run_id / "run.log")
    assert pending["status"] == "pending" and pending["error"] is None and pending["log"] is None
    # the committed quick start: every run done, each with the config `plan` gives it
    status = json.loads(python("-m", "harness", "status", "quickstart", "--format", "json").stdout)
    plan = json.loads(python("-m", "harness", "plan", "quickstart", "--format", "json").stdout)
    assert status["counts"]["done"] == 8 == len(status["runs"])
    assert [(r["run_id"], r["config"]) for r in status["runs"]] == [(r["run_id"], r["config"]) for r in plan["runs"]]
