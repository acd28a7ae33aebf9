"""`harness plan --estimate`: the pending runs' wall-clock and GPU-hours from finished runs
of the same method, dataset and backbone, with marked fallbacks, per group and in total."""
import json

import pytest
from conftest import write_suite
from test_cli_errors import harness_cli
from test_store import fake_record

from harness import estimate
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite

DONE_BEFORE = """
name: before
paper: p
defaults: {steps: 5, device: cpu}
grid:
  dataset: [omniglot]
  shots: [1]
  method: [protonet, mtl]
  seed: [0, 1]
"""

NEW = """
name: new
paper: p
defaults: {steps: 5, device: cpu}
grid:
  dataset: [omniglot]
  shots: [5]
  method: [protonet, mtl, maml]
  backbone: [conv4, resnet12]
  seed: [0, 1, 2]
overrides:
  - when: {backbone: resnet12}
    resources: {gpus: 2}
resources: {gpus: 1}
"""

SECONDS = {"protonet": (100.0, 140.0), "mtl": (600.0, 600.0)}


@pytest.fixture
def results(tmp_path):
    before = load_suite(write_suite(tmp_path, DONE_BEFORE, name="before.yaml"))
    store = Store(tmp_path / "results", before.name)
    for spec in expand(before):
        record = fake_record(spec)
        record["timing"] = {"train_seconds": 1.0, "total_seconds": SECONDS[spec.config["method"]][spec.config["seed"]]}
        store.write_record(record)
    return tmp_path


def groups_of(tmp_path, new_done=()):
    suite = load_suite(write_suite(tmp_path, NEW, name="new.yaml"))
    specs = list(expand(suite))
    store = Store(tmp_path / "results", suite.name)
    for spec in specs:
        if (spec.config["method"], spec.config["backbone"], spec.config["seed"]) in new_done:
            record = fake_record(spec)
            record["timing"] = {"total_seconds": 1000.0}
            store.write_record(record)
    scan = store.scan(specs)
    pending = [s for s in specs if scan.states[s.run_id].status == "pending"]
    found = estimate.finished_runs(suite, specs, scan, store.root)
    return {(g.values["method"], g.values["backbone"]): g for g in estimate.estimate(suite, pending, found)}


def test_estimates_match_then_fall_back_and_say_so(results):
    groups = groups_of(results, new_done={("protonet", "conv4", 0)})
    exact = groups["protonet", "conv4"]  # this suite's finished run and the other suite's (conv4, the default)
    assert not exact.fallback and {r.suite for r in exact.basis} == {"new", "before"}
    assert exact.seconds_per_run == pytest.approx((100.0 + 140.0 + 1000.0) / 3)
    assert len(exact.specs) == 2 and exact.gpu_hours == pytest.approx(2 * 1 * exact.seconds_per_run / 3600)
    # no finished resnet12 run: the same method and dataset
    other = groups["protonet", "resnet12"]
    assert other.fallback and other.matched == ("method", "dataset")
    assert other.seconds_per_run == pytest.approx((100.0 + 140.0 + 1000.0) / 3)
    assert other.gpu_hours == pytest.approx(3 * 2 * other.seconds_per_run / 3600)  # 2 GPUs from the override
    mtl = groups["mtl", "conv4"]
    assert not mtl.fallback and mtl.seconds_per_run == 600.0 and {r.suite for r in mtl.basis} == {"before"}
    assert groups["maml", "conv4"].basis == [] and groups["maml", "conv4"].seconds is None
    text = estimate.text(list(groups.values()))
    assert "fallback, same method and dataset" in text and "none: no finished run" in text
    # the basis was made with 1 shot, the pending runs have 5: said beside the estimate
    assert "they differ in shots (1 vs 5)" in estimate.basis_text(mtl)
    assert "backbone ('conv4' vs 'resnet12')" in estimate.basis_text(other)
    assert "Total: 11 of 17 pending runs estimated" in text and "6 without an estimate" in text


def test_dataset_fallback_to_the_method_alone(results, tmp_path):
    other = DONE_BEFORE.replace("name: before", "name: elsewhere").replace("[omniglot]", "[cifar_fs]")
    suite = load_suite(write_suite(tmp_path, other, name="elsewhere.yaml"))
    spec = next(s for s in expand(suite) if s.config["method"] == "protonet")
    record = fake_record(spec)
    record["timing"] = {"total_seconds": 50.0}
    Store(tmp_path / "results", suite.name).write_record(record)
    new = NEW.replace("name: new", "name: mini").replace("[omniglot]", "[mini_imagenet]").replace("method: [protonet, mtl, maml]", "method: [protonet]")
    mini = load_suite(write_suite(tmp_path, new, name="mini.yaml"))
    specs = list(expand(mini))
    scan = Store(tmp_path / "results", mini.name).scan(specs)
    groups = estimate.estimate(mini, specs, estimate.finished_runs(mini, specs, scan, tmp_path / "results"))
    assert all(g.fallback and g.matched == ("method",) for g in groups)
    assert groups[0].seconds_per_run == pytest.approx((100.0 + 140.0 + 50.0) / 3)
    assert "fallback, same method:" in estimate.text(groups)


def test_plan_estimate_on_the_command_line(results):
    write_suite(results, NEW, name="new.yaml")
    shown = harness_cli(results, "plan", "new.yaml", "--estimate")
    assert shown.returncode == 0, shown.stderr
    assert "18 runs: 0 done, 0 failed, 0 running, 18 pending" in shown.stdout
    assert "Estimate for the 18 pending runs" in shown.stdout and "GPU-hours" in shown.stdout
    document = json.loads(harness_cli(results, "plan", "new.yaml", "--estimate", "--format", "json").stdout)
    total = document["estimate"]["total"]
    assert (total["pending"], total["estimated"]) == (18, 12)
    protonet = next(g for g in document["estimate"]["groups"] if (g["method"], g["backbone"]) == ("protonet", "conv4"))
    assert protonet["basis"] == "same method, dataset and backbone" and not protonet["fallback"]
    assert sorted(r["seconds"] for r in protonet["based_on"]) == [100.0, 140.0]
    assert "estimate" not in json.loads(harness_cli(results, "plan", "new.yaml", "--format", "json").stdout)
