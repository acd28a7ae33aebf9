"""`harness compare`: two results folders, or one suite at two git revisions; cells matched
by config values without the seed; Welch intervals that match scipy; --fail-on-change."""
import json
import os
import subprocess

import numpy as np
import pytest
from conftest import TINY_SUITE, write_suite
from scipy import stats as scipy_stats
from test_cli_errors import assert_one_line_error, harness_cli
from test_store import fake_record

from harness import compare
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite

GRID = TINY_SUITE.replace("seed: [0]", "seed: [0, 1, 2]").replace("shots: [1]", "shots: [1, 5]")


def fill(results, suite, shift: dict, skip=(), seeds=None, run_id=None, rng=None):
    """Records for every run of ``suite`` in ``results``: accuracies ~ N(80 + shift[method], 4)."""
    rng = rng or np.random.default_rng(0)
    store = Store(results, suite.name)
    values = {}
    for spec in expand(suite):
        cell = (spec.config["shots"], spec.config["method"])
        if cell in skip or (seeds is not None and spec.config["seed"] not in seeds):
            continue
        accuracies = rng.normal(80 + shift.get(spec.config["method"], 0.0), 4, size=60).tolist()
        record = fake_record(spec, accuracies=accuracies)
        if run_id is not None:  # as after a component's version bump: other run ids, same configs
            record["run_id"] = run_id(spec)
        store.write_record(record)
        values.setdefault(cell, {})[spec.config["seed"]] = (record["metrics"]["accuracy"], accuracies)
    return values


@pytest.fixture
def two_sides(tmp_path):
    suite = load_suite(write_suite(tmp_path, GRID, name="grid.yaml"))
    a = fill(tmp_path / "A", suite, {}, skip={(5, "mtl")})
    b = fill(tmp_path / "B", suite, {"protonet": 6.0}, rng=np.random.default_rng(1),
             run_id=lambda spec: "f" + spec.run_id[1:])
    return tmp_path, suite, a, b


def test_cells_match_across_run_ids_and_welch_matches_scipy(two_sides):
    tmp_path, suite, a, b = two_sides
    sides = [compare.read_side(x, compare.suite_folder(tmp_path / x, None), None, None) for x in "AB"]
    result = compare.compare(*sides)
    assert len(result.changes) == 3 and [c.values["method"] for c in result.only_b] == ["mtl"]
    for change in result.changes:
        cell = (change.cell.values["shots"], change.cell.values["method"])
        a_values, b_values = [v for v, _ in a[cell].values()], [v for v, _ in b[cell].values()]
        test = scipy_stats.ttest_ind(b_values, a_values, equal_var=False)
        low, high = test.confidence_interval(0.95)
        d = change.difference
        assert d.difference == pytest.approx(np.mean(b_values) - np.mean(a_values))
        assert (d.low, d.high) == (pytest.approx(low), pytest.approx(high))
        assert change.moved == (low > 0 or high < 0)
        assert "Welch over seeds" in change.how and "episodes" in change.how
    protonet = [c for c in result.changes if c.cell.values["method"] == "protonet"]
    assert all(c.verdict == "better" for c in protonet)


def test_a_record_without_a_key_at_its_default_is_in_the_same_cell(tmp_path):
    suite = load_suite(write_suite(tmp_path, GRID, name="grid.yaml"))
    fill(tmp_path / "A", suite, {})
    store = Store(tmp_path / "B", suite.name)
    for spec in expand(suite):
        record = fake_record(spec)
        record["spec"] = {k: v for k, v in spec.config.items() if k != "backbone"}  # written before the key existed
        store.write_record(record)
    result = compare.compare(*[compare.read_side(x, tmp_path / x / suite.name, None, None) for x in "AB"])
    assert len(result.changes) == 4 and not result.only_a and not result.only_b


def test_one_seed_a_side_uses_the_episodes_paired(tmp_path):
    suite = load_suite(write_suite(tmp_path, GRID, name="grid.yaml"))
    a = fill(tmp_path / "A", suite, {}, seeds={0})
    b = fill(tmp_path / "B", suite, {"protonet": 1.0}, seeds={0}, rng=np.random.default_rng(5))
    result = compare.compare(*[compare.read_side(x, tmp_path / x / suite.name, suite.family, None) for x in "AB"], suite)
    change = next(c for c in result.changes if (c.cell.values["shots"], c.cell.values["method"]) == (1, "protonet"))
    low, high = scipy_stats.ttest_rel(b[1, "protonet"][0][1], a[1, "protonet"][0][1]).confidence_interval(0.95)
    assert (change.difference.low, change.difference.high) == (pytest.approx(low), pytest.approx(high))
    assert "paired t over episodes" in change.how


def test_with_a_suite_file_only_its_cells_count(two_sides):
    tmp_path, suite, a, b = two_sides
    narrow = load_suite(write_suite(tmp_path, GRID.replace("shots: [1, 5]", "shots: [1]"), name="narrow.yaml"))
    result = compare.compare(*[compare.read_side(x, tmp_path / x / suite.name, narrow.family, None) for x in "AB"], narrow)
    assert sorted(c.cell.values["method"] for c in result.changes) == ["mtl", "protonet"]
    assert result.outside == 3 + 6 and not result.only_b


def test_cli_folders_markdown_json_and_fail_on_change(two_sides):
    tmp_path, suite, a, b = two_sides
    shown = harness_cli(tmp_path, "compare", "A", "B", "--suite", "grid.yaml")
    assert shown.returncode == 0, shown.stderr
    assert "**better**" in shown.stdout and "Only in B" in shown.stdout and "| shots" in shown.stdout
    as_json = json.loads(harness_cli(tmp_path, "compare", "A/tiny", "B/tiny", "--format", "json").stdout)
    assert as_json["moved"] >= 2 and len(as_json["only_b"]) == 1 and as_json["only_a"] == []
    assert {c["verdict"] for c in as_json["cells"] if c["config"]["method"] == "protonet"} == {"better"}
    failed = harness_cli(tmp_path, "compare", "A", "B", "--fail-on-change")
    assert failed.returncode == 1 and "cells moved" in failed.stderr
    same = harness_cli(tmp_path, "compare", "A", "A", "--fail-on-change")
    assert same.returncode == 0 and "0 moved" in same.stdout


@pytest.mark.parametrize("args, fragment", [
    (["compare", "A"], "two results folders"),
    (["compare", "A", "nowhere"], "nowhere: no such results folder"),
    (["compare", "A", "B", "--format", "xml"], "--format xml"),
    (["compare", "A", "B", "--metric", "speed"], "--metric speed"),
    (["compare", "grid.yaml", "--rev", "HEAD"], "exactly two revisions"),
    (["compare", "A", "empty"], "has no run folders"),
])
def test_bad_compare_input_is_one_line(two_sides, args, fragment):
    tmp_path = two_sides[0]
    (tmp_path / "empty").mkdir()
    assert_one_line_error(harness_cli(tmp_path, *args), fragment)


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false", *args],
                   cwd=repo, check=True, capture_output=True)


def test_a_suite_at_two_git_revisions(tmp_path):
    repo = tmp_path / "lab"
    repo.mkdir()
    git(repo, "init", "-q")
    suite = load_suite(write_suite(repo, GRID, name="grid.yaml"))
    fill(repo / "results", suite, {}, skip={(5, "mtl")})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first results")
    for path in (repo / "results").rglob("record.json"):
        path.unlink()
    fill(repo / "results", suite, {"mtl": -7.0}, rng=np.random.default_rng(3), run_id=lambda spec: "e" + spec.run_id[1:])
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "after the fix")
    (repo / "results" / suite.name / "REPORT.md").write_text("uncommitted files are not read\n")
    env = {**os.environ, "HARNESS_RESULTS": str(repo / "results")}
    run = lambda *args: subprocess.run(["python", "-m", "harness.cli", *args], cwd=repo, env=env, capture_output=True,
                                       text=True, timeout=60)
    shown = run("compare", "grid.yaml", "--rev", "HEAD~1", "--rev", "HEAD", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["a"]["label"] == "HEAD~1" and document["a"]["runs"] == 9 and document["b"]["runs"] == 12
    verdicts = {(c["config"]["shots"], c["config"]["method"]): c["verdict"] for c in document["cells"]}
    assert verdicts[1, "mtl"] == "worse" and len(document["only_b"]) == 1
    assert run("compare", "grid.yaml", "--rev", "HEAD~1", "--rev", "HEAD", "--fail-on-change").returncode == 1
    assert run("compare", "grid.yaml", "--rev", "HEAD", "--rev", "HEAD", "--fail-on-change").returncode == 0
    assert_one_line_error(run("compare", "grid.yaml", "--rev", "nope", "--rev", "HEAD"), "--rev nope")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env["HARNESS_RESULTS"] = str(outside)
    assert_one_line_error(run("compare", "grid.yaml", "--rev", "HEAD~1", "--rev", "HEAD"), "not inside")
