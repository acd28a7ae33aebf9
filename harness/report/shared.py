"""What every family's report shares, so that each lives in one place: the keys naming a
cell, the verdicts' words, the text of numbers (±, clipped to a metric's bounds, seconds,
ratios, p-values), LaTeX
escaping and booktabs tables, tidy CSV and JSON-safe values. No torch; pandas only
when a CSV is written.
"""
from __future__ import annotations

import json
import math

from harness import families
from harness.report.plots import file_name

# -- keys -----------------------------------------------------------------------------


class CellKeys(list):
    """The keys naming a cell (``group_keys``); ``variants``: those among them that only
    methods read (an optimizer's solver, ``imtl_solver``). A variant names a cell of its own
    but not a comparison group: the official IMTL is compared with the other methods of its
    dataset, as the exact one is."""

    def __init__(self, keys=(), variants=()):
        super().__init__(keys)
        self.variants = tuple(variants)


def group_keys(suite) -> CellKeys:
    """The columns naming a cell: the family's plan columns and every varying axis, no seed."""
    family = families.get(suite.family)
    keys = [k for k in family.plan_columns if k != "seed"]
    keys += [axis for axis in suite.axes if axis not in keys and axis != "seed"]
    owners = family.schema.owners
    return CellKeys(keys, [k for k in keys if owners.get(k) and all(on == "method" for on, _ in owners[k])])


def comparison_keys(keys: list[str]) -> list[str]:
    """The keys of a comparison group (the cells compared with each other): a cell's keys but
    the method and the method's variants (``CellKeys.variants``)."""
    variants = getattr(keys, "variants", ())
    return [k for k in keys if k != "method" and k not in variants]


def row_label(key: dict, keys: list[str], usual: dict | None = None) -> str:
    """A cell's name in a figure or a per-task table: its method, with the other varying
    axes; a method's variant only where it is not the ``usual`` one (``usual_variants``)."""
    variants = getattr(keys, "variants", ())
    extra = [f"{k}={key[k]}" for k in keys if k not in ("dataset", "method")
             and (k not in variants or usual is None or key[k] != usual.get(k))]
    return key["method"] + (f" ({', '.join(extra)})" if extra else "")


def usual_variants(cells: list, variants) -> dict:
    """Each variant key's most common value among ``cells`` (the first seen on a tie)."""
    usual = {}
    for k in variants:
        values = [cell.key.get(k) for cell in cells]
        usual[k] = max(dict.fromkeys(values), key=values.count)
    return usual


def row_labels(cells: list, keys: list[str]) -> list[str]:
    """``row_label`` of each cell, its method's variants shown where they are not the usual ones."""
    usual = usual_variants(cells, getattr(keys, "variants", ()))
    return [row_label(cell.key, keys, usual) for cell in cells]


# -- verdicts in words ------------------------------------------------------------------

# A cell against its reported number: exactly these three words (harness.reproduction), or
# why there is none.
REPRODUCTION_WORDS = ("reproduced", "not reproduced", "inconclusive")
NO_MARGIN = "no verdict: no margin"
# A cell against the best of its group (harness.comparisons): "best", "within δ of the best",
# "not shown within δ of the best", "no verdict" (one seed), or without a margin:
NO_MARGIN_BEST = "no margin"


def margin_line(metric) -> str:
    """The line under a table whose verdicts need a margin the suite does not set."""
    return (f"No verdict without a margin: set `report: {{margin: ...}}` in the suite (δ in {metric.name}'s units, "
            "fixed before the runs; or per metric, `margin: {" + metric.name + ": ...}`).")


def arrow(metric) -> str:
    """" ↓" for a lower-is-better metric (or direction), else ""."""
    lower = metric == "lower" if isinstance(metric, str) else metric.lower_is_better
    return " ↓" if lower else ""


# -- numbers as text --------------------------------------------------------------------


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value, digits: int = 2) -> str:
    return "" if missing(value) else f"{value:.{digits}f}"


def pm(mean, half, digits: int = 2, bounds=None) -> str:
    """``mean ± half`` (``mean`` alone without an interval; empty without a mean); an
    interval that would leave ``bounds`` (low, high) is clipped to them and shown as
    ``mean [low, high]``."""
    if missing(half):
        return number(mean, digits)
    low, high, clipped = clip(mean, half, bounds)
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]" if clipped else f"{mean:.{digits}f} ± {half:.{digits}f}"


def clip(mean, half, bounds) -> tuple[float, float, bool]:
    """(low, high, whether clipped) of ``mean ± half`` within ``bounds`` (None: unbounded)."""
    low, high = mean - half, mean + half
    if not bounds or missing(half):
        return low, high, False
    clipped = (max(low, float(bounds[0])), min(high, float(bounds[1])))
    return clipped[0], clipped[1], clipped != (low, high)


def bounds_line(metric, clipped: bool) -> list[str]:
    """The line under a table whose intervals were clipped to the metric's bounds."""
    if not clipped or not metric.bounds:
        return []
    low, high = metric.bounds
    return [(f"{metric.name} lies in [{low:g}, {high:g}]: an interval that would leave it is clipped to it and "
             f"shown as mean [low, high] (the t-interval is symmetric; the bounds are not).")]


def interval_text(low, high, digits: int = 2, bounds=None) -> str:
    """``[low, high]`` of a difference, clipped to ``bounds`` (``difference_bounds``)."""
    if missing(low) or missing(high):
        return ""
    if bounds:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def seconds(value) -> str:
    if missing(value):
        return ""
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.2f} h"


def ratio_text(value) -> str:
    return number(value)


def difference_text(difference, half, bounds=None) -> str:
    """``+d ± h``; ``+d [low, high]`` where the interval would leave ``bounds``."""
    if missing(difference):
        return ""
    if missing(half):
        return f"{difference:+.2f}"
    low, high, clipped = clip(difference, half, bounds)
    return f"{difference:+.2f} [{low:+.2f}, {high:+.2f}]" if clipped else f"{difference:+.2f} ± {half:.2f}"


def difference_bounds(metric):
    """The range of a difference of two values of ``metric``: (low - high, high - low); None unbounded."""
    return (metric.bounds[0] - metric.bounds[1], metric.bounds[1] - metric.bounds[0]) if metric.bounds else None


def p_text(p_value) -> str:
    if missing(p_value):
        return ""
    return "<0.001" if p_value < 0.001 else f"{p_value:.3f}"


def first_line(text):
    return text.strip().splitlines()[0] if text and text.strip() else text


# -- LaTeX ------------------------------------------------------------------------------

LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                 "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
LATEX_SYMBOLS = str.maketrans({"±": r"$\pm$", "↓": r"$\downarrow$", "×": r"$\times$", "²": r"$^2$", "≈": r"$\approx$",
                               "≤": r"$\le$", "≥": r"$\ge$", "δ": r"$\delta$", "−": "-", "θ": r"$\theta$",
                               "∞": r"$\infty$", "τ": r"$\tau$"})


def latex_escape(text) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text)).translate(LATEX_SYMBOLS)


def latex_pm(mean, half, digits: int = 2, bounds=None) -> str:
    if missing(mean):
        return ""
    if missing(half):
        return f"{mean:.{digits}f}"
    low, high, clipped = clip(mean, half, bounds)
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]" if clipped else f"{mean:.{digits}f} $\\pm$ {half:.{digits}f}"


def bold(text: str) -> str:
    return f"\\textbf{{{text}}}" if text else text


def latex_table(headers: list[str], rows: list[list[str]], caption: str, label: str, breaks=(),
                align: str | None = None) -> list[str]:
    """A booktabs table (``\\usepackage{booktabs}``). ``headers`` are plain text (escaped
    here); ``rows`` are LaTeX already; ``breaks``: row indices that start a new group
    (a ``\\midrule`` before them)."""
    align = align or "l" * len(headers)
    lines = ["\\begin{table}[ht]", "\\centering", f"\\caption{{{caption}}}", f"\\label{{{label}}}",
             f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(latex_escape(h) for h in headers) + " \\\\",
             "\\midrule"]
    for i, row in enumerate(rows):
        if i in breaks and i:
            lines.append("\\midrule")
        lines.append(" & ".join(row) + " \\\\")
    return lines + ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]


def latex_label(*parts) -> str:
    return "tab:" + "-".join(file_name(*parts)[:-4].split("_"))


def latex_header(suite) -> list[str]:
    return [f"% {suite.name}: reproducing {suite.paper}",
            ("% written by `harness report --format latex`; needs \\usepackage{booktabs} (and graphicx for the figures)"), ""]


# -- tidy CSV and JSON ------------------------------------------------------------------


def tidy_csv(rows: list[dict], columns: list[str]) -> str:
    """CSV of ``rows`` with exactly ``columns``; missing and nan values are empty cells."""
    if not rows:
        return ""
    import pandas as pd

    frame = pd.DataFrame([{c: _csv_value(row.get(c)) for c in columns} for row in rows], columns=columns, dtype=object)
    return frame.to_csv(index=False)


def _csv_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value.item() if hasattr(value, "item") else value


def plain(value):
    """``value`` as JSON-safe Python: numpy scalars as numbers, nan and inf as None,
    tuples as lists, dataclasses (intervals) as dicts."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(document: dict) -> str:
    return json.dumps(plain(document), indent=1, ensure_ascii=False, allow_nan=False) + "\n"
