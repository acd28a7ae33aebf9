"""The report's formats: LaTeX (booktabs, ±, the best in bold only where significantly best,
a caption naming the intervals and the verdicts), tidy CSV (one row per run, per cell and
per comparison, named columns), JSON (everything the markdown shows); the three verdict
words in every format; the files they go to; no torch in any of them."""
import csv
import io
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import TINY_SUITE, write_suite
from scipy import stats as scipy_stats
from test_multitask_suite import filled  # noqa: F401 (a fixture)
from test_store import fake_record

from harness.cli import main
from harness.multitask.report import build as multitask_build
from harness.report import build
from harness.report.shared import latex_escape
from harness.spec import expand
from harness.store import Store
from harness.suite import load_suite

SUITE = TINY_SUITE.replace("seed: [0]", "seed: [0, 1, 2]").replace("shots: [1]", "shots: [1, 5]") + "report: {baseline: protonet, margin: 3.0}\n"
MEANS = {("protonet", 1): 89.0, ("mtl", 1): 86.0, ("protonet", 5): 93.0, ("mtl", 5): 95.0}


@pytest.fixture
def fewshot(tmp_path):
    """Two shots x two methods x three seeds, mtl seed 2 at 5 shots failed."""
    suite = load_suite(write_suite(tmp_path, SUITE))
    store = Store(tmp_path / "results", suite.name)
    values = {}
    for spec in expand(suite):
        method, shots, seed = spec.config["method"], spec.config["shots"], spec.config["seed"]
        if (method, shots, seed) == ("mtl", 5, 2):
            record = fake_record(spec, status="failed")
            record["error"] = {"type": "RuntimeError", "message": "out of memory\nmore"}
            store.write_record(record)
            continue
        rng = np.random.default_rng(seed * 10 + shots + len(method))
        accuracies = MEANS[method, shots] + rng.normal(0, 5, size=40)
        values[method, shots, seed] = accuracies
        record = fake_record(spec, accuracies=accuracies.tolist())
        record["timing"] = {"train_seconds": 60.0, "eval_seconds": 2.0, "total_seconds": 62.0}
        store.write_record(record)
    return suite, store, values


def rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# ------------------------------------------------------------------ latex


def test_latex_is_booktabs_with_the_best_in_bold_and_a_caption_naming_the_intervals(fewshot):
    suite, store, values = fewshot
    text, _ = build(suite, store, "latex")
    # two tables (results, comparisons); a \midrule under each header and one between the two shots groups
    assert text.count("\\toprule") == text.count("\\bottomrule") == 2 and text.count("\\midrule") == 3
    results = text.split("\\end{table}")[0]
    lines = [line for line in results.splitlines() if line.startswith("omniglot")]
    # mean ± half-width, or [low, high] where the interval would leave [0, 100] (clipped)
    assert len(lines) == 4 and all("$\\pm$" in line or ", 100.00]" in line for line in lines)
    # bold: the higher mean of each (dataset, ways, shots, backbone) group, only where it beats the other
    # (one-sided paired t over the common seeds, Holm over one test: the test itself, at 5%)
    expected = []
    for shots, seeds in ((1, range(3)), (5, range(2))):
        means = {m: [values[m, shots, s].mean() for s in seeds] for m in ("protonet", "mtl")}
        best = max(means, key=lambda m: np.mean(means[m]))
        other = next(m for m in means if m != best)
        if scipy_stats.ttest_rel(means[best], means[other], alternative="greater").pvalue <= 0.05:
            expected.append(best)
    bold = [line.split(" & ")[3] for line in lines if "\\textbf{" in line]
    assert bold == expected and expected  # the data make at least one group's best significant
    seed_means = [values["protonet", 1, s].mean() for s in range(3)]
    half = scipy_stats.t.ppf(0.975, 2) * scipy_stats.sem(seed_means)
    assert f"{np.mean(seed_means):.2f} $\\pm$ {half:.2f}" in lines[0]
    assert "90.00 $\\pm$ 1.00 (ci95) & " in lines[0]
    assert any(f" & {word} & " in lines[0] for word in ("reproduced", "not reproduced", "inconclusive"))
    caption = next(line for line in results.splitlines() if line.startswith("\\caption{"))
    assert "95\\% t-interval across seeds" in caption and "ci95 = 95\\% interval" in caption
    assert "Bold: the best mean per dataset, ways, shots, backbone (higher is better) only where it is " \
           "significantly best" in caption and "Verdict ($\\delta$ = 3)" in caption
    comparisons = text.split("\\end{table}")[1]
    assert "mtl & conv4 & 3 & " in comparisons and "mtl & conv4 & 2 & " in comparisons and "paired t over seeds" in comparisons
    assert "\\label{tab:tiny-accuracy-vs-protonet}" in comparisons and "p (Holm)" in comparisons


def test_latex_escapes_the_verdicts_symbols():
    assert latex_escape("mgda_ub 50% ± × ↓ & #") == r"mgda\_ub 50\% $\pm$ $\times$ $\downarrow$ \& \#"
    assert latex_escape("within δ of the best, (−δ, ∞)") == r"within $\delta$ of the best, (-$\delta$, $\infty$)"


def test_multitask_latex_bolds_what_the_verdicts_marked_significantly_best():
    from harness import families
    from harness.multitask.report import dataset_latex
    from harness.report.model import Cell
    from harness.stats import t_interval

    metric = families.get("multitask").headline

    def cell(method, miou, depth, bold):
        return Cell({"dataset": "cityscapes", "method": method}, metric, (), (), t_interval([miou - 1, miou + 1]),
                    cost={"seconds_per_step": 0.1, "peak_bytes": 2**20},
                    parts={"miou": t_interval([miou - 1, miou + 1]), "depth_error": t_interval([depth, depth + 0.02])},
                    ratios={"time_vs_unitary": 1.0, "memory_vs_unitary": 1.0}, bold=bold)

    cells = [cell("unitary", 50.0, 0.05, {"depth_error"}), cell("pcgrad", 52.0, 0.09, {"miou", "average"})]
    text = "\n".join(dataset_latex(SimpleNamespace(name="t"), cells, ["dataset", "method"], metric,
                                   {"miou": "higher", "depth_error": "lower"}, None))
    unitary, pcgrad = [line for line in text.splitlines() if line.startswith(("unitary", "pcgrad"))]
    assert "\\textbf{0.06 $\\pm$ 0.13}" in unitary and "\\textbf{52.00" in pcgrad and "\\textbf{" not in unitary.split(" & ")[2]
    assert pcgrad.count("\\textbf{") == 2  # miou and the average
    assert "depth\\_error $\\downarrow$" in text and "\\toprule" in text and "\\bottomrule" in text


# ------------------------------------------------------------------ csv


def test_csv_is_tidy_one_row_per_run_per_cell_and_per_comparison(fewshot):
    suite, store, values = fewshot
    text, _ = build(suite, store, "csv")
    rows = rows_of(text)
    kinds = [row["row"] for row in rows]
    assert kinds == ["run"] * 12 + ["cell"] * 4 + ["comparison"] * 2  # every planned run, including the failed one
    # named columns, no packed fields
    assert all(";" not in value and ":" not in value for row in rows for key, value in row.items()
               if key not in ("source", "error", "verdict_note"))
    run = next(r for r in rows if r["row"] == "run" and (r["method"], r["shots"], r["seed"]) == ("mtl", "1", "1"))
    episodes = values["mtl", 1, 1]
    low, high = scipy_stats.t.interval(0.95, 39, loc=episodes.mean(), scale=scipy_stats.sem(episodes))
    assert float(run["value"]) == pytest.approx(episodes.mean()) and float(run["ci95"]) == pytest.approx((high - low) / 2)
    assert (run["samples"], run["status"], run["interval"]) == ("40", "done", "95% t over episodes")
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["value"] == "" and failed["error"] == "out of memory"
    cell = next(r for r in rows if r["row"] == "cell" and (r["method"], r["shots"]) == ("mtl", "5"))
    seed_means = [values["mtl", 5, s].mean() for s in (0, 1)]
    assert cell["seeds"] == "2" and float(cell["value"]) == pytest.approx(np.mean(seed_means))
    assert float(cell["train_seconds"]) == 60.0 and cell["reported"] == ""
    reported = next(r for r in rows if r["row"] == "cell" and r["reported"])
    assert (reported["method"], reported["shots"], reported["reported"], reported["reported_kind"]) == ("protonet", "1", "90.0", "ci95")
    assert reported["verdict"] in ("reproduced", "not reproduced", "inconclusive") and reported["margin"] == "3.0"
    assert float(reported["diff_low"]) < float(reported["diff"]) < float(reported["diff_high"])
    assert "agrees" not in rows[0]
    comparison = next(r for r in rows if r["row"] == "comparison" and r["shots"] == "5")
    reference = scipy_stats.ttest_rel(seed_means, [values["protonet", 5, s].mean() for s in (0, 1)])
    assert (comparison["method"], comparison["baseline"], comparison["n"]) == ("mtl", "protonet", "2")
    assert float(comparison["p_value"]) == pytest.approx(reference.pvalue, rel=1e-9)
    assert comparison["interval"] == "paired t over seeds" and comparison["p_holm"] == comparison["p_value"]


# ------------------------------------------------------------------ json


def test_json_holds_what_the_markdown_shows(fewshot):
    suite, store, values = fewshot
    document = json.loads(build(suite, store, "json")[0], parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    markdown, _ = build(suite, store, "markdown", {"plots": False})
    assert document["counts"] == {"done": 11, "failed": 1, "running": 0, "pending": 0}
    assert document["baseline"] == "protonet" and document["keys"] == ["dataset", "ways", "shots", "method", "backbone"]
    cells = {(c["method"], c["shots"]): c for c in document["cells"]}
    proto = cells["protonet", 1]
    assert [p["seed"] for p in proto["per_seed"]] == [0, 1, 2] and proto["per_seed"][0]["samples"] == 40
    assert proto["per_seed"][1]["value"] == pytest.approx(values["protonet", 1, 1].mean())
    assert f"{proto['mean']:.2f} ± {proto['ci95']:.2f}" in markdown
    assert proto["reported"]["value"] == 90.0 and proto["reported"]["kind"] == "ci95"
    found = proto["reproduction"]
    assert found["margin"] == 3.0 and found["verdict"] in ("reproduced", "not reproduced", "inconclusive")
    assert found["verdict"] in markdown and found["confidence"] == pytest.approx(0.9)
    assert (found["verdict"] == "reproduced") == (-3 < found["interval"][0] and found["interval"][1] < 3)
    assert cells["mtl", 1]["reported"] is None and cells["mtl", 5]["seeds"] == 2
    comparisons = {c["shots"]: c for c in document["comparisons"]}
    assert comparisons[1]["method"] == "mtl" and comparisons[1]["verdict"] in ("better", "worse", "indistinguishable")
    assert f"{comparisons[1]['difference']:+.2f} ± {comparisons[1]['ci95']:.2f}" in markdown
    statuses = {(r["method"], r["shots"], r["seed"]): r["status"] for r in document["runs"]}
    assert len(statuses) == 12 and statuses["mtl", 5, 2] == "failed"
    failed = next(r for r in document["runs"] if r["status"] == "failed")
    assert failed["error"] == "out of memory" and failed["metrics"] == {}
    assert any(note.startswith("Verdict (δ = 3") for note in document["notes"]["accuracy"])
    assert any("Paired t over seeds" in note for note in document["notes"]["accuracy"])


def test_multitask_json_and_latex(filled):
    suite, store, averages = filled
    document = json.loads(multitask_build(suite, store, "json", {"baseline": "unitary"})[0])
    cells = {c["method"]: c for c in document["cells"]}
    assert cells["unitary"]["vs_best"] in ("best", "within δ of the best", "not shown within δ of the best", "no margin")
    assert [p["average"] for p in cells["pcgrad"]["per_seed"]] == pytest.approx(averages["pcgrad"])
    assert cells["pcgrad"]["time_vs_unitary"] == pytest.approx(1.5) and cells["pcgrad"]["tasks"]["left"]["direction"] == "higher"
    assert {c["method"] for c in document["comparisons"]} == {"pcgrad", "mgda_ub"}
    assert next(r for r in document["runs"] if r["status"] == "failed")["error"] == "boom"
    latex, _ = multitask_build(suite, store, "latex", {"baseline": "unitary"})
    assert latex.count("\\toprule") == 2 and "mgda\\_ub" in latex and "\\textbf{" in latex


# ------------------------------------------------------------------ files and the command line


@pytest.mark.parametrize("fmt, name", [("markdown", "REPORT.md"), ("csv", "report.csv"), ("latex", "report.tex"),
                                       ("json", "report.json")])
def test_each_format_goes_to_its_file_and_to_out(fewshot, tmp_path, capsys, fmt, name):
    suite, store, _ = fewshot
    out = tmp_path / "copy" / name
    assert main(["--results", str(store.root), "report", str(suite.path), "--format", fmt, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (store.dir / name).read_text() == out.read_text() == printed
    assert printed == build(suite, store, fmt)[0]  # and rebuilt, the same text


def test_the_reports_own_files_are_not_warnings(fewshot):
    suite, store, _ = fewshot
    for fmt in ("markdown", "csv", "latex", "json"):
        build(suite, store, fmt, {"plots": True})
    (store.dir / "REPORT.md").write_text("old")
    (store.dir / "report.tex").write_text("old")
    (store.dir / "stray.txt").write_text("x")
    text, warnings = build(suite, store, "markdown")
    assert len(warnings) == 1 and "stray.txt" in warnings[0] and "report.tex" not in text


@pytest.mark.parametrize("fmt", ["markdown", "csv", "latex", "json"])
def test_no_format_imports_torch_even_with_plots(fewshot, fmt):
    suite, store, _ = fewshot
    code = ("import sys\nfrom harness.cli import main\n"
            f"assert main(['--results', {str(store.root)!r}, 'report', {str(suite.path)!r}, '--format', {fmt!r}, '--plots']) == 0\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nassert 'matplotlib' in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ)
    assert result.returncode == 0, result.stderr[-2000:]
    assert any(store.dir.glob("*.png"))


def test_multitask_formats_do_not_import_torch(filled):
    suite, store, _ = filled
    code = ("import sys\nfrom harness.cli import main\n"
            + "".join(f"assert main(['--results', {str(store.root)!r}, 'report', {str(suite.path)!r}, '--format', {fmt!r}, "
                      f"'--plots', '--baseline', 'unitary']) == 0\n" for fmt in ("markdown", "csv", "latex", "json"))
            + "assert 'torch' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
