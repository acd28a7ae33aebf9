"""The report-related keys of a suite: what a reported ± covers (`over`), margins, reported
cost, claims, the sequential-seeds budget, model selection, lists of grids, and the warnings
for rules that match nothing. Errors are one line naming file, key path and line."""
from __future__ import annotations

import re
import textwrap

import pytest

from harness.cli import main
from harness.spec import expand
from harness.suite import SuiteError, load_suite

BASE = """\
name: t
paper: "P"
grid:
  dataset: [omniglot]
  shots: [1, 5]
  method: [mtl, protonet]
  seed: [0, 1, 2]
"""


def write(tmp_path, text: str):
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}:")
    return message


def entry(**fields) -> str:
    values = {"dataset": "omniglot", "shots": 1, "method": "mtl", "value": 90.0, **fields}
    body = ", ".join(f"{k}: {v}" for k, v in values.items())
    return BASE + f"reported:\n  - {{{body}, source: {{paper: X}}}}\n"


# ---------------------------------------------------------------- over


def test_over_is_given_or_implied_by_the_one_count_given(tmp_path):
    cases = {"over: episodes, interval: 0.6, kind: ci95": ("episodes", None, None),
             "episodes: 600, interval: 0.6, kind: ci95": ("episodes", None, 600),
             "seeds: 3, interval: 0.3, kind: std": ("seeds", 3, None),
             "samples: 899": ("episodes", None, 899)}
    for fields, (over, seeds, units) in cases.items():
        reported = load_suite(write(tmp_path, BASE + f"reported:\n  - {{dataset: omniglot, shots: 1, method: mtl, "
                                                     f"value: 90, {fields}, source: {{paper: X}}}}\n")).reported[0]
        assert (reported.over, reported.seeds, reported.samples) == (over, seeds, units), fields
        assert reported.one_model == (over == "episodes")


def test_a_reported_number_that_does_not_say_what_it_is_over_is_refused(tmp_path):
    message = error_of(tmp_path, entry(interval=0.5, kind="ci95"))
    assert "reported[0].over: missing" in message and "over: seeds" in message and "over: episodes" in message
    assert "reported[0].over" in error_of(tmp_path, entry(seeds=3, episodes=600))  # both counts: ambiguous
    assert "must be seeds or episodes" in error_of(tmp_path, entry(over="runs"))


def test_one_model_with_several_seeds_contradicts_itself(tmp_path):
    assert "contradict" in error_of(tmp_path, entry(over="episodes", seeds=3))


def test_std_over_an_unknown_number_of_seeds_is_one_warning_naming_the_rule(tmp_path):
    text = BASE + """\
reported:
  - {dataset: omniglot, shots: 1, method: mtl, value: 90, interval: 0.3, kind: std, over: seeds, source: {paper: X}}
  - {dataset: omniglot, shots: 5, method: mtl, value: 95, interval: 0.2, kind: std, over: seeds, source: {paper: X}}
  - {dataset: omniglot, shots: 5, method: protonet, value: 95, interval: 0.2, kind: std, seeds: 5, source: {paper: X}}
"""
    warnings = load_suite(write(tmp_path, text)).warnings
    assert len(warnings) == 1
    assert "reported[0, 1]" in warnings[0] and "standard error (conservative)" in warnings[0]


def test_values_off_the_metrics_scale_are_warned_about(tmp_path):
    (high,) = load_suite(write(tmp_path, entry(value=970, over="seeds"))).warnings
    assert "970 is above 100" in high and "97" in high
    (low,) = load_suite(write(tmp_path, entry(value=0.97, over="seeds"))).warnings
    assert "looks like a fraction" in low
    assert load_suite(write(tmp_path, entry(value=97, over="seeds"))).warnings == ()


# ---------------------------------------------------------------- margin and cost


def test_margins_suite_wide_per_metric_and_per_entry(tmp_path):
    suite = load_suite(write(tmp_path, entry(over="seeds", margin=1.5) + "report: {margin: 2}\n"))
    assert suite.report_options["margin"] == {"accuracy": 2.0}
    assert suite.reported[0].margin == 1.5
    suite = load_suite(write(tmp_path, BASE + "report: {margin: {accuracy: 2.5}}\n"))
    assert suite.report_options["margin"] == {"accuracy": 2.5}
    assert "report.margin.loss: unknown key" in error_of(tmp_path, BASE + "report: {margin: {loss: 1}}\n")
    assert "report.margin: must be a positive number" in error_of(tmp_path, BASE + "report: {margin: 0}\n")
    assert "reported[0].margin" in error_of(tmp_path, entry(over="seeds", margin=-1))


def test_a_reported_cost_needs_its_hardware(tmp_path):
    suite = load_suite(write(tmp_path, entry(over="seeds", cost='{train_gpu_hours: 3.7, hardware: "1 V100"}')))
    assert suite.reported[0].cost == {"train_gpu_hours": 3.7, "hardware": "1 V100"}
    assert "cost.hardware: missing" in error_of(tmp_path, entry(over="seeds", cost="{train_gpu_hours: 3.7}"))
    assert "cost.train_gpu_hours" in error_of(tmp_path, entry(over="seeds", cost='{train_gpu_hours: -1, hardware: x}'))


# ---------------------------------------------------------------- claims

CLAIM = """\
claims:
  - name: mtl-competitive
    test: {test}
    a: {{method: mtl}}
    b: {{method: protonet}}
    quote: "MTL is competitive"
    source: {{paper: P, section: "Sec. 5"}}
{extra}"""


def claim(test: str = "not_worse", extra: str = "    margin: 2\n", base: str = BASE) -> str:
    return base + CLAIM.format(test=test, extra=extra)


def test_claims_load_with_their_test_sides_margin_and_source(tmp_path):
    suite = load_suite(write(tmp_path, claim() + """\
  - name: mtl-cheaper
    test: cost_at_most
    a: {method: mtl}
    b: {method: protonet}
    where: {shots: 5}
    ratio: 0.1
    cost: train_gpu_hours
    quote: "an order of magnitude faster"
    source: {paper: P}
"""))
    first, second = suite.claims
    assert (first.name, first.test, first.a, first.b, first.margin, first.metric) == (
        "mtl-competitive", "not_worse", {"method": ("mtl",)}, {"method": ("protonet",)}, 2.0, "accuracy")
    assert first.source == "P, Sec. 5" and first.versus == "each"
    assert (second.test, second.where, second.ratio, second.cost, second.metric) == (
        "cost_at_most", {"shots": (5,)}, 0.1, "train_gpu_hours", None)


@pytest.mark.parametrize("text, fragment", [
    (claim(test="similar"), "claims[0].test: must be one of equivalent, not_worse, better, cost_at_most"),
    (claim(extra=""), "claims[0].margin: missing"),
    (claim(test="cost_at_most", extra=""), "claims[0].ratio: missing"),
    (claim(test="better", extra="    margin: 1\n"), "claims[0].margin: does not apply to test better"),
    (claim(test="equivalent", extra="    margin: 1\n    versus: best\n"), "versus: best applies to not_worse and better"),
    (claim(extra="    margin: 1\n    metric: loss\n"), "claims[0].metric: unknown metric 'loss'"),
    (claim().replace("b: {method: protonet}", "b: {method: maml}"), "claims[0].b: matches no run"),
    (claim().replace("b: {method: protonet}", "b: {shots: 5}"), "a and b must name the same keys"),
    (claim().replace("b: {method: protonet}", "b: {method: [mtl, protonet]}"), "selects runs that a selects too"),
    (claim(extra="    margin: 2\n    where: {method: mtl}\n"), "claims[0].where: names method"),
    (claim() + CLAIM.format(test="better", extra="").split("\n", 1)[1], "claims[1].name: 'mtl-competitive' is used twice"),
    (claim().replace('quote: "MTL is competitive"', 'quote: ""'), "claims[0].quote"),
])
def test_bad_claims_are_one_line_errors(tmp_path, text, fragment):
    assert fragment in error_of(tmp_path, text)


def test_a_claims_margin_may_come_from_the_report_margin(tmp_path):
    suite = load_suite(write(tmp_path, claim(extra="") + "report: {margin: 1.5}\n"))
    assert suite.claims[0].margin is None and suite.report_options["margin"] == {"accuracy": 1.5}


# ---------------------------------------------------------------- budget and select


def test_budget(tmp_path):
    suite = load_suite(write(tmp_path, BASE + "budget: {max_seeds: 10, seeds_per_round: 2}\n"))
    assert (suite.budget.max_seeds, suite.budget.seeds_per_round) == (10, 2)
    assert "below the 3 seeds" in error_of(tmp_path, BASE + "budget: {max_seeds: 2, seeds_per_round: 1}\n")
    assert "budget.seeds_per_round: missing" in error_of(tmp_path, BASE + "budget: {max_seeds: 5}\n")
    assert "budget.seeds_per_round: must be an integer >= 1" in error_of(
        tmp_path, BASE + "budget: {max_seeds: 5, seeds_per_round: 0}\n")


SWEEP = BASE.replace("  seed: [0, 1, 2]\n", "  seed: [0, 1, 2]\n  lr: [0.001, 0.01]\n")


def test_select_needs_a_validation_metric_and_varying_axes(tmp_path):
    message = error_of(tmp_path, SWEEP + "select: {over: [lr], by: accuracy}\n")
    assert "select.by: must be a validation metric" in message and "never a test metric" in message
    assert "takes one value in the grid" in error_of(tmp_path, SWEEP + "select: {over: [steps], by: val_accuracy}\n")
    assert "cannot be selected over" in error_of(tmp_path, SWEEP + "select: {over: [method], by: val_accuracy}\n")
    assert "played no part" in error_of(tmp_path, SWEEP + "select: {over: [lr], by: val_accuracy, confirm: [2, 3]}\n")
    assert "are in no grid" in error_of(tmp_path, SWEEP + "select: {over: [lr], by: val_accuracy, seeds: [0, 7]}\n")
    assert "repeats a seed" in error_of(tmp_path, SWEEP + "select: {over: [lr], by: val_accuracy, confirm: [5, 5]}\n")
    assert "select.per" in error_of(tmp_path, SWEEP + "select: {over: [lr], by: val_accuracy, per: median}\n")


def test_select_loads(tmp_path):
    suite = load_suite(write(tmp_path, SWEEP + "select: {over: lr, by: val_accuracy, confirm: [10, 11]}\n"))
    assert (suite.select.over, suite.select.by, suite.select.per, suite.select.seeds, suite.select.confirm) == (
        ("lr",), "val_accuracy", "mean", None, (10, 11))
    # chosen on seeds 0 and 1, confirmed on seed 2 (a grid seed that played no part in choosing)
    suite = load_suite(write(tmp_path, SWEEP + "select: {over: lr, by: val_accuracy, seeds: [0, 1], confirm: [2]}\n"))
    assert (suite.select.per, suite.select.seeds, suite.select.confirm) == ("mean", (0, 1), (2,))
    # a choice per seed has no one configuration to confirm
    with pytest.raises(SuiteError, match="confirmation reruns ONE chosen configuration per cell"):
        load_suite(write(tmp_path, SWEEP + "select: {over: lr, by: val_accuracy, per: seed, seeds: [0, 1], confirm: [2]}\n"))


# ---------------------------------------------------------------- grids and rules


def test_a_list_of_grids_is_the_union_of_their_runs(tmp_path):
    text = """\
name: t
paper: P
grid:
  - {dataset: omniglot, shots: [1, 5], method: [mtl, protonet], seed: [0, 1]}
  - {dataset: omniglot, shots: 1, method: mtl, seed: [0, 1, 2], lr: [0.001, 0.01]}
"""
    suite = load_suite(write(tmp_path, text))
    specs = list(expand(suite))
    # 8 from the first grid; the second adds seed 2 at the default lr and 3 seeds at lr 0.01
    # (its seeds 0 and 1 at the default lr are the first grid's runs: expanded once)
    assert len(specs) == 8 + 1 + 3
    assert suite.axes == ["shots", "method", "seed", "lr"]
    assert suite.grid["lr"] == [0.001, 0.01] and suite.grid["seed"] == [0, 1, 2]
    assert "grid[1]: missing axis 'method'" in error_of(
        tmp_path, text.replace("method: mtl, seed: [0, 1, 2]", "seed: [0, 1, 2]"))
    assert "grid: an empty list of grids" in error_of(tmp_path, "name: t\npaper: P\ngrid: []\n")


def test_rules_that_match_no_run_are_warned_about(tmp_path):
    text = BASE + """\
overrides:
  - when: {method: protonet}
    set: {steps: 10}
  - when: {method: maml}
    set: {steps: 10}
exclude:
  - {shots: 5, seed: 7}
"""
    warnings = load_suite(write(tmp_path, text)).warnings
    assert len(warnings) == 2
    assert re.search(r"suite\.yaml:\d+: overrides\[1\] \(method=maml\) matches no run", warnings[0])
    assert "exclude[0] (shots=5, seed=7) matches no run" in warnings[1]


def test_a_filter_value_no_run_has_is_an_error_naming_the_values(tmp_path, capsys):
    path = write(tmp_path, BASE)
    assert main(["plan", str(path), "--filter", "method=maml"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("(method takes: mtl, protonet)") and "\n" not in error
    assert main(["plan", str(path), "--filter", "shots=1,3"]) == 2
    assert "shots = 3 (shots takes: 1, 5)" in capsys.readouterr().err
    assert main(["plan", str(path), "--filter", "shots=5"]) == 0
