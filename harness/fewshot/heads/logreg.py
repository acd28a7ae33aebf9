"""Logistic-regression head of Wang, Zhao & Li (2021), solved exactly and batched.

The paper fits scikit-learn's ``LogisticRegression(C=C)`` per episode on
L2-normalised features. scikit-learn's lbfgs solver minimises

    sum_i CE(W x_i + b, y_i) + ||W||_F^2 / (2C)

(up to the constant factor 1/n) with the intercept b NOT penalised. We reach the
same optimum without scikit-learn:

- Span reduction. The gradient of the loss term in W is a sum of outer products
  (p_i - y_i) x_i^T, so at the optimum W = -C sum_i (p_i - y_i) x_i^T: every row
  of W lies in the span of the support features. With an orthonormal basis B of
  that span (QR of the support matrix), W = A B^T and ||W||_F = ||A||_F, so the
  problem in the S-dimensional coordinates x B is the same problem, still strictly
  convex in A, and its minimiser maps back to the D-dimensional one.
- Newton's method on (coefficients, intercept) per episode, batched over
  episodes, with a backtracking line search so each episode's objective
  decreases. Adding the same constant to every intercept leaves the softmax
  unchanged, so the Hessian is singular along that direction; the gradient is
  always orthogonal to it, so we add a unit curvature there ("gauge fixing"),
  which leaves the step elsewhere untouched and keeps the intercepts centred,
  as scikit-learn's iterates starting from zero are.
- Two classes. scikit-learn then fits one binary model w with penalty
  ||w||^2 / (2C); the symmetric two-class softmax (w/2, -w/2) pays ||w||^2 / (4C),
  so it equals the binary model with C halved.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.fewshot.heads import register

ARMIJO = 1e-4
MAX_HALVINGS = 30


@register("logreg", version="1")
def logreg(support, support_labels, query, ways, cfg) -> torch.Tensor:
    C = float(cfg.get("logreg_C", 3.0))
    max_iters = int(cfg.get("logreg_iters", 100))
    if ways == 2:
        C /= 2  # match scikit-learn's binary model (see module docstring)
    dtype = torch.float64 if support.device.type == "cpu" else torch.float32
    support = F.normalize(support.to(dtype), dim=-1)
    query = F.normalize(query.to(dtype), dim=-1)

    basis = torch.linalg.qr(support.transpose(1, 2)).Q  # (E, D, r), spans the support
    theta = fit_softmax_regression(
        with_bias(support @ basis), support_labels, ways, C, max_iters
    )
    return (with_bias(query @ basis) @ theta.transpose(1, 2)).float()


def with_bias(features):
    ones = features.new_ones(features.shape[:-1] + (1,))
    return torch.cat([features, ones], dim=-1)


def fit_softmax_regression(inputs, labels, ways, C, max_iters):
    """Newton's method; inputs (E, S, R) end with a constant 1 column, theta is (E, ways, R)."""
    episodes, _, width = inputs.shape
    targets = F.one_hot(labels, ways).to(inputs.dtype)
    penalty = inputs.new_full((width,), 1 / C)
    penalty[-1] = 0  # the intercept is not penalised
    curvature_fix = _penalty_hessian(penalty, ways)
    tolerance = torch.finfo(inputs.dtype).eps ** 0.5

    def objective(theta):
        logits = inputs @ theta.transpose(1, 2)
        cross_entropy = torch.logsumexp(logits, -1) - (logits * targets).sum(-1)
        return cross_entropy.sum(-1) + 0.5 * (theta.pow(2) * penalty).sum((1, 2))

    theta = inputs.new_zeros(episodes, ways, width)
    initial_norm = None
    for _ in range(max_iters):
        probs = torch.softmax(inputs @ theta.transpose(1, 2), -1)
        grad = (probs - targets).transpose(1, 2) @ inputs + theta * penalty
        grad_norm = grad.flatten(1).norm(dim=1)
        if initial_norm is None:
            initial_norm = grad_norm.clamp_min(1e-30)
        if (grad_norm <= tolerance * initial_norm).all():
            break
        hessian = _loss_hessian(probs, inputs) + curvature_fix
        step = torch.linalg.solve(hessian, grad.flatten(1)).view_as(theta)
        theta = _backtrack(objective, theta, step, grad)
    return theta


def _loss_hessian(probs, inputs):
    """Sum_i (diag(p_i) - p_i p_i^T) kron x_i x_i^T, as (E, ways*R, ways*R)."""
    episodes, shots, ways = probs.shape
    width = inputs.shape[-1]
    weighted = (probs[..., None] * inputs[..., None, :]).reshape(episodes, shots, ways * width)
    cross_terms = weighted.transpose(1, 2) @ weighted
    diagonal_blocks = torch.einsum("eik,eia,eib->ekab", probs, inputs, inputs)
    eye = torch.eye(ways, dtype=probs.dtype, device=probs.device)
    block_diagonal = torch.einsum("ekab,kl->ekalb", diagonal_blocks, eye)
    return block_diagonal.reshape(episodes, ways * width, ways * width) - cross_terms


def _penalty_hessian(penalty, ways):
    """The L2 term's Hessian plus unit curvature along the common-intercept-shift direction."""
    shift = torch.zeros(ways, penalty.numel(), dtype=penalty.dtype, device=penalty.device)
    shift[:, -1] = ways**-0.5  # unit vector moving all intercepts together
    shift = shift.flatten()
    return torch.diag(penalty.repeat(ways)) + torch.outer(shift, shift)


def _backtrack(objective, theta, step, grad):
    """theta - t * step with t halved per episode until the Armijo condition holds."""
    current = objective(theta)
    slope = (grad * step).sum((1, 2))  # minus the directional derivative along -step
    size = torch.ones_like(current)
    for _ in range(MAX_HALVINGS):
        accepted = objective(theta - size[:, None, None] * step) <= current - ARMIJO * size * slope
        if accepted.all():
            break
        size = torch.where(accepted, size, size / 2)
    size = torch.where(accepted, size, torch.zeros_like(size))
    return theta - size[:, None, None] * step
