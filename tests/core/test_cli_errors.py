"""Bad suites and bad options through the real `harness` command line, in subprocesses.

Every error must exit 2 with exactly one line on stderr (no traceback), and nothing
may be launched or written.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Tiny training settings, so that a regression which lets a bad suite through costs
# seconds rather than minutes.
BASE = """\
name: t
paper: p
defaults: {steps: 1, val_every: 1, val_episodes: 1, test_episodes: 2, queries: 1, test_queries: 1, device: cpu}
grid:
  dataset: [omniglot]
  shots: [1, 5]
  method: [mtl, protonet]
  seed: [0]
"""

BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{label}: &{label} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
    for previous, label in zip("abcdefgh", "bcdefghi")
)

# (id, suite text or None for a missing file, a fragment naming the key or the problem)
BAD_SUITES = [
    ("typo-grdi", "name: t\npaper: p\ngrdi:\n  dataset: [omniglot]\n", "grdi"),
    ("wrong-type", BASE.replace("shots: [1, 5]", 'shots: "five"'), "grid.shots"),
    ("unknown-method", BASE.replace("[mtl, protonet]", "[mtl, mamll]"), "mamll"),
    ("non-positive-shots", BASE.replace("shots: [1, 5]", "shots: [0]"), "grid.shots"),
    ("empty-axis", BASE.replace("seed: [0]", "seed: []"), "grid.seed"),
    ("duplicate-key", BASE + "  seed: [1]\n", "grid.seed: duplicate key"),
    ("duplicate-reported", BASE + """\
reported:
  - {dataset: omniglot, shots: 1, method: mtl, over: seeds, value: 90.0, source: {paper: x}}
  - {dataset: omniglot, shots: 1, method: mtl, over: seeds, value: 91.0, source: {paper: y}}
""", "reported[1]"),
    ("malformed-yaml", BASE.replace("seed: [0]", "seed: [0, 1"), "malformed YAML"),
    ("alias-bomb", BASE + BOMB, "alias bomb"),
    ("missing-file", None, "no such file"),
    ("python-object-tag", BASE + 'description: !!python/object/apply:os.system ["touch EXECUTED"]\n', "python/object"),
]


def write_suite(folder: Path, text: str, name: str = "suite.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def harness_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_RESULTS": str(tmp_path / "results")}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def assert_nothing_written(tmp_path: Path) -> None:
    results = tmp_path / "results"
    assert not results.exists() or not any(results.iterdir()), sorted(results.rglob("*"))


@pytest.mark.parametrize("command", [["plan"], ["run", "--cluster", "local"]], ids=["plan", "run"])
@pytest.mark.parametrize("case_id, text, fragment", [pytest.param(*case, id=case[0]) for case in BAD_SUITES])
def test_bad_suite_exits_2_with_one_line_and_writes_nothing(tmp_path, command, case_id, text, fragment):
    path = tmp_path / "suite.yaml" if text is None else write_suite(tmp_path, text)
    result = harness_cli(tmp_path, command[0], str(path), *command[1:])
    line = assert_one_line_error(result, str(path), fragment)
    assert line.startswith(f"harness: error: {path}"), line
    assert result.stdout == ""
    assert_nothing_written(tmp_path)
    assert not (tmp_path / "EXECUTED").exists()


@pytest.mark.parametrize("item, fragment", [
    ("shotz=1", "unknown key 'shotz'"),
    ("shots=abc", "'abc'"),
    ("shots", "KEY=VALUE"),
], ids=["unknown-key", "bad-value-type", "missing-equals"])
def test_bad_filter_exits_2_with_one_line(tmp_path, item, fragment):
    path = write_suite(tmp_path, BASE)
    result = harness_cli(tmp_path, "plan", str(path), "--filter", item)
    assert_one_line_error(result, "--filter", repr(item), fragment)
    assert result.stdout == ""
    assert_nothing_written(tmp_path)


def test_bad_filter_on_run_launches_nothing(tmp_path):
    path = write_suite(tmp_path, BASE)
    result = harness_cli(tmp_path, "run", str(path), "--cluster", "local", "--filter", "shots=abc")
    assert_one_line_error(result, "--filter", "shots")
    assert_nothing_written(tmp_path)


def test_max_parallel_zero_exits_2_with_one_line(tmp_path):
    path = write_suite(tmp_path, BASE)
    result = harness_cli(tmp_path, "run", str(path), "--cluster", "local", "--max-parallel", "0")
    assert_one_line_error(result, "--max-parallel", ">= 1")
    assert result.stdout == ""
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize("command", ["plan", "report"])
def test_plan_and_report_do_not_import_torch(tmp_path, command):
    path = write_suite(tmp_path, BASE)
    code = (
        "import sys\n"
        "from harness.cli import main\n"
        f"rc = main([{command!r}, {str(path)!r}])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "HARNESS_RESULTS": str(tmp_path / "results")}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    if command == "plan":
        assert "4 runs: 0 done, 0 failed, 0 running, 4 pending" in result.stdout
        assert_nothing_written(tmp_path)
    else:
        assert "No finished runs yet." in result.stdout
        assert (tmp_path / "results" / "t" / "REPORT.md").read_text(encoding="utf-8") == result.stdout


@pytest.mark.parametrize("value, fragment", [("shots=0", ">= 1"), ("method=nope", "unknown method")])
def test_filter_values_are_validated_like_suite_values(tmp_path, capsys, value, fragment):
    from harness.cli import main

    path = write_suite(tmp_path, BASE)
    assert main(["plan", str(path), "--filter", value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err and value in err


def test_results_folder_may_be_given_after_the_command(tmp_path, capsys):
    from harness.cli import main
    from harness.suite import load_suite

    path = write_suite(tmp_path, BASE)
    stray = tmp_path / "elsewhere" / load_suite(path).name / "stray.txt"
    stray.parent.mkdir(parents=True)
    stray.write_text("not a run")
    for argv in (["plan", str(path), "--results", str(tmp_path / "elsewhere")],
                 ["--results", str(tmp_path / "elsewhere"), "plan", str(path)]):
        assert main(argv) == 0
        assert str(stray) in capsys.readouterr().err  # the store scanned that folder
