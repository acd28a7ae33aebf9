"""`harness run SUITE --until-decided` end to end, on the `gauss` family (tests/data/gauss.py:
each run's score is drawn from a known normal distribution, instantly, fixed by its seed).

The suite's cells, at the first look (3 seeds, max 9, 2 new seeds a round):
- exact (mean 70, sd 0.05, reported 70 ± 0.05): reproduced at once;
- far (mean 80, sd 0.1, reported 70): not reproduced at once;
- hopeless (reported 70 ± 5 sem, margin 1): no number of seeds can decide it (the floor);
- noisy (mean 70, sd 1, reported 70): undecided, gets seeds round after round;
- the claim "twin not worse than exact" (twin: mean 70, sd 1): undecided at first, so both
  twin and exact (decided itself) get the same new seeds.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import wait_until
from test_cli_errors import assert_one_line_error

from harness import plugins
from harness.cli import main

GAUSS = Path(__file__).parents[1] / "data" / "gauss.py"

SUITE = """
name: gauss
family: gauss
plugins: [gauss.py]
paper: "known distributions"
grid:
  dataset: [normal]
  method: [exact, twin, noisy, far, hopeless]
  seed: [0, 1, 2]
overrides:
  - when: {method: exact}
    set: {sd: 0.05}
  - when: {method: far}
    set: {sd: 0.1}
report: {margin: 1.0}
reported:
  - {dataset: normal, method: exact, value: 70.0, interval: 0.05, kind: sem, seeds: 10, source: {paper: p}}
  - {dataset: normal, method: noisy, value: 70.0, interval: 0.05, kind: sem, seeds: 10, source: {paper: p}}
  - {dataset: normal, method: far, value: 70.0, interval: 0.05, kind: sem, seeds: 10, source: {paper: p}}
  - {dataset: normal, method: hopeless, value: 70.0, interval: 5.0, kind: sem, seeds: 10, source: {paper: p}}
claims:
  - name: twin-not-worse
    test: not_worse
    a: {method: twin}
    b: {method: exact}
    quote: "twin is as good"
    source: {paper: p}
budget: {max_seeds: 9, seeds_per_round: 2}
"""


def write_gauss(folder: Path, text: str = SUITE) -> Path:
    shutil.copy(GAUSS, folder / "gauss.py")
    path = folder / "suite.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def gauss(tmp_path, monkeypatch) -> Path:
    """The suite in tmp_path, results there; the plugins found so far forgotten, before and after."""
    plugins.reset()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_RESULTS", str(tmp_path / "results"))
    yield write_gauss(tmp_path)
    plugins.reset()


def cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def cli_process(folder: Path, *args, **popen) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_RESULTS": str(folder / "results"), "HARNESS_POLL_SECONDS": "0.2"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=folder, env=env, check=False,
                          capture_output=True, text=True, timeout=300, **popen)


def state(results: Path) -> dict:
    return json.loads((results / "gauss" / "rounds.json").read_text())


def records(results: Path) -> dict:
    """run id -> record of every run of the suite."""
    return {p.parent.name: json.loads(p.read_text()) for p in (results / "gauss").glob("*/record.json")}


def cells_seeds(results: Path) -> dict:
    """method -> sorted seeds it ran."""
    found: dict = {}
    for record in records(results).values():
        found.setdefault(record["spec"]["method"], []).append(record["spec"]["seed"])
    return {method: sorted(seeds) for method, seeds in found.items()}


def launches(results: Path) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in (results / "gauss" / "launches").glob("*.json")),
                  key=lambda launch: launch["created"])


def starts(results: Path, run_id: str) -> int:
    """How many times a run was started (its log says `run <id>:` at each start)."""
    log = results / "gauss" / run_id / "run.log"
    return log.read_text().count(f"run {run_id}:") if log.exists() else 0


def test_rounds_add_seeds_only_to_undecided_cells_and_stop_when_all_are_decided(gauss, capsys):
    results = gauss.parent / "results"
    code, out, err = cli(capsys, "run", gauss, "--until-decided", "--cluster", "debug", "--quiet")
    assert code == 0, err
    rounds = state(results)["rounds"]
    added = [{a["cell"]["method"]: a["seeds"] for a in entry["additions"]} for entry in rounds]
    # round 1: the undecided reported cell and both sides of the undecided claim, the same new seeds
    assert added[0] == {} and added[1] == {"exact": [3, 4], "twin": [3, 4], "noisy": [3, 4]}
    seeds = cells_seeds(results)
    assert seeds["far"] == [0, 1, 2] and seeds["hopeless"] == [0, 1, 2]  # decided; cannot be decided
    assert seeds["twin"] == seeds["exact"]  # paired by seed all along
    assert max(len(s) for s in seeds.values()) <= 9
    # each round's launch ran exactly the round's new runs
    found = launches(results)
    assert len(found) == len(rounds)
    by_id = records(results)
    for entry, launch in zip(rounds[1:], found[1:]):
        ran = sorted((by_id[run_id]["spec"]["method"], by_id[run_id]["spec"]["seed"]) for run_id in launch["runs"])
        assert ran == sorted((a["cell"]["method"], s) for a in entry["additions"] for s in a["seeds"])
    assert "every verdict is decided" in out
    final = state(results)["finished"]["look"]
    words = {c["cell"]["method"]: (c["word"], c["sequential"]["reason"]) for c in final["cells"]}
    assert words["exact"] == ("reproduced", "decided") and words["far"] == ("not reproduced", "decided")
    assert words["hopeless"] == ("inconclusive", "cannot be decided at this margin")
    assert not any(c["open"] for c in final["cells"] + final["claims"])
    # the report names the rule, the looks and the seeds each verdict used
    report = (results / "gauss" / "REPORT.md").read_text()
    assert "## Sequential seeds" in report and "Lan-DeMets O'Brien-Fleming" in report
    assert "| dataset=normal, method=far " in report and "5 (look 2)" not in report.split("method=far")[1].split("\n")[0]
    assert "3 (look 1)" in report.split("method=far")[1].split("\n")[0]

    # the same command again: nothing to run, no new round, the same verdicts
    code, out, err = cli(capsys, "run", gauss, "--until-decided", "--cluster", "debug", "--quiet")
    assert code == 0 and "to run" not in out and len(state(results)["rounds"]) == len(rounds)
    assert len(launches(results)) == len(found)
    assert state(results)["finished"]["look"]["cells"] == final["cells"]


def test_plan_status_and_report_see_the_rounds_runs_as_planned(gauss, capsys):
    results = gauss.parent / "results"
    assert cli(capsys, "run", gauss, "--until-decided", "--cluster", "debug", "--quiet")[0] == 0
    total = len(records(results))
    code, out, _ = cli(capsys, "plan", gauss)
    assert code == 0 and f"{total} runs: {total} done, 0 failed, 0 running, 0 pending" in out
    code, out, _ = cli(capsys, "status", gauss)
    assert code == 0 and "belong to runs no longer in this plan" not in out
    assert "Sequential seeds: round" in out and "(finished)" in out
    assert ("dataset=normal, method=hopeless: round 0, 3 seeds done of 3; inconclusive (score); cannot be decided at "
            "this margin") in out
    assert "dataset=normal, method=far: round 0, 3 seeds done of 3; not reproduced (score); decided" in out
    assert "dataset=normal, method=twin: round " in out and "; claim twin-not-worse: supported; decided" in out
    code, out, _ = cli(capsys, "report", gauss)
    assert code == 0 and "## Sequential seeds" in out and f"Runs: {total} done" in out
    # report.json carries the same decisions
    code, out, _ = cli(capsys, "report", gauss, "--format", "json")
    sequential = json.loads(out)["sequential"]
    assert code == 0 and json.loads((results / "gauss" / "report.json").read_text())["sequential"] == sequential
    assert "Lan-DeMets" in sequential["rule"] and sequential["max_seeds"] == 9 and sequential["looks"] >= 1
    words = {tuple(c["cell"].items()): (c["word"], c["seeds"], (c["sequential"] or {}).get("reason")) for c in sequential["cells"]}
    assert words[(("dataset", "normal"), ("method", "far"))] == ("not reproduced", 3, "decided")
    assert [(c["claim"], c["word"]) for c in sequential["claims"]] == [("twin-not-worse", "supported")]
    # without the state, the rounds' runs are no longer planned, and report.json has no sequential entry
    (results / "gauss" / "rounds.json").unlink()
    assert f"({total - 15} records in" in cli(capsys, "status", gauss)[1]
    code, out, _ = cli(capsys, "report", gauss, "--format", "json")
    assert code == 0 and "sequential" not in json.loads(out)


def test_a_round_written_but_never_dispatched_is_dispatched_once(gauss, capsys):
    """The launcher died after writing round 1 and before dispatching it: the next `run`
    dispatches exactly round 1's runs, and rounds 0's are not run again."""
    results = gauss.parent / "results"
    assert cli(capsys, "run", gauss, "--until-decided", "--cluster", "debug", "--quiet")[0] == 0
    reference = state(results)
    reference_records = records(results)
    crashed = {**reference, "rounds": reference["rounds"][:2], "finished": None}
    crashed["rounds"][1] = {**crashed["rounds"][1], "launches": []}
    later = {spec for entry in reference["rounds"][1:] for spec in
             [(a["cell"]["method"], s) for a in entry["additions"] for s in a["seeds"]]}
    for run_id, record in reference_records.items():
        if (record["spec"]["method"], record["spec"]["seed"]) in later:
            shutil.rmtree(results / "gauss" / run_id)
    for path in (results / "gauss" / "launches").glob("*.json"):
        if json.loads(path.read_text())["launch_id"] not in crashed["rounds"][0]["launches"]:
            path.unlink()
    (results / "gauss" / "rounds.json").write_text(json.dumps(crashed))
    code, out, _ = cli(capsys, "status", gauss)
    assert code == 0 and "Sequential seeds: round 1, at most 9 seeds per cell" in out
    assert "method=noisy: round 1, 3 seeds done of 5; continue (score); waits for its 2 runs (not dispatched)" in out
    assert "method=far: round 0, 3 seeds done of 3; not reproduced (score); decided" in out

    code, out, err = cli(capsys, "run", gauss, "--until-decided", "--cluster", "debug", "--quiet")
    assert code == 0, err
    first = out.split("\n")[0]
    assert first.startswith("gauss: round 1: 6 to run"), out
    assert [entry["additions"] for entry in state(results)["rounds"]] == [e["additions"] for e in reference["rounds"]]
    assert {k: r["metrics"] for k, r in records(results).items()} == {k: r["metrics"] for k, r in reference_records.items()}
    assert all(starts(results, run_id) == 1 for run_id in records(results))


def test_killing_the_launcher_between_rounds_and_running_again_reruns_nothing(tmp_path):
    """A real local launch (each run in its own process, 0.5 s each) killed (SIGKILL) as soon as
    round 1 is written; the same command again dispatches what the dead launcher did not
    finish and ends as an uninterrupted run. No finished run is run again (a run the kill
    caught in flight, whose worker died with the launcher, is started once more)."""
    small = """
        name: gauss
        family: gauss
        plugins: [gauss.py]
        paper: "known distributions"
        grid: {dataset: [normal], method: [noisy, far], seed: [0, 1, 2]}
        overrides: [{when: {method: far}, set: {sd: 0.1}}]
        defaults: {sleep_s: SLEEP}
        report: {margin: 1.0}
        reported:
          - {dataset: normal, method: noisy, value: 70.0, interval: 0.05, kind: sem, seeds: 10, source: {paper: p}}
          - {dataset: normal, method: far, value: 70.0, interval: 0.05, kind: sem, seeds: 10, source: {paper: p}}
        budget: {max_seeds: 7, seeds_per_round: 2}
        """
    reference = tmp_path / "reference"
    reference.mkdir()
    write_gauss(reference, small.replace("SLEEP", "0.0"))
    assert cli_process(reference, "run", "suite.yaml", "--until-decided", "--cluster", "debug", "--quiet").returncode == 0
    assert len(state(reference / "results")["rounds"]) == 3  # the grid and two rounds of noisy's seeds
    folder = tmp_path / "killed"
    folder.mkdir()
    write_gauss(folder, small.replace("SLEEP", "0.5"))
    results = folder / "results"
    env = {**os.environ, "HARNESS_RESULTS": str(results), "HARNESS_POLL_SECONDS": "0.2"}
    launcher = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "suite.yaml", "--until-decided",
                                 "--cluster", "local", "--quiet", "--max-parallel", "2"], cwd=folder, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        path = results / "gauss" / "rounds.json"
        wait_until(lambda: path.exists() and len(json.loads(path.read_text())["rounds"]) == 2, 120, "round 1")
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
    finally:
        launcher.kill()
    time.sleep(2)  # a worker that outlived its launcher ends (or is gone) by now
    before = {run_id: record["finished"] for run_id, record in records(results).items()}
    assert len(before) >= 6  # round 0 had finished
    again = cli_process(folder, "run", "suite.yaml", "--until-decided", "--cluster", "local", "--quiet")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    ours, theirs = records(results), records(reference / "results")
    assert sorted((r["spec"]["method"], r["spec"]["seed"], r["metrics"]["score"]) for r in ours.values()) == \
        sorted((r["spec"]["method"], r["spec"]["seed"], r["metrics"]["score"]) for r in theirs.values())
    assert all(starts(results, run_id) == 1 and ours[run_id]["finished"] == finished
               for run_id, finished in before.items())
    assert all(starts(results, run_id) <= 2 for run_id in ours)
    assert [e["additions"] for e in state(results)["rounds"]] == [e["additions"] for e in state(reference / "results")["rounds"]]


def error(capsys, *args) -> subprocess.CompletedProcess:
    """The command's exit code and what it printed, as a finished process (the real CLI, in this process)."""
    code, out, err = cli(capsys, *args)
    return subprocess.CompletedProcess(args, code, out, err)


def test_bad_budgets_and_a_damaged_state_are_one_line_errors(gauss, capsys):
    suite_text = gauss.read_text()
    gauss.write_text(suite_text.replace("budget: {max_seeds: 9, seeds_per_round: 2}\n", ""))
    results = gauss.parent / "results"
    assert_one_line_error(error(capsys, "run", gauss, "--until-decided"),
                          "--until-decided: give --max-seeds N and --seeds-per-round K", "suite.yaml")
    assert_one_line_error(error(capsys, "run", gauss, "--until-decided", "--max-seeds", "2", "--seeds-per-round", "1"),
                          "--max-seeds 2: below the 3 seeds a cell of the plan already runs")
    assert_one_line_error(error(capsys, "run", gauss, "--max-seeds", "5"), "--max-seeds 5: only with --until-decided")
    assert_one_line_error(error(capsys, "run", gauss, "--until-decided", "--max-seeds", "9", "--seeds-per-round", "0"),
                          "--seeds-per-round 0: must be >= 1")
    assert_one_line_error(error(capsys, "run", gauss, "--until-decided", "--max-seeds", "9", "--seeds-per-round", "2",
                                "--force"), "--force")
    assert not results.exists()
    gauss.write_text(suite_text)
    assert cli(capsys, "run", gauss, "--until-decided", "--cluster", "debug", "--quiet")[0] == 0
    assert_one_line_error(error(capsys, "run", gauss, "--until-decided", "--max-seeds", "12"),
                          "--max-seeds 12: the rounds in rounds.json were started with max seeds 9")
    state_file = results / "gauss" / "rounds.json"
    state_file.write_text(state_file.read_text()[:-20])
    for command in ("plan", "status", "report", "run"):
        assert_one_line_error(error(capsys, command, gauss), str(state_file), "not valid JSON")
    gauss.write_text(suite_text.split("report:")[0])
    state_file.unlink()
    assert_one_line_error(error(capsys, "run", gauss, "--until-decided", "--max-seeds", "9", "--seeds-per-round", "2"),
                          "has nothing to decide")


def test_plan_estimate_gives_the_expected_and_worst_case_seeds_of_each_open_cell(gauss, capsys):
    assert cli(capsys, "run", gauss, "--cluster", "debug", "--quiet")[0] == 0  # the grid only: the first look
    code, out, err = cli(capsys, "plan", gauss, "--estimate")
    assert code == 0, err
    table = out.split("Sequential seeds (at most 9 per cell, 2 per round)")[1]
    rows = {line.split("|")[1].strip(): [x.strip() for x in line.split("|")[2:-1]] for line in table.splitlines()
            if line.startswith("| ") and "cell or claim" not in line}
    assert set(rows) == {"dataset=normal, method=noisy (score)", "claim twin-not-worse"}  # far and exact: decided
    noisy = rows["dataset=normal, method=noisy (score)"]
    assert noisy[0] == "3" and noisy[1] == "3 5 7 9" and 3 < float(noisy[2]) <= 9 and noisy[3] == "9"
    assert rows["claim twin-not-worse"][5] == "2"  # twin and exact get each new seed
    code, out, err = cli(capsys, "plan", gauss, "--estimate", "--format", "json")
    planned = json.loads(out)["sequential_estimate"]
    assert planned["max_seeds"] == 9 and {p["what"] for p in planned["open"]} == set(rows)
