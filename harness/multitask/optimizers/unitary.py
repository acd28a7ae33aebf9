"""Unitary scalarization: minimise the plain sum of the task losses (Kurin et al., 2022).

Objective: sum_i w_i L_i with fixed weights w (default all 1, the plain sum).
"""
from __future__ import annotations

import torch

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer


@register("unitary", version="1")
class Unitary(MultiTaskOptimizer):
    space = "losses"

    def __init__(self, num_tasks: int, weights: list[float] | None = None):
        super().__init__(num_tasks)
        fixed = torch.ones(num_tasks) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        if fixed.shape != (num_tasks,):
            raise ValueError(f"weights must have {num_tasks} entries, got {tuple(fixed.shape)}")
        self.register_buffer("task_weights", fixed)

    def weights(self, losses=None, generator=None):
        return self.task_weights
