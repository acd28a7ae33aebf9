"""The multi-task family through the whole line: suite -> plan -> run -> record -> report.

Suites choose their family with the top-level `family` key; bad multi-task suites give
one-line errors; run ids are pinned; the report's statistics match scipy; a tiny real
Multi-MNIST suite runs end to end through the CLI, twice to the same records.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from csv import DictReader
from pathlib import Path

import numpy as np
import pytest
from conftest import default_sigint, write_suite
from scipy import stats as scipy_stats
from test_cli_errors import assert_nothing_written, assert_one_line_error, harness_cli

from harness import families
from harness.cli import main
from harness.multitask.report import build, compute
from harness.spec import expand, run_id
from harness.store import Store
from harness.suite import load_suite

REPO = Path(__file__).resolve().parents[2]
OPTIMIZERS = families.get("multitask").keys["method"].choices.names()

TINY = """
name: tiny_mt
family: multitask
paper: "test paper"
defaults:
  epochs: 2
  batch_size: 64
  train_images: 256
  lr: 0.01
  device: cpu
grid:
  dataset: [multi_mnist]
  method: [unitary, pcgrad]
  seed: [0, 1]
resources:
  cpus: 1
  timeout_min: 10
"""


def test_the_shipped_multitask_suites_load_with_every_optimizer():
    quick = load_suite(REPO / "suites" / "quickstart_multitask.yaml")
    assert quick.family == "multitask"
    specs = list(expand(quick))
    assert len(specs) == 36 and {s.config["method"] for s in specs} == set(OPTIMIZERS)
    assert all(s.family == "multitask" and s.config["epochs"] == 8 for s in specs)
    kurin = list(expand(load_suite(REPO / "suites" / "kurin2022.yaml")))
    mnist = [s for s in kurin if s.config["dataset"] == "multi_mnist"]
    # the paper's 12 methods x 10 seeds, the official IMTL and MGDA-UB x 10 seeds, unitary's
    # weight decay x dropout sweep on the 3 selection seeds
    assert len(mnist) == 120 + 20 + 18 and {s.config["seed"] for s in mnist} == set(range(10)) | {100, 101, 102}
    mnist = [s for s in mnist if s.config["seed"] < 10 and "official" not in (s.config.get("imtl_solver"), s.config.get("mgda_solver"))]
    assert len(mnist) == 120
    assert all(s.config["epochs"] == 100 and s.config["lr"] == 0.01 for s in mnist)
    celeba = {s.config["method"]: s.config for s in kurin if s.config["dataset"] == "celeba" and s.config["seed"] == 0}
    assert (celeba["mgda_ub"]["lr"], celeba["mgda_ub"]["weight_decay"]) == (0.0005, 0.0001)
    assert celeba["graddrop_random"]["graddrop_p"] == 0.75


def test_a_suite_without_family_is_few_shot(tiny_suite):
    suite = load_suite(tiny_suite)
    assert suite.family == "fewshot" and all(spec.family == "fewshot" for spec in expand(suite))


def test_multitask_run_id_is_pinned_and_label_names_the_run(tmp_path):
    spec = next(expand(load_suite(write_suite(tmp_path, TINY))))
    # Changes only when a value differs from its default, a version (the family's, the
    # optimizer's, the dataset's or its model's) is bumped or the Multi-MNIST definition
    # changes: update deliberately.
    assert spec.run_id == run_id(spec.config, "multitask") == "cc4836e39cc4"
    assert spec.label() == "multi_mnist unitary seed 0"


BAD = [
    ("unknown-family", TINY.replace("family: multitask", "family: multitusk"), "family: unknown family 'multitusk'"),
    ("few-shot-key", TINY.replace("  epochs: 2", "  shots: 1"), "defaults.shots: unknown key"),
    ("missing-axis", TINY.replace("  method: [unitary, pcgrad]\n", ""), "grid: missing axis 'method'"),
    ("unknown-optimizer", TINY.replace("pcgrad]", "pcgrd]"), "unknown method 'pcgrd'"),
    ("bad-option", TINY.replace("  epochs: 2", "  cagrad_c: -1"), "defaults.cagrad_c: must be >= 0"),
    ("reported-metric", TINY + "reported:\n  - {dataset: multi_mnist, method: unitary, metric: accuracy, over: seeds, value: 1, source: {paper: p}}\n",
     "reported[0].metric: unknown metric 'accuracy' of family multitask (known: average)"),
]


@pytest.mark.parametrize("text, fragment", [pytest.param(t, f, id=i) for i, t, f in BAD])
def test_bad_multitask_suites_exit_2_with_one_line(tmp_path, text, fragment):
    path = write_suite(tmp_path, text)
    result = harness_cli(tmp_path, "plan", str(path))
    assert_one_line_error(result, str(path), fragment)
    assert_nothing_written(tmp_path)


def test_filters_use_the_family_keys(tmp_path, capsys):
    path = write_suite(tmp_path, TINY)
    assert main(["--results", str(tmp_path / "r"), "plan", str(path), "--filter", "method=pcgrad"]) == 0
    assert "2 runs: 0 done" in capsys.readouterr().out
    assert main(["--results", str(tmp_path / "r"), "plan", str(path), "--filter", "shots=1"]) == 2
    assert "unknown key 'shots'" in capsys.readouterr().err


def test_plan_and_report_of_a_multitask_suite_do_not_import_torch(tmp_path):
    path = write_suite(tmp_path, TINY)
    code = ("import sys\nfrom harness.cli import main\n"
            f"assert main(['plan', {str(path)!r}]) == 0\nassert main(['report', {str(path)!r}]) == 0\n"
            "assert 'torch' not in sys.modules\n")
    env = {**os.environ, "HARNESS_RESULTS": str(tmp_path / "results")}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "| multi_mnist | pcgrad   | 1      |" in result.stdout and "No finished runs yet." in result.stdout


# ------------------------------------------------------------------ the report

def fake_record(spec, average, tasks, seconds_per_step, peak, status="done"):
    return {"run_id": spec.run_id, "suite": spec.suite, "status": status, "spec": spec.config,
            "metrics": {"average": average, "tasks": tasks} if status == "done" else {},
            "timing": {"seconds_per_step": seconds_per_step}, "memory": {"cpu_peak_rss_bytes": peak},
            "details": {"directions": {"left": "higher", "right": "higher"}}, "env": {},
            "error": None if status == "done" else {"type": "RuntimeError", "message": "boom\nmore"},
            "log": "/x/run.log", "started": "", "finished": ""}


@pytest.fixture
def filled(tmp_path):
    suite = load_suite(write_suite(tmp_path, TINY.replace("seed: [0, 1]", "seed: [0, 1, 2]").replace(
        "[unitary, pcgrad]", "[unitary, pcgrad, mgda_ub]")))
    store = Store(tmp_path / "results", suite.name)
    rng = np.random.default_rng(1)
    means = {"unitary": 90.0, "pcgrad": 89.5, "mgda_ub": 70.0}
    cost = {"unitary": (0.010, 100 << 20), "pcgrad": (0.015, 120 << 20), "mgda_ub": (0.012, 110 << 20)}
    averages = {}
    for spec in expand(suite):
        method, seed = spec.config["method"], spec.config["seed"]
        if method == "mgda_ub" and seed == 2:
            store.write_record(fake_record(spec, None, None, None, None, status="failed"))
            continue
        left, right = rng.normal(means[method], 0.5, size=2)
        averages.setdefault(method, []).append((left + right) / 2)
        store.write_record(fake_record(spec, (left + right) / 2, {"left": left, "right": right}, *cost[method]))
    return suite, store, averages


def within_best_by_hand(values: dict, margin: float) -> dict:
    """method -> label: the empirical best, and each other method "within δ of the best" when
    the largest over every other method j of the one-sided paired t p-value of
    "method - j <= -δ" (scipy) is at most 5% after Holm over the methods (statsmodels' Holm
    is the same as this step-down, tested in test_tost.py)."""
    best = max(values, key=lambda m: np.mean(list(values[m].values())))
    others = [m for m in values if m != best]
    p = []
    for m in others:
        tests = []
        for j, other in values.items():
            if j != m:
                seeds = sorted(set(values[m]) & set(other))
                x, y = [values[m][s] for s in seeds], [other[s] for s in seeds]
                tests.append(scipy_stats.ttest_rel(np.add(x, margin), y, alternative="greater").pvalue)
        p.append(max(tests))
    order, adjusted, running = np.argsort(p), [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, p[i] * (len(p) - rank)))
        adjusted[i] = running
    labels = {m: ("within δ of the best" if q <= 0.05 else "not shown within δ of the best") for m, q in zip(others, adjusted)}
    return {best: "best", **labels}


def test_report_statistics_match_scipy(filled):
    suite, store, averages = filled
    cells = {cell.key["method"]: cell for cell in compute(suite, store).sections[0].cells}
    for method, values in averages.items():
        low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values))
        assert cells[method].mean == pytest.approx(np.mean(values))
        assert cells[method].ci95 == pytest.approx((high - low) / 2)
    best = max(averages, key=lambda m: np.mean(averages[m]))
    # no margin in the suite: the best, and no verdict for the others ("no margin")
    assert {m: c.vs_best for m, c in cells.items()} == {m: "best" if m == best else "no margin" for m in averages}
    assert cells["mgda_ub"].interval.n == 2
    assert cells["pcgrad"].ratios["time_vs_unitary"] == pytest.approx(1.5)
    assert cells["pcgrad"].ratios["memory_vs_unitary"] == pytest.approx(1.2)
    assert cells["unitary"].ratios["time_vs_unitary"] == 1.0
    # with a margin: within δ of the best by hand (paired by seed: the runs share their data order)
    with_margin = load_suite(write_suite(store.root.parent, suite.path.read_text() + "report: {margin: 1.0}\n"))
    cells = {cell.key["method"]: cell for cell in compute(with_margin, store).sections[0].cells}
    values = {m: dict(enumerate(v)) for m, v in averages.items()}
    assert {m: c.vs_best for m, c in cells.items()} == within_best_by_hand(values, 1.0)
    assert cells["mgda_ub"].vs_best == "not shown within δ of the best"  # 70% against 90%


def test_report_markdown_and_csv(filled):
    suite, store, _ = filled
    text, warnings = build(suite, store, "markdown")
    assert warnings == []
    assert "Runs: 8 done, 1 failed, 0 running, 0 pending" in text and "## multi_mnist" in text
    pcgrad = next(line for line in text.splitlines() if line.startswith("| multi_mnist | pcgrad"))
    assert "15.0 ms" in pcgrad and "| 1.50 " in pcgrad and "| 120 " in pcgrad and "| 1.20 " in pcgrad
    assert "average ± 95% CI" in text and "vs best: against the empirical best of its group" in text
    assert "≈ best" not in text and "no margin" in text
    assert "## Failed runs" in text and "(multi_mnist mgda_ub seed 2): boom (log: /x/run.log)" in text
    csv, _ = build(suite, store, "csv")
    rows = list(DictReader(io.StringIO(csv)))
    assert list(rows[0])[:6] == ["row", "dataset", "method", "seed", "metric", "direction"] and "time_vs_unitary" in rows[0]
    # 8 done runs x (average, left, right) + the failed run's one row; 3 cells x 3 metrics
    assert [r["row"] for r in rows].count("run") == 8 * 3 + 1 and [r["row"] for r in rows].count("cell") == 9
    pcgrad = next(r for r in rows if r["row"] == "cell" and r["method"] == "pcgrad" and r["metric"] == "average")
    assert float(pcgrad["time_vs_unitary"]) == pytest.approx(1.5) and pcgrad["vs_best"] in ("best", "no margin")
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["value"] == "" and failed["error"] == "boom"


def test_lower_is_better_metrics_are_marked(tmp_path):
    from harness.multitask.report import dataset_table
    from harness.report.model import Cell
    from harness.stats import t_interval

    cells = [Cell({"dataset": "cityscapes", "method": "unitary"}, families.get("multitask").headline, (), (), t_interval([50.0]),
                  parts={"segmentation_miou": t_interval([40.0]), "depth_abs_error": t_interval([0.02])}, vs_best="best",
                  cost={"seconds_per_step": 0.1, "peak_bytes": 2**20}, ratios={"time_vs_unitary": 1.0, "memory_vs_unitary": 1.0})]
    table = dataset_table(cells, ["dataset", "method"], families.get("multitask").headline,
                          {"segmentation_miou": "higher", "depth_abs_error": "lower"}, None)[0]
    assert "depth_abs_error ↓" in table and "segmentation_miou ↓" not in table


def test_a_record_without_the_average_is_a_warning(filled):
    suite, store, _ = filled
    victim = next(store.dir.glob("*/record.json"))
    record = json.loads(victim.read_text())
    record["metrics"] = {"accuracy": 1.0}
    victim.write_text(json.dumps(record))
    _, warnings = build(suite, store, "markdown")
    assert len(warnings) == 1 and "done but without metrics.average" in warnings[0]


# ------------------------------------------------------------------ end to end

def test_tiny_multitask_suite_runs_end_to_end_and_reruns_identically(tmp_path):
    path = write_suite(tmp_path, TINY)
    result = harness_cli(tmp_path, "run", str(path), "--cluster", "debug", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    store = Store(tmp_path / "results", "tiny_mt")
    records = {p.parent.name: json.loads(p.read_text()) for p in store.dir.glob("*/record.json")}
    assert len(records) == 4 and all(r["status"] == "done" for r in records.values())
    assert all(set(r["metrics"]["tasks"]) == {"left", "right"} and r["timing"]["steps"] == 8 for r in records.values())
    assert "## multi_mnist" in result.stdout and "| 1.00 " in result.stdout
    again = harness_cli(tmp_path, "run", str(path), "--cluster", "debug", "--quiet")
    assert "0 to run, 4 skipped" in again.stdout
    first = records
    harness_cli(tmp_path, "run", str(path), "--cluster", "debug", "--quiet", "--force")
    second = {p.parent.name: json.loads(p.read_text()) for p in store.dir.glob("*/record.json")}
    assert {k: r["metrics"] for k, r in first.items()} == {k: r["metrics"] for k, r in second.items()}


# ------------------------------------------------------------------ harness data / run on multi-task datasets

def test_data_commands_know_the_multitask_datasets(tmp_path):
    verify = harness_cli(tmp_path, "data", "verify", "multi_mnist")
    assert verify.returncode == 0 and "multi_mnist: built from the MNIST test set" in verify.stdout
    assert "(train 8000, val 1000, test 1000" in verify.stdout
    assert_one_line_error(harness_cli(tmp_path, "data", "prepare", "multi_mnist", "--source", "."), "multi_mnist needs no preparation")
    sources = harness_cli(tmp_path, "data", "sources")
    assert all(f"{name}:" in sources.stdout for name in ("celeba", "cityscapes", "multi_mnist", "cifar_fs"))


def test_a_tiny_celeba_is_refused_by_its_real_counts_and_nothing_is_written(tmp_path):
    root = tmp_path / "data"
    result = harness_cli(tmp_path, "data", "prepare", "celeba", "--source", str(REPO / "tests" / "data" / "multitask" / "celeba"),
                         "--root", str(root))
    assert_one_line_error(result, "celeba", "expected 162,770")
    assert not root.exists() or not any(p for p in root.rglob("*") if p.is_file())


def test_run_refuses_an_unprepared_multitask_dataset_with_the_command_to_type(tmp_path):
    path = write_suite(tmp_path, TINY.replace("[multi_mnist]", "[celeba]"))
    env_root = tmp_path / "empty-data"
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "--cluster", "local"], cwd=tmp_path,
                            env={**os.environ, "HARNESS_RESULTS": str(tmp_path / "results"), "HARNESS_DATA": str(env_root)},
                            capture_output=True, text=True, timeout=60)
    assert_one_line_error(result, "dataset celeba is not prepared", "harness data prepare celeba --source")
    assert_nothing_written(tmp_path)


def test_ctrl_c_saves_a_checkpoint_and_the_next_run_resumes_to_the_same_metrics(tmp_path):
    import pickle
    import signal
    import time

    from harness.job import Job

    text = TINY.replace("epochs: 2", "epochs: 5").replace("[unitary, pcgrad]", "[pcgrad]").replace("[0, 1]", "[0]")
    (spec,) = list(expand(load_suite(write_suite(tmp_path, text))))
    results = tmp_path / "results"
    store = Store(results, spec.suite)
    env = {**os.environ, "HARNESS_CHECKPOINT_SECONDS": "100000"}  # only the signal makes a checkpoint
    code = "import sys, pickle; from harness.job import Job; Job(pickle.loads(bytes.fromhex(sys.argv[1])), sys.argv[2], threads=1)()"
    worker = subprocess.Popen([sys.executable, "-c", code, pickle.dumps(spec).hex(), str(results)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    log = store.log_path(spec.run_id)
    deadline = time.time() + 120
    while (not log.exists() or "epoch 2/5" not in log.read_text()) and time.time() < deadline:
        time.sleep(0.02)
    worker.send_signal(signal.SIGINT)
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode != 0 and "KeyboardInterrupt" in stderr
    assert (store.run_dir(spec.run_id) / "checkpoint.pt").exists() and not store.record_path(spec.run_id).exists()
    assert "received SIGINT: stopping at the next step boundary" in log.read_text()
    assert store.scan([spec]).states[spec.run_id].status == "pending"  # the dead worker's marker does not hold it

    Job(spec, str(results), threads=1)()
    record = json.loads(store.record_path(spec.run_id).read_text())
    assert record["details"]["resumed_from_step"] >= 8 and record["status"] == "done"
    Job(spec, str(tmp_path / "reference"), threads=1)()
    reference = json.loads(Store(tmp_path / "reference", spec.suite).record_path(spec.run_id).read_text())
    assert record["metrics"] == reference["metrics"]


def test_csv_of_two_datasets_is_one_tidy_table_with_each_datasets_own_tasks():
    import pandas as pd

    from harness.multitask.report import render_csv
    from harness.multitask.report_cells import cells_of
    from harness.report.model import Report, Section

    def run(dataset, seed, tasks):
        return {"dataset": dataset, "method": "unitary", "seed": seed, "run_id": f"{dataset}{seed}", "status": "done",
                "average": sum(tasks.values()) / len(tasks), "tasks": tasks, "directions": {name: "higher" for name in tasks},
                "seconds_per_step": 0.1, "peak_bytes": 1000, "error": None, "log": None, "config": {"seed": seed},
                "train_seconds": 10.0, "gpus": 0, "cpus": 1, "device": "cpu"}

    runs = pd.DataFrame([run("multi_mnist", 0, {"left": 90.0, "right": 80.0}), run("multi_mnist", 1, {"left": 92.0, "right": 82.0}),
                         run("celeba", 0, {"Smiling": 70.0})])
    from types import SimpleNamespace

    from harness.report.paired import Pairing

    keys, family = ["dataset", "method"], families.get("multitask")
    metric, suite = family.headline, SimpleNamespace(reported=(), report_options={})
    report = Report(suite, keys, runs, None, [Section(metric, cells_of(suite, runs, keys, metric, Pairing.of(family, metric)))])
    rows = list(DictReader(io.StringIO(render_csv(report))))
    metrics = {(r["row"], r["dataset"]): sorted({x["metric"] for x in rows if (x["row"], x["dataset"]) == (r["row"], r["dataset"])})
               for r in rows}
    assert metrics[("cell", "multi_mnist")] == ["average", "left", "right"] and metrics[("cell", "celeba")] == ["Smiling", "average"]
    left = next(r for r in rows if r["row"] == "cell" and r["metric"] == "left")
    low, high = scipy_stats.t.interval(0.95, 1, loc=91.0, scale=scipy_stats.sem([90.0, 92.0]))
    assert float(left["value"]) == 91.0 and float(left["ci95"]) == pytest.approx((high - low) / 2) and left["seeds"] == "2"
    smiling = next(r for r in rows if r["row"] == "cell" and r["metric"] == "Smiling")
    assert smiling["ci95"] == "" and smiling["direction"] == "higher"  # one seed: no interval


VARIANTS = TINY.replace("""grid:
  dataset: [multi_mnist]
  method: [unitary, pcgrad]
  seed: [0, 1]
""", """grid:
  - dataset: [multi_mnist]
    method: [unitary, imtl]
    seed: [0, 1, 2, 3]
  - dataset: [multi_mnist]
    method: [imtl]
    imtl_solver: [official]
    seed: [0, 1, 2, 3]
report: {baseline: unitary, margin: 1.0}
claims:
  - {name: u, test: not_worse, a: {method: unitary}, b: {method: imtl}, margin: 1.0, quote: q, source: {paper: P}}
""")


def test_a_methods_variant_is_compared_with_the_other_methods_of_its_dataset(tmp_path):
    """imtl_solver is read by imtl alone: the official IMTL is a row of its own, compared with
    unitary paired by seed (as the exact one), ranked against every row, and one more part
    of a claim about imtl; a key every method reads (as a dataset) would split the groups."""
    suite = load_suite(write_suite(tmp_path, VARIANTS))
    store = Store(tmp_path / "results", suite.name)
    means = {("unitary", "exact"): 90.0, ("imtl", "exact"): 89.0, ("imtl", "official"): 85.0}
    values = {}
    for spec in expand(suite):
        key, seed = (spec.config["method"], spec.config["imtl_solver"]), spec.config["seed"]
        average = means[key] + 0.3 * np.sin(seed + len(key[1])) + 0.1 * seed
        values.setdefault(key, {})[seed] = average
        store.write_record(fake_record(spec, average, {"left": average, "right": average}, 0.01, 1 << 20))
    report = compute(suite, store)
    cells = {(c.key["method"], c.key["imtl_solver"]): c for c in report.sections[0].cells}
    assert set(cells) == set(means)
    compared = {(c.key["method"], c.key["imtl_solver"]): c for c in report.sections[0].comparisons}
    assert set(compared) == {("imtl", "exact"), ("imtl", "official")}
    seeds = range(4)
    for key, comparison in compared.items():
        difference = [values[key][s] - values["unitary", "exact"][s] for s in seeds]
        assert comparison.paired and comparison.n == 4
        assert comparison.difference == pytest.approx(np.mean(difference))
    assert cells["unitary", "exact"].vs_best == "best"
    assert cells["imtl", "official"].vs_best == "not shown within δ of the best"  # 5 points behind
    (claim,) = report.claims
    assert [(p.a, p.b) for p in claim.parts] == [("unitary", "imtl"), ("unitary", "imtl (imtl_solver=official)")]
    text, _ = build(suite, store, "markdown")
    assert "no baseline run in this group" not in text
    assert "imtl (imtl_solver=official)" in text
