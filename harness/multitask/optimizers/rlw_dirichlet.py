"""Random loss weighting, Dirichlet variant (Lin et al., 2022; as run by Kurin et al., 2022).

Each step: w ~ Dirichlet(1, ..., 1), drawn as independent Exp(1) = Gamma(1, 1)
samples divided by their sum, then rescaled to sum to T (official code);
objective sum_i w_i L_i.
"""
from __future__ import annotations

import torch

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer


@register("rlw_dirichlet", version="1")
class RLWDirichlet(MultiTaskOptimizer):
    space = "losses"

    def weights(self, losses=None, generator=None):
        device = generator.device if generator is not None else "cpu"
        gammas = torch.empty(self.num_tasks, device=device).exponential_(generator=generator)
        return self.num_tasks * gammas / gammas.sum()
