"""The evaluation curves of an RL suite as one PNG: a panel per benchmark, per row of the report
(method and other axes) the mean success over seeds at each evaluation step, with the
95% t-interval across seeds as a band. Matplotlib with the Agg backend; no torch.
"""
from __future__ import annotations

import math
from pathlib import Path

from harness.stats import t_interval


def seed_curves_to_band(curves: list[list[dict]]) -> tuple[list, list, list, list]:
    """(steps, means, lows, highs) over the steps every seed evaluated at."""
    by_seed = [{point["step"]: point["success"] for point in curve} for curve in curves]
    steps = sorted(set.intersection(*(set(c) for c in by_seed))) if by_seed else []
    means, lows, highs = [], [], []
    for step in steps:
        interval = t_interval([c[step] for c in by_seed])
        half = 0.0 if math.isnan(interval.half_width) else interval.half_width
        means.append(interval.mean)
        lows.append(interval.mean - half)
        highs.append(interval.mean + half)
    return steps, means, lows, highs


def plot(panels: dict, path: Path) -> Path | None:
    """``panels``: benchmark -> {row label: [curve of each seed]}. Writes ``path``; None when
    there is nothing to draw."""
    panels = {name: rows for name, rows in panels.items() if rows}
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for axis, (name, rows) in zip(axes[0], panels.items()):
        for label, curves in rows.items():
            steps, means, lows, highs = seed_curves_to_band(curves)
            line, = axis.plot(steps, means, label=f"{label} ({len(curves)} seeds)")
            lows, highs = [max(v, 0.0) for v in lows], [min(v, 100.0) for v in highs]  # a rate stays in [0, 100]
            axis.fill_between(steps, lows, highs, color=line.get_color(), alpha=0.2, linewidth=0)
        axis.set_title(name)
        axis.set_xlabel("vector env steps (= env steps per task)")
        axis.set_ylabel("success rate (%)")
        axis.set_ylim(-2, 102)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
