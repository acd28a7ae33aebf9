"""Nash-MTL, multi-task learning as a bargaining game (Navon et al., ICML 2022).

On the per-task gradients g_i of the shared parameters (G the (T, P) matrix of
rows), the Nash bargaining solution is d = sum_i alpha_i g_i with alpha > 0 solving
    (G G^T) alpha = 1 / alpha   (elementwise).
This is exactly the stationarity condition of the strictly convex problem
    min_{alpha > 0}  0.5 alpha^T (G G^T) alpha - sum_i log alpha_i,
solved here to machine precision by damped Newton steps (step 1 / (1 + lambda),
lambda the Newton decrement: the iterates stay positive because the function is
self-concordant). The official code approximates the same solution by up to 20
sequential convex (CCP) iterations with cvxpy; here the exact solution is used.
Like the official code, the Gram matrix is divided by its Frobenius norm for
conditioning (alpha is rescaled back; a 1e-12 ridge is added to the normalised
matrix so that a solution always exists) and the combined gradient is clipped to norm
``max_norm`` (default 1.0; 0 disables). A task with a zero gradient gets alpha 0.
The official code also weights the task heads' gradients by alpha; in this harness
the heads get the plain sum (the training loop decides).
"""
from __future__ import annotations

import torch

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer, gram


@register("nash_mtl", version="1", keys={"nash_max_norm": {
    "type": "float", "default": 1.0, "minimum": 0.0, "arg": "max_norm",
    "help": "nash_mtl: the combined gradient is clipped to this norm; 0 = no clipping"}})
class NashMTL(MultiTaskOptimizer):
    space = "parameters"

    def __init__(self, num_tasks: int, max_norm: float = 1.0, max_iter: int = 100, tol: float = 1e-20):
        super().__init__(num_tasks)
        self.max_norm, self.max_iter, self.tol = max_norm, max_iter, tol

    def task_weights(self, grads, losses=None):
        return nash_weights(gram(self.check(grads)), self.max_iter, self.tol).to(grads.device)

    def combine(self, grads, losses=None, generator=None, inputs=None):
        direction = torch.tensordot(self.task_weights(grads).to(grads), grads, dims=1)
        norm = direction.norm()
        if self.max_norm > 0 and norm > self.max_norm:
            direction = direction * (self.max_norm / norm)
        return direction


def nash_weights(M, max_iter: int = 100, tol: float = 1e-20, ridge: float = 1e-12):
    """alpha > 0 with M alpha = 1 / alpha, for a (T, T) Gram matrix M (float64)."""
    alpha = torch.zeros(M.shape[0], dtype=M.dtype)
    active = M.diagonal() > 0
    if not active.any():
        return alpha
    M = M[active][:, active]
    scale = torch.linalg.matrix_norm(M)
    # the ridge keeps a solution in existence when some positive combination of the
    # gradients is zero (no direction helps every task): alpha then grows to ~1e6
    # and the direction G^T alpha shrinks towards 0
    M = M / scale + ridge * torch.eye(len(M), dtype=M.dtype)
    a = M.diagonal().rsqrt()  # exact when the gradients are orthogonal
    for _ in range(max_iter):
        gradient = M @ a - 1 / a
        step = torch.linalg.solve(M + torch.diag(a**-2), gradient)
        decrement_sq = gradient @ step
        if decrement_sq < tol:
            break
        a = a - step / (1 + decrement_sq.sqrt())
    alpha[active] = a / scale.sqrt()
    return alpha
