"""Paired comparisons with a baseline: the statistics against scipy, the one pairing rule
(paired over seeds where the runs agree on what the seed fixes and on their test units,
else Welch with each side's test-set error) in the few-shot and multi-task reports, Holm
within a comparison group, and the suite's `report:` key and `--baseline` with one-line
errors."""
import math
from pathlib import Path

import numpy as np
import pytest
import test_multitask_suite as multitask
from conftest import TINY_SUITE, write_suite
from scipy import stats as scipy_stats
from test_cli_errors import assert_nothing_written, assert_one_line_error, harness_cli
from test_multitask_suite import filled  # noqa: F401 (a fixture)
from test_store import fake_record

from harness.cli import main
from harness.comparisons import seed_difference
from harness.multiplicity import holm
from harness.report import build
from harness.report.generic import compute
from harness.reproduction import shared_test_error
from harness.spec import expand
from harness.stats import compare_by_seed, paired_difference, welch_difference
from harness.store import Store
from harness.suite import SuiteError, load_suite

RNG = np.random.default_rng(7)
A, B = RNG.normal(70, 3, size=6), RNG.normal(68, 3, size=6)


def half_width(interval) -> float:
    return (interval.high - interval.low) / 2


# ------------------------------------------------------------------ the statistics


def test_paired_difference_is_scipys_ttest_rel():
    ours = paired_difference(A, B)
    theirs = scipy_stats.ttest_rel(A, B)
    assert ours.difference == pytest.approx(np.mean(A - B))
    assert ours.half_width == pytest.approx(half_width(theirs.confidence_interval(0.95)), rel=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-10) and ours.df == 5 and ours.paired
    # the same as a one-sample t-test of the differences against 0
    assert ours.p_value == pytest.approx(scipy_stats.ttest_1samp(A - B, 0.0).pvalue, rel=1e-10)
    low, high = scipy_stats.t.interval(0.95, 5, loc=np.mean(A - B), scale=scipy_stats.sem(A - B))
    assert (ours.low, ours.high) == (pytest.approx(low), pytest.approx(high))


def test_welch_difference_is_scipys_ttest_ind_unequal_variances():
    short = B[:4]
    ours = welch_difference(A, short)
    theirs = scipy_stats.ttest_ind(A, short, equal_var=False)
    assert ours.difference == pytest.approx(A.mean() - short.mean())
    assert ours.half_width == pytest.approx(half_width(theirs.confidence_interval(0.95)), rel=1e-10)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-10)
    assert ours.df == pytest.approx(theirs.df) and (ours.n, ours.n_baseline) == (6, 4) and not ours.paired


def test_welch_with_the_test_set_errors_of_two_sides_by_hand():
    """Unpaired runs on different test sets: each side's shared test-set error is added, and
    the df combines every part at its 80% upper confidence limit."""
    extra = [(0.3, 100.0), (0.2, 50.0)]
    ours = seed_difference(dict(enumerate(A)), {s + 10: v for s, v in enumerate(B)}, paired=False,
                           why_not="test_queries differ", extra=extra)
    parts = [(A.var(ddof=1) / 6, 5.0), (B.var(ddof=1) / 6, 5.0), *extra]
    widened = [(v * df / scipy_stats.chi2.ppf(0.2, df), df) for v, df in parts]
    df = sum(v for v, _ in widened) ** 2 / sum(v * v / d for v, d in widened)
    variance = sum(v for v, _ in parts)
    assert ours.se == pytest.approx(math.sqrt(variance)) and ours.df == pytest.approx(df)
    assert ours.half_width == pytest.approx(scipy_stats.t.ppf(0.975, df) * math.sqrt(variance))
    assert ours.p_value == pytest.approx(2 * scipy_stats.t.sf(abs(A.mean() - B.mean()) / math.sqrt(variance), df))
    assert ours.test == "Welch over seeds + test-set errors (not paired: test_queries differ), df at 80% limits"


def test_compare_by_seed_pairs_the_common_seeds_or_uses_welch():
    ours, base = {0: 90.0, 1: 91.5, 2: 90.7, 3: 92.0}, {0: 89.0, 1: 91.0, 2: 89.9}
    paired = compare_by_seed(ours, base, paired=True)
    reference = scipy_stats.ttest_rel([90.0, 91.5, 90.7], [89.0, 91.0, 89.9])
    assert paired.test == "paired t over seeds" and paired.n == 3
    assert paired.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    welch = compare_by_seed(ours, base, paired=False, why_not="batch_size differ")
    reference = scipy_stats.ttest_ind(list(ours.values()), list(base.values()), equal_var=False)
    assert welch.test == "Welch over seeds (not paired: batch_size differ)" and (welch.n, welch.n_baseline) == (4, 3)
    assert welch.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert compare_by_seed({5: 1.0, 6: 2.0}, {7: 1.0, 8: 2.5}, paired=True).test == "Welch over seeds (not paired: seeds not shared)"


# ------------------------------------------------------------------ the few-shot report

THREE_SEEDS = TINY_SUITE.replace("seed: [0]", "seed: [0, 1, 2]")


def fill(tmp_path, text):
    suite = load_suite(write_suite(tmp_path, text))
    store = Store(tmp_path / "results", suite.name)
    difficulty = np.random.default_rng(0).normal(0, 6, size=40)
    values = {}
    for spec in expand(suite):
        rng = np.random.default_rng(100 * spec.config["seed"] + len(spec.config["method"]) + 7 * (spec.config["method"] == "maml"))
        shift = {"protonet": 89.0, "mtl": 87.5, "maml": 85.0}[spec.config["method"]] + rng.normal(0, 0.7)
        size = spec.config["test_episodes"]
        accuracies = 87.0 + difficulty[:size] + shift - 87.0 + rng.normal(0, 2, size=size)
        values[spec.config["method"], spec.config["seed"]] = accuracies
        store.write_record(fake_record(spec, accuracies=accuracies.tolist()))
    return suite, store, values


def test_fewshot_comparison_is_the_paired_t_of_the_seed_means(tmp_path):
    suite, store, values = fill(tmp_path, THREE_SEEDS.replace("method: [protonet, mtl]", "method: [protonet, mtl, maml]")
                                + "report:\n  baseline: protonet\n")
    assert suite.report_options == {"baseline": "protonet"}
    rows = compute(suite, store, {"baseline": "protonet"}).sections[0].comparisons
    assert [row.key["method"] for row in rows] == ["mtl", "maml"]
    proto = [values["protonet", s].mean() for s in range(3)]
    references = [scipy_stats.ttest_rel([values[row.key["method"], s].mean() for s in range(3)], proto) for row in rows]
    for row, reference in zip(rows, references):
        mine = [values[row.key["method"], s].mean() for s in range(3)]
        assert (row.baseline, row.test) == ("protonet", "paired t over seeds")
        assert row.difference == pytest.approx(np.mean(mine) - np.mean(proto))
        assert row.ci95 == pytest.approx(half_width(reference.confidence_interval()), rel=1e-10)
        assert row.p_value == pytest.approx(reference.pvalue, rel=1e-10)
        assert row.wins == sum(m > b for m, b in zip(mine, proto)) and row.n == 3
    # Holm within the comparison group (one dataset, ways, shots, backbone): the two p-values together
    adjusted = holm([r.pvalue for r in references])
    assert [row.p_holm for row in rows] == pytest.approx(list(adjusted))
    for row, p_holm in zip(rows, adjusted):
        assert row.verdict == ("indistinguishable" if p_holm > 0.05 else ("better" if row.difference > 0 else "worse"))
    text, _ = build(suite, store, "markdown", {"plots": False})
    assert "## Paired comparisons with protonet" in text and "| p_holm " in text and "| wins " in text
    line = next(l for l in text.splitlines() if l.startswith("| omniglot") and "| mtl " in l and "paired t over seeds" in l)
    assert f"{rows[0].difference:+.2f} ± {rows[0].ci95:.2f}" in line and f"| {rows[0].wins}/3 " in line
    assert "Holm-adjusted p (p_holm, over the methods compared with the baseline in one dataset, ways, shots, " \
           "backbone)" in text and "not corrected" not in text


def test_one_seed_a_side_gives_no_verdict(tmp_path):
    suite, store, _ = fill(tmp_path, TINY_SUITE + "report:\n  baseline: protonet\n")
    (row,) = compute(suite, store, {"baseline": "protonet"}).sections[0].comparisons
    assert row.verdict == "no verdict" and math.isnan(row.ci95) and math.isnan(row.p_holm)


def test_fewshot_runs_on_other_test_episodes_are_not_paired(tmp_path):
    text = THREE_SEEDS.replace("resources:", "overrides:\n  - when: {method: mtl}\n    set: {test_queries: 6}\nresources:")
    suite, store, values = fill(tmp_path, text)
    (row,) = compute(suite, store, {"baseline": "protonet"}).sections[0].comparisons
    assert row.test == "Welch over seeds + test-set errors (not paired: test_queries differ), df at 80% limits"
    assert not row.paired
    mtl = np.array([values["mtl", s] for s in range(3)])
    proto = np.array([values["protonet", s] for s in range(3)])
    # each side's own test set: the mean cross-seed covariance of its per-episode values over n
    extra = [shared_test_error(mtl), shared_test_error(proto)]
    covariance = np.cov(mtl)
    assert extra[0][0] == pytest.approx(max(covariance[~np.eye(3, dtype=bool)].mean(), 0) / mtl.shape[1])
    expected = seed_difference(dict(enumerate(mtl.mean(axis=1))), {s + 3: v for s, v in enumerate(proto.mean(axis=1))},
                               paired=False, extra=[e for e in extra if e[0] > 0])
    assert row.ci95 == pytest.approx(expected.half_width) and row.p_value == pytest.approx(expected.p_value)
    markdown, _ = build(suite, store, "markdown", {"plots": False, "baseline": "protonet"})
    assert "Welch: the runs cannot be paired (the keys that differ are named)" in markdown
    assert "'+ test-set errors' adds each side's error of its own episodes" in markdown


def test_no_baseline_no_comparison_section(tmp_path):
    suite, store, _ = fill(tmp_path, THREE_SEEDS)
    text, _ = build(suite, store, "markdown", {"plots": False})
    assert "Paired comparisons" not in text
    assert "## Paired comparisons with mtl" in build(suite, store, "markdown", {"plots": False, "baseline": "mtl"})[0]


# ------------------------------------------------------------------ the multi-task report


def test_multitask_comparison_pairs_by_seed(filled):
    suite, store, averages = filled
    text, _ = multitask.build(suite, store, "markdown", {"plots": False, "baseline": "unitary"})
    reference = scipy_stats.ttest_rel(averages["pcgrad"], averages["unitary"])
    line = next(l for l in text.splitlines() if l.startswith("| multi_mnist | pcgrad") and "paired t over seeds" in l)
    difference = np.mean(np.subtract(averages["pcgrad"], averages["unitary"]))
    assert f"{difference:+.2f} ± {half_width(reference.confidence_interval()):.2f}" in line
    assert f"| {reference.pvalue:.3f} " in line or reference.pvalue < 0.001
    # mgda_ub lost seed 2: paired over the two seeds both have; Holm over the group's two comparisons
    mgda = next(l for l in text.splitlines() if l.startswith("| multi_mnist | mgda_ub") and "paired" in l)
    reference = scipy_stats.ttest_rel(averages["mgda_ub"], averages["unitary"][:2])
    assert f"± {half_width(reference.confidence_interval()):.2f}" in mgda and ("| worse " in mgda or "| indistinguishable " in mgda)


def test_multitask_runs_with_other_data_order_use_welch(tmp_path):
    text = multitask.TINY.replace("resources:", "overrides:\n  - when: {method: pcgrad}\n    set: {batch_size: 32}\n"
                                  "report: {baseline: unitary}\nresources:").replace("seed: [0, 1]", "seed: [0, 1, 2]")
    suite = load_suite(write_suite(tmp_path, text))
    store = Store(tmp_path / "results", suite.name)
    averages = {}
    for spec in expand(suite):
        value = 90.0 + spec.config["seed"] * 0.3 + (0.5 if spec.config["method"] == "pcgrad" else 0.0) ** 2 + \
            np.random.default_rng(spec.config["seed"] + len(spec.config["method"])).normal(0, 0.3)
        averages.setdefault(spec.config["method"], []).append(value)
        store.write_record(multitask.fake_record(spec, value, {"left": value, "right": value}, 0.01, 1 << 20))
    from harness.multitask.report import compute as multitask_compute

    (row,) = multitask_compute(suite, store, {"baseline": "unitary"}).sections[0].comparisons
    reference = scipy_stats.ttest_ind(averages["pcgrad"], averages["unitary"], equal_var=False)
    assert row.test == "Welch over seeds (not paired: batch_size differ), df at 80% limits"
    # scipy's Welch statistic; the df at the variances' 80% upper limits (harness.tost.conservative_df)
    pcgrad, unitary = np.array(averages["pcgrad"]), np.array(averages["unitary"])
    parts = [(pcgrad.var(ddof=1) / 3, 2.0), (unitary.var(ddof=1) / 3, 2.0)]
    widened = [(v * df / scipy_stats.chi2.ppf(0.2, df), df) for v, df in parts]
    df = sum(v for v, _ in widened) ** 2 / sum(v * v / d for v, d in widened)
    assert row.p_value == pytest.approx(2 * scipy_stats.t.sf(abs(reference.statistic), df), rel=1e-10)
    assert row.difference / (row.ci95 / scipy_stats.t.ppf(0.975, df)) == pytest.approx(reference.statistic)


# ------------------------------------------------------------------ the suite's `report:` key and --baseline


@pytest.mark.parametrize("block, fragment", [
    ("report:\n  baseline: protonett\n", "tiny.yaml:24: report.baseline: unknown method 'protonett'"),
    ("report:\n  baseline: maml\n", "tiny.yaml:24: report.baseline: method 'maml' has no run in this suite (methods: mtl, protonet)"),
    ("report:\n  baselin: mtl\n", "tiny.yaml:24: report.baselin: unknown key; did you mean 'baseline'?"),
    ("report:\n  plots: true\n", "tiny.yaml:24: report.plots: unknown key (allowed: baseline, margin)"),
    ("report: mtl\n", "tiny.yaml:23: report: must be a mapping, got str"),
])
def test_bad_report_options_are_one_line_errors(tmp_path, block, fragment):
    path = write_suite(tmp_path, TINY_SUITE + block)
    with pytest.raises(SuiteError) as error:
        load_suite(path)
    assert str(path.parent) in str(error.value) and fragment in str(error.value)
    assert_one_line_error(harness_cli(tmp_path, "report", str(path)), fragment)
    assert_nothing_written(tmp_path)


def test_bad_baseline_and_format_on_the_command_line_are_one_line_errors(tmp_path):
    path = write_suite(tmp_path, TINY_SUITE)
    assert_one_line_error(harness_cli(tmp_path, "report", str(path), "--baseline", "maml"),
                          "--baseline maml: no run of this suite has that method (methods: mtl, protonet)")
    assert_one_line_error(harness_cli(tmp_path, "report", str(path), "--format", "html"),
                          "--format html: unknown format (known: markdown, csv, latex, json)")
    assert_nothing_written(tmp_path)


def test_a_family_report_without_a_format_refuses_it(tmp_path, capsys):
    # the rl family declares the formats its report writes: markdown and csv
    rl_suite = Path(__file__).resolve().parents[2] / "suites" / "quickstart_rl.yaml"
    assert main(["--results", str(tmp_path / "r"), "report", str(rl_suite), "--format", "latex"]) == 2
    assert capsys.readouterr().err.strip() == "harness: error: --format latex: the rl report does not write it (it writes: markdown, csv)"
    assert not (tmp_path / "r").exists()


def test_command_line_baseline_overrides_the_suites(tmp_path, capsys):
    suite, store, _ = fill(tmp_path, THREE_SEEDS + "report:\n  baseline: protonet\n")
    args = ["--results", str(tmp_path / "results"), "report", str(suite.path), "--no-plots"]
    assert main(args) == 0 and "## Paired comparisons with protonet" in capsys.readouterr().out
    assert main(args + ["--baseline", "mtl"]) == 0
    out = capsys.readouterr().out
    assert "## Paired comparisons with mtl" in out and "| protonet " in out.split("## Paired comparisons with mtl")[1]


def test_the_keys_that_decide_pairing(tmp_path):
    """One rule for every family: what the seed fixes (the family's paired_by) and what
    fixes the metric's test units (its shared_by, else the test_*/eval_* keys)."""
    from types import SimpleNamespace

    from harness import families
    from harness.api import Metric
    from harness.report.paired import evaluation_keys, pairing_keys, unit_keys

    family = families.get("fewshot")
    assert {"test_episodes", "test_queries", "eval_seed"} <= set(evaluation_keys(family))
    assert all(k.startswith(("test_", "eval_")) for k in evaluation_keys(family))
    plain = Metric("accuracy")  # declares no shared_by: the test_*/eval_* convention
    assert unit_keys(family, plain) == evaluation_keys(family)
    assert family.paired_by is None  # seeds share only their test episodes
    assert pairing_keys(family, family.headline) == family.headline.shared_by
    assert "eval_seed" in family.headline.shared_by and "test_episodes" in family.headline.shared_by
    declared = SimpleNamespace(paired_by=("dataset", "batch_size"), keys=family.keys)
    assert pairing_keys(declared, SimpleNamespace(shared_by=("dataset",))) == ("dataset", "batch_size")
    assert pairing_keys(declared, SimpleNamespace(shared_by=("eval_seed",))) == ("dataset", "batch_size", "eval_seed")
    assert pairing_keys(family, plain, ["test_queries"]) == ("test_queries",)  # a report's option wins
    for name in ("multitask", "rl"):
        other = families.get(name)
        assert set(other.paired_by) <= set(pairing_keys(other, other.headline)), name


def test_a_family_report_may_say_which_keys_fix_the_test_units(tmp_path):
    text = THREE_SEEDS.replace("resources:", "overrides:\n  - when: {method: mtl}\n    set: {test_inner_steps: 3}\nresources:")
    suite, store, _ = fill(tmp_path, text)
    # the few-shot family declares the keys that fix its test episodes: test_inner_steps is not one
    (paired,) = compute(suite, store, {"baseline": "protonet"}).sections[0].comparisons
    assert paired.test == "paired t over seeds"
    options = {"baseline": "protonet", "shared_by": ("test_inner_steps", "eval_seed")}
    (cautious,) = compute(suite, store, options).sections[0].comparisons
    assert "(not paired: test_inner_steps differ)" in cautious.test and not cautious.paired
    markdown, _ = build(suite, store, "markdown", {"plots": False, "baseline": "protonet", "shared_by": ("eval_seed",)})
    assert "| paired t over seeds |" in markdown
