"""`harness run --until-decided --cluster slurm` against a real Slurm (scripts/local_slurm.sh up),
on the `gauss` family of tests/core/test_until_decided.py: each round is ONE job array of the
round's new seeds only; the same command run again while a round's jobs are queued or
running submits nothing; run again after they ended, it decides and submits the next
round; with --wait it follows round after round to the end, with the same rounds as a run
in the launcher. Skipped without a Slurm, failed instead when HARNESS_EXPECT_SLURM=1 (the
`slurm` fixture of conftest.py). The node has 2 CPUs: every run asks for 1 CPU and 1 GB.
"""
from __future__ import annotations

import subprocess

import pytest
from test_slurm import harness_cli, launches, wait_for_records
from test_until_decided import SUITE, cli_process, records, starts, state, write_gauss

from harness import plugins, rounds, scheduler
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite
from harness.until_decided import specs_of

pytestmark = pytest.mark.slurm

SLURM_SUITE = SUITE.replace("budget:", "resources: {cpus: 1, mem_gb: 1, timeout_min: 10}\nbudget:")


@pytest.fixture
def slurm_results(results, monkeypatch):
    """Results in tmp_path, a fast poll for --wait, the plugins found so far forgotten; every
    job the test launched is cancelled at the end."""
    monkeypatch.setenv("HARNESS_POLL_SECONDS", "1")
    plugins.reset()
    yield results
    plugins.reset()
    ids = {scheduler.base_id(job["job_id"]) for launch in launches(results, "gauss") for job in launch["runs"].values()} \
        if (results / "gauss" / "launches").is_dir() else set()
    if ids:
        subprocess.run(["scancel", *sorted(ids)], capture_output=True, timeout=30, check=False)


def plan_of(path, results):
    """The store and the suite's runs now, the rounds' included."""
    suite = load_suite(path)
    store = Store(results, suite.name)
    found = rounds.load(store)
    return store, specs_of(suite, found) if found else list(expand(suite))


def run_until_decided(path, results, *more: str, timeout: float = 120):
    done = harness_cli("run", str(path), "--until-decided", "--cluster", "slurm", "--quiet", *more, results=results,
                       timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_each_round_is_one_array_of_its_new_seeds_and_running_again_submits_the_next(
        tmp_path, slurm_results):
    path = write_gauss(tmp_path, SLURM_SUITE)
    out = run_until_decided(path, slurm_results)
    assert "round 0 submitted" in out and "job ids: " in out
    (launch,) = launches(slurm_results, "gauss")
    assert [array["size"] for array in launch["arrays"]] == [15]
    assert [entry["launches"] for entry in state(slurm_results)["rounds"]] == [[launch["launch_id"]]]

    store, specs = plan_of(path, slurm_results)
    wait_for_records(store, specs, 300)
    out = run_until_decided(path, slurm_results)  # the first look, then round 1 submitted
    assert "round 1: 3 undecided cells get new seeds (6 runs)" in out and "round 1 submitted" in out
    first, second = launches(slurm_results, "gauss")
    assert first == launch and [array["size"] for array in second["arrays"]] == [6]
    round1 = state(slurm_results)["rounds"][1]
    assert round1["launches"] == [second["launch_id"]]
    store, specs = plan_of(path, slurm_results)
    by_id = {spec.run_id: spec.config for spec in specs}
    assert sorted((by_id[run_id]["method"], by_id[run_id]["seed"]) for run_id in second["runs"]) == \
        sorted((a["cell"]["method"], seed) for a in round1["additions"] for seed in a["seeds"])
    assert {a["cell"]["method"] for a in round1["additions"]} == {"exact", "twin", "noisy"}

    out = run_until_decided(path, slurm_results, "--wait", timeout=900)  # round after round, to the end
    assert "every verdict is decided" in out and "## Sequential seeds" in out
    final = state(slurm_results)
    assert final["finished"] is not None
    found = launches(slurm_results, "gauss")
    assert len(found) == len(final["rounds"])
    for entry, launch in zip(final["rounds"], found):
        assert entry["launches"] == [launch["launch_id"]] and len(launch["arrays"]) == 1
        assert len(launch["runs"]) == (15 if entry["round"] == 0 else sum(len(a["seeds"]) for a in entry["additions"]))
    assert all(starts(slurm_results, run_id) == 1 for run_id in records(slurm_results))

    reference = tmp_path / "reference"
    reference.mkdir()
    write_gauss(reference, SLURM_SUITE)
    assert cli_process(reference, "run", "suite.yaml", "--until-decided", "--cluster", "debug", "--quiet").returncode == 0
    assert [e["additions"] for e in final["rounds"]] == [e["additions"] for e in state(reference / "results")["rounds"]]


def test_running_again_while_a_rounds_jobs_are_queued_or_running_submits_nothing(
        tmp_path, slurm_results):
    path = write_gauss(tmp_path, SLURM_SUITE.replace("report: {margin", "defaults: {sleep_s: 60.0}\nreport: {margin"))
    assert "round 0 submitted" in run_until_decided(path, slurm_results)
    out = run_until_decided(path, slurm_results)
    assert "round 0: 15 runs are still queued or running (jobs " in out and "submitted" not in out
    assert len(launches(slurm_results, "gauss")) == 1 and len(state(slurm_results)["rounds"]) == 1
    status = harness_cli("status", str(path), results=slurm_results, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "Sequential seeds: round 0, at most 9 seeds per cell" in status.stdout
    assert "round 0 (the grid): no look yet" in status.stdout
