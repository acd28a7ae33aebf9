"""A real Slurm, brought up by scripts/local_slurm.sh, driven through the real submitit.

No mocks: these tests need `scripts/local_slurm.sh up` (root, Debian 12). Without a
reachable Slurm they skip, unless HARNESS_EXPECT_SLURM=1, which turns that into a
failure (for CI jobs that did bring the cluster up): the `slurm` fixture of
conftest.py, used by every test marked `slurm`. Each test is bounded in time, so a
broken accounting setup fails instead of hanging.
"""
from __future__ import annotations

import operator
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import wait_until

submitit = pytest.importorskip("submitit")

pytestmark = pytest.mark.slurm

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "local_slurm.sh"


def call_with_timeout(function, timeout: float):
    """function() in a daemon thread: its value or exception, or TimeoutError (never a hang)."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{getattr(function, '__qualname__', function)} still running after {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def sacct_state(job_id: str) -> str:
    done = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"],
                          capture_output=True, text=True, timeout=15)
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""


def executor(folder: Path, **parameters):
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    ex.update_parameters(timeout_min=5, cpus_per_task=1, name="harness-slurm-test", **parameters)
    return ex


def test_status_and_accounting(slurm):
    status = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30)
    assert config.returncode == 0, config.stderr
    assert re.search(r"^AccountingStorageType\s*=\s*accounting_storage/slurmdbd\s*$", config.stdout, re.M), \
        "accounting is not slurmdbd: submitit hangs on jobs Slurm kills before they write a result"


def test_job_array_of_two_through_submitit(slurm, tmp_path):
    ex = executor(tmp_path / "submitit", slurm_array_parallelism=2)
    with ex.batch():
        jobs = [ex.submit(operator.mul, value, value) for value in (3, 4)]
    try:
        assert len({job.job_id.split("_")[0] for job in jobs}) == 1, [job.job_id for job in jobs]
        assert [call_with_timeout(job.result, 60) for job in jobs] == [9, 16]
    finally:
        for job in jobs:
            job.cancel(check=False)


def test_cancelled_job_ends_cancelled_without_hanging(slurm, tmp_path):
    job = executor(tmp_path / "submitit").submit(time.sleep, 300)
    try:
        wait_until(lambda: sacct_state(job.job_id) == "RUNNING", 30, f"job {job.job_id} to run")
        job.cancel()
        state = wait_until(lambda: sacct_state(job.job_id).startswith("CANCELLED") and sacct_state(job.job_id),
                           30, f"job {job.job_id} to be CANCELLED in sacct")
        assert state.startswith("CANCELLED")
        assert job.done(force_check=True)
        job._results_timeout_s = 1  # submitit waits this long for a result file that never comes
        with pytest.raises(submitit.core.utils.UncompletedJobError):
            call_with_timeout(job.result, 30)
    finally:
        job.cancel(check=False)
