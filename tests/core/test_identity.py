"""Run identity from component versions: adding a key at its old default and upgrading
harness keep finished runs; bumping one component's version makes only its runs pending;
code changed under an unchanged version is named in a warning by plan, status and run."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import TINY_SUITE, write_suite
from test_store import fake_record

import harness
from harness import families
from harness.keys import Key
from harness.spec import components, expand
from harness.store import Store
from harness.suite import load_suite

SUITE = TINY_SUITE.replace("seed: [0]", "seed: [0, 1]")


def finished(tmp_path):
    """The tiny suite with a done record for each of its 4 runs (as a worker writes it)."""
    suite = load_suite(write_suite(tmp_path, SUITE))
    store = Store(tmp_path / "results", suite.name)
    family = families.get(suite.family)
    for spec in expand(suite):
        store.write_record({**fake_record(spec), "components": components(family, spec.config)})
    return suite, store


def statuses(suite, store) -> dict:
    specs = list(expand(load_suite(suite.path)))
    scan = store.scan(specs)
    return {spec.run_id: (spec.config["method"], scan.states[spec.run_id].status) for spec in specs}


def test_a_new_key_at_the_old_behaviours_default_keeps_ids_and_records(tmp_path, monkeypatch):
    suite, store = finished(tmp_path)
    before = statuses(suite, store)
    keys = families.get("fewshot").keys
    monkeypatch.setitem(keys, "label_noise", Key(float, 0.0, "a key added in a later release", minimum=0.0))
    after = statuses(suite, store)
    assert after == before and all(status == "done" for _, status in after.values())
    assert all("label_noise" in spec.config for spec in expand(load_suite(suite.path)))
    # a run that sets the new key to another value is a new run
    other = load_suite(write_suite(tmp_path, SUITE.replace("device: cpu", "device: cpu\n  label_noise: 0.1"), "other.yaml"))
    assert not set(spec.run_id for spec in expand(other)) & set(before)


def test_upgrading_harness_keeps_finished_runs(tmp_path, monkeypatch):
    suite, store = finished(tmp_path)
    monkeypatch.setattr(harness, "__version__", "99.0.0")
    assert all(status == "done" for _, status in statuses(suite, store).values())


def test_bumping_one_components_version_makes_only_its_runs_pending(tmp_path, monkeypatch):
    suite, store = finished(tmp_path)
    methods = families.get("fewshot").methods
    entries = methods.entries()
    monkeypatch.setitem(entries, "mtl", dataclasses.replace(entries["mtl"], version="2"))
    after = statuses(suite, store)
    assert sorted(after.values()) == [("mtl", "pending"), ("mtl", "pending"), ("protonet", "done"), ("protonet", "done")]


def test_bumping_a_head_a_method_uses_by_default_makes_that_methods_runs_pending(tmp_path, monkeypatch):
    suite, store = finished(tmp_path)
    heads = families.get("fewshot").registries["eval_head"]
    entries = heads.entries()
    monkeypatch.setitem(entries, "centroid", dataclasses.replace(entries["centroid"], version="2"))  # protonet's own head
    after = statuses(suite, store)
    assert sorted(after.values()) == [("mtl", "done"), ("mtl", "done"), ("protonet", "pending"), ("protonet", "pending")]


# ---------------------------------------------------------------- code changed under the same version

PLUGIN = '''
from harness.api import register
from harness.fewshot.methods.protonet import ProtoNet


@register("fewshot.method", "edited", version="{version}", uses={{"eval_head": "centroid"}})
class Edited(ProtoNet):
    pass
'''


def cli(folder, *args):
    env = {**os.environ, "HARNESS_RESULTS": str(folder / "results")}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_code_changed_under_the_same_version_is_named_by_plan_status_and_run(tmp_path):
    (tmp_path / "edited.py").write_text(textwrap.dedent(PLUGIN.format(version="1")))
    suite = write_suite(tmp_path, TINY_SUITE.split("reported:")[0].replace("method: [protonet, mtl]", "method: [edited]")
                        .replace('paper: "test paper"', 'paper: "test paper"\nplugins: [edited.py]'))
    assert cli(tmp_path, "run", str(suite), "--cluster", "debug", "--quiet").returncode == 0
    assert "stale" not in cli(tmp_path, "plan", str(suite)).stderr
    (tmp_path / "edited.py").write_text(textwrap.dedent(PLUGIN.format(version="1")) + "\n# a later edit\n")
    for command in (["plan"], ["status"], ["run", "--cluster", "debug", "--quiet"]):
        result = cli(tmp_path, *command, str(suite))
        assert result.returncode == 0, result.stderr
        assert ("warning: method 'edited' (edited.py): its source changed since 1 finished run was recorded under "
                "version 1: results may be stale: bump its version, or rerun with --force") in result.stderr
    assert "1 done" in cli(tmp_path, "plan", str(suite)).stdout  # still done: the warning is all
    (tmp_path / "edited.py").write_text(textwrap.dedent(PLUGIN.format(version="2")))
    result = cli(tmp_path, "plan", str(suite))
    assert "1 pending" in result.stdout and "stale" not in result.stderr
