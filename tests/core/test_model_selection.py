"""Model selection through the real CLI (harness/report/selected.py, harness/confirmation.py,
`run --confirm`, `report --oracle`), with a plugin family whose test score falls as its
validation score rises with ``lr``: the report must pick the validation-best configuration
and report its (worse) test score; the oracle appears only when asked for, labelled."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness import plugins
from harness.cli import main

TRADEOFF = Path(__file__).parents[1] / "data" / "tradeoff.py"

SUITE = """
name: sweep
family: tradeoff
plugins: [tradeoff.py]
paper: p
grid:
  dataset: [toy]
  method: [sgd]
  lr: [0.05, 0.1, 0.2]
  seed: [0, 1, 2]
select: {over: [lr], by: val_score, confirm: [10, 11]}
"""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    plugins.reset()
    shutil.copy(TRADEOFF, tmp_path / "tradeoff.py")
    (tmp_path / "sweep.yaml").write_text(SUITE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_RESULTS", str(tmp_path / "results"))
    yield tmp_path
    plugins.reset()


def cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def report_json(capsys, *extra) -> dict:
    code, out, err = cli(capsys, "report", "sweep.yaml", "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_the_report_chooses_on_validation_and_reports_the_chosen_test_score(folder, capsys):
    code, out, err = cli(capsys, "run", "sweep.yaml", "--cluster", "debug", "--quiet")
    assert code == 0, err
    document = report_json(capsys)
    # one cell (lr is selected over, not a key), made of the validation-best lr's runs
    assert document["keys"] == ["dataset", "method"] and len(document["cells"]) == 1
    (cell,) = document["cells"]
    chosen = document["selection"]["cells"][0]
    assert chosen["chosen"] == {"lr": 0.2} and not chosen["confirmed"] and chosen["seeds"] == [0, 1, 2]
    assert len(document["runs"]) == 9  # the runs list keeps every run of the sweep
    # its test score is the worst of the three (about 70 - 20), not the oracle's (about 70 - 5)
    assert 45 < cell["mean"] < 55
    validation = {c["values"]["lr"]: c["validation"] for c in chosen["candidates"]}
    assert max(validation, key=validation.get) == 0.2 and validation[0.2] > validation[0.05] + 10
    assert "oracle" not in chosen
    code, markdown, _ = cli(capsys, "report", "sweep.yaml")
    assert "## Model selection" in markdown and "**chosen**" in markdown and "oracle" not in markdown
    assert "not confirmed" in markdown


def test_the_oracle_only_when_asked_and_labelled(folder, capsys):
    assert cli(capsys, "run", "sweep.yaml", "--cluster", "debug", "--quiet")[0] == 0
    document = report_json(capsys, "--oracle")
    oracle = document["selection"]["cells"][0]["oracle"]
    assert oracle["chosen"] == {"lr": 0.05} and "oracle" in oracle["label"]
    # the table's cell is still the validation choice's
    assert 45 < document["cells"][0]["mean"] < 55
    code, markdown, _ = cli(capsys, "report", "sweep.yaml", "--oracle")
    (row,) = [line for line in markdown.splitlines() if "oracle (chosen on test" in line]
    assert "lr=0.05" in row


def test_confirm_freezes_the_choice_and_runs_it_on_fresh_seeds(folder, capsys):
    code, out, err = cli(capsys, "run", "sweep.yaml", "--cluster", "debug", "--quiet", "--confirm")
    assert code == 0, err
    assert "chosen on val_score for dataset=toy, method=sgd: lr=0.2" in out
    state = json.loads((folder / "results" / "sweep" / "selection.json").read_text())
    assert [entry["chosen"] for entry in state["choices"]] == [{"lr": 0.2}]
    runs = [json.loads(p.read_text()) for p in (folder / "results" / "sweep").glob("*/record.json")]
    assert sorted((r["spec"]["lr"], r["spec"]["seed"]) for r in runs if r["spec"]["seed"] >= 10) == [(0.2, 10), (0.2, 11)]
    document = report_json(capsys)
    chosen = document["selection"]["cells"][0]
    assert chosen["confirmed"] and chosen["seeds"] == [10, 11] and document["cells"][0]["seeds"] == 2
    # the plan counts the confirmation runs; a second --confirm runs nothing more
    code, out, _ = cli(capsys, "run", "sweep.yaml", "--cluster", "debug", "--quiet", "--confirm")
    assert code == 0 and "(confirmation): 0 to run" in out
    assert len(list((folder / "results" / "sweep").glob("*/record.json"))) == 9 + 2


def test_confirm_without_confirmation_seeds_is_one_line(folder, capsys):
    (folder / "sweep.yaml").write_text(SUITE.replace(", confirm: [10, 11]", ""))
    code, _, err = cli(capsys, "run", "sweep.yaml", "--cluster", "debug", "--confirm")
    assert code == 2 and "--confirm:" in err and "no select: with confirm seeds" in err
    assert not (folder / "results" / "sweep").exists()


def test_plan_estimate_prices_the_sweep_and_its_confirmation(folder, capsys):
    code, out, _ = cli(capsys, "plan", "sweep.yaml", "--estimate")
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.startswith("| toy, sgd |")]
    # nothing ran: 9 selection runs pending, at most 2 confirmation runs (the choice is not made)
    assert row.startswith("| toy, sgd | 3 | 0 of 9 | 2 at most | n/a")
    assert cli(capsys, "run", "sweep.yaml", "--cluster", "debug", "--quiet", "--confirm")[0] == 0
    code, out, _ = cli(capsys, "plan", "sweep.yaml", "--estimate", "--format", "json")
    (cell,) = json.loads(out)["selection_estimate"]["cells"]
    assert (cell["selection_done"], cell["confirmation_runs"], cell["chosen"]) == (9, 0, {"lr": 0.2})


def test_a_filter_narrows_the_confirmation_runs_never_the_choice(folder, capsys):
    assert cli(capsys, "run", "sweep.yaml", "--cluster", "debug", "--quiet")[0] == 0
    # with only lr 0.05 kept, lr 0.05 would be the only candidate: the choice stays the sweep's
    code, out, err = cli(capsys, "run", "sweep.yaml", "--cluster", "debug", "--quiet", "--confirm", "--filter", "lr=0.05")
    assert code == 0, err
    state = json.loads((folder / "results" / "sweep" / "selection.json").read_text())
    assert [entry["chosen"] for entry in state["choices"]] == [{"lr": 0.2}]
    assert "(confirmation): 0 to run" in out  # lr 0.2's confirmation runs are filtered out here
    code, out, err = cli(capsys, "run", "sweep.yaml", "--cluster", "debug", "--quiet", "--confirm", "--filter", "lr=0.2")
    assert code == 0, err
    # the frozen choice's confirmation runs are planned runs now: this launch ran them
    runs = [json.loads(p.read_text())["spec"] for p in (folder / "results" / "sweep").glob("*/record.json")]
    assert sorted((r["lr"], r["seed"]) for r in runs if r["seed"] >= 10) == [(0.2, 10), (0.2, 11)]
