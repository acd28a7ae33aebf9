"""Failures that used to pass in silence, each through the real CLI (issue: "nothing
fails in silence"): a GPU run on a machine without one, failed runs and the exit code,
reported entries that match nothing or look like fractions, `report --filter`, an
empty grid, bad --results/--out paths, a closed pipe, `plan --format json`."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import TINY_SUITE, write_suite
from test_cli_errors import assert_nothing_written, assert_one_line_error, harness_cli


def test_device_cuda_without_a_gpu_is_refused_before_dispatch(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    suite = write_suite(tmp_path, TINY_SUITE.replace("device: cpu", "device: cuda"))
    result = harness_cli(tmp_path, "run", str(suite), "--cluster", "local")
    assert_one_line_error(result, str(suite), "device: cuda, but this machine has no usable GPU")
    assert not list((tmp_path / "results").glob("tiny/*/record.json"))
    assert not list((tmp_path / "results").glob("tiny/*/running.json"))


def test_a_cuda_run_for_slurm_must_ask_for_a_gpu(tmp_path):
    suite = write_suite(tmp_path, TINY_SUITE.replace("device: cpu", "device: cuda"))
    result = harness_cli(tmp_path, "run", str(suite), "--cluster", "slurm")
    assert_one_line_error(result, str(suite), "device: cuda, but the run asks Slurm for no GPU (resources.gpus: 0)")


def test_a_worker_without_its_gpu_writes_a_failed_record_naming_the_cause(tmp_path, results):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from harness.job import Job
    from harness.spec import expand
    from harness.store import Store
    from harness.suite import load_suite

    suite = load_suite(write_suite(tmp_path, TINY_SUITE.replace("device: cpu", "device: cuda")))
    spec = next(expand(suite))
    assert Job(spec, str(results))()["status"] == "failed"  # dispatched anyway (e.g. a node lost its GPU)
    record, _ = Store(results, suite.name).read_record(spec.run_id, spec.config)
    assert record["status"] == "failed" and record["env"]["device"] == "cuda"
    assert "device: cuda, but this machine has no usable GPU" in record["error"]["message"]


def test_a_reported_value_that_looks_like_a_fraction_is_a_warning(tmp_path):
    suite = write_suite(tmp_path, TINY_SUITE.replace("value: 90.0", "value: 0.9"))
    result = harness_cli(tmp_path, "plan", str(suite))
    assert result.returncode == 0
    assert "reported[0].value: 0.9 looks like a fraction, but accuracy is in %: did you mean 90?" in result.stderr


def test_an_empty_grid_after_excludes_is_one_line(tmp_path):
    suite = write_suite(tmp_path, TINY_SUITE.split("reported:")[0] + "exclude:\n  - {dataset: omniglot}\n")
    assert_one_line_error(harness_cli(tmp_path, "plan", str(suite)), str(suite), "no run left")
    assert_nothing_written(tmp_path)


def test_results_pointing_at_a_file_and_out_at_a_folder_are_one_line(tmp_path, tiny_suite):
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(harness_cli(tmp_path, "--results", str(tmp_path / "afile"), "plan", str(tiny_suite)),
                          "--results", "is a file, not a folder")
    (tmp_path / "afolder").mkdir()
    assert_one_line_error(harness_cli(tmp_path, "report", str(tiny_suite), "--out", str(tmp_path / "afolder")),
                          "--out", "is a folder")


def test_plan_into_a_closed_pipe_exits_quietly(tmp_path):
    suite = write_suite(tmp_path, TINY_SUITE.replace("seed: [0]", "seed: [" + ", ".join(map(str, range(400))) + "]"))
    pipeline = subprocess.run(f"{sys.executable} -m harness.cli plan {suite} | head -2", shell=True, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    assert len(pipeline.stdout.splitlines()) == 2
    assert "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr, pipeline.stderr


def test_plan_as_json_shows_every_resolved_config(tmp_path):
    suite = write_suite(tmp_path, TINY_SUITE.replace("resources:", "overrides:\n  - when: {method: mtl}\n    set: {meta_batch: 3}\nresources:"))
    result = harness_cli(tmp_path, "plan", str(suite), "--format", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    by_method = {run["config"]["method"]: run for run in plan["runs"]}
    assert by_method["mtl"]["config"]["meta_batch"] == 3 and by_method["protonet"]["config"]["meta_batch"] == 1
    assert all(len(run["run_id"]) == 12 and run["status"] == "pending" for run in plan["runs"])
    assert len(by_method["mtl"]["config"]) == len(by_method["protonet"]["config"]) > 30  # every key, resolved


def test_report_honours_filter(tmp_path):
    from test_store import fake_record

    from harness.spec import expand
    from harness.store import Store
    from harness.suite import load_suite

    path = write_suite(tmp_path, TINY_SUITE)
    suite = load_suite(path)
    store = Store(tmp_path / "results", suite.name)
    for spec in expand(suite):
        store.write_record(fake_record(spec))
    everything = harness_cli(tmp_path, "report", str(path))
    only = harness_cli(tmp_path, "report", str(path), "--filter", "method=mtl")
    assert "Runs: 2 done" in everything.stdout and "| protonet" in everything.stdout
    assert "Runs: 1 done" in only.stdout and "| mtl" in only.stdout and "| protonet" not in only.stdout
