"""MGDA-UB (Sener & Koltun, NeurIPS 2018, "Multi-Task Learning as Multi-Objective Optimization").

On the per-task gradients z_i of the loss w.r.t. the shared representation (the
upper bound "UB": one backward through the heads only):
1. normalise, default "loss+": z_i / (L_i ||z_i||) (also "l2", "loss", "none");
2. alpha = argmin_{alpha in simplex} ||sum_i alpha_i z_i_normalised||^2, the
   min-norm point of the convex hull (``min_norm_weights``);
3. back-propagate sum_i alpha_i L_i with the UN-normalised losses, i.e. the trunk
   gets sum_i alpha_i z_i, which is what ``combine`` returns.
The min-norm point is found by Wolfe's (1976) min-norm-point algorithm on the
T x T Gram matrix (exact up to round-off: each step solves the affine min-norm
problem on an active set). It stops when <x, v_i> >= ||x||^2 - tol for all i (the
optimality certificate, with tol relative to max_i ||v_i||^2, default 1e-10) or after
``max_iter`` = 250 major steps; two tasks use the exact closed form. The official code
(from Sener & Koltun) instead runs projected gradient steps with a line search, at
most 250 of them, stopping when alpha changes by less than 1e-5 in L1; that only
approximates the same point (badly for many ill-conditioned tasks), and clips the
two-task solution to [0.001, 0.999] where this one uses [0, 1].
"""
from __future__ import annotations

import torch

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer, gram


@register("mgda_ub", version="1", keys={"mgda_normalization": {
    "type": "str", "default": "loss+", "choices": ["loss+", "l2", "loss", "none"], "arg": "normalization",
    "help": "mgda_ub: gradient normalisation before the min-norm solve"}})
class MGDAUB(MultiTaskOptimizer):
    space = "representation"

    def __init__(self, num_tasks: int, normalization: str = "loss+", max_iter: int = 250, tol: float = 1e-10):
        super().__init__(num_tasks)
        if normalization not in ("loss+", "l2", "loss", "none"):
            raise ValueError(f"unknown normalization {normalization!r}")
        self.normalization, self.max_iter, self.tol = normalization, max_iter, tol

    def normalized(self, grads, losses):
        flat = self.check(grads).flatten(1)
        norms = flat.norm(dim=1)
        if losses is None:
            if "loss" in self.normalization:
                raise ValueError(f"normalization {self.normalization!r} needs the task losses")
            losses = torch.ones_like(norms)
        losses = torch.as_tensor(losses).detach().to(flat)
        scale = {"loss+": losses * norms, "l2": norms, "loss": losses, "none": torch.ones_like(norms)}
        denominator = scale[self.normalization]
        return flat / torch.where(denominator != 0, denominator, 1.0)[:, None]

    def task_weights(self, grads, losses=None):
        return min_norm_weights(self.normalized(grads, losses), self.max_iter, self.tol)

    def combine(self, grads, losses=None, generator=None, inputs=None):
        alpha = self.task_weights(grads, losses).to(grads)
        return torch.tensordot(alpha, grads, dims=1)


def min_norm_weights(vectors, max_iter: int = 250, tol: float = 1e-10):
    """Weights alpha on the simplex minimising ||sum_i alpha_i v_i|| for (T, ...) vectors."""
    return min_norm_weights_from_gram(gram(vectors), max_iter, tol).to(vectors.device)


def min_norm_weights_from_gram(M, max_iter: int = 250, tol: float = 1e-10):
    """Wolfe's min-norm-point algorithm on a (T, T) float64 Gram matrix."""
    T = M.shape[0]
    scale = M.diagonal().max()
    if scale <= 0:  # all vectors zero: every weighting is optimal
        return torch.full((T,), 1 / T, dtype=M.dtype)
    M = M / scale
    if T == 2:
        return two_task_weights(M)
    corral = [int(M.diagonal().argmin())]
    weights = torch.ones(1, dtype=M.dtype)  # on the corral
    for _ in range(max_iter):
        inner = M[:, corral] @ weights  # <x, v_i> for every i, x the current point
        j = int(inner.argmin())
        if weights @ inner[corral] - inner[j] <= tol or j in corral:
            break  # optimality: <x, v_i> >= ||x||^2 for all i
        corral.append(j)
        weights = torch.cat([weights, weights.new_zeros(1)])
        while True:  # minor cycle: move to the corral's affine min-norm point, dropping points on the way
            affine = affine_min_norm(M[corral][:, corral])
            if (affine > 0).all():
                weights = affine
                break
            shrinking = affine <= 0
            theta = (weights[shrinking] / (weights[shrinking] - affine[shrinking])).min()
            weights = weights + theta * (affine - weights)
            keep = weights > 1e-15
            keep[int(torch.where(shrinking, weights, torch.inf).argmin())] = False  # at least one leaves
            corral = [k for k, kept in zip(corral, keep.tolist()) if kept]
            weights = weights[keep] / weights[keep].sum()
    alpha = torch.zeros(T, dtype=M.dtype)
    alpha[corral] = weights
    return alpha


def two_task_weights(M):
    """Exact minimiser of ||gamma v_1 + (1 - gamma) v_2||^2 over gamma in [0, 1]."""
    curvature = M[0, 0] + M[1, 1] - 2 * M[0, 1]
    gamma = ((M[1, 1] - M[0, 1]) / curvature).clamp(0, 1) if curvature > 0 else M.new_tensor(0.5)
    return torch.stack([gamma, 1 - gamma])


def affine_min_norm(M):
    """Weights summing to 1 minimising w^T M w (no sign constraint), from the bordered KKT system."""
    n = M.shape[0]
    kkt = torch.ones(n + 1, n + 1, dtype=M.dtype)
    kkt[:n, :n], kkt[n, n] = M, 0
    rhs = torch.zeros(n + 1, 1, dtype=M.dtype)
    rhs[n] = 1
    return torch.linalg.lstsq(kkt, rhs, driver="gelsd").solution[:n, 0]
