"""PCGrad, projecting conflicting gradients (Yu et al., NeurIPS 2020, "Gradient Surgery for Multi-Task Learning").

On the per-task gradients g_i of the shared parameters: for each task i, start from
g_i' = g_i and visit the other tasks j in a fresh random order; whenever
<g_i', g_j> < 0 (g_j the ORIGINAL gradient), remove the component along g_j:
    g_i' <- g_i' - <g_i', g_j> / ||g_j||^2 g_j.
The update is sum_i g_i' (task heads get the plain sum, in the training loop).
"""
from __future__ import annotations

import torch

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer


@register("pcgrad", version="1")
class PCGrad(MultiTaskOptimizer):
    space = "parameters"

    def project(self, grads, generator=None):
        """The (T, ...) projected per-task gradients g_i'."""
        flat = self.check(grads).flatten(1)
        squared_norms = (flat * flat).sum(1).clamp_min(torch.finfo(flat.dtype).tiny)
        projected = flat.clone()
        device = generator.device if generator is not None else "cpu"
        for i in range(self.num_tasks):
            for j in torch.randperm(self.num_tasks, generator=generator, device=device).tolist():
                if j != i:
                    # min(<g_i', g_j>, 0) instead of an if: no device sync per pair
                    conflict = torch.clamp(projected[i] @ flat[j], max=0)
                    projected[i] -= conflict / squared_norms[j] * flat[j]
        return projected.view_as(grads)

    def combine(self, grads, losses=None, generator=None, inputs=None):
        return self.project(grads, generator).sum(0)
