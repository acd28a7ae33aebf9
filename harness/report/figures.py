"""The generic report's figure (the headline metric against training cost, a panel per
comparison group) from its cells, and what every family's figures share: drawing them
only when matplotlib is there. The PNGs go beside the report (``harness.report.plots``).
"""
from __future__ import annotations

import math
from pathlib import Path

from harness.report import plots
from harness.report.cells import grouped
from harness.report.shared import CellKeys, comparison_keys, row_labels

MAX_COST_PANELS = 36  # 12 rows of 3: every (dataset, ways, shots) of a paper, not a sweep's every setting


def panel_title(by: list[str], values: tuple) -> str:
    return ", ".join(str(v) if k == "dataset" else f"{k} {v}" for k, v in zip(by, values))


def cost_figure(name: str, cells: list, keys: list[str], folder, metric) -> dict | None:
    """``<metric>_vs_training_cost.png``: a panel per comparison group, per method its mean ±
    95% interval across seeds against its mean training GPU-hours per run (CPU
    core-hours when no run used a GPU), the reported number as a hollow diamond.
    Returns the figure's description for the report, or None when nothing was drawn."""
    if not cells:
        return None
    gpu = any(cell.cost["train_gpu_hours"] > 0 for cell in cells)
    column = "train_gpu_hours" if gpu else "train_cpu_hours"
    cost = "GPU-hours" if gpu else "CPU core-hours"
    by = comparison_keys(keys)
    costs = [cell.cost[column] for cell in cells if math.isfinite(cell.cost[column])]
    unit = f" ({metric.unit})" if metric.unit else ""
    panels, left_out = [], []
    variants = getattr(keys, "variants", ())
    label_keys = CellKeys(["method", *variants], variants)  # the group's other keys are in the panel's title
    for values, group in grouped(cells, by):
        title = panel_title(by, values)
        left_out += [f"{title} {cell.key['method']}".strip() for cell in group if not math.isfinite(cell.cost[column])]
        labels = row_labels(group, label_keys)
        points = tuple(cost_point(cell, column, label) for cell, label in zip(group, labels)
                       if math.isfinite(cell.cost[column]))
        panels.append(plots.Panel(title or name, points, xlabel=f"training {cost} per run", ylabel=f"{metric.name}{unit}",
                                  log_x=plots.use_log_scale(costs), bounds=metric.bounds))
    file = plots.file_name(f"{metric.name}_vs_training_cost")
    if len(panels) > MAX_COST_PANELS:  # a hyper-parameter sweep: unreadable, and slow to draw
        return {"file": None, "left_out": [], "not_drawn": (
            f"{metric.name} against training cost would need {len(panels)} panels (one per {', '.join(by)} group), "
            f"more than {MAX_COST_PANELS}: `harness report --filter` to fewer groups to draw it")}
    if plots.draw(panels, folder / file, legend="reported") is None:
        return {"file": None, "left_out": left_out}
    within = f", within [{metric.bounds[0]:g}, {metric.bounds[1]:g}]" if metric.bounds else ""
    caption = (f"{metric.name} (mean over seeds ± the 95% t-interval across seeds{within}) against the mean training "
               f"{cost} per run; hollow diamonds: the reported numbers.")
    return {"file": file, "alt": f"{metric.name} against training {cost}", "caption": caption, "left_out": left_out}


def cost_point(cell, column: str, label: str) -> plots.Point:
    """A cell as a point: x its training cost, y its mean, its interval, its reported number."""
    reported = cell.reported.value if cell.reported is not None else None
    return plots.Point(label, float(cell.cost[column]), float(cell.mean), float(cell.ci95),
                       float(reported) if reported is not None and math.isfinite(reported) else None)


def figures_folder(store, options: dict) -> Path:
    """Where a report draws its figures: ``options["figures_dir"]`` (beside ``report --out``
    when the results folder is read-only), else the suite's results folder."""
    return Path(options["figures_dir"]) if options.get("figures_dir") else store.dir


def figures_or_warning(draw) -> tuple[list[dict], list[str]]:
    """The figures ``draw()`` makes; none, and a warning, when matplotlib is not installed or
    the folder cannot be written (a report must not fail at the end of a long ``harness
    run`` for want of plots)."""
    try:
        return draw(), []
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] != "matplotlib":
            raise
        return [], ["plots skipped: matplotlib is not installed (pip install matplotlib; or --no-plots)"]
    except OSError as error:  # a read-only folder that os.access took for writable (root, NFS)
        return [], [f"plots skipped: {error.filename or 'a figure'} cannot be written ({error.strerror or error})"]
