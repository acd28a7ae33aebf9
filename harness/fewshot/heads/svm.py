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

Variant (config key ``svm_solver``, of this head): ``exact`` (default, above) or ``official``:
what MetaOptNet's test.py scores with, ``cls_head(..., maxIter=3)``: qpth's batched
primal-dual interior point (locuslab/qpth qpth/solvers/pdipm/batch.py forward) stopped after
3 iterations, in float32 (MetaOptNetHead_SVM_CS's default double_precision=False), on the
same QP (``qpth_style_dual``). Its iterate is the best of the starting point and two Newton
steps by qpth's residual, not the optimum. MetaOptNet validates with qpth's default 15
iterations and trains through the solver; here ``official`` scores both validation and test
with 3 iterations, and training stays exact.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.fewshot.heads import register

MAX_ITERS = 60
STEP_FRACTION = 0.99  # fraction of the distance to the boundary an interior-point step may go
CHECK_GAP = 1e-6  # start testing candidate active sets once the duality gap is this small (relative)
KKT_TOLERANCE = 1e-10  # relative slack allowed in the optimality test of a candidate active set


OFFICIAL_ITERATIONS = 3  # MetaOptNet test.py: cls_head(emb_query, emb_support, labels_support, way, shot, maxIter=3)
QPTH_STEP_FRACTION = 0.999  # qpth batch.py forward: alpha = min(0.999 * max step, 1)
QPTH_NOT_IMPROVED = 3  # qpth's notImprovedLim
QPTH_EPS = 1e-12  # qpth's eps on the best residual


@register("svm", version="1", keys={"svm_solver": {
    "type": "str", "default": "exact", "choices": ["exact", "official"], "versions": {"official": "1"},
    "help": "svm head: exact = the QP solved to optimality in float64; official = MetaOptNet's test.py, qpth's "
            "interior point stopped after 3 iterations in float32 (kjunelee/MetaOptNet test.py: maxIter=3)"}})
def svm(support, support_labels, query, ways, cfg) -> torch.Tensor:
    C, ridge = float(cfg.get("svm_C", 0.1)), float(cfg.get("svm_ridge", 1.0))
    if cfg.get("svm_solver", "exact") == "official":
        return qpth_style_scores(support, support_labels, query, ways, C, ridge, OFFICIAL_ITERATIONS)
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


# ---------------------------------------------------------------- MetaOptNet's test-time solver


@torch.no_grad()
def qpth_style_scores(support, support_labels, query, ways, C, ridge, iterations, dtype=torch.float32):
    """Query scores (E, Q, ways) from ``qpth_style_dual`` in ``dtype`` (MetaOptNet: float32)."""
    with torch.autocast(support.device.type, enabled=False):
        support, query = support.to(dtype), query.to(dtype)
        alpha = qpth_style_dual(support @ support.transpose(1, 2), support_labels, ways, C, ridge, iterations)
        return ((query @ support.transpose(1, 2)) @ alpha).float()


def qpth_style_dual(kernel, labels, ways, C, ridge, iterations):
    """alpha (E, S, ways) after ``iterations`` iterations of qpth's pdipm_b.forward on MetaOptNet's QP
    min 1/2 z'Qz + p'z s.t. z <= h, Az = 0 with Q = K kron I + ridge I, p = -onehot, h = C onehot and
    A summing each example's ways entries (MetaOptNetHead_SVM_CS), each episode as if solved alone
    (test.py solves one episode per call). qpth's steps, in its names (x primal, s slacks, z and y the
    inequality and equality multipliers): a start from the KKT system with D = I, slacks and multipliers
    shifted to >= 1; then per iteration the residuals, the best iterate so far by
    ||rz|| + ||ry|| + ||rx|| + n mu, an affine step, Mehrotra's centring step and a step of 0.999 of the
    way to the boundary. The returned point is the best RECORDED iterate: with 3 iterations, the best of
    the start and two steps."""
    episodes, examples = labels.shape
    n = examples * ways
    dtype, device = kernel.dtype, kernel.device
    onehot = F.one_hot(labels, ways).to(dtype).flatten(1)  # (E, n)
    Q = torch.einsum("eij,ml->eimjl", kernel, torch.eye(ways, dtype=dtype, device=device)).reshape(episodes, n, n)
    Q = Q + ridge * torch.eye(n, dtype=dtype, device=device)
    p, h = -onehot, C * onehot
    A = torch.eye(examples, dtype=dtype, device=device).repeat_interleave(ways, dim=1).expand(episodes, -1, -1)

    def solve(d, rx, rs, rz, ry):  # qpth's KKT: Q dx + dz + A'dy = -rx, d ds + dz = -rs, dx + ds = -rz, A dx = -ry
        top = torch.cat([Q + torch.diag_embed(d), A.transpose(1, 2)], dim=2)
        bottom = torch.cat([A, A.new_zeros(episodes, examples, examples)], dim=2)
        rhs = torch.cat([-rx + rs - d * rz, -ry], dim=1)
        solution = torch.linalg.solve(torch.cat([top, bottom], dim=1), rhs.unsqueeze(-1)).squeeze(-1)
        dx, dy = solution[:, :n], solution[:, n:]
        ds = -rz - dx
        return dx, ds, -rs - d * ds, dy

    x, s, z, y = solve(torch.ones_like(p), p, torch.zeros_like(p), -h, torch.zeros(episodes, examples, dtype=dtype,
                                                                                     device=device))
    s = torch.where(s.amin(1, keepdim=True) < 0, s - s.amin(1, keepdim=True) + 1, s)
    z = torch.where(z.amin(1, keepdim=True) < 0, z - z.amin(1, keepdim=True) + 1, z)
    best_x, best_resid = x.clone(), None
    stale = torch.zeros(episodes, dtype=torch.long, device=device)
    done = torch.zeros(episodes, dtype=torch.bool, device=device)
    for i in range(iterations):
        rx = z + (A.transpose(1, 2) @ y.unsqueeze(-1)).squeeze(-1) + (Q @ x.unsqueeze(-1)).squeeze(-1) + p
        rs, rz, ry = z, x + s - h, (A @ x.unsqueeze(-1)).squeeze(-1)
        mu = (s * z).sum(1).abs() / n
        resid = rz.norm(dim=1) + ry.norm(dim=1) + rx.norm(dim=1) + n * mu
        if best_resid is None:
            best_resid = resid.clone()
        else:
            better = (resid < best_resid) & ~done
            stale = torch.where(better, 0, stale + 1)
            best_resid = torch.where(better, resid, best_resid)
            best_x = torch.where(better[:, None], x, best_x)
        done |= (stale == QPTH_NOT_IMPROVED) | (best_resid < QPTH_EPS) | (mu > 1e32)
        if done.all() or i == iterations - 1:
            break  # the step after the last recorded iterate would never be recorded
        d = z / s
        dx, ds, dz, dy = solve(d, rx, rs, rz, ry)
        size = torch.minimum(_qpth_step(z, dz), _qpth_step(s, ds)).clamp(max=1.0)[:, None]
        sigma = (((s + size * ds) * (z + size * dz)).sum(1) / (s * z).sum(1)) ** 3
        zero = torch.zeros_like(x)
        cx, cs, cz, cy = solve(d, zero, (-(mu * sigma)[:, None] + ds * dz) / s, zero, torch.zeros_like(y))
        dx, ds, dz, dy = dx + cx, ds + cs, dz + cz, dy + cy
        size = (QPTH_STEP_FRACTION * torch.minimum(_qpth_step(z, dz), _qpth_step(s, ds))).clamp(max=1.0)[:, None]
        x, s, z, y = x + size * dx, s + size * ds, z + size * dz, y + size * dy
    return best_x.view(episodes, examples, ways)


def _qpth_step(v, dv):
    """qpth's get_step per episode: the largest step keeping v >= 0 along the coordinates that decrease,
    1 when none decreases."""
    ratios = torch.where(dv < 0, -v / dv, torch.full_like(v, float("inf")))
    step = ratios.amin(1)
    return torch.where(torch.isinf(step), torch.ones_like(step), step)
