"""`harness compare`: two results folders, or one suite at two git revisions; cells matched
by config values without the seed; identical / moved (beyond a margin, Benjamini-Hochberg
over the cells) / unchanged (TOST) / inconclusive by hand against scipy; one seed a side
gives no verdict; --margin, --fail-on-change (only on moved); no cell in common: exit 2."""
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


def seed_means(values: dict, cell) -> list:
    return [values[cell][s][0] for s in sorted(values[cell])]


def test_cells_match_across_run_ids_and_the_verdicts_by_hand(two_sides):
    """Shared seeds: B - A paired over them (scipy's ttest_rel); moved beyond δ at a 5% false
    discovery rate over the cells (scipy's false_discovery_control); unchanged by TOST."""
    tmp_path, _, a, b = two_sides
    sides = [compare.read_side(x, compare.suite_folder(tmp_path / x, None), None, None) for x in "AB"]
    margin = 2.0
    result = compare.compare(*sides, margin=margin)
    assert len(result.changes) == 3 and [c.values["method"] for c in result.only_b] == ["mtl"]
    assert result.margins == {"fewshot": 2.0} and result.margin_source == "--margin"
    p_moved = []
    for change in result.changes:
        cell = (change.cell.values["shots"], change.cell.values["method"])
        diffs = np.subtract(seed_means(b, cell), seed_means(a, cell))
        test = scipy_stats.ttest_rel(seed_means(b, cell), seed_means(a, cell))
        d, se, df = diffs.mean(), scipy_stats.sem(diffs), len(diffs) - 1
        assert change.difference.difference == pytest.approx(d) and change.difference.paired
        assert change.difference.p_value == pytest.approx(test.pvalue)
        half = scipy_stats.t.ppf(0.95, df) * se
        assert (change.low, change.high) == (pytest.approx(d - half), pytest.approx(d + half))
        # p of |B - A| <= δ at its least favourable point |B - A| = δ
        p = scipy_stats.t.sf((abs(d) - margin) / se, df) + scipy_stats.t.cdf((-abs(d) - margin) / se, df)
        assert change.p_moved == pytest.approx(p)
        p_moved.append(p)
        tost = max(scipy_stats.ttest_1samp(diffs, -margin, alternative="greater").pvalue,
                   scipy_stats.ttest_1samp(diffs, margin, alternative="less").pvalue)
        assert change.p_unchanged == pytest.approx(tost)
    q = scipy_stats.false_discovery_control(p_moved)
    for change, q_value in zip(result.changes, q):
        assert change.q_moved == pytest.approx(q_value)
        expected = "moved" if q_value <= 0.05 else "unchanged" if change.p_unchanged <= 0.05 else "inconclusive"
        assert change.verdict == expected
    verdicts = {c.cell.values["method"]: c.verdict for c in result.changes if c.cell.values["shots"] == 1}
    assert verdicts == {"protonet": "moved", "mtl": "unchanged"}  # +6 points; no change at all
    assert all(c.better for c in result.changes if c.cell.values["method"] == "protonet")


def test_identical_records_are_identical_and_one_seed_a_side_has_no_verdict(tmp_path):
    suite = load_suite(write_suite(tmp_path, GRID, name="grid.yaml"))
    fill(tmp_path / "A", suite, {})
    result = compare.compare(*[compare.read_side(x, tmp_path / "A" / suite.name, None, None) for x in "AB"], margin=1.0)
    assert {c.verdict for c in result.changes} == {"identical"} and not result.moved
    fill(tmp_path / "C", suite, {}, seeds={0})
    fill(tmp_path / "D", suite, {"protonet": 9.0}, seeds={0}, rng=np.random.default_rng(5))
    one = compare.compare(*[compare.read_side(x, tmp_path / x / suite.name, suite.family, None) for x in "CD"], suite, margin=1.0)
    assert {c.verdict for c in one.changes} == {"no verdict"}  # even the 9-point move: its interval would hold episodes only


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


def test_with_a_suite_file_only_its_cells_count(two_sides):
    tmp_path, suite, a, b = two_sides
    narrow = load_suite(write_suite(tmp_path, GRID.replace("shots: [1, 5]", "shots: [1]"), name="narrow.yaml"))
    result = compare.compare(*[compare.read_side(x, tmp_path / x / suite.name, narrow.family, None) for x in "AB"], narrow)
    assert sorted(c.cell.values["method"] for c in result.changes) == ["mtl", "protonet"]
    assert result.outside == 3 + 6 and not result.only_b


def test_cli_folders_markdown_json_margin_and_fail_on_change(two_sides):
    tmp_path, suite, a, b = two_sides
    shown = harness_cli(tmp_path, "compare", "A", "B", "--suite", "grid.yaml", "--margin", "2")
    assert shown.returncode == 0, shown.stderr
    assert "**moved** (better)" in shown.stdout and "Only in B" in shown.stdout and "| shots" in shown.stdout
    assert "δ = 2 (--margin)" in shown.stdout and "Benjamini-Hochberg" in shown.stdout and "| unchanged " in shown.stdout
    as_json = json.loads(harness_cli(tmp_path, "compare", "A/tiny", "B/tiny", "--format", "json", "--margin", "2").stdout)
    assert as_json["moved"] == 2 and len(as_json["only_b"]) == 1 and as_json["only_a"] == []
    assert {c["verdict"] for c in as_json["cells"] if c["config"]["method"] == "protonet"} == {"moved"}
    assert as_json["margins"] == {"fewshot": 2.0} and as_json["margin_source"] == "--margin"
    failed = harness_cli(tmp_path, "compare", "A", "B", "--fail-on-change", "--margin", "2")
    assert failed.returncode == 1 and "2 of 3 cells moved beyond δ = 2 (--margin" in failed.stderr
    # the suite's report margin: a 6-point move is within δ = 8, so nothing moved beyond it
    wide = write_suite(tmp_path, GRID + "report: {margin: 8.0}\n", name="wide.yaml")
    calm = harness_cli(tmp_path, "compare", "A", "B", "--suite", str(wide), "--fail-on-change")
    assert calm.returncode == 0 and "δ = 8 (the suite's report margin)" in calm.stdout and "0 moved" in calm.stdout
    unset = harness_cli(tmp_path, "compare", "A", "B")
    assert "No margin: neither --margin nor the suite's `report: {margin: ...}` gives δ" in unset.stdout
    same = harness_cli(tmp_path, "compare", "A", "A", "--fail-on-change")
    assert same.returncode == 0 and "0 moved" in same.stdout and "3 identical" in same.stdout


def test_no_cell_in_common_is_one_line_and_exit_2_even_under_fail_on_change(tmp_path):
    suite = load_suite(write_suite(tmp_path, GRID, name="grid.yaml"))
    fill(tmp_path / "C", suite, {}, skip={(1, "mtl"), (1, "protonet"), (5, "protonet")})
    fill(tmp_path / "D", suite, {}, skip={(5, "mtl"), (5, "protonet"), (1, "mtl")})
    for extra in ([], ["--fail-on-change"]):
        result = harness_cli(tmp_path, "compare", "C", "D", *extra)
        assert_one_line_error(result, "C and D have no cell in common (1 cells only in A, 1 only in B, of 3 and 3 "
                                      "finished runs): nothing to compare")


@pytest.mark.parametrize("args, fragment", [
    (["compare", "A"], "two results folders"),
    (["compare", "A", "nowhere"], "nowhere: no such results folder"),
    (["compare", "A", "B", "--format", "xml"], "--format xml"),
    (["compare", "A", "B", "--metric", "speed"], "--metric speed"),
    (["compare", "grid.yaml", "--rev", "HEAD"], "exactly two revisions"),
    (["compare", "A", "empty"], "has no run folders"),
    (["compare", "A", "B", "--margin", "-1"], "--margin -1: must be a positive number"),
    (["compare", "A", "B", "--margin", "big"], "--margin big: must be a positive number"),
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
    verdicts = {(c["config"]["shots"], c["config"]["method"]): (c["verdict"], c["better"]) for c in document["cells"]}
    assert verdicts[1, "mtl"] == ("moved", False) and len(document["only_b"]) == 1
    assert run("compare", "grid.yaml", "--rev", "HEAD~1", "--rev", "HEAD", "--fail-on-change").returncode == 1
    assert run("compare", "grid.yaml", "--rev", "HEAD", "--rev", "HEAD", "--fail-on-change").returncode == 0
    assert_one_line_error(run("compare", "grid.yaml", "--rev", "nope", "--rev", "HEAD"), "--rev nope")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env["HARNESS_RESULTS"] = str(outside)
    assert_one_line_error(run("compare", "grid.yaml", "--rev", "HEAD~1", "--rev", "HEAD"), "not inside")
