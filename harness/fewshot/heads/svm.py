"""Crammer-Singer multi-class SVM head of MetaOptNet (Lee, Maji, Ravichandran & Soatto, CVPR 2019).

The dual MetaOptNet solves on an episode's support embeddings x_i (labels y_i, S of
them, ``ways`` classes), in liblinear's notation, with alpha an S x ways matrix:

    min_alpha  1/2 sum_m ||sum_i alpha_im x_i||^2 + ridge/2 ||alpha||^2 - sum_i alpha_{i,y_i}
    s.t.       alpha_im <= C [m = y_i],   sum_m alpha_im = 0   for every i,

and scores a query q for class m by sum_i alpha_im <x_i, q>. With ridge = 0 this is the
exact dual of the Crammer-Singer primal min 1/2 sum_m ||w_m||^2 + C sum_i xi_i s.t.
w_{y_i}.x_i - w_m.x_i >= 1 - [m = y_i] - xi_i; MetaOptNet adds the identity to the
quadratic term (ridge = 1) "to avoid PSD errors from the QP solver", and so do we by
default (``svm_ridge``), with C = 0.1 (``svm_C``).

Solver. Substituting alpha_i = C e_{y_i} - w_i turns each example's constraints into
w_i >= 0, sum_m w_im = C: a standard-form QP, solved (without autograd, in float64,
batched over episodes) by a primal-dual interior-point method with Mehrotra's
predictor-corrector, until its iterate names an active set (which w_im are 0) whose face
solution passes the KKT test: on that face the optimum is the solution of ONE linear
system, feasible with nonnegative reduced costs certifies it optimal (usually 10-16
iterations). That linear system is then solved again WITH autograd, so the returned
solution is exact to rounding (1e-11 against scipy's SLSQP in the tests) and
backpropagating through the solve is exactly implicit differentiation of the KKT
conditions (as in OptNet/qpth, which MetaOptNet uses), not an unrolled approximation.
The solution map is piecewise smooth; where the active set changes (measure zero) this
takes one one-sided derivative. ridge > 0 keeps every face system nonsingular.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.fewshot.heads import register

MAX_ITERS = 60
STEP_FRACTION = 0.99  # fraction of the distance to the boundary an interior-point step may go
CHECK_GAP = 1e-6  # start testing candidate active sets once the duality gap is this small (relative)
KKT_TOLERANCE = 1e-10  # relative slack allowed in the optimality test of a candidate active set


@register("svm", version="1")
def svm(support, support_labels, query, ways, cfg) -> torch.Tensor:
    C, ridge = float(cfg.get("svm_C", 0.1)), float(cfg.get("svm_ridge", 1.0))
    return crammer_singer_scores(support, support_labels, query, ways, C, ridge).float()


def crammer_singer_scores(support, support_labels, query, ways, C, ridge):
    """Query scores (E, Q, ways) of the SVM fitted to each episode's support set; differentiable.

    Solved in float64 with autocast off (under bf16 autocast the Gram matrices would be bf16,
    and torch.linalg rejects bf16); the scores come back in float32 (float64 for float64 input)."""
    with torch.autocast(support.device.type, enabled=False):
        support64, query64 = support.double(), query.double()
        alpha = crammer_singer_dual(support64 @ support64.transpose(1, 2), support_labels, ways, C, ridge)
        scores = (query64 @ support64.transpose(1, 2)) @ alpha
    return scores.to(torch.promote_types(support.dtype, torch.float32))


def crammer_singer_dual(kernel, labels, ways, C, ridge):
    """alpha (E, S, ways) solving the dual above for Gram matrices ``kernel`` (E, S, S); differentiable in kernel."""
    episodes, examples = labels.shape
    targets = F.one_hot(labels, ways).to(kernel.dtype).flatten(1)  # (E, S*ways), index i*ways + m
    with torch.no_grad():
        free = _active_set(*_standard_form(kernel.detach(), targets, ways, C, ridge), examples, ways, C)
    hessian, linear = _standard_form(kernel, targets, ways, C, ridge)
    w, _ = _face_solution(hessian, linear, free, examples, ways, C)
    return (C * targets - w).view(episodes, examples, ways)


def _standard_form(kernel, targets, ways, C, ridge):
    """H = K kron I + ridge I and c, for min 1/2 w'Hw + c'w over w >= 0, sum_m w_im = C."""
    n = targets.shape[1]
    eye = torch.eye(ways, dtype=kernel.dtype, device=kernel.device)
    hessian = torch.einsum("eij,ml->eimjl", kernel, eye).reshape(-1, n, n)
    hessian = hessian + ridge * torch.eye(n, dtype=kernel.dtype, device=kernel.device)
    linear = targets - (hessian @ (C * targets).unsqueeze(-1)).squeeze(-1)  # alpha = C*targets - w
    return hessian, linear


def _kkt_matrix(block, constraints):
    """[[block, -A'], [A, 0]] for equality constraints A (E, S, n)."""
    episodes, examples, _ = constraints.shape
    top = torch.cat([block, -constraints.transpose(1, 2)], dim=2)
    bottom = torch.cat([constraints, block.new_zeros(episodes, examples, examples)], dim=2)
    return torch.cat([top, bottom], dim=1)


def _row_sums(episodes, examples, ways, like):
    """A = I_S kron 1_ways': row i sums example i's variables, (E, S, S*ways)."""
    eye = torch.eye(examples, dtype=like.dtype, device=like.device)
    return eye.repeat_interleave(ways, dim=1).expand(episodes, examples, examples * ways)


def _active_set(hessian, linear, examples, ways, C):
    """Mehrotra predictor-corrector interior-point iterations until the face solution of the set
    {w_j > z_j} passes the KKT test (w >= 0 on the face, reduced costs >= 0 off it): that
    certifies it optimal. Returns the free set (E, n) as a bool mask."""
    episodes, n = linear.shape
    w = linear.new_full((episodes, n), C / ways)  # strictly feasible: each example's row sums to C
    z = torch.ones_like(w)
    y = linear.new_zeros(episodes, examples)
    scale = 1.0 + linear.abs().amax(1, keepdim=True) * C
    sums = _row_sums(episodes, examples, ways, linear)
    done = torch.zeros_like(scale, dtype=torch.bool)
    for _ in range(MAX_ITERS):
        free = _candidate(w, z, examples, ways)
        mu = (w * z).mean(1, keepdim=True)
        if (n * mu < CHECK_GAP * scale).any():
            done |= _certified(hessian, linear, free, examples, ways, C, scale)
        if done.all():
            break
        dual_residual = (hessian @ w.unsqueeze(-1)).squeeze(-1) + linear - y.repeat_interleave(ways, 1) - z
        primal_residual = w.view(episodes, examples, ways).sum(-1) - C
        lu = torch.linalg.lu_factor(_kkt_matrix(hessian + torch.diag_embed(z / w), sums))

        def direction(target):  # Newton step towards w_j z_j = target_j
            rhs = torch.cat([-dual_residual + (target - w * z) / w, -primal_residual], dim=1)
            step = torch.linalg.lu_solve(*lu, rhs.unsqueeze(-1)).squeeze(-1)
            dw, dy = step[:, :n], step[:, n:]
            return dw, dy, (target - w * z - z * dw) / w

        dw, dy, dz = direction(torch.zeros_like(w))
        size = _max_step(w, dw, z, dz, 1.0)
        mu_affine = ((w + size * dw) * (z + size * dz)).mean(1, keepdim=True)
        dw, dy, dz = direction((mu_affine / mu).clamp(max=1.0) ** 3 * mu - dw * dz)
        size = _max_step(w, dw, z, dz, STEP_FRACTION)
        moving = ~done  # certified episodes stay put
        w, y, z = (torch.where(moving, v + size * dv, v) for v, dv in ((w, dw), (y, dy), (z, dz)))
    return _candidate(w, z, examples, ways)  # certified, or after MAX_ITERS the best guess


def _candidate(w, z, examples, ways):
    """The free set {w_j > z_j}, plus each example's largest w (its row sums to C > 0, so one is free)."""
    largest = F.one_hot(w.view(len(w), examples, ways).argmax(-1), ways).flatten(1).bool()
    return (w > z) | largest


def _certified(hessian, linear, free, examples, ways, C, scale):
    w, y = _face_solution(hessian, linear, free, examples, ways, C)
    reduced_cost = (hessian @ w.unsqueeze(-1)).squeeze(-1) + linear - y.repeat_interleave(ways, 1)
    primal_ok = (w >= -KKT_TOLERANCE * C) | ~free
    dual_ok = (reduced_cost >= -KKT_TOLERANCE * scale) | free
    return (primal_ok & dual_ok).all(1, keepdim=True)


def _max_step(w, dw, z, dz, fraction):
    """Largest step in (0, 1] keeping w and z nonnegative (times ``fraction``), per episode."""
    values, steps = torch.cat([w, z], 1), torch.cat([dw, dz], 1)
    ratios = torch.where(steps < 0, -values / steps, torch.full_like(values, float("inf")))
    return (fraction * ratios.amin(1, keepdim=True)).clamp(max=1.0)


def _face_solution(hessian, linear, free, examples, ways, C):
    """Solve the KKT system with w fixed at 0 off ``free``: exact on the right face, differentiable.
    Returns w (E, n) and the multipliers y (E, S) of the equality constraints."""
    n = free.shape[1]
    mask = free.to(hessian.dtype)
    block = hessian * mask.unsqueeze(1) * mask.unsqueeze(2) + torch.diag_embed(1 - mask)
    constraints = _row_sums(len(mask), examples, ways, mask) * mask.unsqueeze(1)
    rhs = torch.cat([-linear * mask, linear.new_full((len(linear), examples), C)], dim=1)
    solution = torch.linalg.solve(_kkt_matrix(block, constraints), rhs.unsqueeze(-1)).squeeze(-1)
    return solution[:, :n], solution[:, n:]
