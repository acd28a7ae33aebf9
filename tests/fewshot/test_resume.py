"""Never waste a run: a run killed at a random point, or preempted, resumes to the same record."""
import json
import os
import subprocess
import sys
import time

import pytest
import submitit
from conftest import TINY_SUITE, kill_after_a_checkpoint, write_suite

from harness.job import Job
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite

pytestmark = pytest.mark.slow

RESUMABLE = TINY_SUITE.split("reported:")[0].replace("steps: 12", "steps: 60").replace("val_every: 6", "val_every: 15").replace(
    "method: [protonet, mtl]", "method: [mtl]").replace("queries: 3", "queries: 3\n  meta_batch: 2\n  augment: true\n  lr_patience: 1")


@pytest.fixture
def resumable(tmp_path):
    suite = load_suite(write_suite(tmp_path, RESUMABLE))
    (spec,) = list(expand(suite))
    return spec


def reference_metrics(spec, tmp_path):
    Job(spec, str(tmp_path / "reference"), threads=1)()
    return json.loads(Store(tmp_path / "reference", spec.suite).record_path(spec.run_id).read_text())["metrics"]


def test_killed_at_a_random_point_and_resumed_gives_the_same_metrics(resumable, tmp_path):
    spec = resumable
    results = tmp_path / "results"
    store = Store(results, spec.suite)
    env = {**os.environ, "HARNESS_RESULTS": str(results), "HARNESS_CHECKPOINT_SECONDS": "0"}
    command = [sys.executable, "-c",
               "import sys, pickle; from harness.job import Job; "
               "Job(pickle.loads(bytes.fromhex(sys.argv[1])), sys.argv[2], threads=1)()",
               __import__("pickle").dumps(spec).hex(), str(results)]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = store.run_dir(spec.run_id) / "checkpoint.pt"
    kill_after_a_checkpoint(worker, checkpoint, store.record_path(spec.run_id), delay=(0.2, 1.5))

    Job(spec, str(results), threads=1)()  # restart the same run id: resumes from the checkpoint
    record = json.loads(store.record_path(spec.run_id).read_text())
    assert record["details"]["resumed_from_step"] >= 1
    assert not checkpoint.exists()  # removed once the record is written
    assert record["metrics"] == reference_metrics(spec, tmp_path)


def test_preempted_local_job_requeues_and_resumes_to_the_same_metrics(resumable, tmp_path):
    spec = resumable
    results = tmp_path / "results"
    store = Store(results, spec.suite)
    executor = submitit.LocalExecutor(folder=tmp_path / "submitit")
    executor.update_parameters(timeout_min=10)
    job = executor.submit(Job(spec, str(results), threads=1))
    log = store.log_path(spec.run_id)
    deadline = time.time() + 120
    while (not log.exists() or "step 15/" not in log.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    # submitit's preemption signal, sent to the worker as Slurm does (LocalJob._interrupt signals the
    # local controller, which does not forward USR2 in submitit 1.5).
    worker_pid = json.loads((store.run_dir(spec.run_id) / "running.json").read_text())["pid"]
    os.kill(worker_pid, submitit.JobEnvironment._usr_sig())
    assert job.result()["status"] == "done"
    text = log.read_text()
    assert "stopping at the next step boundary" in text and "resumed from checkpoint" in text
    record = json.loads(store.record_path(spec.run_id).read_text())
    assert record["details"]["resumed_from_step"] >= 15
    assert record["metrics"] == reference_metrics(spec, tmp_path)
