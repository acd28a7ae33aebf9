"""The RL report on hand-made records: success intervals and the Welch verdict against scipy,
cost ratios to unitary, per-task tables, the CSV, and the curves PNG."""
import textwrap

import numpy as np
import pytest
from scipy import stats as scipy_stats

pytest.importorskip("metaworld")  # run ids hash the installed metaworld version

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


@pytest.fixture
def filled(tmp_path):
    rl_family()
    path = tmp_path / "rl_report.yaml"
    path.write_text(textwrap.dedent(SUITE))
    suite = load_suite(path)
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
    for method in values:
        if method != best:
            p = scipy_stats.ttest_ind(values[method], values[best], equal_var=False).pvalue
            assert (cells[method].vs_best == "indistinguishable") == (p > 0.05)
    assert cells["mgda_ub"].vs_best == "worse"  # 10% against 60%: clearly worse
    expected = np.mean([0.25 * (1 + 0.01 * s) for s in range(3)]) / np.mean([0.1 * (1 + 0.01 * s) for s in range(3)])
    assert cells["pcgrad"].ratios["update_vs_unitary"] == pytest.approx(expected)
    reach = [records[s.run_id]["metrics"]["tasks"]["reach-v3"] for s in specs if s.config["method"] == "pcgrad"]
    assert cells["pcgrad"].parts["reach-v3"].mean == pytest.approx(np.mean(reach))


def test_markdown_with_per_task_rows_and_the_curves_png(filled):
    suite, store, _ = filled
    text, warnings = build(suite, store, "markdown", {"per_task": True})
    assert warnings == []
    assert "## mt10" in text and "| mgda_ub " in text and "worse" in text
    assert "![evaluation curves](curves.png)" in text
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
    assert {"method", "success", "ci95", "update_vs_unitary", "task:reach-v3", "task:reach-v3:ci95"} <= set(header)


def test_no_finished_runs_gives_a_report_without_tables(tmp_path):
    rl_family()
    path = tmp_path / "rl_report.yaml"
    path.write_text(textwrap.dedent(SUITE))
    suite = load_suite(path)
    text, _ = build(suite, Store(tmp_path / "results", suite.name))
    assert "No finished runs yet." in text and not (tmp_path / "results" / suite.name / "curves.png").exists()
