"""The report's verdicts on a hand-made few-shot store, by hand and against scipy /
statsmodels: a reproduced, a not-reproduced, an inconclusive (with the seeds that would
decide it) and an undecidable cell, a one-seed cell; claims of each test, versus the best
and over several cells, Holm over the suite's claims; `plan --power`; the three words in
every format and no "agrees" or "≈ best" anywhere."""
import importlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import write_suite
from scipy import stats as scipy_stats
from test_store import fake_record

from harness.cli import main
from harness.report import build
from harness.report.generic import compute
from harness.seedplan import VarianceModel, seeds_needed
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite

SEEDS, EPISODES = 5, 40
LEVEL = {("protonet", 1): 90.0, ("mtl", 1): 89.0, ("maml", 1): 80.0, ("protonet", 5): 95.0, ("mtl", 5): 95.5,
         ("maml", 5): 90.0}
TRAIN_SECONDS = {"protonet": 100.0, "mtl": 40.0, "maml": 300.0}
SUITE = """
name: verdicts
paper: "test paper"
defaults: {{ways: 5, queries: 3, steps: 12, val_every: 6, val_episodes: 10, test_episodes: 40, test_queries: 5, device: cpu}}
grid:
  dataset: [omniglot]
  shots: [1, 5]
  method: [protonet, mtl, maml]
  seed: [0, 1, 2, 3, 4]
resources: {{cpus: 2, timeout_min: 10}}
report: {{margin: 3.0}}
reported:
  - {{dataset: omniglot, shots: 1, method: protonet, value: {p1}, interval: 0.2, kind: std, seeds: 5, source: {{paper: A, table: "1"}}}}
  - {{dataset: omniglot, shots: 1, method: mtl, value: {m1}, interval: 0.5, kind: std, seeds: 5, source: {{paper: A, table: "1"}}}}
  - {{dataset: omniglot, shots: 1, method: maml, value: 80.0, interval: 1.0, kind: ci95, episodes: 600, source: {{paper: B}}}}
  - {{dataset: omniglot, shots: 5, method: protonet, value: {p5}, interval: 0.1, kind: sem, seeds: 5, margin: 0.8, source: {{paper: A, table: "2"}}}}
  - {{dataset: omniglot, shots: 5, method: mtl, value: {m5}, interval: 6.0, kind: ci95, episodes: 600, source: {{paper: B}}}}
claims:
  - {{name: mtl-not-worse, test: not_worse, a: {{method: mtl}}, b: {{method: protonet}}, margin: 2.0, quote: "competitive", source: {{paper: A}}}}
  - {{name: mtl-equivalent, test: equivalent, a: {{method: mtl}}, b: {{method: protonet}}, where: {{shots: 5}}, margin: 1.5, quote: "the same", source: {{paper: A}}}}
  - {{name: mtl-best, test: better, a: {{method: mtl}}, b: {{method: [protonet, maml]}}, versus: best, where: {{shots: 5}}, quote: "the best", source: {{paper: A}}}}
  - {{name: mtl-cheaper, test: cost_at_most, a: {{method: mtl}}, b: {{method: maml}}, where: {{shots: 5}}, ratio: 0.5, cost: train_cpu_hours, quote: "cheaper", source: {{paper: A}}}}
"""


def episodes() -> dict:
    """(method, shots, seed) -> per-episode accuracies: shared episode difficulty, a seed
    effect and the seed's own noise on each episode."""
    difficulty = np.random.default_rng(0).normal(0, 1.0, EPISODES)
    found = {}
    for (method, shots), level in LEVEL.items():
        for seed in range(SEEDS):
            rng = np.random.default_rng(1000 * shots + 100 * seed + len(method))
            found[method, shots, seed] = level + difficulty + rng.normal(0, 0.5) + rng.normal(0, 1.5, EPISODES)
    return found


def train_seconds(method: str, seed: int) -> float:
    return TRAIN_SECONDS[method] * (1 + 0.03 * ((seed * len(method)) % 4))


def seed_means(values, method, shots, seeds=range(SEEDS)) -> np.ndarray:
    return np.array([values[method, shots, s].mean() for s in seeds])


@pytest.fixture(scope="module")
def store_of(tmp_path_factory):
    folder = tmp_path_factory.mktemp("verdicts")
    values = episodes()
    text = SUITE.format(p1=round(seed_means(values, "protonet", 1).mean() + 0.1, 3),
                        m1=round(seed_means(values, "mtl", 1).mean() - 12.0, 3),
                        p5=round(seed_means(values, "protonet", 5).mean() + 0.6, 3),
                        m5=round(seed_means(values, "mtl", 5).mean(), 3))
    suite = load_suite(write_suite(folder, text, name="verdicts.yaml"))
    store = Store(folder / "results", suite.name)
    for spec in expand(suite):
        method, shots, seed = (spec.config[k] for k in ("method", "shots", "seed"))
        if (method, shots) == ("maml", 1) and seed > 0:
            continue  # one seed done: no verdict
        record = fake_record(spec, accuracies=values[method, shots, seed].tolist())
        record["timing"] = {"train_seconds": train_seconds(method, seed), "eval_seconds": 1.0}
        record["env"] = {"device": "cpu", "device_name": "x86_64"}
        store.write_record(record)
    return suite, store, values


def table_row(text: str, method: str, shots: int) -> str:
    """The markdown table line of the cell (omniglot, 5 ways, ``shots``, ``method``)."""
    for line in text.splitlines():
        fields = [field.strip() for field in line.strip("|").split("|")]
        if fields[:4] == ["omniglot", "5", str(shots), method]:
            return line
    raise AssertionError(f"no row for {method} {shots}")


def cells_of(suite, store) -> dict:
    return {(c.key["method"], c.key["shots"]): c for c in compute(suite, store).sections[0].cells}


def by_hand(x: np.ndarray, reported: float, se_reported: float, df_reported: float, one_model: bool, margin: float):
    """(difference, 90% interval, p equivalent, p different) of ours - reported (reproduction.py's rule)."""
    k, n = x.shape
    means = x.mean(axis=1)
    s2 = means.var(ddof=1)
    shared = max(np.cov(x)[~np.eye(k, dtype=bool)].mean(), 0.0) / n
    parts = [(s2 * (1 / k + one_model), k - 1.0), (shared * (1 if one_model else 2), n - 1.0),
             (se_reported ** 2, df_reported)]
    parts = [(v, df) for v, df in parts if v > 0]
    widened = [(v * df / scipy_stats.chi2.ppf(0.2, df) if math.isfinite(df) else v, df) for v, df in parts]
    df = sum(v for v, _ in widened) ** 2 / sum(v * v / d for v, d in widened)
    se = math.sqrt(sum(v for v, _ in parts))
    d = means.mean() - reported
    half = scipy_stats.t.ppf(0.95, df) * se
    p_equivalent = max(scipy_stats.t.sf((d + margin) / se, df), scipy_stats.t.cdf((d - margin) / se, df))
    p_different = scipy_stats.t.sf((abs(d) - margin) / se, df) + scipy_stats.t.cdf((-abs(d) - margin) / se, df)
    return d, (d - half, d + half), p_equivalent, p_different, VarianceModel(s2, int(one_model), tuple(
        (v, df) for v, df in [(shared * (1 if one_model else 2), n - 1.0), (se_reported ** 2, df_reported)]))


# ------------------------------------------------------------------ reproduction


@pytest.mark.parametrize("cell, verdict", [(("protonet", 1), "reproduced"), (("mtl", 1), "not reproduced"),
                                           (("protonet", 5), "inconclusive"), (("mtl", 5), "inconclusive")])
def test_each_verdict_by_hand(store_of, cell, verdict):
    suite, store, values = store_of
    found = cells_of(suite, store)[cell]
    x = np.array([values[(*cell, s)] for s in range(SEEDS)])
    entry = found.reported
    d, (low, high), p_equivalent, p_different, model = by_hand(x, entry.value, entry.se, entry.df, entry.over == "episodes",
                                                               entry.margin)
    result = found.reproduction
    assert result.difference == pytest.approx(d) and (result.low, result.high) == pytest.approx((low, high))
    assert result.p_equivalent == pytest.approx(p_equivalent) and result.p_different == pytest.approx(p_different)
    assert found.verdict == verdict
    if verdict == "reproduced":
        assert -entry.margin < low and high < entry.margin
    if verdict == "not reproduced":
        assert high < -entry.margin or low > entry.margin
    if cell == ("protonet", 5):  # decidable: the seeds for 80% power, by the same power computation
        assert entry.margin == 0.8 and not result.cannot_decide
        assert result.plan.seeds == seeds_needed(0.8, model).seeds and result.plan.seeds > SEEDS
        assert f"{result.plan.seeds} seeds would decide it" in found.verdict_note
    if cell == ("mtl", 5):  # a one-model paper with ± 6: its own se (3.06) exceeds what δ = 3 allows
        assert result.cannot_decide and found.verdict_note.startswith("cannot be decided at this margin")
        assert result.plan.smallest_margin > 3.0


def test_one_seed_gives_no_verdict_in_every_format(store_of):
    suite, store, _ = store_of
    cell = cells_of(suite, store)["maml", 1]
    assert cell.verdict is None and cell.verdict_note == "one seed: no verdict"
    markdown, _ = build(suite, store, "markdown", {"plots": False})
    line = table_row(markdown, "maml", 1)
    assert "one seed: no verdict" in line
    rows = [r for r in json.loads(build(suite, store, "json")[0])["cells"] if (r["method"], r["shots"]) == ("maml", 1)]
    assert rows[0]["reproduction"]["verdict"] is None and rows[0]["reproduction"]["note"] == "one seed: no verdict"


def test_the_texts_under_the_table(store_of):
    suite, store, _ = store_of
    text, _ = build(suite, store, "markdown", {"plots": False})
    assert "Verdict (δ = 0.8 or 3 (per entry, column δ), in accuracy's units, %; fixed before the runs)" in text and "| δ " in text
    assert "two one-sided t-tests at 5%" in text and "80% upper confidence limit" in text
    assert "[2] B: ci95 over the 600 test episodes of ONE trained model (se = ci95 / t(0.975, 599); one draw of our " \
           "seed variance added)" in text
    assert "[3] A, 2: sem over 5 seeds (se = sem)" in text
    assert "a std is taken as the standard error itself" in text
    assert "| seeds to decide " in text
    line = table_row(text, "mtl", 5)
    assert "| inconclusive " in line and "| cannot be decided at this margin " in line


# ------------------------------------------------------------------ claims


def paired(values, a, b, shots):
    """Per-seed means of two methods, paired by seed (the same test episodes: few-shot pairs them)."""
    return seed_means(values, a, shots), seed_means(values, b, shots)


def holm(p):
    from statsmodels.stats.multitest import multipletests

    return multipletests(p, method="holm")[1]


def test_claims_by_hand_and_against_statsmodels(store_of):
    weightstats = importlib.import_module("statsmodels.stats.weightstats")
    suite, store, values = store_of
    report = compute(suite, store)
    claims = {c.spec.name: c for c in report.claims}
    # not worse by 2, over two cells (1 and 5 shots): each cell the one-sided paired t of mtl + 2 > protonet
    parts = claims["mtl-not-worse"].parts
    assert [p.cell["shots"] for p in parts] == [1, 5]
    support = []
    for part in parts:
        mtl, proto = paired(values, "mtl", "protonet", part.cell["shots"])
        p = scipy_stats.ttest_rel(mtl + 2.0, proto, alternative="greater").pvalue
        assert part.claim.p_value == pytest.approx(p) and part.claim.estimate == pytest.approx(np.mean(mtl - proto))
        support.append(p)
    # equivalent within 1.5 at 5 shots: statsmodels' paired TOST
    (part,) = claims["mtl-equivalent"].parts
    mtl, proto = paired(values, "mtl", "protonet", 5)
    assert part.claim.p_value == pytest.approx(weightstats.ttost_paired(mtl, proto, -1.5, 1.5)[0])
    # better than the best of protonet and maml at 5 shots: one-sided against each, the empirical best marked
    parts = claims["mtl-best"].parts
    assert [p.b for p in parts] == ["protonet", "maml"] and [p.best for p in parts] == [True, False]
    better = [scipy_stats.ttest_rel(*paired(values, "mtl", b, 5), alternative="greater").pvalue for b in ("protonet", "maml")]
    assert [p.claim.p_value for p in parts] == pytest.approx(better)
    # cost at most 0.5x: the paired t of log CPU core-hours, shown as the ratio of geometric means
    (part,) = claims["mtl-cheaper"].parts
    logs = np.log([train_seconds("mtl", s) for s in range(SEEDS)]) - np.log([train_seconds("maml", s) for s in range(SEEDS)])
    assert part.claim.estimate == pytest.approx(math.exp(logs.mean()))
    assert part.claim.p_value == pytest.approx(scipy_stats.ttest_1samp(logs, math.log(0.5), alternative="less").pvalue)
    # each claim: the largest part's p (intersection-union), then Holm over the suite's four claims
    raw = [max(support), part_p(claims["mtl-equivalent"]), max(better), part_p(claims["mtl-cheaper"])]
    adjusted = holm(raw)
    for name, p in zip(("mtl-not-worse", "mtl-equivalent", "mtl-best", "mtl-cheaper"), adjusted):
        assert claims[name].p_value == pytest.approx(p)
        if p <= 0.05:
            assert claims[name].verdict == "supported"
    assert claims["mtl-cheaper"].verdict == "supported"  # 40 s against 300 s a run
    assert claims["mtl-best"].verdict in ("inconclusive", "refuted")  # protonet is not beaten at 5 shots


def part_p(claim) -> float:
    (part,) = claim.parts
    return part.claim.p_value


def test_a_claim_refuted_in_one_cell_is_refuted(tmp_path):
    """mtl 'better than maml' where it is not (at 1 shot maml is 9 points behind... and at 5
    shots 5.5): flip the claim, maml better than mtl, over both cells: refuted."""
    values = episodes()
    text = SUITE.format(p1=90, m1=90, p5=95, m5=95).split("claims:")[0] + (
        "claims:\n  - {name: maml-better, test: better, a: {method: maml}, b: {method: mtl}, quote: q, source: {paper: A}}\n")
    suite = load_suite(write_suite(tmp_path, text, name="flip.yaml"))
    store = Store(tmp_path / "results", suite.name)
    for spec in expand(suite):
        store.write_record(fake_record(spec, accuracies=values[spec.config["method"], spec.config["shots"],
                                                               spec.config["seed"]].tolist()))
    (claim,) = compute(suite, store).claims
    refute = [scipy_stats.ttest_rel(*paired(values, "maml", "mtl", shots), alternative="less").pvalue for shots in (1, 5)]
    assert claim.verdict == "refuted" and claim.p_refute == pytest.approx(min(holm(refute)))


def test_claims_in_every_format(store_of):
    suite, store, _ = store_of
    markdown, _ = build(suite, store, "markdown", {"plots": False})
    assert "## Claims" in markdown and "“cheaper” (A)" in markdown and "p and p refuted are Holm-adjusted" in markdown
    rows = [r for r in build(suite, store, "csv")[0].splitlines() if r.startswith(("claim,", "claim_part,"))]
    assert sum(r.startswith("claim,") for r in rows) == 4 and sum(r.startswith("claim_part,") for r in rows) == 6
    document = json.loads(build(suite, store, "json")[0])
    assert [c["name"] for c in document["claims"]] == ["mtl-not-worse", "mtl-equivalent", "mtl-best", "mtl-cheaper"]
    assert document["claims"][3]["parts"][0]["quantity"] == "ratio"
    latex, _ = build(suite, store, "latex")
    assert "\\label{tab:verdicts-claims}" in latex and "\\label{tab:verdicts-claim-parts}" in latex


# ------------------------------------------------------------------ plan --power


def test_plan_power_says_how_many_seeds(store_of, capsys):
    suite, store, _ = store_of
    assert main(["--results", str(store.root), "plan", str(suite.path), "--power"]) == 0
    out = capsys.readouterr().out
    assert "How many seeds do I need? (80% power, 5% tests; from the 26 finished runs)" in out
    found = cells_of(suite, store)["protonet", 5].reproduction
    line = table_row(out, "protonet", 5)
    assert f"| {found.plan.seeds} " in line and "| inconclusive " in line
    undecidable = table_row(out, "mtl", 5)
    assert "cannot be decided at this margin" in undecidable
    assert "decided now (reproduced)" in out and "2 finished seeds are needed" in out and "Claims (per part):" in out
    assert main(["--results", str(store.root), "plan", str(suite.path), "--power", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)["seeds_needed"]
    entry = next(e for e in document["reported"] if (e["method"], e["shots"]) == ("protonet", 5))
    assert entry["seeds_needed"] == found.plan.seeds and entry["smallest_margin"] == pytest.approx(found.plan.smallest_margin)


# ------------------------------------------------------------------ the words


def test_every_format_has_the_three_words_and_none_of_the_old_ones(store_of):
    suite, store, _ = store_of
    for fmt in ("markdown", "csv", "latex", "json"):
        text, _ = build(suite, store, fmt, {"plots": False})
        for word in ("reproduced", "not reproduced", "inconclusive"):
            assert word in text, (fmt, word)
        assert "agrees" not in text and "≈ best" not in text and "$\\approx$ best" not in text, fmt


def test_no_source_of_the_report_says_agrees_or_approximately_best():
    root = Path(__file__).resolve().parents[2] / "harness"
    files = [*(root / "report").glob("*.py"), *(root / "multitask").glob("report*.py"), root / "rl" / "report.py",
             root / "rl" / "curves.py", root / "compare.py", root / "stats.py"]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bagrees\b|agreement|AGREES", text), path
        assert "≈ best" not in text or "never" in text, path


def test_a_users_family_gets_verdicts_and_claims_from_the_generic_report(tmp_path):
    """The example plugin's digits family (the generic report): per-image samples, a
    reported number with its verdict, and a claim."""
    from harness import families

    family = families.get("digits")
    assert family.report is None
    text = """
name: digits-claims
family: digits
paper: P
grid: {dataset: [digits], method: [logreg, mlp], seed: [0, 1, 2]}
report: {margin: 2.0}
reported:
  - {dataset: digits, method: logreg, value: 95.0, samples: 899, source: {paper: P}}
claims:
  - {name: mlp-not-worse, test: not_worse, a: {method: mlp}, b: {method: logreg}, quote: q, source: {paper: P}}
"""
    suite = load_suite(write_suite(tmp_path, text, name="digits.yaml"))
    store = Store(tmp_path / "results", suite.name)
    truth = np.random.default_rng(0).random(899)  # how hard each test image is
    means = {}
    for spec in expand(suite):
        rng = np.random.default_rng(10 * spec.config["seed"] + len(spec.config["method"]))
        correct = np.where(rng.random(899) * 0.2 + truth * 0.85 < 0.92, 100.0, 0.0)
        means.setdefault(spec.config["method"], []).append(correct.mean())
        store.write_record({"run_id": spec.run_id, "suite": spec.suite, "status": "done", "spec": spec.config,
                            "metrics": {"accuracy": float(correct.mean()), "correct": correct.tolist()},
                            "timing": {}, "memory": {}, "env": {}, "started": "", "finished": "", "error": None})
    report = compute(suite, store)
    cell = next(c for c in report.sections[0].cells if c.key["method"] == "logreg")
    assert cell.reported.over == "episodes" and cell.verdict in ("reproduced", "not reproduced", "inconclusive")
    (claim,) = report.claims
    p = scipy_stats.ttest_rel(np.add(means["mlp"], 2.0), means["logreg"], alternative="greater").pvalue
    assert claim.p_value == pytest.approx(p)
    markdown, _ = build(suite, store, "markdown", {"plots": False})
    assert "## Claims" in markdown and "mlp-not-worse" in markdown and cell.verdict in markdown


# ------------------------------------------------------------------ multi-task samples, bounds


MULTITASK = """
name: mt-samples
family: multitask
paper: P
defaults: {epochs: 2, batch_size: 64, train_images: 256, lr: 0.01, device: cpu}
grid:
  dataset: [multi_mnist]
  method: [unitary, pcgrad]
  seed: [0, 1, 2]
report: {margin: 2.0}
reported:
  - {dataset: multi_mnist, method: unitary, value: 90.0, interval: 0.4, kind: std, seeds: 10, source: {paper: P}}
"""


def test_multitask_per_image_samples_enter_the_verdict_and_runs_without_them_do_not_crash(tmp_path):
    """Per-image scores (``example_scores``) give the shared test-set error of the verdict,
    as the few-shot episodes do; a run without them (samples_required=False: Cityscapes'
    mIoU) is no crash, and the table says its cell is conditional on the test set."""
    from harness import families
    from harness.multitask.report import build as multitask_build
    from harness.multitask.report import compute as multitask_compute

    metric = families.get("multitask").headline
    assert metric.samples == "example_scores" and not metric.samples_required and metric.bounds == (0, 100)
    suite = load_suite(write_suite(tmp_path, MULTITASK, name="mt.yaml"))
    store = Store(tmp_path / "results", suite.name)
    hard = np.random.default_rng(0).random(500)
    scores = {}
    for spec in expand(suite):
        method, seed = spec.config["method"], spec.config["seed"]
        rng = np.random.default_rng(seed * 7 + len(method))
        images = np.where(rng.random(500) * 0.3 + hard * 0.8 < 0.85, 100.0, np.where(rng.random(500) < 0.5, 50.0, 0.0))
        metrics = {"average": float(images.mean()), "tasks": {"left": float(images.mean()), "right": float(images.mean())}}
        if method == "unitary":  # pcgrad's runs record no per-image scores
            metrics["example_scores"] = images.tolist()
            scores[seed] = images
        store.write_record({"run_id": spec.run_id, "suite": spec.suite, "status": "done", "spec": spec.config,
                            "metrics": metrics, "timing": {"seconds_per_step": 0.01}, "memory": {"cpu_peak_rss_bytes": 1},
                            "details": {"directions": {"left": "higher", "right": "higher"}}, "env": {}, "error": None,
                            "log": None, "started": "", "finished": ""})
    cells = {c.key["method"]: c for c in multitask_compute(suite, store).sections[0].cells}
    unitary, pcgrad = cells["unitary"], cells["pcgrad"]
    assert unitary.samples == 500 and pcgrad.samples is None and pcgrad.without_samples
    x = np.array([scores[s] for s in range(3)])
    d, (low, high), *_ = by_hand(x, 90.0, 0.4 / math.sqrt(10), 9.0, False, 2.0)
    assert unitary.reproduction.difference == pytest.approx(d)
    assert (unitary.reproduction.low, unitary.reproduction.high) == pytest.approx((low, high))
    assert any(part.name.startswith("test set shared") for part in unitary.reproduction.parts)
    text, _ = multitask_build(suite, store, "markdown", {"plots": False})
    assert "Runs without per-image samples (multi_mnist): their intervals and verdicts are conditional on the fixed " \
           "test set" in text and "Per-image samples: each run records every test image's score" in text


def test_intervals_never_leave_the_metrics_bounds(tmp_path):
    """Two seeds near 100%: the t-interval across seeds would pass 100; every format shows
    it clipped, and the table says so."""
    text = SUITE.format(p1=90, m1=90, p5=95, m5=95).split("reported:")[0]
    suite = load_suite(write_suite(tmp_path, text.replace("seed: [0, 1, 2, 3, 4]", "seed: [0, 1]"), name="bounds.yaml"))
    store = Store(tmp_path / "results", suite.name)
    for spec in expand(suite):
        level = 99.0 if spec.config["seed"] == 0 else 93.0
        store.write_record(fake_record(spec, accuracies=[level - 1, level + 1]))
    cells = compute(suite, store).sections[0].cells
    assert all(c.mean + c.ci95 > 100 for c in cells)  # 96 ± 38: the raw t-interval leaves [0, 100]
    markdown, _ = build(suite, store, "markdown", {"plots": False})
    assert "96.00 [57.88, 100.00]" in markdown
    assert "accuracy lies in [0, 100]: an interval that would leave it is clipped to it" in markdown
    rows = [r for r in build(suite, store, "csv")[0].splitlines() if r.startswith("cell,")]
    assert all(",100.0," in row for row in rows)
    document = json.loads(build(suite, store, "json")[0])
    assert all(c["high"] == 100.0 and c["clipped_to_bounds"] for c in document["cells"])
    assert "96.00 [57.88, 100.00]" in build(suite, store, "latex")[0]


def test_a_part_with_one_seed_cannot_hold_but_another_part_may_refute(store_of, tmp_path):
    """maml ran one seed at 1 shot: 'mtl better than maml' in both cells cannot be supported
    (one part untested) though it holds at 5 shots; 'maml better than mtl' is refuted at 5
    shots, whatever the untested part."""
    suite, store, values = store_of
    text = suite.path.read_text().split("claims:")[0] + (
        "claims:\n"
        "  - {name: mtl-better, test: better, a: {method: mtl}, b: {method: maml}, quote: q, source: {paper: A}}\n"
        "  - {name: maml-better, test: better, a: {method: maml}, b: {method: mtl}, quote: q, source: {paper: A}}\n")
    other = load_suite(write_suite(tmp_path, text, name="verdicts.yaml"))
    mtl_better, maml_better = compute(other, store).claims
    assert [math.isnan(p.claim.p_value) for p in mtl_better.parts] == [True, False]
    assert mtl_better.parts[1].claim.verdict == "supported" and mtl_better.verdict == "inconclusive"
    assert mtl_better.note == "1 of 2 parts with one seed a side: not tested"
    refute = scipy_stats.ttest_rel(*paired(values, "maml", "mtl", 5), alternative="less").pvalue
    assert maml_better.verdict == "refuted" and maml_better.p_refute == pytest.approx(min(1.0, 2 * refute))  # Holm over 2 claims
