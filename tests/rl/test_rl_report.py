"""The RL report on hand-made records: success intervals (within [0, 100]) and the labels
against the best by hand, the IQM, mean and probability of improvement with their
stratified bootstrap intervals against scipy, the reward version in every table, cost
ratios to unitary, per-task tables, the CSV, and the curves and performance-profile PNGs
(no band with one seed)."""
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

pytest.importorskip("metaworld")  # run ids hash the installed metaworld version

from test_multitask_suite import within_best_by_hand  # noqa: E402
from test_rl_family import rl_family  # noqa: E402

from harness.rl.report import build, compute  # noqa: E402
from harness.spec import expand  # noqa: E402
from harness.store import Store  # noqa: E402
from harness.suite import load_suite  # noqa: E402

SUITE = """
name: rl_report
family: rl
paper: "test paper"
defaults: {steps: 300, horizon: 150, eval_every: 150, device: cpu}
grid:
  dataset: [mt10]
  method: [unitary, pcgrad, mgda_ub]
  seed: [0, 1, 2]
"""
TASKS = ["reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
         "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3"]
LEVEL = {"unitary": 60.0, "pcgrad": 55.0, "mgda_ub": 10.0}
COST = {"unitary": 0.1, "pcgrad": 0.25, "mgda_ub": 0.15}


def record(spec, rng):
    method = spec.config["method"]
    tasks = {task: float(np.clip(LEVEL[method] + rng.normal(0, 20), 0, 100)) for task in TASKS}
    success = float(np.mean(list(tasks.values())))
    curve = [{"step": 0, "success": 0.0, "tasks": dict.fromkeys(TASKS, 0.0)},
             {"step": 150, "success": success / 2, "tasks": {t: v / 2 for t, v in tasks.items()}},
             {"step": 300, "success": success, "tasks": tasks}]
    return {"run_id": spec.run_id, "suite": spec.suite, "status": "done", "spec": spec.config,
            "metrics": {"success": success, "tasks": tasks, "curve": curve},
            "timing": {"seconds_per_update": COST[method] * (1 + 0.01 * spec.config["seed"]),
                       "env_steps_per_second": 1000.0, "train_seconds": 30.0, "eval_seconds": 2.0, "steps": 300},
            "memory": {}, "env": {}, "details": {}, "started": "", "finished": "", "error": None}


def write(folder, text):
    path = folder / "rl_report.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def filled(tmp_path):
    rl_family()
    suite = load_suite(write(tmp_path, SUITE))
    store = Store(tmp_path / "results", suite.name)
    rng = np.random.default_rng(0)
    records = {}
    for spec in expand(suite):
        records[spec.run_id] = record(spec, rng)
        store.write_record(records[spec.run_id])
    return suite, store, records


def test_success_intervals_and_verdicts_match_scipy(filled):
    suite, store, records = filled
    specs = list(expand(suite))
    cells = {cell.key["method"]: cell for cell in compute(suite, store).sections[0].cells}
    values = {m: [records[s.run_id]["metrics"]["success"] for s in specs if s.config["method"] == m] for m in LEVEL}
    for method, seeds in values.items():
        low, high = scipy_stats.t.interval(0.95, len(seeds) - 1, loc=np.mean(seeds), scale=scipy_stats.sem(seeds))
        assert cells[method].mean == pytest.approx(np.mean(seeds))
        assert cells[method].ci95 == pytest.approx((high - low) / 2)
    best = max(values, key=lambda m: np.mean(values[m]))
    assert cells[best].vs_best == "best" and [c.vs_best for c in cells.values()].count("best") == 1
    assert all(c.vs_best == "no margin" for m, c in cells.items() if m != best)  # the suite sets no margin
    with_margin = load_suite(write(store.root.parent, SUITE + "report: {margin: 10.0}\n"))
    cells = {cell.key["method"]: cell for cell in compute(with_margin, store).sections[0].cells}
    # paired by seed (the same seed fixes the same goals)
    assert {m: c.vs_best for m, c in cells.items()} == within_best_by_hand({m: dict(enumerate(v)) for m, v in values.items()}, 10.0)
    assert cells["mgda_ub"].vs_best == "not shown within δ of the best"  # 10% against 60%
    expected = np.mean([0.25 * (1 + 0.01 * s) for s in range(3)]) / np.mean([0.1 * (1 + 0.01 * s) for s in range(3)])
    assert cells["pcgrad"].ratios["update_vs_unitary"] == pytest.approx(expected)
    reach = [records[s.run_id]["metrics"]["tasks"]["reach-v3"] for s in specs if s.config["method"] == "pcgrad"]
    assert cells["pcgrad"].parts["reach-v3"].mean == pytest.approx(np.mean(reach))


def scores_of(records, suite, method) -> list:
    """Per task, its runs' scores (the bootstrap's strata), in seed order."""
    runs = [records[s.run_id] for s in expand(suite) if s.config["method"] == method]
    return [np.array([run["metrics"]["tasks"][task] for run in runs]) for task in TASKS]


def test_iqm_mean_and_probability_of_improvement_against_scipy(filled):
    suite, store, records = filled
    cells = {cell.key["method"]: cell for cell in compute(suite, store, {"baseline": "unitary"}).sections[0].cells}
    for method in LEVEL:
        tasks = scores_of(records, suite, method)
        iqm, mean = cells[method].aggregates["iqm"], cells[method].aggregates["mean"]
        everything = np.concatenate(tasks)
        assert iqm.value == pytest.approx(scipy_stats.trim_mean(everything, 0.25))
        assert mean.value == pytest.approx(everything.mean())
        # the stratified bootstrap: each task's runs resampled (scipy.stats.bootstrap, one sample per task)
        reference = scipy_stats.bootstrap(tasks, lambda *t, axis=-1: np.concatenate(t, axis=axis).mean(axis=axis),
                                          n_resamples=2000, vectorized=True, method="percentile",
                                          random_state=np.random.default_rng(0))
        assert (mean.low, mean.high) == pytest.approx(tuple(reference.confidence_interval))
        assert 0 <= iqm.low <= iqm.value <= iqm.high <= 100 and iqm.runs == 30 and iqm.tasks == 10
    assert "improvement" not in cells["unitary"].aggregates
    improvement = cells["pcgrad"].aggregates["improvement"]
    x, y = scores_of(records, suite, "pcgrad"), scores_of(records, suite, "unitary")
    by_task = [scipy_stats.mannwhitneyu(a, b).statistic / (len(a) * len(b)) for a, b in zip(x, y)]
    assert improvement.value == pytest.approx(np.mean(by_task)) and 0 <= improvement.low <= improvement.high <= 1
    text, _ = build(suite, store, "markdown", {"baseline": "unitary", "plots": False})
    line = next(l for l in text.splitlines() if l.startswith("| pcgrad "))
    assert f"{improvement.value:.2f} [{improvement.low:.2f}, {improvement.high:.2f}]" in line
    assert f"{cells['pcgrad'].aggregates['iqm'].value:.1f} [" in line and "P(> baseline) [95% CI]" in text


def test_one_seed_has_no_interval_no_band_and_stays_in_bounds(tmp_path):
    from harness.rl.curves import seed_curves_to_band

    rl_family()
    suite = load_suite(write(tmp_path, SUITE.replace("seed: [0, 1, 2]", "seed: [0]")))
    store = Store(tmp_path / "results", suite.name)
    rng = np.random.default_rng(3)
    for spec in expand(suite):
        store.write_record(record(spec, rng))
    text, _ = build(suite, store, "markdown")
    assert "one seed: no interval" in text and (store.dir / "curves.png").exists() and (store.dir / "profiles.png").exists()
    steps, means, lows, highs = seed_curves_to_band([[{"step": 0, "success": 0.0}, {"step": 150, "success": 40.0}]])
    assert steps == [0, 150] and means == [0.0, 40.0] and all(np.isnan(lows)) and all(np.isnan(highs))
    _, _, lows, highs = seed_curves_to_band([[{"step": 0, "success": 0.0}], [{"step": 0, "success": 100.0}]])
    assert lows == [0.0] and highs == [100.0]  # the t-interval (50 ± 635) clipped to [0, 100]


def test_markdown_with_per_task_rows_and_the_curves_png(filled):
    suite, store, _ = filled
    text, warnings = build(suite, store, "markdown", {"per_task": True})
    assert warnings == []
    assert "## mt10" in text and "| mgda_ub " in text and "no margin" in text and "≈ best" not in text
    assert "Rewards: Meta-World reward_function_version v1." in text
    assert "![evaluation curves](curves.png)" in text and "![performance profiles](profiles.png)" in text
    png = store.dir / "curves.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "Success per task" in text and "| peg-insert-side-v3 " in text
    short, _ = build(suite, store, "markdown")
    assert "Success per task" not in short and "× unitary" in short


def test_csv_has_one_row_per_method_with_task_columns(filled):
    suite, store, _ = filled
    text, _ = build(suite, store, "csv")
    lines = text.strip().splitlines()
    assert len(lines) == 4
    header = lines[0].split(",")
    assert {"row", "method", "success", "ci95", "update_vs_unitary", "task:reach-v3", "task:reach-v3:ci95",
            "reward_function_version", "iqm", "iqm_low", "iqm_high", "vs_best"} <= set(header)
    assert all(line.startswith("cell,") and ",v1," in line for line in lines[1:])


def test_no_finished_runs_gives_a_report_without_tables(tmp_path):
    rl_family()
    path = tmp_path / "rl_report.yaml"
    path.write_text(textwrap.dedent(SUITE))
    suite = load_suite(path)
    text, _ = build(suite, Store(tmp_path / "results", suite.name))
    assert "No finished runs yet." in text and not (tmp_path / "results" / suite.name / "curves.png").exists()


def test_rl_claims_name_the_reward_version_in_markdown_and_csv(filled):
    suite, store, records = filled
    claimed = load_suite(write(store.root.parent, SUITE + (
        "claims:\n  - {name: pcgrad-close, test: not_worse, a: {method: pcgrad}, b: {method: unitary}, margin: 20.0,"
        " quote: q, source: {paper: P}}\n")))
    (claim,) = compute(claimed, store).claims
    pcgrad, unitary = ([records[s.run_id]["metrics"]["success"] for s in expand(suite) if s.config["method"] == m]
                       for m in ("pcgrad", "unitary"))
    p = scipy_stats.ttest_rel(np.add(pcgrad, 20.0), unitary, alternative="greater").pvalue  # paired: the same goals
    assert claim.p_value == pytest.approx(p) and claim.verdict == ("supported" if p <= 0.05 else claim.verdict)
    text, _ = build(claimed, store, "markdown", {"plots": False})
    claims_section = text.split("## Claims")[1]
    assert "Rewards: Meta-World reward_function_version v1." in claims_section and "pcgrad-close" in claims_section
    csv_rows = build(claimed, store, "csv")[0].splitlines()
    assert sum(row.startswith("claim,") for row in csv_rows) == 1 and sum(row.startswith("claim_part,") for row in csv_rows) == 1


def test_the_shipped_rl_claims_compare_unitary_with_l2_against_each_smto_per_benchmark(tmp_path, monkeypatch):
    rl_family()
    for method, level in {"imtl": 50.0, "graddrop": 58.0, "rlw_dirichlet": 57.0, "rlw_normal": 56.0}.items():
        monkeypatch.setitem(LEVEL, method, level)
        monkeypatch.setitem(COST, method, 0.2)
    suite = load_suite(Path(__file__).resolve().parents[2] / "suites" / "kurin2022_rl.yaml")
    store = Store(tmp_path / "results", suite.name)
    rng = np.random.default_rng(1)
    for spec in expand(suite):
        if spec.config["dataset"] == "mt10" and spec.config["seed"] < 4:
            store.write_record(record(spec, rng))
    claims = {claim.spec.name: claim for claim in compute(suite, store).claims}
    assert set(claims) == {"unitary-with-l2-matches-or-beats-the-smtos", "actor-l2-does-not-hurt-unitary"}
    smtos = claims["unitary-with-l2-matches-or-beats-the-smtos"]
    # one part per SMTO on MT10 (MT50 has no runs), unitary with actor L2 on side a
    assert sorted(part.b.split(",")[0].removeprefix("method=") for part in smtos.parts) == sorted(
        ["pcgrad", "mgda_ub", "imtl", "graddrop", "rlw_dirichlet", "rlw_normal"]), [p.b for p in smtos.parts]
    assert all(part.cell["dataset"] == "mt10" and "unitary" in part.a and "0.0003" in part.a for part in smtos.parts), [(p.cell, p.a) for p in smtos.parts]
    assert all(part.seeds == (4, 4) for part in smtos.parts)
    # mgda_ub (about 50 points below unitary): unitary is not worse than it by 10 points
    mgda = next(part for part in smtos.parts if part.b.startswith("method=mgda_ub"))
    assert mgda.claim.verdict == "supported"
