"""IMTL, impartial multi-task learning (Liu et al., ICLR 2021): IMTL-L + IMTL-G.

IMTL-L: learnable scales s_i (init 0); the task losses become exp(s_i) L_i - s_i
(``transform_losses``); s gets the gradient of their plain sum (the official code
steps s with its own Adam at the base learning rate).

IMTL-G, on the per-task gradients g_i of the scaled losses w.r.t. the shared
representation (flattened over the batch), with unit vectors u_i = g_i / ||g_i||:
find g = sum_i alpha_i g_i, sum_i alpha_i = 1, with equal projections on every u_i,
<g, u_1> = <g, u_i>. Writing D = [g_1 - g_i]_{i>=2} and U = [u_1 - u_i]_{i>=2}
as (T-1, P) matrices of rows, g = g_1 - D^T a with a = alpha_{2:T}, and the
condition U g = 0 gives
    (U D^T) a = U g_1,   alpha_1 = 1 - sum(a)
(the paper's row-vector formula alpha = g_1 U^T (D U^T)^-1 is the same system
transposed; LibMTL solves it this way). The official code of Kurin et al. solves
(D U^T) a = U g_1 instead: the same for two tasks, wrong for three or more.
All inner products come from the T x T Gram matrix. If some g_i is zero, alpha = 0
(as in the official code). ``combine`` returns sum_i alpha_i g_i.
"""
from __future__ import annotations

import torch
from torch import nn

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer, gram


@register("imtl", version="1", keys={"imtl_learn_scales": {
    "type": "bool", "default": True, "arg": "learn_scales",
    "help": "imtl: learn IMTL-L loss scales (off: IMTL-G alone)"}})
class IMTL(MultiTaskOptimizer):
    space = "representation"
    learnable = True

    def __init__(self, num_tasks: int, learn_scales: bool = True):
        super().__init__(num_tasks)
        self.learn_scales = self.learnable = learn_scales
        self.log_scales = nn.Parameter(torch.zeros(num_tasks)) if learn_scales else None

    def transform_losses(self, losses):
        if not self.learn_scales:
            return losses
        s = self.log_scales.to(losses.device)
        return torch.exp(s) * losses - s

    def task_weights(self, grads, losses=None):
        return imtl_g_weights(self.check(grads)).to(grads.device)

    def combine(self, grads, losses=None, generator=None, inputs=None):
        alpha = self.task_weights(grads).to(grads)
        return torch.tensordot(alpha, grads, dims=1)


def imtl_g_weights(grads):
    """IMTL-G weights (summing to 1) of (T, ...) per-task gradients."""
    M = gram(grads)
    T = M.shape[0]
    norms = M.diagonal().sqrt()
    if (norms == 0).any():
        return torch.zeros(T, dtype=M.dtype)
    if T == 1:
        return torch.ones(1, dtype=M.dtype)
    W = M / norms[:, None]  # W[k, l] = <u_k, g_l>
    # (U D^T)[k, l] = <u_1 - u_k, g_1 - g_l>,  (U g_1)[k] = <u_1 - u_k, g_1>,  k, l >= 2
    UDt = W[0, 0] - W[0, 1:][None, :] - W[1:, 0][:, None] + W[1:, 1:]
    Ug1 = W[0, 0] - W[1:, 0]
    a = torch.linalg.lstsq(UDt, Ug1[:, None], driver="gelsd").solution[:, 0]
    return torch.cat([(1 - a.sum())[None], a])
