"""Ctrl-C and SIGKILL of local runs, through the real CLI in its own terminal-like
process group (Ctrl-C with both executors: the fork server and submitit's): interrupted
runs save their checkpoints every time and resume to the metrics of an uninterrupted
run; the terminal gets one line, not tracebacks; a run whose worker was killed outright
is dispatched again at once."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import default_sigint, wait_until

pytestmark = pytest.mark.slow

# A plugin method whose checkpoint takes 2.5 s to save: longer than the one second
# submitit's local controller gave a worker between SIGINT and SIGKILL.
SLOW_SAVE = '''
import time
from harness.api import register
from harness.fewshot.methods.protonet import ProtoNet


@register("fewshot.method", "slow_save", version="1", uses={"eval_head": "centroid"})
class SlowSave(ProtoNet):
    def state_dict(self, *args, **kwargs):
        time.sleep(2.5)
        return super().state_dict(*args, **kwargs)
'''

SUITE = """
name: interrupt
paper: test
plugins: [slow_save.py]
defaults: {ways: 5, queries: 3, steps: 300, val_every: 300, val_episodes: 5, test_episodes: 20, test_queries: 5, device: cpu}
grid:
  dataset: [omniglot]
  shots: [1]
  method: [slow_save]
  seed: [0, 1]
resources: {cpus: 1, timeout_min: 20}
"""


def cli(folder: Path, results: Path, *args, **popen):
    env = {**os.environ, "HARNESS_RESULTS": str(results), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))", *args]
    return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=default_sigint, **popen)  # noqa: PLW1509 - no threads here


def records(results: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text()) for p in results.glob("interrupt/*/record.json")}


def logged_steps(results: Path) -> int:
    """Training steps both runs have logged so far (the lowest of the two)."""
    logs = list(results.glob("interrupt/*/run.log"))
    if len(logs) < 2:
        return 0
    return min(text.count("step ") for text in (log.read_text() for log in logs))


def make_suite(folder: Path) -> Path:
    (folder / "slow_save.py").write_text(SLOW_SAVE)
    (folder / "suite.yaml").write_text(textwrap.dedent(SUITE))
    return folder


@pytest.fixture
def suite(tmp_path):
    return make_suite(tmp_path)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """seed -> the metrics of an uninterrupted run."""
    folder = make_suite(tmp_path_factory.mktemp("reference"))
    done = cli(folder, folder / "results", "run", "suite.yaml", "--quiet")
    assert done.wait(timeout=600) == 0, done.stderr.read()
    return {r["spec"]["seed"]: r["metrics"] for r in records(folder / "results").values()}


@pytest.mark.parametrize("executor", ["pool", "submitit"])
def test_ctrl_c_saves_every_checkpoint_prints_one_line_and_resumes_identically(suite, reference, executor):
    results = suite / "results"
    run = cli(suite, results, "run", "suite.yaml", "--quiet", "--executor", executor)
    wait_until(lambda: len(list(results.glob("interrupt/*/running.json"))) == 2, 120, "both runs to start")
    time.sleep(3)  # both are training
    os.killpg(run.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole foreground group
    assert run.wait(timeout=120) == 130
    out, err = run.stdout.read(), run.stderr.read()
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err
    assert len([line for line in err.splitlines() if line.strip()]) <= 3, err
    checkpoints = list(results.glob("interrupt/*/checkpoint.pt"))
    assert len(checkpoints) == 2, f"a run lost its checkpoint: {checkpoints}\n{err}"
    assert not records(results)
    assert not list(results.glob("interrupt/*/running.json"))
    # the stopped attempts' wall-clock, each past the 3 s of training and the 2.5 s save
    stopped = {p.parent.name: json.loads(p.read_text())["seconds"] for p in results.glob("interrupt/*/attempts.json")}
    assert len(stopped) == 2 and all(len(s) == 1 and s[0] > 5 for s in stopped.values()), stopped
    resumed = cli(suite, results, "run", "suite.yaml", "--quiet")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    logs = [p.read_text() for p in results.glob("interrupt/*/run.log")]
    assert all("resumed from checkpoint at step" in log for log in logs)
    after = {r["spec"]["seed"]: r["metrics"] for r in records(results).values()}
    assert after == reference
    for run_id, record in records(results).items():  # the total counts both attempts
        timing = record["timing"]
        assert timing["attempts"] == 2 and timing["total_seconds"] > stopped[run_id][0] + timing["train_seconds"]
    assert not list(results.glob("interrupt/*/attempts.json"))


def test_a_run_killed_outright_is_run_again_at_once_to_the_same_record(suite, reference):
    results = suite / "results"
    run = cli(suite, results, "run", "suite.yaml", "--quiet", "--max-parallel", "1", "--filter", "seed=0")
    wait_until(lambda: list(results.glob("interrupt/*/running.json")), 120, "the run to start")
    time.sleep(3)
    os.killpg(run.pid, signal.SIGKILL)  # the launcher, the controller and the worker, at once
    run.wait(timeout=30)
    plan = cli(suite, results, "plan", "suite.yaml", "--filter", "seed=0")
    out = plan.communicate(timeout=120)[0]
    assert out.splitlines()[-1] == "1 runs: 0 done, 0 failed, 0 running, 1 pending"
    again = cli(suite, results, "run", "suite.yaml", "--quiet", "--filter", "seed=0")
    assert again.wait(timeout=600) == 0, again.stderr.read()
    (record,) = records(results).values()
    assert record["metrics"] == reference[0]
