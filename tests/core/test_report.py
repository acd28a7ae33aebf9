"""The report: numbers computed from records by hand and by scipy, the agreement verdict, damage tolerance."""
import math

import numpy as np
import pytest
from conftest import TINY_SUITE, write_suite
from scipy import stats as scipy_stats
from test_store import fake_record

from harness.report import build
from harness.report.generic import compute
from harness.spec import expand
from harness.store import Store
from harness.suite import SuiteError, load_suite

TWO_SEEDS = TINY_SUITE.replace("seed: [0]", "seed: [0, 1, 2]")


@pytest.fixture
def filled(tmp_path):
    suite = load_suite(write_suite(tmp_path, TWO_SEEDS))
    store = Store(tmp_path / "results", suite.name)
    rng = np.random.default_rng(0)
    episodes = {}
    for spec in expand(suite):
        if spec.config["method"] == "protonet":
            episodes[spec.config["seed"]] = rng.normal(89.0, 6.0, size=40)
            store.write_record(fake_record(spec, accuracies=episodes[spec.config["seed"]].tolist()))
    return suite, store, episodes


def test_cells_match_scipy(filled):
    suite, store, episodes = filled
    cells = compute(suite, store).sections[0].cells
    assert len(cells) == 1  # mtl has no records: no row
    cell = cells[0]
    seed_means = [episodes[s].mean() for s in (0, 1, 2)]
    assert cell.mean == pytest.approx(np.mean(seed_means))
    low, high = scipy_stats.t.interval(0.95, 2, loc=np.mean(seed_means), scale=scipy_stats.sem(seed_means))
    assert cell.ci95 == pytest.approx((high - low) / 2)
    for seed in cell.seeds:
        low, high = scipy_stats.t.interval(0.95, 39, loc=episodes[seed.seed].mean(), scale=scipy_stats.sem(episodes[seed.seed]))
        assert seed.within.mean == pytest.approx(episodes[seed.seed].mean()) and seed.within.half_width == pytest.approx((high - low) / 2)
    # reported 90.0 +- 1.0 (ci95 over the 600 episodes of ONE model); the suite sets no margin: no verdict
    assert cell.reported.value == 90.0 and cell.reported.over == "episodes" and cell.reported.count == 600
    assert cell.reported.se == pytest.approx(1.0 / scipy_stats.t.ppf(0.975, 599))
    assert cell.reproduction is None and cell.verdict is None and cell.verdict_note == "no verdict: no margin"
    assert (cell.interval.n, cell.samples) == (3, 40)


def test_the_reproduction_verdict_by_hand(filled):
    """ours - reported: se² = s²/k + s² (the paper's one model) + the shared test set (mean
    cross-seed covariance / n) + the reported se²; df by Welch-Satterthwaite at the 80% upper
    limits; the 90% interval against (-δ, δ)."""
    suite, store, episodes = filled
    suite = load_suite(write_suite(store.root.parent, TWO_SEEDS + "report: {margin: 4.0}\n"))
    (cell,) = compute(suite, store).sections[0].cells
    x = np.array([episodes[s] for s in (0, 1, 2)])
    means = x.mean(axis=1)
    s2 = means.var(ddof=1)
    covariance = np.cov(x)  # rows: seeds; ddof 1 over the 40 episodes
    shared = max(covariance[~np.eye(3, dtype=bool)].mean(), 0.0) / 40
    reported = (1.0 / scipy_stats.t.ppf(0.975, 599)) ** 2
    parts = [(s2 * (1 / 3 + 1), 2.0), (shared, 39.0), (reported, 599.0)]
    parts = [(v, df) for v, df in parts if v > 0]
    widened = [(v * df / scipy_stats.chi2.ppf(0.2, df), df) for v, df in parts]
    df = sum(v for v, _ in widened) ** 2 / sum(v * v / d for v, d in widened)
    se = math.sqrt(sum(v for v, _ in parts))
    difference = means.mean() - 90.0
    half = scipy_stats.t.ppf(0.95, df) * se
    found = cell.reproduction
    assert found.difference == pytest.approx(difference) and found.se == pytest.approx(se)
    assert found.df == pytest.approx(df) and (found.low, found.high) == pytest.approx((difference - half, difference + half))
    p_equivalent = max(scipy_stats.t.sf((difference + 4.0) / se, df), scipy_stats.t.cdf((difference - 4.0) / se, df))
    assert found.p_equivalent == pytest.approx(p_equivalent)
    inside = -4.0 < difference - half and difference + half < 4.0
    assert (cell.verdict == "reproduced") == inside and cell.verdict in ("reproduced", "not reproduced", "inconclusive")


def test_markdown_and_csv(filled):
    suite, store, episodes = filled
    text, warnings = build(suite, store, "markdown")
    assert warnings == []
    assert "| omniglot" in text and "90.00 ± 1.00 (ci95) [1]" in text
    assert "no verdict: no margin" in text and "set `report: {margin: ...}` in the suite" in text
    assert "[1] test paper, Table 1: ci95 over the 600 test episodes of ONE trained model" in text
    assert "a std is taken as the standard error itself" in text and "agree" not in text.lower()
    assert "Runs: 3 done, 0 failed, 0 running, 3 pending" in text
    csv, _ = build(suite, store, "csv")
    header, *rows = csv.strip().splitlines()
    assert header.startswith("row,dataset,ways,shots,method") and ",verdict," in header and "agrees" not in header
    cells = [row for row in rows if row.startswith("cell,")]
    assert len(rows) == 7 and len(cells) == 1 and cells[0].startswith("cell,omniglot,5,1,protonet")


def test_damaged_files_are_warnings_in_the_report(filled):
    suite, store, _ = filled
    victim = next(store.dir.glob("*/record.json"))
    victim.write_text(victim.read_text()[:50])
    (store.dir / "stray.bin").write_bytes(b"\x00\x01")
    text, warnings = build(suite, store, "markdown")
    assert len(warnings) == 2 and any(str(victim) in w for w in warnings)
    assert "2 done" in text and "## Warnings" in text


def test_reported_entry_with_a_backbone_matches_only_that_backbone(tmp_path):
    text = TWO_SEEDS.replace("reported:\n", "reported:\n  - {dataset: omniglot, shots: 1, method: protonet, backbone: resnet12, over: seeds, value: 10.0, source: {paper: other}}\n")
    text = text.replace("{dataset: omniglot, shots: 1, method: protonet, value: 90.0", "{dataset: omniglot, shots: 1, method: protonet, backbone: conv4, value: 90.0")
    text = text.replace("  method: [protonet, mtl]\n", "  method: [protonet, mtl]\n  backbone: [conv4, resnet12]\n")
    suite = load_suite(write_suite(tmp_path, text))
    store = Store(tmp_path / "results", suite.name)
    for spec in expand(suite):
        store.write_record(fake_record(spec, accuracies=[88.0, 90.0, 92.0]))
    cells = {(c.key["method"], c.key["backbone"]): c for c in compute(suite, store).sections[0].cells}
    assert cells["protonet", "conv4"].reported.value == 90.0
    assert cells["protonet", "resnet12"].reported.value == 10.0
    assert cells["mtl", "conv4"].reported is None


def test_a_reported_entry_that_matches_no_run_is_rejected(tmp_path):
    text = TWO_SEEDS.replace("reported:\n", "reported:\n  - {dataset: omniglot, shots: 5, method: protonet, over: seeds, value: 10.0, source: {paper: other}}\n")
    with pytest.raises(SuiteError, match=r"reported\[0\]: matches no run of the grid \(dataset=omniglot, shots=5"):
        load_suite(write_suite(tmp_path, text))


def test_gpu_hours_use_each_runs_own_gpus_from_overrides(tmp_path):
    text = TWO_SEEDS.replace("resources:\n  cpus: 1", "overrides:\n  - when: {method: mtl}\n    resources: {gpus: 2}\nresources:\n  gpus: 1\n  cpus: 1")
    suite = load_suite(write_suite(tmp_path, text))
    store = Store(tmp_path / "results", suite.name)
    for spec in expand(suite):
        record = fake_record(spec, accuracies=[80.0, 90.0])
        record["timing"] = {"total_seconds": 1800.0}
        record["env"] = {"device": "cuda:0" if spec.config["seed"] < 2 else "cpu"}  # seed 2 ran on the CPU
        store.write_record(record)
    cells = {c.key["method"]: c for c in compute(suite, store).sections[0].cells}
    assert cells["protonet"].cost["gpu_hours"] == pytest.approx(2 * 0.5 * 1)  # 2 GPU runs x 0.5 h x 1 GPU
    assert cells["mtl"].cost["gpu_hours"] == pytest.approx(2 * 0.5 * 2)
    assert "GPU-h (all seeds)" in build(suite, store, "markdown")[0]


def test_options_default_to_plots_for_markdown_and_the_suites_baseline(tmp_path):
    from harness import HarnessError
    from harness.report.generic import resolve_options

    suite = load_suite(write_suite(tmp_path, TWO_SEEDS + "report: {baseline: protonet}\n"))
    assert resolve_options(suite, "markdown", None) == {"plots": True, "baseline": "protonet"}
    assert resolve_options(suite, "csv", {"baseline": "mtl"}) == {"plots": False, "baseline": "mtl"}
    assert resolve_options(suite, "json", {"plots": True})["plots"] is True
    with pytest.raises(HarnessError, match=r"--format html: unknown format \(known: markdown, csv, latex, json\)"):
        resolve_options(suite, "html", None)


def test_only_the_reports_own_files_leave_the_warnings(filled):
    from harness.report.collect import collect, report_warnings

    suite, store, _ = filled
    for name in ("REPORT.md", "report.csv", "report.tex", "report.json", "accuracy_vs_training_cost.png", "notes.txt"):
        (store.dir / name).write_text("x")
    scan = collect(suite, store)[1]
    assert len(scan.warnings) >= 1 and report_warnings(scan) == [f"{store.dir / 'notes.txt'}: not a run folder of this harness; ignored"]


def test_a_baseline_filtered_out_leaves_a_row_saying_so(filled, capsys):
    from harness.cli import main

    suite, store, _ = filled
    args = ["--results", str(store.root), "report", str(suite.path), "--no-plots", "--filter", "method=protonet"]
    assert main(args + ["--baseline", "protonet"]) == 0 and "No other method to compare with the baseline." in capsys.readouterr().out
    text, _ = build(suite, store, "markdown", {"plots": False, "baseline": "mtl"})  # mtl has no finished run
    assert "| protonet " in text.split("## Paired comparisons with mtl")[1] and "no baseline run in this group" in text


def test_training_hours_per_run(tmp_path):
    import pandas as pd

    from harness.report.cells import training_hours

    runs = pd.DataFrame({"train_seconds": [3600.0, 1800.0, None], "device": ["cuda:0", "cpu", "cuda:0"],
                         "gpus": [2, 2, 2], "cpus": [4, 4, 4]})
    hours = training_hours(runs)
    assert hours["train_gpu_hours"] == pytest.approx((2.0 + 0.0) / 2)  # the CPU run: no GPU-hours; missing: left out
    assert hours["train_cpu_hours"] == pytest.approx((4.0 + 2.0) / 2)


def test_markdown_tables_are_tabulates_github_tables():
    import random

    from tabulate import tabulate

    from harness.tables import markdown_table

    rng = random.Random(0)
    values = [None, True, False, 0.001, 1e-5, 12345, -3, "omniglot", "", "a ± b", "92.58 ± 0.60", "≈ best"]
    for _ in range(300):
        width = rng.randint(1, 6)
        headers = [rng.choice(["a", "run_id", "mean ± 95% CI (seeds)", "x" * rng.randint(1, 14)]) for _ in range(width)]
        rows = [[rng.choice(values) for _ in range(width)] for _ in range(rng.randint(0, 5))]
        assert markdown_table(rows, headers) == tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
