"""Paired comparisons with a baseline: the statistics against scipy, the choice of test
(paired over seeds, over episodes, Welch) in the few-shot and multi-task reports, and the
suite's `report:` key and `--baseline` with one-line errors."""
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
from harness.report import build
from harness.report.generic import compute
from harness.spec import expand
from harness.stats import (
    compare_by_sample,
    compare_by_seed,
    paired_difference,
    shared_sample_error,
    verdict,
    welch_difference,
)
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


def test_welch_difference_with_extra_variance_parts_by_hand():
    extra = [(0.3, 100.0), (0.2, 50.0)]
    ours = welch_difference(A, B, extra=extra)
    va, vb = A.var(ddof=1) / 6, B.var(ddof=1) / 6
    variance = va + vb + 0.5
    df = variance ** 2 / (va ** 2 / 5 + vb ** 2 / 5 + 0.3 ** 2 / 100 + 0.2 ** 2 / 50)
    assert ours.se == pytest.approx(math.sqrt(variance)) and ours.df == pytest.approx(df)
    assert ours.half_width == pytest.approx(scipy_stats.t.ppf(0.975, df) * math.sqrt(variance))


def test_verdict_follows_the_metrics_direction():
    better = paired_difference(A + 5, A + RNG.normal(0, 0.1, size=6))
    assert verdict(better, "higher") == "better" and verdict(better, "lower") == "worse"
    assert verdict(paired_difference([1.0, 2.0, 3.0, 4.0], [1.5, 1.5, 3.6, 3.5]), "higher") == "indistinguishable"
    assert verdict(paired_difference([1.0], [2.0]), "higher") == "n/a"  # one pair: no interval
    constant = paired_difference([2.0, 3.0], [1.0, 2.0])  # the same difference every time
    assert constant.half_width == 0 and verdict(constant) == "better"
    assert verdict(paired_difference([1.0, 2.0], [1.0, 2.0])) == "indistinguishable"
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1.0, 2.0], [1.0])


def episodes(seeds, shift, size=50, rng=None):
    difficulty = np.random.default_rng(3).normal(0, 8, size=size)  # shared episodes: the same difficulty for every run
    rng = rng or np.random.default_rng(4)
    return {s: list(80 + shift + difficulty + rng.normal(0, 2, size=size) + rng.normal(0, 1)) for s in seeds}


def test_shared_episodes_and_several_seeds_pair_the_seed_means():
    ours, base = episodes([0, 1, 2, 3], 1.0, rng=np.random.default_rng(5)), episodes([0, 1, 2, 3], 0.0, rng=np.random.default_rng(6))
    result = compare_by_sample(ours, base, shared=True, unit="episodes")
    means, base_means = [np.mean(ours[s]) for s in range(4)], [np.mean(base[s]) for s in range(4)]
    # per seed: the mean over the shared episodes of the per-episode difference
    per_seed = [np.mean(np.subtract(ours[s], base[s])) for s in range(4)]
    assert per_seed == pytest.approx(np.subtract(means, base_means).tolist())
    reference = scipy_stats.ttest_rel(means, base_means)
    assert result.test == "paired t over seeds (shared episodes)" and result.n == 4
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert result.half_width == pytest.approx(half_width(reference.confidence_interval()), rel=1e-10)


def test_one_common_seed_pairs_the_episodes():
    ours, base = episodes([0], 1.0), episodes([0], 0.0, rng=np.random.default_rng(9))
    result = compare_by_sample(ours, base, shared=True, unit="episodes")
    reference = scipy_stats.ttest_rel(ours[0], base[0])
    assert result.test == "paired t over episodes (seed 0)" and result.n == 50 and result.df == 49
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert result.half_width == pytest.approx(half_width(reference.confidence_interval()), rel=1e-10)


def test_unequal_episode_counts_fall_back_to_welch_and_say_so():
    ours, base = episodes([0, 1, 2], 1.0, size=50), episodes([0, 1, 2], 0.0, size=40)
    result = compare_by_sample(ours, base, shared=True, unit="episodes")
    assert result.test == "Welch over seeds + episodes error (not paired: episodes counts differ)" and not result.paired
    extra = [shared_sample_error(ours.values()), shared_sample_error(base.values())]
    expected = welch_difference([np.mean(v) for v in ours.values()], [np.mean(v) for v in base.values()], extra=extra)
    assert result.half_width == pytest.approx(expected.half_width) and result.p_value == pytest.approx(expected.p_value)
    # each side's shared-episode error: the mean over seeds of the squared per-episode standard error
    variance, df = extra[0]
    assert variance == pytest.approx(np.mean([scipy_stats.sem(v) ** 2 for v in ours.values()])) and df == 3 * 49


def test_unshared_single_runs_are_welch_over_their_episodes():
    ours, base = episodes([0], 1.0), episodes([4], 0.0, size=30)
    result = compare_by_sample(ours, base, shared=False, unit="episodes", why_not="test_queries differ")
    reference = scipy_stats.ttest_ind(ours[0], base[4], equal_var=False)
    assert result.test == "Welch over episodes (one seed each) (not paired: test_queries differ)"
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert math.isnan(compare_by_sample(episodes([0, 1], 1.0), episodes([0], 0.0), shared=False).half_width)


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
        rng = np.random.default_rng(100 * spec.config["seed"] + len(spec.config["method"]))
        shift = {"protonet": 89.0, "mtl": 87.5}[spec.config["method"]] + rng.normal(0, 0.7)
        size = spec.config["test_episodes"]
        accuracies = 87.0 + difficulty[:size] + shift - 87.0 + rng.normal(0, 2, size=size)
        values[spec.config["method"], spec.config["seed"]] = accuracies
        store.write_record(fake_record(spec, accuracies=accuracies.tolist()))
    return suite, store, values


def test_fewshot_comparison_is_the_paired_t_of_the_seed_means(tmp_path):
    suite, store, values = fill(tmp_path, THREE_SEEDS + "report:\n  baseline: protonet\n")
    assert suite.report_options == {"baseline": "protonet"}
    (row,) = compute(suite, store, {"baseline": "protonet"}).sections[0].comparisons
    mtl, proto = [values["mtl", s].mean() for s in range(3)], [values["protonet", s].mean() for s in range(3)]
    reference = scipy_stats.ttest_rel(mtl, proto)
    assert (row.key["method"], row.baseline, row.test) == ("mtl", "protonet", "paired t over seeds (shared episodes)")
    assert row.difference == pytest.approx(np.mean(mtl) - np.mean(proto))
    assert row.ci95 == pytest.approx(half_width(reference.confidence_interval()), rel=1e-10)
    assert row.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert row.verdict == ("indistinguishable" if reference.pvalue > 0.05 else ("better" if row.difference > 0 else "worse"))
    text, _ = build(suite, store, "markdown", {"plots": False})
    assert "## Paired comparisons with protonet" in text
    line = next(l for l in text.splitlines() if l.startswith("| omniglot") and "paired t over seeds" in l)
    assert f"{row.difference:+.2f} ± {row.ci95:.2f}" in line and "| mtl " in line
    assert "Paired t over seeds (shared episodes): every method and seed was tested on the same episodes" in text


def test_fewshot_runs_on_other_test_episodes_are_not_paired(tmp_path):
    text = THREE_SEEDS.replace("resources:", "overrides:\n  - when: {method: mtl}\n    set: {test_queries: 6}\nresources:")
    suite, store, values = fill(tmp_path, text)
    (row,) = compute(suite, store, {"baseline": "protonet"}).sections[0].comparisons
    assert row.test == "Welch over seeds + episodes error (not paired: test_queries differ)" and not row.paired
    mtl = {s: values["mtl", s] for s in range(3)}
    proto = {s: values["protonet", s] for s in range(3)}
    expected = welch_difference([v.mean() for v in mtl.values()], [v.mean() for v in proto.values()],
                                extra=[shared_sample_error(mtl.values()), shared_sample_error(proto.values())])
    assert row.ci95 == pytest.approx(expected.half_width) and row.p_value == pytest.approx(expected.p_value)
    markdown, _ = build(suite, store, "markdown", {"plots": False, "baseline": "protonet"})
    assert "Welch: the runs cannot be paired (the reason is given)" in markdown


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
    # mgda_ub lost seed 2: paired over the two seeds both have
    mgda = next(l for l in text.splitlines() if l.startswith("| multi_mnist | mgda_ub") and "paired" in l)
    reference = scipy_stats.ttest_rel(averages["mgda_ub"], averages["unitary"][:2])
    assert f"± {half_width(reference.confidence_interval()):.2f}" in mgda and "| worse " in mgda


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
    assert row.test == "Welch over seeds (not paired: batch_size differ)"
    assert row.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert row.ci95 == pytest.approx(half_width(reference.confidence_interval()), rel=1e-10)


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
    rl_suite = Path(__file__).resolve().parents[1] / "suites" / "quickstart_rl.yaml"
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
    from types import SimpleNamespace

    from harness import families
    from harness.report.paired import evaluation_keys, shared_keys

    family = families.get("fewshot")
    assert {"test_episodes", "test_queries", "eval_seed"} <= set(evaluation_keys(family))
    assert all(k.startswith(("test_", "eval_")) for k in evaluation_keys(family))
    from harness.api import Metric

    plain = Metric("accuracy")  # declares no shared_by: the test_*/eval_* convention
    assert shared_keys(family, plain) == evaluation_keys(family)
    assert shared_keys(family, family.headline) == family.headline.shared_by  # the few-shot family declares its own
    assert "eval_seed" in family.headline.shared_by and "test_episodes" in family.headline.shared_by
    assert shared_keys(family, SimpleNamespace(shared_by=("eval_seed",))) == ("eval_seed",)  # a family's declaration
    assert shared_keys(family, plain, ["test_queries"]) == ("test_queries",)  # a family report's option wins


def test_a_family_report_may_say_which_keys_fix_the_test_units(tmp_path):
    text = THREE_SEEDS.replace("resources:", "overrides:\n  - when: {method: mtl}\n    set: {test_inner_steps: 3}\nresources:")
    suite, store, _ = fill(tmp_path, text)
    # the few-shot family declares the keys that fix its test episodes: test_inner_steps is not one
    (paired,) = compute(suite, store, {"baseline": "protonet"}).sections[0].comparisons
    assert paired.test == "paired t over seeds (shared episodes)"
    options = {"baseline": "protonet", "shared_by": ("test_inner_steps", "eval_seed")}
    (cautious,) = compute(suite, store, options).sections[0].comparisons
    assert cautious.test.endswith("(not paired: test_inner_steps differ)")
    markdown, _ = build(suite, store, "markdown", {"plots": False, "baseline": "protonet", "shared_by": ("eval_seed",)})
    assert "paired t over seeds (shared episodes)" in markdown
