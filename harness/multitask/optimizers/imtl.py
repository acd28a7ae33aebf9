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

Two solvers (config key ``imtl_solver``, constructor argument ``solver``):
- ``exact`` (default): the system above, solved by least squares (LibMTL's orientation).
- ``official``: what the official code of Kurin et al. computes, and so what the paper's
  IMTL numbers (supervised and RL) come from (yobibyte/unitary-scalarization-dmtl,
  optimizers/imtl.py:32-47 at 912fe08): with D and U as (P, T-1) matrices of columns,
  A = D^T U + 1e-6 I and alpha_{2:T} = A^-1 U^T g_1, the transposed system plus an absolute
  1e-6 on the diagonal (``official_imtl_g_weights``). For two tasks the two agree up to the
  1e-6; for three or more the equal-projection property no longer holds.
"""
from __future__ import annotations

import torch
from torch import nn

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer, gram

SOLVERS = ("exact", "official")
OFFICIAL_EPS = 1e-6  # optimizers/imtl.py:7, numerical_eps: added to the diagonal of D^T U (line 41)


@register("imtl", version="1", keys={
    "imtl_learn_scales": {"type": "bool", "default": True, "arg": "learn_scales",
                          "help": "imtl: learn IMTL-L loss scales (off: IMTL-G alone)"},
    "imtl_solver": {
        "type": "str", "default": "exact", "choices": ["exact", "official"], "arg": "solver", "versions": {"official": "1"},
        "help": "IMTL-G weights: exact = equal projections on the unit task gradients (LibMTL's orientation); official = "
                "the official code's transposed system plus 1e-6 I (yobibyte/unitary-scalarization-dmtl optimizers/imtl.py:40-42), "
                "what the paper's IMTL numbers come from; the two agree for 2 tasks"}})
class IMTL(MultiTaskOptimizer):
    space = "representation"
    learnable = True

    def __init__(self, num_tasks: int, learn_scales: bool = True, solver: str = "exact"):
        super().__init__(num_tasks)
        if solver not in SOLVERS:
            raise ValueError(f"unknown IMTL solver {solver!r} (known: {', '.join(SOLVERS)})")
        self.solver = solver
        self.learn_scales = self.learnable = learn_scales
        self.log_scales = nn.Parameter(torch.zeros(num_tasks)) if learn_scales else None

    def transform_losses(self, losses):
        if not self.learn_scales:
            return losses
        s = self.log_scales.to(losses.device)
        return torch.exp(s) * losses - s

    def task_weights(self, grads, losses=None):
        solve = imtl_g_weights if self.solver == "exact" else official_imtl_g_weights
        return solve(self.check(grads)).to(grads.device)

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


def official_imtl_g_weights(grads, eps: float = OFFICIAL_EPS):
    """The official code's IMTL-G weights (optimizers/imtl.py:32-47): with columns d_k = g_1 - g_k and
    v_k = u_1 - u_k (k >= 2), A[k, l] = <d_k, v_l> + eps [k = l] and a = A^-1 (<v_k, g_1>)_k; alpha =
    (1 - sum(a), a); all zeros when some g_i is zero (its NaN test, line 45). Computed in float64 from
    the Gram matrix (the official code works in the gradients' float32)."""
    M = gram(grads)
    T = M.shape[0]
    norms = M.diagonal().sqrt()
    if (norms == 0).any():
        return torch.zeros(T, dtype=M.dtype)
    if T == 1:
        return torch.ones(1, dtype=M.dtype)
    G = M / norms[None, :]  # G[k, l] = <g_k, u_l>
    A = G[0, 0] - G[0, 1:][None, :] - G[1:, 0][:, None] + G[1:, 1:]  # <g_1 - g_k, u_1 - u_l>
    A = A + eps * torch.eye(T - 1, dtype=M.dtype)
    rhs = G[0, 0] - G[0, 1:]  # <u_1 - u_k, g_1>
    a = torch.linalg.solve(A, rhs)
    return torch.cat([(1 - a.sum())[None], a])
