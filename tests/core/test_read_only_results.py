"""A read-only results folder (a colleague's shared results, a read-only mount): the commands
that read work and write nothing there; `report --out` writes only where it is told; and
`report` names stale records as `plan` does. Through the real CLI."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_SUITE, write_suite
from test_store import fake_record

from harness import families
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite

SUITE = TINY_SUITE.replace("seed: [0]", "seed: [0, 1]")


def filled(tmp_path: Path, components=None) -> tuple[Path, Store]:
    suite_path = write_suite(tmp_path, SUITE)
    suite = load_suite(suite_path)
    store = Store(tmp_path / "results", suite.name)
    for spec in expand(suite):
        record = fake_record(spec, accuracies=(80.0 + spec.config["seed"], 90.0))
        timing = {"train_seconds": 10.0 + spec.config["seed"], "eval_seconds": 1.0, "total_seconds": 12.0}
        store.write_record({**record, "timing": timing, "components": components(spec) if components else {}})
    return suite_path, store


def snapshot(folder: Path) -> dict:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def read_only_prefix(folder: Path) -> list[str] | None:
    """A command prefix under which ``folder`` cannot be written, even by root (who ignores
    permissions): a private read-only bind mount; None when this machine cannot make one."""
    if os.geteuid() != 0:
        return []  # chmod is enough (see ``read_only``)
    if shutil.which("unshare") is None:
        return None
    prefix = ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(folder)]
    probe = subprocess.run([*prefix, "touch", str(folder / "probe")], capture_output=True)
    if probe.returncode == 0 or (folder / "probe").exists():
        (folder / "probe").unlink(missing_ok=True)
        return None
    return prefix if b"Read-only file system" in probe.stderr else None


def read_only(folder: Path):
    """chmod a-w, for a user other than root."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)


def cli(prefix: list[str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_RESULTS": str(cwd / "results")}
    return subprocess.run([*prefix, sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def shared(tmp_path):
    """A filled results folder of the tiny suite, as another user's (read-only) folder; the
    store cache is not there yet, so reading it would create one."""
    suite_path, store = filled(tmp_path)
    prefix = read_only_prefix(store.dir)
    if prefix is None:
        pytest.skip("no way to make a folder read-only for root here (no unshare with mount)")
    if os.geteuid() != 0:
        read_only(store.dir)
    yield suite_path, store, prefix
    for path in [store.dir, *store.dir.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


def test_the_reading_commands_work_on_a_read_only_results_folder_and_write_nothing(shared, tmp_path):
    suite_path, store, prefix = shared
    before = snapshot(store.dir)
    report = cli(prefix, tmp_path, "report", str(suite_path))
    assert report.returncode == 0, report.stderr
    assert "Traceback" not in report.stderr and report.stdout.startswith("# tiny")
    assert "Runs: 4 done" in report.stdout and ".png)" not in report.stdout  # no figure it could not draw
    assert f"warning: {store.dir} is not writable: REPORT.md is not written there" in report.stderr
    for command in (["plan", str(suite_path)], ["plan", str(suite_path), "--estimate"], ["status", str(suite_path)],
                    ["show", next(iter(snapshot(store.dir))).split("/")[0], "--suite", str(suite_path)],
                    ["compare", str(store.dir), str(store.dir)]):
        done = cli(prefix, tmp_path, *command)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (command, done.stderr)
    assert "4 done" in cli(prefix, tmp_path, "plan", str(suite_path)).stdout
    assert snapshot(store.dir) == before and not (store.dir / ".cache").exists()


def test_report_out_writes_only_where_told_with_its_figures_beside_it(shared, tmp_path):
    suite_path, store, prefix = shared
    before = snapshot(store.dir)
    out = tmp_path / "mine" / "REPORT.md"
    done = cli(prefix, tmp_path, "report", str(suite_path), "--out", str(out))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert out.read_text() == done.stdout and "![accuracy against training" in done.stdout
    assert (out.parent / "accuracy_vs_training_cost.png").is_file()
    assert snapshot(store.dir) == before


def test_a_writable_results_folder_still_gets_the_report_and_its_figures(tmp_path):
    suite_path, store = filled(tmp_path)
    done = cli([], tmp_path, "report", str(suite_path), "--out", str(tmp_path / "copy.md"))
    assert done.returncode == 0 and "not writable" not in done.stderr, done.stderr
    assert (store.dir / "REPORT.md").read_text() == (tmp_path / "copy.md").read_text() == done.stdout
    assert (store.dir / "accuracy_vs_training_cost.png").is_file()


def test_report_warns_about_records_made_by_changed_sources_as_plan_does(tmp_path):
    version = families.get("fewshot").registries["method"].version("protonet")
    changed = {"method": {"name": "protonet", "version": version, "digest": "0" * 16, "file": "protonet.py"}}
    suite_path, _ = filled(tmp_path, components=lambda spec: changed if spec.config["method"] == "protonet" else {})
    line = (f"warning: method 'protonet' (protonet.py): its source changed since 2 finished runs were recorded "
            f"under version {version}: results may be stale")
    assert line in cli([], tmp_path, "plan", str(suite_path)).stderr
    report = cli([], tmp_path, "report", str(suite_path), "--no-plots")
    assert report.returncode == 0 and report.stderr.count("its source changed") == 1 and line in report.stderr
