"""Shared fixtures: tiny suites on the real Omniglot data, written into a temp folder."""
from __future__ import annotations

import textwrap
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
