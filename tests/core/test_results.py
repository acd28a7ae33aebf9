"""The committed reproductions in results/: every record loads as a valid record of its
suite's current plan (no warning, nothing stale), and each report regenerates byte for
byte from the records (results/README.md lists the commands)."""
from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from harness import families
from harness.cli import confirmation_configs, main, parse_filters, round_configs
from harness.spec import expand
from harness.staleness import stale_warnings
from harness.store import Store
from harness.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
# folder -> (suite file, the --filter items its report was made with)
REPRODUCTIONS = {
    "quickstart": ("suites/quickstart.yaml", []),
    "quickstart_multitask": ("suites/quickstart_multitask.yaml", []),
    "quickstart_rl": ("suites/quickstart_rl.yaml", []),
    "kurin2022": ("suites/kurin2022.yaml", ["dataset=multi_mnist"]),
}


def committed(name: str) -> Path:
    folder = RESULTS / name
    if not (folder / "REPORT.md").exists():
        pytest.fail(f"{folder} holds no committed report")
    return folder


@pytest.mark.parametrize("name", sorted(REPRODUCTIONS))
def test_every_committed_record_is_a_valid_done_record_of_the_current_plan(name):
    folder = committed(name)
    suite_file, filters = REPRODUCTIONS[name]
    suite = load_suite(ROOT / suite_file)
    if filters:
        suite = dataclasses.replace(suite, keep=(parse_filters(filters, suite.keys),))
    store = Store(RESULTS, name)
    # the plan as `harness plan` makes it: the grid, and the confirmation runs `run --confirm` froze
    specs = list(expand(suite, round_configs(suite, store, quiet=True) + confirmation_configs(suite, store)))
    records = sorted(path.parent.name for path in folder.glob("*/record.json"))
    assert records, f"no records in {folder}"
    scan = store.scan(specs)
    assert scan.warnings == [] and scan.unplanned == 0
    done = [spec for spec in specs if scan.states[spec.run_id].status == "done"]
    assert sorted(spec.run_id for spec in done) == records  # every record is one of the plan's done runs
    assert stale_warnings(specs, scan) == []  # recorded by the code that is here now
    family = families.get(suite.family)
    assert all(family.metrics_problem(scan.states[spec.run_id].record["metrics"]) is None for spec in done)


@pytest.mark.parametrize("name", sorted(REPRODUCTIONS))
def test_each_committed_report_regenerates_byte_for_byte(name, tmp_path):
    folder = committed(name)
    suite_file, filters = REPRODUCTIONS[name]
    copy = tmp_path / "results" / name
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".cache", "REPORT.md", "*.png"))
    arguments = ["--results", str(tmp_path / "results"), "report", str(ROOT / suite_file)]
    for item in filters:
        arguments += ["--filter", item]
    assert main(arguments) == 0
    assert (copy / "REPORT.md").read_bytes() == (folder / "REPORT.md").read_bytes()
    figures = sorted(figure.name for figure in folder.glob("*.png"))
    assert sorted(figure.name for figure in copy.glob("*.png")) == figures
    for name in figures:
        assert_same_figure(copy / name, folder / name)


def assert_same_figure(made: Path, committed_figure: Path) -> None:
    """Byte for byte (fixed size and dpi, no timestamp) under the matplotlib that made the
    committed figures (results/README.md names it); under another one, whose antialiasing
    may differ by a few pixels, the same size and nearly the same pixels."""
    import matplotlib
    from matplotlib import image

    maker = re.search(r"matplotlib (\d+\.\d+\.\d+)", (RESULTS / "README.md").read_text(encoding="utf-8"))
    assert maker, "results/README.md names no matplotlib version"
    if matplotlib.__version__ == maker.group(1):
        assert made.read_bytes() == committed_figure.read_bytes(), committed_figure.name
        return
    ours, theirs = image.imread(made), image.imread(committed_figure)
    assert ours.shape == theirs.shape, committed_figure.name
    differing = (abs(ours - theirs).max(axis=-1) > 0.25).mean()
    assert differing < 0.002, f"{committed_figure.name}: {differing:.2%} of the pixels differ"


def test_the_readme_shows_the_committed_multi_mnist_table():
    """The README's Multi-MNIST table is the committed report's, not pasted by hand."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- from results/kurin2022/REPORT.md -->", "<!-- end of results/kurin2022/REPORT.md -->"
    assert start in readme and end in readme
    shown = readme.split(start)[1].split(end)[0].strip()
    report = (committed("kurin2022") / "REPORT.md").read_text(encoding="utf-8")
    table = report.split("## multi_mnist\n")[1].strip().split("\n\n")[0]
    assert shown == table
    assert "results/kurin2022/multi_mnist-tasks.png" in readme and "results/kurin2022/multi_mnist-cost.png" in readme
