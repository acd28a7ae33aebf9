"""What a multi-task dataset is: tasks, splits of arrays, and how its inputs are normalised.

A dataset class (one module each) sets:

- ``name``; ``tasks``: the tuple of ``Task`` (name, kind, classes), in the order
  of the loss vector the optimizers see;
- ``model``: the registered model it is run with when the config names none;
- ``input_kind``: ``"uint8"`` (images scaled to [0, 1] by /255 first) or
  ``"float"`` (used as stored); then ``mean`` and ``std`` per channel:
  x <- (x - mean) / std;
- ``selection``: ``"average"`` (one model selection by the mean of the
  higher-is-better metrics) or ``"per_metric"`` (also each metric at its own best
  validation epoch, as the official Cityscapes code does);

and the class methods ``fingerprint()``, ``load(split, root=None) -> TaskSplit``,
``require_prepared(root=None)`` and ``sources()``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLITS = ("train", "val", "test")
KINDS = ("classification", "segmentation", "depth")


@dataclass(frozen=True)
class Task:
    """One task. classification: targets (N,) int in [0, classes); segmentation: (N, H, W)
    int in [-1, classes), -1 ignored; depth: (N, H, W) float, 0 = no measurement."""

    name: str
    kind: str
    classes: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"task kind must be one of {KINDS}, got {self.kind!r}")
        if (self.kind == "depth") != (self.classes is None):
            raise ValueError(f"task {self.name}: a {self.kind} task {'has no' if self.kind == 'depth' else 'needs'} classes")


@dataclass(frozen=True)
class TaskSplit:
    """inputs (N, H, W, C), uint8 or float32; targets: task name -> array with N rows."""

    inputs: np.ndarray
    targets: dict

    def __post_init__(self):
        if self.inputs.ndim != 4:
            raise ValueError(f"inputs must be (N, H, W, C), got {self.inputs.shape}")
        for name, target in self.targets.items():
            if len(target) != len(self.inputs):
                raise ValueError(f"target {name}: {len(target)} rows for {len(self.inputs)} inputs")

    def __len__(self) -> int:
        return len(self.inputs)


class MultiTaskDataset:
    name: str
    tasks: tuple = ()
    model: str = ""
    input_kind = "uint8"
    mean: tuple = (0.0,)
    std: tuple = (1.0,)
    selection = "average"

    @classmethod
    def task_names(cls) -> list[str]:
        return [task.name for task in cls.tasks]
