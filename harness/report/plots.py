"""Drawing report figures as PNG files: matplotlib with the Agg backend, imported only when a
figure is drawn (a report without plots never imports it). No torch.

Figures are deterministic, so that a committed report regenerates byte for byte: fixed
sizes and dpi, colours from a fixed cycle in the order the labels first appear, and no
software name or timestamp in the PNG metadata.

Two kinds of panel, which a family report fills from its own cells:
- ``Point`` panels: a metric against a cost, one point per row with its
  interval bar, and the reported number as a hollow marker at the same x;
- ``Bar`` panels: one bar per row with its interval, and optionally a
  reference line (1.0 for ratios to a baseline).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

DPI = 100
PANEL_SIZE = (4.6, 3.5)  # inches per panel
MAX_COLUMNS = 3
METADATA = {"Software": None}  # matplotlib would write its version; a PNG has no date unless given one
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")


@dataclass(frozen=True)
class Point:
    label: str  # the legend entry (a method)
    x: float
    y: float
    half_width: float = math.nan  # the interval bar; nan draws none
    reported: float | None = None  # the paper's number, drawn at the same x


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    half_width: float = math.nan
    highlight: bool = False  # drawn hatched (the baseline)


@dataclass(frozen=True)
class Panel:
    title: str
    items: tuple  # Points or Bars
    xlabel: str = ""
    ylabel: str = ""
    reference: float | None = None  # a horizontal line (Bar panels)
    log_x: bool = False
    notes: tuple = field(default_factory=tuple)  # short text drawn in the panel's corner
    bounds: tuple | None = None  # (low, high) of the values: interval bars are clipped to them


def file_name(*parts) -> str:
    """A safe PNG file name from parts (dataset names, metric names)."""
    text = "-".join(str(p) for p in parts if p not in (None, ""))
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") + ".png"


def colour_map(panels) -> dict[str, str]:
    """Label -> colour, the same in every panel of a figure."""
    labels = list(dict.fromkeys(item.label for panel in panels for item in panel.items))
    return {label: COLOURS[i % len(COLOURS)] for i, label in enumerate(labels)}


def use_log_scale(values) -> bool:
    """Log x when the costs are all positive and span more than a factor of 30."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    return bool(values) and min(values) > 0 and max(values) / min(values) > 30


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _grid(pyplot, count: int, title: str | None):
    columns = min(MAX_COLUMNS, count)
    rows = math.ceil(count / columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows + 0.4 * bool(title)),
                                   squeeze=False)
    for axis in axes.flat[count:]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title, fontsize=11)
    return figure, list(axes.flat[:count])


def _half(value) -> float:
    return 0.0 if value is None or not math.isfinite(value) else float(value)


def _errors(value: float, half, bounds) -> tuple[float, float]:
    """(below, above) of ``value ± half``, clipped to ``bounds``."""
    half = _half(half)
    if not bounds:
        return half, half
    return max(0.0, min(half, value - bounds[0])), max(0.0, min(half, bounds[1] - value))


def _draw_points(axis, panel: Panel, colours: dict) -> None:
    for point in panel.items:
        colour = colours[point.label]
        below, above = _errors(point.y, point.half_width, panel.bounds)
        axis.errorbar([point.x], [point.y], yerr=[[below], [above]], fmt="o",
                      color=colour, capsize=3, markersize=5, label=point.label)
        if point.reported is not None and math.isfinite(point.reported):
            axis.plot([point.x], [point.reported], marker="D", markersize=6, markerfacecolor="none",
                      markeredgecolor=colour, linestyle="none")
    if panel.log_x:
        axis.set_xscale("log")


def _draw_bars(axis, panel: Panel, colours: dict) -> None:
    positions = list(range(len(panel.items)))
    for position, bar in zip(positions, panel.items):
        below, above = _errors(bar.value, bar.half_width, panel.bounds)
        axis.bar([position], [bar.value], yerr=[[below], [above]] if below or above else None, color=colours[bar.label],
                 capsize=3,
                 hatch="//" if bar.highlight else None, edgecolor="black" if bar.highlight else colours[bar.label])
    axis.set_xticks(positions)
    axis.set_xticklabels([bar.label for bar in panel.items], rotation=60, ha="right", fontsize=7)
    if panel.reference is not None:  # ratios: bars from 0, a line at the reference
        axis.axhline(panel.reference, color="black", linewidth=0.8, linestyle="--")
        return
    errors = [_errors(b.value, b.half_width, panel.bounds) for b in panel.items]
    values = [b.value - e[0] for b, e in zip(panel.items, errors)] + [b.value + e[1] for b, e in zip(panel.items, errors)]
    low, high = min(values), max(values)
    margin = (high - low) * 0.15 or abs(high) * 0.05 or 1.0
    # zoomed in, as the papers' bar charts: a point of accuracy matters at 90%
    axis.set_ylim(max(0.0, low - margin) if low >= 0 else low - margin, high + margin)


def draw(panels: list[Panel], path: Path, title: str | None = None, legend: str | None = None) -> Path | None:
    """Draw the panels into one PNG at ``path`` (its folder is created); None when there is
    nothing to draw. ``legend``: a note added under the legend (e.g. what the hollow
    marker is)."""
    panels = [panel for panel in panels if panel.items]
    if not panels:
        return None
    pyplot = _pyplot()
    colours = colour_map(panels)
    figure, axes = _grid(pyplot, len(panels), title)
    for axis, panel in zip(axes, panels):
        if isinstance(panel.items[0], Point):
            _draw_points(axis, panel, colours)
        else:
            _draw_bars(axis, panel, colours)
        axis.set_title(panel.title, fontsize=9)
        axis.set_xlabel(panel.xlabel, fontsize=8)
        axis.set_ylabel(panel.ylabel, fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
        for i, note in enumerate(panel.notes):
            axis.text(0.02, 0.98 - 0.07 * i, note, transform=axis.transAxes, fontsize=7, va="top")
    if isinstance(panels[0].items[0], Point):
        _legend(figure, axes[0], colours, legend)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, metadata=METADATA)
    pyplot.close(figure)
    return path


def _legend(figure, axis, colours: dict, note: str | None) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", linestyle="none", label=label) for label, c in colours.items()]
    handles.append(Line2D([], [], color="black", marker="D", markerfacecolor="none", linestyle="none",
                          label=note or "reported"))
    axis.legend(handles=handles, fontsize=7, loc="best")
