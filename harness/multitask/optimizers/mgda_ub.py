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
``max_iter`` = 250 major steps; two tasks use the exact closed form.

Two solvers (config key ``mgda_solver``, constructor argument ``solver``):
- ``exact`` (default): Wolfe's algorithm above, weights in [0, 1].
- ``official``: what the official code of Kurin et al. (adapted from Sener & Koltun's
  MinNormSolver) computes, and so what the paper's MGDA-UB numbers come from
  (yobibyte/unitary-scalarization-dmtl optimizers/mgda.py:80-215 at 912fe08; LibMTL's MGDA
  is the same algorithm): start from the best pair's two-task solution, then projected
  gradient steps, each followed by a line search between the iterate and the projected
  point, at most 250 of them, returning the iterate BEFORE the first step that moves alpha
  by less than 1e-5 in L1 (``official_min_norm_weights``). Its two-point rule
  (``official_pair``) puts 0.999 / 0.001 on the vertices when the minimum is at an end of
  the segment; an interior minimum is returned unclipped (so a weight may lie in
  (0.999, 1)). Runs on the un-rescaled Gram matrix, as the official code: the step length's
  1e-7 threshold depends on the gradients' scale. It only approximates the min-norm point,
  badly for many ill-conditioned tasks (the tests measure how far).
"""
from __future__ import annotations

import numpy as np
import torch

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer, gram

SOLVERS = ("exact", "official")
OFFICIAL_MAX_ITER = 250  # optimizers/mgda.py:80, MinNormSolver.MAX_ITER
OFFICIAL_STOP = 1e-5  # mgda.py:81, STOP_CRIT: L1 change of alpha
OFFICIAL_VERTEX_WEIGHTS = (0.999, 0.001)  # mgda.py:95 and :100, the two-point rule's gamma at x_1, at x_2
OFFICIAL_MIN_STEP = 1e-7  # mgda.py:155-159, step lengths up to this are ignored


@register("mgda_ub", version="1", keys={
    "mgda_normalization": {"type": "str", "default": "loss+", "choices": ["loss+", "l2", "loss", "none"],
                           "arg": "normalization", "help": "mgda_ub: gradient normalisation before the min-norm solve"},
    "mgda_solver": {
        "type": "str", "default": "exact", "choices": ["exact", "official"], "arg": "solver", "versions": {"official": "1"},
        "help": "min-norm solver: exact = Wolfe's algorithm (weights in [0, 1]); official = the official code's projected "
                "gradient descent (yobibyte/unitary-scalarization-dmtl optimizers/mgda.py:166-215: at most 250 steps, stop "
                "below 1e-5 L1 change, 0.999/0.001 on a vertex), what the paper's MGDA-UB numbers come from"}})
class MGDAUB(MultiTaskOptimizer):
    space = "representation"

    def __init__(self, num_tasks: int, normalization: str = "loss+", max_iter: int = 250, tol: float = 1e-10,
                 solver: str = "exact"):
        super().__init__(num_tasks)
        if normalization not in ("loss+", "l2", "loss", "none"):
            raise ValueError(f"unknown normalization {normalization!r}")
        if solver not in SOLVERS:
            raise ValueError(f"unknown MGDA solver {solver!r} (known: {', '.join(SOLVERS)})")
        self.normalization, self.max_iter, self.tol, self.solver = normalization, max_iter, tol, solver

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
        vectors = self.normalized(grads, losses)
        if self.solver == "official":
            return official_min_norm_weights(gram(vectors))[0].to(vectors.device)
        return min_norm_weights(vectors, self.max_iter, self.tol)

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


# ---------------------------------------------------------------- the official solver


def official_pair(v1v1: float, v1v2: float, v2v2: float) -> tuple[float, float]:
    """The official two-point rule (mgda.py:84-106): (gamma, squared norm) for the minimum of
    ||gamma x_1 + (1 - gamma) x_2||^2, with 0.999 / 0.001 on a vertex and the vertex's norm."""
    if v1v2 >= v1v1:
        return OFFICIAL_VERTEX_WEIGHTS[0], v1v1
    if v1v2 >= v2v2:
        return OFFICIAL_VERTEX_WEIGHTS[1], v2v2
    gamma = (v2v2 - v1v2) / (v1v1 + v2v2 - 2 * v1v2)
    return gamma, v2v2 + gamma * (v1v2 - v2v2)


def official_min_norm_weights(M, max_iter: int = OFFICIAL_MAX_ITER, tol: float = OFFICIAL_STOP):
    """The official MinNormSolver.find_min_norm_element on a (T, T) Gram matrix (mgda.py:166-215).
    Returns (alpha as a float64 tensor, the number of projected-gradient steps taken)."""
    M = np.asarray(torch.as_tensor(M, dtype=torch.float64).cpu())
    T = len(M)
    if T == 1:
        return torch.ones(1, dtype=torch.float64), 0
    best = None  # mgda.py:109-129: the pair whose two-point minimum has the smallest norm (first on ties)
    for i in range(T):
        for j in range(i + 1, T):
            gamma, cost = official_pair(M[i, i], M[i, j], M[j, j])
            if best is None or cost < best[3]:
                best = (i, j, gamma, cost)
    x = np.zeros(T)
    x[best[0]], x[best[1]] = best[2], 1 - best[2]
    if T == 2:
        return torch.from_numpy(x), 0
    for step in range(max_iter):
        candidate = _official_next_point(x, -M @ x)
        gamma, _ = official_pair(_official_form(x, x, M), _official_form(x, candidate, M),
                                 _official_form(candidate, candidate, M))
        moved = gamma * x + (1 - gamma) * candidate
        if np.abs(moved - x).sum() < tol:
            return torch.from_numpy(x), step  # the iterate before the small move (mgda.py:211-212)
        x = moved
    return torch.from_numpy(x), max_iter


def _official_form(u, v, M):
    """u' M v summed as mgda.py:200-205 does, term (u_i v_j) M_ij after term in row-major order: near
    the end the line search compares nearly equal numbers, and another rounding takes another path."""
    return np.cumsum((np.outer(u, v) * M).ravel())[-1]


def _official_next_point(x, direction):
    """mgda.py:149-163: step along the direction centred to sum 0, as far as the first coordinate
    reaching 0 or 1 (step lengths <= 1e-7 ignored), then project onto the simplex. As there, the
    initial length 1 is a cap only when no coordinate moves towards 0."""
    centred = direction - direction.sum() / len(x)
    to_zero = -x[centred < 0] / centred[centred < 0]
    to_one = (1 - x[centred > 0]) / centred[centred > 0]
    to_zero, to_one = to_zero[to_zero > OFFICIAL_MIN_STEP], to_one[to_one > OFFICIAL_MIN_STEP]
    t = to_zero.min() if len(to_zero) else 1.0
    if len(to_one):
        t = min(t, to_one.min())
    return _official_simplex_projection(centred * t + x)


def _official_simplex_projection(y):
    """mgda.py:132-147: Euclidean projection onto the simplex by sorting (the first k whose
    threshold (sum of the k largest - 1) / k exceeds the (k+1)-th largest)."""
    descending = np.sort(y)[::-1]
    thresholds = (np.cumsum(descending)[:-1] - 1) / np.arange(1, len(y))
    above = np.nonzero(thresholds > descending[1:])[0]
    threshold = thresholds[above[0]] if len(above) else (y.sum() - 1) / len(y)
    return np.maximum(y - threshold, 0.0)
