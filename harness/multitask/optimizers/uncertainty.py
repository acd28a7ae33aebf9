"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

Learnable s_i = log sigma_i^2, initialised at 0; objective
    sum_i exp(-s_i) L_i + s_i.
This is the common simplified form (as in the MTAN and LibMTL code). The paper's
exact terms are 1/(2 sigma^2) L + log sigma for regression and 1/sigma^2 L + log sigma
for classification, i.e. 0.5 (exp(-s) L + s) and exp(-s) L + s / 2. All forms have
their stationary point where the factor on L_i is c / L_i; they differ only in the
constant c (1 here; 1/2 in both exact forms), so for tasks of one kind (e.g. all
classification, as in Multi-MNIST and CelebA) the simplified form is the paper's up
to a global loss scale. The task weights are exp(-s_i) (differentiable).
"""
from __future__ import annotations

import torch
from torch import nn

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer


@register("uncertainty", version="1")
class Uncertainty(MultiTaskOptimizer):
    space = "losses"
    learnable = True

    def __init__(self, num_tasks: int):
        super().__init__(num_tasks)
        self.log_variances = nn.Parameter(torch.zeros(num_tasks))

    def weights(self, losses=None, generator=None):
        return torch.exp(-self.log_variances)

    def objective(self, losses, generator=None):
        s = self.log_variances.to(losses.device)
        return (torch.exp(-s) * losses + s).sum()
