"""The RL report's figures, a panel per benchmark, with matplotlib's Agg backend; no torch:

- ``curves.png``: per row of the report (method and other axes) the mean success over
  seeds at each evaluation step, with the 95% t-interval across seeds as a band, within
  [0, 100]; one seed draws no band (it has no interval);
- ``profiles.png``: performance profiles (``harness.aggregates.performance_profile``):
  the fraction of run x task scores above each threshold, with the stratified bootstrap
  band (none with one seed: one run per task leaves nothing to resample).
"""
from __future__ import annotations

import math
from pathlib import Path

from harness.stats import t_interval

LOW, HIGH = 0.0, 100.0  # a success rate in %


def seed_curves_to_band(curves: list[list[dict]]) -> tuple[list, list, list, list]:
    """(steps, means, lows, highs) over the steps every seed evaluated at; the band is
    clipped to [0, 100] and NaN with one seed."""
    by_seed = [{point["step"]: point["success"] for point in curve} for curve in curves]
    steps = sorted(set.intersection(*(set(c) for c in by_seed))) if by_seed else []
    means, lows, highs = [], [], []
    for step in steps:
        interval = t_interval([c[step] for c in by_seed])
        means.append(interval.mean)
        lows.append(max(interval.mean - interval.half_width, LOW) if not math.isnan(interval.half_width) else math.nan)
        highs.append(min(interval.mean + interval.half_width, HIGH) if not math.isnan(interval.half_width) else math.nan)
    return steps, means, lows, highs


def _figure(count: int):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, count, figsize=(6.5 * count, 4.2), squeeze=False)
    return plt, figure, axes[0]


def _save(plt, figure, path: Path) -> Path:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot(panels: dict, path: Path) -> Path | None:
    """``panels``: benchmark -> {row label: [curve of each seed]}. Writes ``path``; None when
    there is nothing to draw."""
    panels = {name: rows for name, rows in panels.items() if rows}
    if not panels:
        return None
    plt, figure, axes = _figure(len(panels))
    for axis, (name, rows) in zip(axes, panels.items()):
        for label, curves in rows.items():
            steps, means, lows, highs = seed_curves_to_band(curves)
            line, = axis.plot(steps, means, label=f"{label} ({len(curves)} seed{'s' if len(curves) > 1 else ''})")
            if len(curves) > 1:
                axis.fill_between(steps, lows, highs, color=line.get_color(), alpha=0.2, linewidth=0)
        axis.set_title(name)
        axis.set_xlabel("vector env steps (= env steps per task)")
        axis.set_ylabel("success rate (%)")
        axis.set_ylim(LOW - 2, HIGH + 2)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return _save(plt, figure, path)


def plot_profiles(panels: dict, path: Path) -> Path | None:
    """``panels``: benchmark -> {row label: (Profile, seeds)}. Writes ``path``; None when
    there is nothing to draw."""
    panels = {name: rows for name, rows in panels.items() if rows}
    if not panels:
        return None
    plt, figure, axes = _figure(len(panels))
    for axis, (name, rows) in zip(axes, panels.items()):
        for label, (profile, seeds) in rows.items():
            line, = axis.plot(profile.thresholds, profile.fraction, label=f"{label} ({seeds} seed{'s' if seeds > 1 else ''})")
            if seeds > 1:
                axis.fill_between(profile.thresholds, profile.low, profile.high, color=line.get_color(), alpha=0.2,
                                  linewidth=0)
        axis.set_title(name)
        axis.set_xlabel("success threshold τ (%)")
        axis.set_ylabel("fraction of run × task scores > τ")
        axis.set_xlim(LOW, HIGH)
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return _save(plt, figure, path)
