"""Shared fixtures: tiny suites on the real Omniglot data, written into a temp folder;
a real Slurm for tests marked `slurm`."""
from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

TINY_SUITE = """
name: tiny
paper: "test paper"
defaults:
  ways: 5
  queries: 3
  steps: 12
  val_every: 6
  val_episodes: 10
  test_episodes: 40
  test_queries: 5
  device: cpu
grid:
  dataset: [omniglot]
  shots: [1]
  method: [protonet, mtl]
  seed: [0]
resources:
  cpus: 1
  timeout_min: 10
reported:
  - {dataset: omniglot, shots: 1, method: protonet, value: 90.0, interval: 1.0, kind: ci95, episodes: 600, source: {paper: "test paper", table: "Table 1"}}
"""


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (small models: faster, and no oversubscription)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def default_sigint() -> None:
    """preexec_fn for a child that is sent SIGINT: a shell's background job (`cmd &`) starts
    with SIGINT ignored, which its children inherit and Python then keeps; a terminal's
    Ctrl-C reaches a process whose SIGINT is the default."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def quiet(_line: str) -> None:
    """A trainer log that prints nothing."""


def write_suite(folder: Path, text: str = TINY_SUITE, name: str = "tiny.yaml") -> Path:
    path = Path(folder) / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def tiny_suite(tmp_path) -> Path:
    return write_suite(tmp_path)


@pytest.fixture
def results(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "results"
    monkeypatch.setenv("HARNESS_RESULTS", str(folder))
    return folder


# ---------------------------------------------------------------- a real Slurm

def slurm_unreachable() -> str | None:
    """Why no Slurm can be reached, or None when `sinfo` answers."""
    if shutil.which("sinfo") is None:
        return "sinfo is not installed"
    try:
        done = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"sinfo did not answer: {error}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"sinfo exited {done.returncode}: {lines[-1] if lines else 'no output'}"
    return None


@pytest.fixture(scope="session")
def slurm() -> None:
    """Skip without a reachable Slurm; fail instead when HARNESS_EXPECT_SLURM=1 (CI brought one up).

    Every test marked `slurm` uses it (see pytest_collection_modifyitems).
    """
    why = slurm_unreachable()
    if why is None:
        return
    if os.environ.get("HARNESS_EXPECT_SLURM") == "1":
        pytest.fail(f"HARNESS_EXPECT_SLURM=1 but no Slurm is reachable: {why}", pytrace=False)
    pytest.skip(f"no Slurm reachable ({why}); start one with scripts/local_slurm.sh up")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("slurm") is not None and "slurm" not in getattr(item, "fixturenames", ()):
            item.fixturenames.insert(0, "slurm")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def kill_after_a_checkpoint(worker, checkpoint: Path, finished: Path, timeout: float = 120,
                            delay: tuple = (0.1, 1.0)) -> None:
    """SIGKILL a training subprocess at a random instant after its first checkpoint exists;
    assert it was killed before it finished (``finished``: what it writes at the end)."""
    import random
    import signal

    wait_until(checkpoint.exists, timeout, "a checkpoint", interval=0.02)
    time.sleep(random.uniform(*delay))
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert not finished.exists(), "the run finished before it could be killed"
