"""Random loss weighting, normal variant (Lin et al., 2022, "Reasonable Effectiveness of RLW").

Each step: z ~ N(0, I_T), w = T * softmax(z) (the official code of Kurin et al.
rescales the softmax to sum to T); objective sum_i w_i L_i.
"""
from __future__ import annotations

import torch

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer


@register("rlw_normal", version="1")
class RLWNormal(MultiTaskOptimizer):
    space = "losses"

    def weights(self, losses=None, generator=None):
        device = generator.device if generator is not None else "cpu"
        z = torch.randn(self.num_tasks, generator=generator, device=device)
        return self.num_tasks * torch.softmax(z, dim=0)
