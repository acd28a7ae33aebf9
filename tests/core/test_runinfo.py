"""`harness log` and `harness show`: a run found by a unique id prefix in any suite; its log
with the older parts first; its config, components, status, metrics, timing and env.
None of plan, status, report, compare, show, log imports torch."""
import os
import re
import subprocess
import sys

import pytest
from conftest import TINY_SUITE, write_suite
from test_cli_errors import assert_one_line_error, harness_cli
from test_store import fake_record

from harness import families
from harness.spec import components, expand
from harness.store import Store
from harness.suite import load_suite


@pytest.fixture
def runs(tmp_path):
    suite = load_suite(write_suite(tmp_path, TINY_SUITE.replace("seed: [0]", "seed: [0, 1]")))
    specs = list(expand(suite))
    store = Store(tmp_path / "results", suite.name)
    done = fake_record(specs[0], accuracies=[60.0, 80.0, 100.0])
    done.update({"components": components(families.get("fewshot"), specs[0].config), "family": "fewshot",
                 "timing": {"train_seconds": 125.0, "eval_seconds": 0.25, "total_seconds": 126.0},
                 "env": {"host": "node7", "device": "cpu", "python": "3.11.7"}, "started": "2026-01-01T00:00:00+00:00"})
    store.write_record(done)
    failed = fake_record(specs[1], status="failed")
    failed["error"] = {"type": "RuntimeError", "message": "CUDA out of memory\nsecond line", "traceback": "Traceback\n  x\nRuntimeError"}
    store.write_record(failed)
    return tmp_path, suite, specs, store


def test_log_prints_the_older_parts_first_and_tails(runs):
    tmp_path, suite, specs, store = runs
    folder = store.run_dir(specs[0].run_id)
    (folder / "run.log.2").write_text("line 3\nline 4\n")
    (folder / "run.log.1").write_text("line 1\nline 2\n")
    (folder / "run.log").write_text("line 5\nline 6\n")
    shown = harness_cli(tmp_path, "log", specs[0].run_id[:6])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "".join(f"line {i}\n" for i in range(1, 7))
    assert harness_cli(tmp_path, "log", specs[0].run_id, "--tail", "3").stdout == "line 4\nline 5\nline 6\n"
    assert harness_cli(tmp_path, "log", specs[0].run_id, "--suite", suite.name, "--tail", "0").stdout == ""


def test_show_prints_config_components_status_metrics_timing_env(runs):
    tmp_path, suite, specs, store = runs
    shown = harness_cli(tmp_path, "show", specs[0].run_id[:5])
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.startswith(f"run {specs[0].run_id} (suite tiny): done")
    assert re.search(r"^  test_episodes +40$", out, re.M)
    for fragment in ("config (resolved):", "components:", "method", "protonet v1",
                     "metrics:", "3 values: mean 80, min 60, max 100", "timing:", "125.0 s (2.1 min)", "250 ms",
                     "env:", "node7", "started: 2026-01-01"):
        assert fragment in out, fragment
    failed = harness_cli(tmp_path, "show", specs[1].run_id).stdout
    assert ": failed" in failed.splitlines()[0] and "RuntimeError: CUDA out of memory" in failed and "second line" in failed


def test_show_of_a_running_and_of_a_pending_run(runs):
    tmp_path, suite, specs, store = runs
    more = load_suite(write_suite(tmp_path, TINY_SUITE.replace("seed: [0]", "seed: [7]"), name="more.yaml"))
    spec = next(iter(expand(more)))
    fd = store.hold_running(spec.run_id, {"pid": os.getpid(), "host": "here", "started": "now"})
    try:
        assert "running (host here" in harness_cli(tmp_path, "show", spec.run_id).stdout.splitlines()[0]
    finally:
        store.release_running(spec.run_id, fd)
    store.run_dir(spec.run_id).mkdir(exist_ok=True)
    shown = harness_cli(tmp_path, "show", spec.run_id, "--suite", "more.yaml").stdout
    assert "pending (no record)" in shown and "config (planned: no record yet)" in shown and re.search(r"^  seed +7$", shown, re.M)


def test_prefixes_are_searched_in_every_suite_unless_one_is_given(runs):
    tmp_path, suite, specs, store = runs
    other = Store(tmp_path / "results", "other")
    twin = "abc000000001"
    for store_, run_id in ((store, "abc000000002"), (other, twin)):
        store_.run_dir(run_id).mkdir(parents=True)
        (store_.run_dir(run_id) / "run.log").write_text(f"{run_id}\n")
    line = assert_one_line_error(harness_cli(tmp_path, "log", "abc"), "ambiguous", "tiny/abc000000002", "other/abc000000001")
    assert "--suite" in line
    assert harness_cli(tmp_path, "log", "abc", "--suite", "other").stdout == f"{twin}\n"
    assert harness_cli(tmp_path, "log", "abc0000000", "--suite", "tiny").stdout == "abc000000002\n"


@pytest.mark.parametrize("args, fragment", [
    (["log", "0123456789ab"], "no run folder with that id"),
    (["show", "ffff"], "no run folder with that id"),
    (["log", "XYZ"], "not a run id"),
    (["show", "abc", "--suite", "nosuch"], "--suite nosuch"),
    (["log", "abc", "--tail", "many"], "--tail many"),
])
def test_unknown_or_bad_ids_are_one_line_errors(runs, args, fragment):
    tmp_path = runs[0]
    assert_one_line_error(harness_cli(tmp_path, *args), fragment)


def test_a_run_without_a_log_is_one_line(runs):
    tmp_path, suite, specs, store = runs
    assert_one_line_error(harness_cli(tmp_path, "log", specs[0].run_id), "no log yet")


def test_a_missing_results_folder_is_one_line(tmp_path):
    assert_one_line_error(harness_cli(tmp_path, "show", "abc"), "no results folder")


@pytest.mark.parametrize("argv", [
    ["plan", "{suite}", "--estimate"], ["status", "{suite}"], ["report", "{suite}"],
    ["compare", "{results}/tiny", "{results}/tiny"], ["show", "{run}"], ["log", "{run}"],
])
def test_the_read_only_commands_never_import_torch(runs, argv):
    tmp_path, suite, specs, store = runs
    (store.run_dir(specs[0].run_id) / "run.log").write_text("hello\n")
    argv = [a.format(suite=suite.path, results=tmp_path / "results", run=specs[0].run_id) for a in argv]
    code = ("import sys\nfrom harness.cli import main\n"
            f"rc = main({argv!r})\n"
            "assert rc == 0, rc\nassert 'torch' not in sys.modules, 'torch was imported'\n")
    env = {**os.environ, "HARNESS_RESULTS": str(tmp_path / "results")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
