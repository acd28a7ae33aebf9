"""CAGrad, conflict-averse gradient descent (Liu et al., NeurIPS 2021).

On the per-task gradients g_i of the shared parameters, with g0 = mean_i g_i:
    max_d min_i <g_i, d>   subject to   ||d - g0|| <= c ||g0||.
Its dual over the simplex, with g_w = sum_i w_i g_i and sqrt(phi) = c ||g0||:
    w* = argmin_w <g_w, g0> + c ||g0|| ||g_w||,
and d* = g0 + (c ||g0|| / ||g_w*||) g_w*. The dual is solved on the T x T Gram
matrix by SLSQP (as the official code does, here with an analytic gradient and
tight tolerance). ``rescale`` as in the official code, default 1 (also LibMTL's
default): 0 returns d*, 1 returns d* / (1 + c^2), 2 returns d* / (1 + c).
The scale is the MEAN gradient's (c = 0 gives g0), not the sum's.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer, gram


@register("cagrad", version="1", keys={"cagrad_c": {
    "type": "float", "default": 0.5, "minimum": 0.0, "arg": "c", "help": "cagrad: radius c of the conflict-averse ball"}})
class CAGrad(MultiTaskOptimizer):
    space = "parameters"

    def __init__(self, num_tasks: int, c: float = 0.5, rescale: int = 1):
        super().__init__(num_tasks)
        if c < 0 or rescale not in (0, 1, 2):
            raise ValueError(f"need c >= 0 and rescale in (0, 1, 2), got c={c}, rescale={rescale}")
        self.c, self.rescale = c, rescale

    def task_weights(self, grads, losses=None):
        """The dual solution w* (on the simplex)."""
        return cagrad_dual_weights(gram(self.check(grads)), self.c).to(grads.device)

    def combine(self, grads, losses=None, generator=None, inputs=None):
        flat = self.check(grads).flatten(1)
        g0 = flat.mean(0)
        direction = g0
        if self.c > 0:
            g_w = self.task_weights(grads).to(flat) @ flat
            if g_w.norm() > 0:
                direction = g0 + self.c * g0.norm() / g_w.norm() * g_w
        divisor = {0: 1.0, 1: 1 + self.c**2, 2: 1 + self.c}[self.rescale]
        return (direction / divisor).view(grads.shape[1:])


def cagrad_dual_weights(M, c: float):
    """argmin over the simplex of w^T M b + c sqrt(b^T M b) sqrt(w^T M w), b = 1/T."""
    T = M.shape[0]
    M = M.numpy()
    M = M / max(np.trace(M) / T, 1e-300)  # the minimiser is invariant to scaling M
    b = np.full(T, 1 / T)
    Mb, g0_norm = M @ b, np.sqrt(max(b @ M @ b, 0.0))

    def dual(w):
        norm = np.sqrt(max(w @ M @ w, 0.0) + 1e-20)
        return w @ Mb + c * g0_norm * norm, Mb + c * g0_norm * (M @ w) / norm

    result = minimize(dual, b, jac=True, method="SLSQP", bounds=[(0, 1)] * T,
                      constraints={"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(T)},
                      options={"ftol": 1e-12, "maxiter": 500})
    w = np.clip(result.x, 0, None)
    return torch.from_numpy(w / w.sum())
