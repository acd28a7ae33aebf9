"""Report figures: what each panel shows (the numbers of the tables), PNG files beside
REPORT.md linked with relative links, byte-identical on regeneration, matplotlib only when
plotting, and `harness run` drawing them too."""
import hashlib
import struct
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_SUITE, write_suite
from test_multitask_suite import filled  # noqa: F401 (a fixture)
from test_store import fake_record

from harness.cli import main
from harness.multitask.report import build as multitask_build
from harness.report import build, plots
from harness.report.generic import compute
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite

SUITE = TINY_SUITE.replace("seed: [0]", "seed: [0, 1]").replace("shots: [1]", "shots: [1, 5]")
FIGURE = "accuracy_vs_training_cost.png"


def fill(tmp_path, text=SUITE, device="cpu", train_seconds=(90.0, 180.0)):
    """Every run done; protonet trains train_seconds[0] s, mtl train_seconds[1] (None: not recorded)."""
    suite = load_suite(write_suite(tmp_path, text))
    store = Store(tmp_path / "results", suite.name)
    for spec in expand(suite):
        rng = np.random.default_rng(spec.config["seed"] + 10 * spec.config["shots"] + len(spec.config["method"]))
        record = fake_record(spec, accuracies=(85 + rng.normal(0, 4, size=30)).tolist())
        seconds = train_seconds[spec.config["method"] == "mtl"]
        record["timing"] = {"train_seconds": seconds, "eval_seconds": 1.0, "total_seconds": (seconds or 0) + 1.0}
        record["env"] = {"device": device}
        store.write_record(record)
    return suite, store


@pytest.fixture
def drawn(monkeypatch):
    """The panels each plots.draw call got, by file name (the PNG is still written)."""
    calls = {}
    real = plots.draw

    def spy(panels, path, **kwargs):
        calls[path.name] = panels
        return real(panels, path, **kwargs)

    monkeypatch.setattr(plots, "draw", spy)
    return calls


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_fewshot_panels_show_the_tables_numbers_against_cpu_hours(tmp_path, drawn):
    suite, store = fill(tmp_path)
    text, warnings = build(suite, store, "markdown")
    cells = {(c.key["shots"], c.key["method"]): c for c in compute(suite, store).sections[0].cells}
    panels = drawn[FIGURE]
    assert [p.title for p in panels] == ["omniglot, ways 5, shots 1, backbone conv4", "omniglot, ways 5, shots 5, backbone conv4"]
    assert all(p.xlabel == "training CPU core-hours per run" and p.ylabel == "accuracy (%)" for p in panels)
    points = {(shots, point.label): point for shots, panel in zip((1, 5), panels) for point in panel.items}
    for (shots, method), point in points.items():
        cell = cells[shots, method]
        assert point.y == pytest.approx(cell.mean) and point.half_width == pytest.approx(cell.ci95)
        assert point.x == pytest.approx({"protonet": 90.0, "mtl": 180.0}[method] * 1 / 3600)  # 1 cpu per run
    assert points[1, "protonet"].reported == 90.0 and points[1, "mtl"].reported is None and points[5, "protonet"].reported is None
    # linked with a relative link, the file beside REPORT.md
    assert f"![accuracy against training CPU core-hours]({FIGURE})" in text and "## Plots" in text
    assert png_size(store.dir / FIGURE) == (round(2 * plots.PANEL_SIZE[0] * plots.DPI), round(plots.PANEL_SIZE[1] * plots.DPI))
    assert warnings == []


def test_gpu_runs_are_plotted_against_gpu_hours(tmp_path, drawn):
    text = SUITE.replace("resources:\n  cpus: 1", "resources:\n  gpus: 2\n  cpus: 4")
    suite, store = fill(tmp_path, text, device="cuda:0")
    markdown, _ = build(suite, store, "markdown")
    panel = drawn[FIGURE][0]
    assert panel.xlabel == "training GPU-hours per run" and "GPU-hours" in markdown
    assert {p.label: p.x for p in panel.items} == {"protonet": pytest.approx(2 * 90 / 3600), "mtl": pytest.approx(2 * 180 / 3600)}


def test_cells_without_training_time_are_named_not_plotted(tmp_path, drawn):
    suite, store = fill(tmp_path, train_seconds=(90.0, None))
    text, _ = build(suite, store, "markdown")
    assert [p.label for panel in drawn[FIGURE] for p in panel.items] == ["protonet", "protonet"]
    assert "Not plotted (no training time recorded): omniglot, ways 5, shots 1, backbone conv4 mtl; " in text


def test_a_sweep_with_more_groups_than_panels_says_so_and_draws_nothing(tmp_path, drawn, monkeypatch):
    """Two panels here; with room for one, the figure is not drawn and the report says why
    (a 200-panel hyper-parameter sweep took 13 s to draw and could not be read)."""
    from harness.report import figures

    monkeypatch.setattr(figures, "MAX_COST_PANELS", 1)
    suite, store = fill(tmp_path)
    text, warnings = build(suite, store, "markdown")
    assert FIGURE not in drawn and not (store.dir / FIGURE).exists()
    assert ("Not drawn: accuracy against training cost would need 2 panels (one per dataset, ways, shots, backbone "
            "group), more than 1: `harness report --filter` to fewer groups to draw it.") in text
    assert warnings == []


def test_a_wide_range_of_costs_uses_a_log_axis():
    assert plots.use_log_scale([0.01, 5.0]) and not plots.use_log_scale([1.0, 5.0]) and not plots.use_log_scale([0.0, 5.0])


def test_plots_regenerate_byte_for_byte_in_a_fresh_process(tmp_path):
    suite, store = fill(tmp_path)
    args = ["--results", str(store.root), "report", str(suite.path)]
    code = f"from harness.cli import main; raise SystemExit(main({args!r}))"

    def regenerate():
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        figure = store.dir / FIGURE
        digest = hashlib.sha256(figure.read_bytes()).hexdigest()
        figure.unlink()
        return done.stdout, (store.dir / "REPORT.md").read_text(), digest

    first, second = regenerate(), regenerate()  # each run draws the PNG afresh
    assert first == second
    main(args)
    chunks = (store.dir / FIGURE).read_bytes()
    assert b"tIME" not in chunks and b"Software" not in chunks and b"matplotlib" not in chunks


def test_no_plots_writes_none_and_never_imports_matplotlib(tmp_path):
    suite, store = fill(tmp_path)
    code = ("import sys\nfrom harness.cli import main\n"
            f"assert main(['--results', {str(store.root)!r}, 'report', {str(suite.path)!r}, '--no-plots']) == 0\n"
            f"assert main(['--results', {str(store.root)!r}, 'report', {str(suite.path)!r}, '--format', 'csv']) == 0\n"
            "assert 'matplotlib' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list(store.dir.glob("*.png")) and "## Plots" not in (store.dir / "REPORT.md").read_text()


def test_run_writes_the_report_with_its_plots(tmp_path, capsys):
    suite, store = fill(tmp_path)
    assert main(["--results", str(store.root), "run", str(suite.path), "--cluster", "debug", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "nothing to run." in out and f"]({FIGURE})" in out and (store.dir / FIGURE).exists()


def test_latex_with_plots_includes_the_figure(tmp_path):
    suite, store = fill(tmp_path)
    text, _ = build(suite, store, "latex", {"plots": True})
    assert f"\\includegraphics[width=\\linewidth]{{{FIGURE}}}" in text and (store.dir / FIGURE).exists()


# ------------------------------------------------------------------ multi-task


def test_multitask_figures_show_per_task_bars_and_cost_ratios(filled, drawn):
    suite, store, averages = filled
    text, warnings = multitask_build(suite, store, "markdown")
    tasks, cost = drawn["multi_mnist-tasks.png"], drawn["multi_mnist-cost.png"]
    assert [p.title for p in tasks] == ["left", "right", "average"]
    average = {bar.label: bar for bar in tasks[2].items}
    for method, values in averages.items():
        assert average[method].value == pytest.approx(np.mean(values))
    assert average["unitary"].highlight and not average["pcgrad"].highlight
    assert average["mgda_ub"].half_width > 0  # two seeds: an interval
    assert [p.title for p in cost] == ["time per step × unitary", "peak memory × unitary"]
    assert [p.reference for p in cost] == [1.0, 1.0]
    assert {b.label: b.value for b in cost[0].items} == {"unitary": 1.0, "pcgrad": pytest.approx(1.5), "mgda_ub": pytest.approx(1.2)}
    assert {b.label: b.value for b in cost[1].items} == {"unitary": 1.0, "pcgrad": pytest.approx(1.2), "mgda_ub": pytest.approx(1.1)}
    assert "![multi_mnist per-task metrics](multi_mnist-tasks.png)" in text and "(multi_mnist-cost.png)" in text
    assert (store.dir / "multi_mnist-tasks.png").exists() and (store.dir / "multi_mnist-cost.png").exists()
    assert warnings == [] and multitask_build(suite, store, "markdown")[1] == []  # its own PNGs are no warnings
    first = (store.dir / "multi_mnist-tasks.png").read_bytes()
    multitask_build(suite, store, "markdown")
    assert (store.dir / "multi_mnist-tasks.png").read_bytes() == first


def test_multitask_highlights_the_baseline_and_skips_plots_when_asked(filled, drawn):
    suite, store, _ = filled
    multitask_build(suite, store, "markdown", {"baseline": "pcgrad"})
    assert [b.label for b in drawn["multi_mnist-tasks.png"][0].items if b.highlight] == ["pcgrad"]
    drawn.clear()
    text, _ = multitask_build(suite, store, "markdown", {"plots": False})
    assert drawn == {} and ".png" not in text


def test_without_matplotlib_the_report_is_written_with_a_warning(tmp_path, monkeypatch, filled):
    (tmp_path / "fewshot").mkdir()
    suite, store = fill(tmp_path / "fewshot")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails as if not installed
    text, warnings = build(suite, store, "markdown")
    assert "## Plots" not in text and "| omniglot" in text
    assert warnings == ["plots skipped: matplotlib is not installed (pip install matplotlib; or --no-plots)"]
    multitask_suite, multitask_store, _ = filled
    assert multitask_build(multitask_suite, multitask_store, "markdown")[1] == warnings
