"""The worked plugin example (examples/), run as a user runs it: the installed
distribution `harness-example` (SimpleShot for the few-shot family, the `digits`
family) and the local plugin examples/local-plugin/knn.py, through the real `harness`
command in subprocesses, with results in a temp folder.

Needs `pip install -e examples/harness-example`: without it every test fails, saying so.
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from importlib import metadata
from pathlib import Path

import pytest
from conftest import wait_until

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "harness-example"
DIGITS_SUITE = EXAMPLE / "suites" / "digits.yaml"
SIMPLESHOT_SUITE = EXAMPLE / "suites" / "simpleshot.yaml"
LOCAL_PLUGIN = REPO / "examples" / "local-plugin"
LOCAL_SUITE = LOCAL_PLUGIN / "suite.yaml"
INSTALL = "pip install -e examples/harness-example"
EXAMPLE_ORIGIN = "plugin harness-example 0.1.0"
SVC_CORRECT, TEST_IMAGES = 871, 899  # scikit-learn's example: its confusion matrix's diagonal, its test half


def require_example() -> None:
    """Fail (never skip) when the example is not installed, or installed from elsewhere:
    every test calls it first."""
    try:
        metadata.distribution("harness-example")
        installed = True
    except metadata.PackageNotFoundError:
        installed = False
    if not installed:
        pytest.fail(f"the distribution harness-example is not installed: run `{INSTALL}` "
                    "(from the harness checkout, in this environment)", pytrace=False)
    import harness_example

    where = Path(harness_example.__file__).resolve()
    if EXAMPLE not in where.parents:
        pytest.fail(f"harness_example is imported from {where}, not from {EXAMPLE}: run `{INSTALL}`", pytrace=False)


def cli_env(results: Path) -> dict:
    """This environment with results in ``results`` and every installed plugin loaded."""
    env = {key: value for key, value in os.environ.items() if key != "HARNESS_DISABLE_PLUGIN_AUTOLOAD"}
    return {**env, "HARNESS_RESULTS": str(results), "HARNESS_POLL_SECONDS": "1"}


def harness(*args: str, results: Path, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """The `harness` command of this environment, as a user types it."""
    script = Path(sys.executable).with_name("harness")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "harness.cli"]
    done = subprocess.run([*command, *args], capture_output=True, text=True, env=cli_env(results), cwd=REPO, timeout=timeout)
    if check:
        assert done.returncode == 0, f"harness {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def records(results: Path, suite: str) -> dict[str, dict]:
    return {path.parent.name: json.loads(path.read_text()) for path in (results / suite).glob("*/record.json")}


def by_run(records_: dict) -> dict[tuple, dict]:
    return {(r["spec"]["method"], r["spec"]["seed"], r["spec"].get("shots")): r for r in records_.values()}


def report_cells(suite: Path, results: Path) -> list[dict]:
    text = harness("report", str(suite), "--format", "csv", results=results).stdout
    return list(csv.DictReader(io.StringIO(text)))


def planned_ids(suite: Path, results: Path) -> list[str]:
    return [run["run_id"] for run in json.loads(harness("plan", str(suite), "--format", "json", results=results).stdout)["runs"]]


# ---------------------------------------------------------------- planning and listing


def test_list_shows_the_plugin_family_and_methods_with_their_origin(tmp_path):
    require_example()
    out = harness("list", results=tmp_path).stdout
    assert f"family digits (version 1, {EXAMPLE_ORIGIN} (harness_example.digits.family))" in out
    (digits_methods,) = [line for line in out.splitlines() if line.strip().startswith("method: logreg")]
    assert digits_methods.split("(")[0].strip() == "method: logreg, mlp, svc"
    (fewshot_methods,) = [line for line in out.splitlines() if "protonet" in line]
    assert f"simpleshot ({EXAMPLE_ORIGIN} (harness_example.simpleshot))" in fewshot_methods
    assert "broken plugin" not in out

    with_local = harness("list", str(LOCAL_SUITE), results=tmp_path).stdout
    assert f"knn (plugin {LOCAL_PLUGIN / 'knn.py'})" in with_local
    assert "knn" not in out  # a local plugin is loaded only by the suite that names it


@pytest.mark.parametrize("suite", [DIGITS_SUITE, SIMPLESHOT_SUITE, LOCAL_SUITE], ids=["digits", "simpleshot", "local-plugin"])
def test_planning_imports_no_torch(suite, tmp_path):
    require_example()
    code = textwrap.dedent(f"""
        import io, json, sys, contextlib
        from harness.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["plan", {str(suite)!r}])
        print(json.dumps({{"code": code, "torch": "torch" in sys.modules, "plan": out.getvalue()}}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(tmp_path), cwd=REPO,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0 and "pending" in result["plan"], result
    assert result["torch"] is False, f"planning {suite.name} imported torch"


def test_simpleshot_embeds_centred_unit_features_and_tracks_the_base_mean():
    require_example()
    import torch
    from harness_example import simpleshot

    from harness.fewshot.backbones.conv4 import conv4
    from harness.sources import read_declarations

    (declared,) = read_declarations(Path(simpleshot.__file__))  # what planning reads
    assert (declared.registry, declared.name, declared.meta) == ("fewshot.method", "simpleshot", {"uses": {"eval_head": "centroid"}})
    torch.manual_seed(0)
    method = simpleshot.SimpleShot(conv4(1, 28), {"label_smoothing": 0.0}, num_train_classes=12)
    images, classes = torch.randn(4 * 3, 1, 28, 28), torch.tensor([7, 0, 11, 3])
    method.train()
    loss, accuracy = method.task_loss(images, classes, shots=1)
    loss.backward()
    assert method.classifier.weight.grad is not None and 0.0 <= accuracy.item() <= 1.0
    with torch.no_grad():
        first = method.backbone(images)  # still training mode: the statistics the update saw
    torch.testing.assert_close(method.base_mean, first.mean(0))  # first batch: a plain mean, not a step from zero
    method.task_loss(images + 1, classes, shots=1)
    with torch.no_grad():
        second = method.backbone(images + 1).mean(0)
    torch.testing.assert_close(method.base_mean, (first.mean(0) + second) / 2)  # running average of batches
    assert {"base_mean", "batches_seen"} <= set(method.state_dict())  # checkpointed with the weights

    method.eval()
    with torch.no_grad():
        embedded = method.embed(images)
        raw = method.backbone(images)
    torch.testing.assert_close(embedded.norm(dim=1), torch.ones(len(images)))
    torch.testing.assert_close(embedded, torch.nn.functional.normalize(raw - method.base_mean, dim=1))


# ---------------------------------------------------------------- running the suites


def test_the_local_plugin_suite_runs_with_its_knn_method(tmp_path):
    require_example()
    harness("run", str(LOCAL_SUITE), "--cluster", "local", "--quiet", results=tmp_path, timeout=300)
    found = by_run(records(tmp_path, "local-plugin"))
    assert {key[0] for key in found} == {"knn", "svc"} and all(r["status"] == "done" for r in found.values())
    knn = found["knn", 0, None]
    assert knn["components"]["method"]["origin"] == f"plugin {LOCAL_PLUGIN / 'knn.py'}"
    assert knn["plugins"] == [str(LOCAL_PLUGIN / "knn.py")]
    assert 90.0 < knn["metrics"]["accuracy"] < 100.0 and len(knn["metrics"]["correct"]) == TEST_IMAGES
    assert found["svc", 0, None]["metrics"]["accuracy"] == pytest.approx(100 * SVC_CORRECT / TEST_IMAGES)


@pytest.mark.slow
def test_digits_suite_reproduces_the_example_svc_and_two_runs_give_identical_metrics(tmp_path):
    require_example()
    local, debug = tmp_path / "local", tmp_path / "debug"
    out = harness("run", str(DIGITS_SUITE), "--cluster", "local", "--quiet", results=local, timeout=600).stdout
    assert "Runs: 9 done, 0 failed" in out
    first = records(local, "digits")
    assert len(first) == 9 and all(r["status"] == "done" for r in first.values())
    runs = by_run(first)
    assert runs["svc", 0, None]["metrics"]["accuracy"] == pytest.approx(100 * SVC_CORRECT / TEST_IMAGES)
    assert runs["svc", 0, None]["components"]["family"]["origin"] == f"{EXAMPLE_ORIGIN} (harness_example.digits.family)"
    mlp = [runs["mlp", seed, None]["metrics"]["accuracy"] for seed in (0, 1, 2)]
    assert len(set(mlp)) > 1 and all(85.0 < value < 100.0 for value in mlp)  # the seed matters, training works

    cells = {cell["method"]: cell for cell in report_cells(DIGITS_SUITE, local)}
    assert set(cells) == {"svc", "logreg", "mlp"} and all(cell["seeds"] == "3" for cell in cells.values())
    # the example suite sets no margin: the reported number, no verdict, and the line saying so
    assert float(cells["svc"]["reported"]) == 96.89 and cells["svc"]["verdict_note"] == "no verdict: no margin"
    assert abs(float(cells["svc"]["diff"])) < 0.01
    assert cells["mlp"]["reported"] == "" and float(cells["mlp"]["ci95"]) > 0

    harness("run", str(DIGITS_SUITE), "--cluster", "debug", "--quiet", results=debug, timeout=600)
    second = records(debug, "digits")
    assert set(second) == set(first)  # same run ids
    for run_id, record in first.items():
        assert second[run_id]["metrics"] == record["metrics"], record["spec"]


KILLABLE = """
name: digits-resume
family: digits
paper: "resume test"
defaults: {mlp_epochs: 200}
grid: {dataset: [digits], method: [mlp], seed: [3]}
resources: {cpus: 1, mem_gb: 1, timeout_min: 5}
"""


@pytest.mark.slow
def test_mlp_killed_mid_training_resumes_to_the_metrics_of_an_uninterrupted_run(tmp_path):
    require_example()
    suite = tmp_path / "digits-resume.yaml"
    suite.write_text(KILLABLE)
    results, reference = tmp_path / "results", tmp_path / "reference"
    (run_id,) = planned_ids(suite, results)
    run_dir = results / "digits-resume" / run_id
    worker = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--cluster", "debug", "--quiet"],
                              env=cli_env(results), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: (run_dir / "checkpoint.pt").exists() or worker.poll() is not None, 120, "the first checkpoint")
        time.sleep(random.uniform(0.1, 0.6))
        os.killpg(worker.pid, signal.SIGKILL)
    finally:
        worker.wait()
    assert worker.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert (run_dir / "checkpoint.pt").exists() and not (run_dir / "record.json").exists()

    harness("run", str(suite), "--cluster", "debug", "--quiet", results=results)
    resumed = json.loads((run_dir / "record.json").read_text())
    assert resumed["status"] == "done" and 1 <= resumed["details"]["resumed_from_epoch"] < 200
    assert "resumed from checkpoint at epoch" in (run_dir / "run.log").read_text()
    assert not (run_dir / "checkpoint.pt").exists()

    harness("run", str(suite), "--cluster", "debug", "--quiet", results=reference)
    uninterrupted = json.loads((reference / "digits-resume" / run_id / "record.json").read_text())
    assert uninterrupted["details"]["resumed_from_epoch"] is None
    assert resumed["metrics"] == uninterrupted["metrics"]


@pytest.mark.slow
def test_simpleshot_suite_runs_beside_protonet(tmp_path):
    require_example()
    out = harness("run", str(SIMPLESHOT_SUITE), "--cluster", "local", "--quiet", results=tmp_path, timeout=600).stdout
    assert "Runs: 4 done, 0 failed" in out
    runs = by_run(records(tmp_path, "simpleshot"))
    assert set(runs) == {(method, 0, shots) for method in ("simpleshot", "protonet") for shots in (1, 5)}
    for (method, _, shots), record in runs.items():
        assert record["status"] == "done" and record["details"]["eval_head"] == "centroid"
        assert record["metrics"]["accuracy"] > 50.0, (method, shots)  # 5-way: chance is 20%
    simpleshot = runs["simpleshot", 0, 1]
    assert simpleshot["components"]["method"]["origin"] == f"{EXAMPLE_ORIGIN} (harness_example.simpleshot)"
    assert simpleshot["components"]["eval_head"]["name"] == "centroid"
    assert simpleshot["spec"]["train_ways"] == 16  # the suite's override reached the run
    cells = {(cell["method"], cell["shots"]) for cell in report_cells(SIMPLESHOT_SUITE, tmp_path)}
    assert cells == {("simpleshot", "1"), ("simpleshot", "5"), ("protonet", "1"), ("protonet", "5")}


# ---------------------------------------------------------------- a real Slurm


@pytest.mark.slurm
def test_digits_suite_runs_on_slurm(tmp_path):
    require_example()
    from harness import scheduler

    results = tmp_path / "results"
    try:
        out = harness("run", str(DIGITS_SUITE), "--cluster", "slurm", "--wait", "--quiet", "--filter", "seed=0",
                      results=results, timeout=480).stdout
        assert "submitted 3 runs in 1 job array" in out and "3 runs: 3 done" in out
    finally:
        ids = {scheduler.base_id(job["job_id"]) for path in results.glob("digits/launches/*.json")
               for job in json.loads(path.read_text())["runs"].values()}
        if ids and shutil.which("scancel"):
            subprocess.run(["scancel", *sorted(ids)], capture_output=True, timeout=30)
    runs = by_run(records(results, "digits"))
    assert set(runs) == {("svc", 0, None), ("logreg", 0, None), ("mlp", 0, None)}
    assert all(record["status"] == "done" for record in runs.values())
    assert runs["svc", 0, None]["metrics"]["accuracy"] == pytest.approx(100 * SVC_CORRECT / TEST_IMAGES)
    cells = {cell["method"]: cell for cell in report_cells(DIGITS_SUITE, results)}
    assert float(cells["svc"]["reported"]) == 96.89 and abs(float(cells["svc"]["diff"])) < 0.01


@pytest.mark.slurm
def test_a_suites_local_plugin_reaches_the_slurm_workers(tmp_path):
    """knn.py is not installed anywhere: the Slurm worker loads it from the path the suite names."""
    require_example()
    from harness import scheduler

    results = tmp_path / "results"
    try:
        out = harness("run", str(LOCAL_SUITE), "--cluster", "slurm", "--wait", "--quiet", results=results, timeout=480).stdout
        assert "2 runs: 2 done" in out
    finally:
        ids = {scheduler.base_id(job["job_id"]) for path in results.glob("local-plugin/launches/*.json")
               for job in json.loads(path.read_text())["runs"].values()}
        if ids and shutil.which("scancel"):
            subprocess.run(["scancel", *sorted(ids)], capture_output=True, timeout=30)
    knn = next(r for r in records(results, "local-plugin").values() if r["spec"]["method"] == "knn")
    assert knn["status"] == "done" and knn["plugins"] == [str(LOCAL_PLUGIN / "knn.py")]
    assert knn["components"]["method"]["origin"] == f"plugin {LOCAL_PLUGIN / 'knn.py'}"
    assert knn["spec"]["knn_k"] == 3 and knn["metrics"]["accuracy"] > 90
