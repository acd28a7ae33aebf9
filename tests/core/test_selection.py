"""Model selection on validation (harness.selection): the configuration chosen by the
validation metric is reported with its test metric, even when it is the worse on test; the
oracle (chosen on test) is a separate, labelled answer; confirmation rows replace the
selection rows once they ran; cells without selection runs are left as they are."""
from __future__ import annotations

from harness.selection import choose, confirmation_configs, oracle

# lr 0.1 looks best on validation and is worst on test; lr 0.001 the reverse
VAL = {0.001: 70.0, 0.01: 75.0, 0.1: 80.0}
TEST = {0.001: 90.0, 0.01: 85.0, 0.1: 60.0}


def run(method, lr, seed, status="done", shift=0.0):
    config = {"dataset": "d", "method": method, "lr": lr, "seed": seed}
    metrics = {"val_accuracy": VAL[lr] + shift + seed * 0.1, "accuracy": TEST[lr] + shift} if status == "done" else {}
    return {"config": config, "seed": seed, "status": status, "metrics": metrics}


def grid(seeds=(0, 1, 2), methods=("a",)):
    return [run(m, lr, s) for m in methods for lr in VAL for s in seeds]


def test_the_validation_best_is_chosen_and_its_worse_test_is_reported():
    (choice,) = choose(grid(), ["dataset", "method"], ("lr",), "val_accuracy", "higher")
    assert choice.selected and choice.complete and choice.chosen == {"lr": 0.1}
    assert [r["metrics"]["accuracy"] for r in choice.rows] == [60.0, 60.0, 60.0]
    assert not choice.confirmed and choice.seeds == [0, 1, 2]
    assert [c.values["lr"] for c in choice.candidates] == [0.001, 0.01, 0.1]
    picked = oracle(choice, "accuracy", "higher")
    assert picked.chosen == {"lr": 0.001} and [r["metrics"]["accuracy"] for r in picked.rows] == [90.0] * 3


def test_lower_is_better_validation_metrics_choose_the_lowest():
    (choice,) = choose(grid(), ["dataset", "method"], ("lr",), "val_accuracy", "lower")
    assert choice.chosen == {"lr": 0.001}


def test_per_seed_each_seed_chooses_and_reports_its_own_run():
    runs = grid() + [run("a", 0.001, 3, shift=20.0), run("a", 0.1, 3)]  # seed 3: lr 0.001 wins on validation
    (choice,) = choose(runs, ["dataset", "method"], ("lr",), "val_accuracy", "higher", per="seed")
    assert choice.chosen is None
    assert choice.chosen_per_seed == {0: {"lr": 0.1}, 1: {"lr": 0.1}, 2: {"lr": 0.1}, 3: {"lr": 0.001}}
    assert [r["metrics"]["accuracy"] for r in choice.rows] == [60.0, 60.0, 60.0, 110.0]


def test_confirmation_rows_replace_the_selection_rows_once_they_ran():
    runs = grid(seeds=(0, 1)) + [run("a", 0.1, 10, shift=-5.0), run("a", 0.1, 11, status="pending")]
    (choice,) = choose(runs, ["dataset", "method"], ("lr",), "val_accuracy", "higher", seeds=(0, 1), confirm=(10, 11))
    assert choice.confirmed and choice.seeds == [10] and choice.confirm_pending == [11]
    assert [r["metrics"]["accuracy"] for r in choice.rows] == [55.0]
    # a confirmation run of another configuration never counts, and never enters the choice
    other = runs + [run("a", 0.001, 10, shift=50.0)]
    (again,) = choose(other, ["dataset", "method"], ("lr",), "val_accuracy", "higher", seeds=(0, 1), confirm=(10, 11))
    assert again.chosen == {"lr": 0.1} and again.seeds == [10]


def test_what_confirmation_still_needs_to_run():
    runs = grid(seeds=(0, 1))
    choices = choose(runs, ["dataset", "method"], ("lr",), "val_accuracy", "higher", seeds=(0, 1), confirm=(5, 6))
    configs = confirmation_configs(choices, runs, (5, 6))
    assert configs == [{"dataset": "d", "method": "a", "lr": 0.1, "seed": 5}, {"dataset": "d", "method": "a", "lr": 0.1, "seed": 6}]
    assert confirmation_configs(choices, runs + [run("a", 0.1, 5)], (5, 6)) == [configs[1]]


def test_an_incomplete_selection_is_said_and_confirms_nothing():
    runs = grid(seeds=(0, 1)) + [run("a", 0.01, 2, status="failed")]
    (choice,) = choose(runs, ["dataset", "method"], ("lr",), "val_accuracy", "higher")
    assert not choice.complete and choice.chosen == {"lr": 0.1}
    assert confirmation_configs([choice], runs, (9,)) == []


def test_cells_without_selection_runs_report_all_their_runs():
    runs = grid(seeds=(100, 101), methods=("a",)) + [run("b", 0.01, s) for s in range(3)]
    choices = choose(runs, ["dataset", "method"], ("lr",), "val_accuracy", "higher", seeds=(100, 101))
    by_method = {c.cell["method"]: c for c in choices}
    assert by_method["a"].selected and by_method["a"].seeds == [100, 101]
    assert not by_method["b"].selected and by_method["b"].seeds == [0, 1, 2]
