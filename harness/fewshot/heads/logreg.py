"""Logistic-regression head of Wang, Zhao & Li (2021), solved exactly and batched.

The paper fits scikit-learn's ``LogisticRegression(C=C)`` per episode on
L2-normalised features. scikit-learn's lbfgs solver minimises

    sum_i CE(W x_i + b, y_i) + ||W||_F^2 / (2C)

(up to the constant factor 1/n) with the intercept b NOT penalised. We reach the
same optimum without scikit-learn, for all episodes of a batch at once:

- Kernel coordinates. The gradient of the loss term in W is a sum of outer
  products (p_i - y_i) x_i^T, so at the optimum W = -C sum_i (p_i - y_i) x_i^T:
  the problem lives in the span of the S support features and depends on them
  only through their Gram matrix K = X X^T. Any Z with Z Z^T = K gives the same
  problem in S coordinates (W = A B^T for an orthonormal basis B of the span,
  with X B = Z and ||W|| = ||A||); Z is the Cholesky factor of K, or
  U sqrt(Lambda) from its eigendecomposition when the support is rank-deficient
  (more support images than feature dimensions). The queries are then scored
  with W = -C sum_i (p_i - y_i) x_i^T itself (the representer form), so nothing
  is mapped back through Z.
- Newton's method on theta = (A, b), (ways, S + 1) per episode. Its Hessian,
  (ways (S+1))^2, is never formed: it is D - U U^T with D block diagonal (one
  (S+1)^2 block per class, Z~^T diag(p_c) Z~ + penalty, Z~ = [Z, 1]) and U of
  rank S (column i stacks p_ic z~_i over classes), so by Woodbury a step costs
  `ways` Cholesky factorisations of (S+1)^2 and one of S^2 instead of one of
  (ways (S+1))^2: for 5-way 5-shot 5 x 26^2 and 25^2 instead of 130^2.
  Adding the same constant to every intercept leaves the softmax unchanged, so
  H is singular along that direction and so is the S x S system
  I - U^T D^-1 U, along the all-ones vector, which its right-hand side is
  orthogonal to: adding 1 1^T / S makes it positive definite without changing
  the solution, and the step's intercepts are then centred, as scikit-learn's
  iterates starting from zero are.
- The first step, from theta = 0, is cheaper still: all probabilities are
  1/ways and the gradient sums to zero over the classes, so every class solves
  the same (S+1)^2 system ((1/ways) Z~^T Z~ + penalty).
- A backtracking (Armijo) line search per episode, on the objective's change
  f(theta - t step) - f(theta) computed directly (log1p/expm1) rather than as the
  difference of two objective values, which cannot resolve the decrease of a
  step once it is below the rounding of f. An episode leaves the batch once its
  gradient norm is below sqrt(eps) times its initial one.
- Precision: the solve is float64 on the CPU, float32 on a GPU. The products
  with the features (the Gram matrix, W, the query scores) are computed in the
  features' own precision, at least float32: float64 features give a float64-exact
  optimum (the tests compare with scikit-learn at tol 1e-10); for float32 features
  the Gram matrix carries float32 rounding (relative ~1e-7), which moves the logits
  by ~1e-6 on ResNet-12 features, far below scikit-learn's default tolerance.
- Episodes are fitted in chunks whose (S+1)^2-per-class Hessian blocks take at
  most CHUNK_BYTES: on the CPU about 1 MiB (38 episodes of 5-way 5-shot), which
  keeps the temporaries in cache and out of fresh pages (1.8x faster than 250
  episodes at once on the development machine); elsewhere it only bounds memory
  for many ways or shots.
- On the CPU the head runs on ONE torch thread (the setting is restored after):
  its ops are small and many (a few dozen per Newton step), so more threads gain
  little, and on a busy machine every one of those parallel regions waits for a
  descheduled thread: with 2 threads on 2 loaded cores the head was slower than
  scikit-learn.
- Two classes. scikit-learn then fits one binary model w with penalty
  ||w||^2 / (2C); the symmetric two-class softmax (w/2, -w/2) pays ||w||^2 / (4C),
  so it equals the binary model with C halved.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from harness.fewshot.heads import register

ARMIJO = 1e-4
MAX_HALVINGS = 30
# Episodes are fitted in chunks whose per-class Hessian blocks take at most this many bytes:
CHUNK_BYTES = {"cpu": 2**20, "other": 256 * 2**20}  # CPU: cache-sized; GPU: a memory bound only


@register("logreg", version="1")
def logreg(support, support_labels, query, ways, cfg) -> torch.Tensor:
    C = float(cfg.get("logreg_C", 3.0))
    max_iters = int(cfg.get("logreg_iters", 100))
    if ways == 2:
        C /= 2  # match scikit-learn's binary model (see module docstring)
    on_cpu = support.device.type == "cpu"
    solve_dtype = torch.float64 if on_cpu else torch.float32
    size = support.shape[1]
    chunk = max(1, CHUNK_BYTES["cpu" if on_cpu else "other"] // (ways * (size + 1) ** 2 * 8))
    with one_torch_thread() if on_cpu else contextlib.nullcontext():
        return torch.cat([fit_and_score(s, y, q, ways, C, max_iters, solve_dtype)
                          for s, y, q in zip(support.split(chunk), support_labels.split(chunk), query.split(chunk))])


@contextlib.contextmanager
def one_torch_thread():
    """Torch on one thread while the head runs (module docstring), then as before."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit_and_score(support, support_labels, query, ways, C, max_iters, solve_dtype):
    support = support.to(torch.promote_types(support.dtype, torch.float32))
    gram = (support @ support.transpose(1, 2)).to(solve_dtype)
    inverse_norms = gram.diagonal(dim1=1, dim2=2).clamp_min(1e-24).rsqrt()  # F.normalize's eps, squared
    gram = gram * inverse_norms[:, :, None] * inverse_norms[:, None, :]
    targets = F.one_hot(support_labels, ways).to(solve_dtype).transpose(1, 2)  # class-major, as all below
    logits, bias = fit_softmax_regression(gram_factor(gram), targets, C, max_iters)
    dual = -C * (torch.softmax(logits, 1) - targets) * inverse_norms[:, None, :]  # (E, ways, S)
    return score(query, dual.to(support.dtype) @ support, bias)


def gram_factor(gram):
    """Z (E, S, S) with Z Z^T = gram: Cholesky, or an eigendecomposition where that fails."""
    factor, info = torch.linalg.cholesky_ex(gram)
    singular = info > 0
    if singular.any():
        values, vectors = torch.linalg.eigh(gram[singular])
        factor[singular] = vectors * values.clamp_min(0).sqrt()[..., None, :]
    return factor


def score(query, weights, bias):
    """Logits of the L2-normalised queries (E, Q, D) under weights (E, ways, D) and bias (E, ways)."""
    dtype = torch.promote_types(query.dtype, torch.float32)
    query = query.to(dtype)
    norms = query.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return ((query @ weights.to(dtype).transpose(1, 2)) / norms + bias.to(dtype)[:, None, :]).float()


def fit_softmax_regression(coords, targets, C, max_iters):
    """Newton's method on theta (E, ways, S + 1), coordinates then intercept; targets are
    (E, ways, S). Returns the support logits (E, ways, S) and the intercepts (E, ways) at the optimum."""
    episodes, ways, samples = targets.shape
    inputs = torch.cat([coords, coords.new_ones(episodes, samples, 1)], -1)
    penalty = inputs.new_full((samples + 1,), 1 / C)
    penalty[-1] = 0  # the intercept is not penalised
    tolerance = torch.finfo(inputs.dtype).eps ** 0.5
    theta = inputs.new_zeros(episodes, ways, samples + 1)
    logits = inputs.new_zeros(episodes, ways, samples)
    final_theta, final_logits = theta.clone(), logits.clone()
    active = torch.arange(episodes, device=inputs.device)  # episodes still iterating
    for iteration in range(max_iters):
        log_probs = torch.log_softmax(logits, 1)
        probs = log_probs.exp()
        grad = (probs - targets) @ inputs + theta * penalty
        grad_norm = grad.flatten(1).norm(dim=1)
        if iteration == 0:
            limit = tolerance * grad_norm
            step = first_newton_step(inputs, grad, penalty)
        else:
            done = grad_norm <= limit
            if done.any():
                final_theta[active[done]], final_logits[active[done]] = theta[done], logits[done]
                keep = ~done
                active, inputs, targets, theta, logits, log_probs, probs, grad, limit = (
                    tensor[keep] for tensor in (active, inputs, targets, theta, logits, log_probs, probs, grad, limit))
                if len(active) == 0:
                    break
            step = newton_step(inputs, probs, grad, penalty)
        theta, logits = backtrack(inputs, targets, theta, logits, log_probs, probs, step, grad, penalty)
    else:
        final_theta[active], final_logits[active] = theta, logits
    return final_logits, final_theta[..., -1]


def first_newton_step(inputs, grad, penalty):
    """The Newton step at theta = 0: one (S+1)^2 system shared by the classes (module docstring)."""
    ways = grad.shape[1]
    system = inputs.transpose(1, 2) @ inputs / ways
    system.diagonal(dim1=-2, dim2=-1).add_(penalty)
    return torch.cholesky_solve(grad.transpose(1, 2), torch.linalg.cholesky(system)).transpose(1, 2)


def newton_step(inputs, probs, grad, penalty):
    """Solve H step = grad with H = D - U U^T by Woodbury (module docstring); probs (E, ways, S)."""
    episodes, samples, width = inputs.shape
    ways = probs.shape[1]
    features = inputs.transpose(1, 2)  # (E, S+1, S)
    weighted = (features[:, None] * probs[:, :, None, :]).reshape(episodes, ways * width, samples)
    blocks = (weighted @ inputs).view(episodes, ways, width, width)  # D's blocks, (E, ways, S+1, S+1)
    blocks.diagonal(dim1=-2, dim2=-1).add_(penalty)
    factor = torch.linalg.cholesky(blocks)
    right = torch.cat([features[:, None].expand(-1, ways, -1, -1), grad[..., None]], -1)
    half = torch.linalg.solve_triangular(factor, right, upper=False)  # L^-1 [Z~^T, g] per class
    cross = (half[..., :samples].transpose(-1, -2) @ half) * probs[..., None]  # U_c^T D_c^-1 [U_c, g_c]
    capacitance = -(cross[..., :samples] * probs[:, :, None, :]).sum(1)
    capacitance.diagonal(dim1=-2, dim2=-1).add_(1)
    capacitance += 1 / samples  # the intercept gauge (module docstring)
    mix = torch.cholesky_solve(cross[..., samples:].sum(1), torch.linalg.cholesky(capacitance))  # (E, S, 1)
    inner = half[..., samples:] + half[..., :samples] @ (probs[..., None] * mix[:, None])
    step = torch.linalg.solve_triangular(factor.transpose(-1, -2), inner, upper=True)[..., 0]
    step[..., -1] -= step[..., -1].mean(1, keepdim=True)
    return step


def backtrack(inputs, targets, theta, logits, log_probs, probs, step, grad, penalty):
    """theta - t * step with t halved per episode until the Armijo condition holds; also the new logits."""
    step_logits = step @ inputs.transpose(1, 2)  # (E, ways, S)
    target_term = (step_logits * targets).sum((1, 2))
    penalty_linear = (theta * step * penalty).sum((1, 2))
    penalty_quadratic = 0.5 * (step.pow(2) * penalty).sum((1, 2))

    def change(size):
        """f(theta - size * step) - f(theta), without cancellation."""
        shift = -size[:, None, None] * step_logits
        small = torch.log1p((probs * torch.expm1(shift)).sum(1))  # accurate for small shifts
        large = torch.logsumexp(log_probs + shift, 1)
        log_partition = torch.where(shift.abs().amax(1) < 1, small, large).sum(-1)
        return log_partition + size * target_term - size * penalty_linear + size**2 * penalty_quadratic

    slope = (grad * step).sum((1, 2))  # minus the directional derivative along -step
    size = torch.ones_like(slope)
    for _ in range(MAX_HALVINGS):
        accepted = change(size) <= -ARMIJO * size * slope
        if accepted.all():
            break
        size = torch.where(accepted, size, size / 2)
    size = torch.where(accepted, size, torch.zeros_like(size))[:, None, None]
    return theta - size * step, logits - size * step_logits
