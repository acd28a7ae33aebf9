"""Each multi-task optimizer's defining property, checked on hand-built gradients."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.optimize import minimize

from harness.multitask.optimizers import OPTIMIZERS

NAMES = ["unitary", "pcgrad", "mgda_ub", "imtl", "graddrop", "graddrop_random", "rlw_normal",
         "rlw_dirichlet", "cagrad", "nash_mtl", "uncertainty", "dwa"]


def make(name, num_tasks, **options):
    return OPTIMIZERS.get(name)(num_tasks, **options)


def random_grads(T, P, seed):
    return torch.randn(T, P, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def seeded(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- registry

def test_every_name_is_registered_and_constructible():
    assert OPTIMIZERS.names() == sorted(NAMES)
    for name in NAMES:
        opt = make(name, 3)
        assert opt.space in ("losses", "parameters", "representation")
        assert opt.num_tasks == 3
        assert opt.learnable == bool(list(opt.parameters()))


def test_listing_optimizers_does_not_import_torch():
    code = ("import sys; from harness.multitask.optimizers import OPTIMIZERS; "
            "assert len(OPTIMIZERS.names()) == 12; import harness.multitask; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gradient_methods_reject_wrong_task_count():
    with pytest.raises(ValueError):
        make("pcgrad", 3).combine(torch.randn(2, 5))


# ---------------------------------------------------------------- unitary

def test_unitary_is_the_plain_sum():
    losses = torch.tensor([0.3, 1.2, 2.0], requires_grad=True)
    assert torch.equal(make("unitary", 3).objective(losses), losses.sum())
    weighted = make("unitary", 3, weights=[1.0, 0.5, 2.0]).objective(losses)
    assert weighted.item() == pytest.approx(0.3 + 0.6 + 4.0)


# ---------------------------------------------------------------- PCGrad

def test_pcgrad_hand_example():
    grads = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # <g1, g2> = -1
    projected = make("pcgrad", 2).project(grads, seeded(0))
    # g1' = g1 + 1/2 g2 = (0.5, 0.5); g2' = g2 + g1 = (0, 1)
    assert torch.allclose(projected, torch.tensor([[0.5, 0.5], [0.0, 1.0]]))
    assert torch.allclose(make("pcgrad", 2).combine(grads, generator=seeded(0)), torch.tensor([0.5, 1.5]))


def test_pcgrad_removes_conflicts_between_two_tasks():
    pcgrad = make("pcgrad", 2)
    for seed in range(50):
        grads = random_grads(2, 7, seed)
        if grads[0] @ grads[1] >= 0:
            grads[1] = -grads[1]
        projected = pcgrad.project(grads, seeded(seed))
        assert projected[0] @ projected[1] >= -1e-12
        assert projected[0] @ grads[1] >= -1e-12 and projected[1] @ grads[0] >= -1e-12


def test_pcgrad_is_the_plain_sum_without_conflicts():
    grads = random_grads(4, 9, 0).abs()  # all pairwise dot products positive
    pcgrad = make("pcgrad", 4)
    assert torch.equal(pcgrad.project(grads, seeded(1)), grads)
    assert torch.allclose(pcgrad.combine(grads, generator=seeded(1)), grads.sum(0))


def test_pcgrad_order_comes_from_the_generator():
    grads = random_grads(5, 6, 3)
    pcgrad = make("pcgrad", 5)
    outputs = [pcgrad.combine(grads, generator=seeded(seed)) for seed in (7, 7, 8, 9, 10)]
    assert torch.equal(outputs[0], outputs[1])
    assert any(not torch.allclose(outputs[0], other) for other in outputs[2:])


# ---------------------------------------------------------------- MGDA-UB

def scipy_min_norm(G):
    M = (G @ G.T).numpy()
    T = len(M)
    result = minimize(lambda w: w @ M @ w, np.full(T, 1 / T), jac=lambda w: 2 * M @ w, method="SLSQP",
                      bounds=[(0, 1)] * T, constraints={"type": "eq", "fun": lambda w: w.sum() - 1},
                      options={"ftol": 1e-15, "maxiter": 1000})
    return torch.from_numpy(result.x)


@pytest.mark.parametrize("T", [2, 3, 5])
def test_min_norm_weights_give_the_min_norm_point_of_the_hull(T):
    from harness.multitask.optimizers.mgda_ub import min_norm_weights

    for seed in range(10):
        G = random_grads(T, 8, seed) + 0.5 * (seed % 2)  # odd seeds: the hull is away from 0
        alpha = min_norm_weights(G)
        assert (alpha >= 0).all() and alpha.sum().item() == pytest.approx(1, abs=1e-12)
        ours, reference = (alpha @ G).norm().item(), (scipy_min_norm(G) @ G).norm().item()
        assert ours <= reference * (1 + 1e-5)
        assert ours == pytest.approx(reference, rel=1e-5)


def test_min_norm_weights_satisfy_the_optimality_certificate_for_many_tasks():
    """x = sum alpha_i v_i is the hull's min-norm point iff <x, v_i> >= ||x||^2 for every i."""
    from harness.multitask.optimizers.mgda_ub import min_norm_weights

    for T, P, shift in [(40, 200, 0.1), (40, 10, 0.0), (40, 5000, 1.0), (20, 20, 0.0)]:
        for seed in range(3):
            G = (random_grads(T, P, seed) + shift) * torch.rand(T, 1, dtype=torch.float64, generator=seeded(seed))
            alpha = min_norm_weights(G)
            x = alpha @ G
            assert (alpha >= 0).all() and alpha.sum().item() == pytest.approx(1, abs=1e-12)
            assert (G @ x).min() >= x @ x - 1e-9 * G.norm(dim=1).max() ** 2


def test_min_norm_two_task_closed_form():
    from harness.multitask.optimizers.mgda_ub import min_norm_weights

    for seed in range(20):
        g1, g2 = random_grads(2, 5, seed)
        gamma = min(max(((g2 - g1) @ g2 / (g1 - g2).norm() ** 2).item(), 0.0), 1.0)
        assert torch.allclose(min_norm_weights(torch.stack([g1, g2])), torch.tensor([gamma, 1 - gamma],
                              dtype=torch.float64), atol=1e-14)
    # g2 = 3 g1: the hull's min-norm point is the vertex g1
    g1 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert torch.equal(min_norm_weights(torch.stack([g1, 3 * g1])), torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_mgda_ub_normalises_by_loss_times_norm_and_weights_raw_gradients():
    from harness.multitask.optimizers.mgda_ub import min_norm_weights

    grads = random_grads(3, 4, 11).view(3, 2, 2)  # representation gradients: (T, batch, features)
    losses = torch.tensor([0.5, 2.0, 1.5], dtype=torch.float64)
    mgda = make("mgda_ub", 3)
    flat = grads.flatten(1)
    expected = min_norm_weights(flat / (losses * flat.norm(dim=1))[:, None])
    alpha = mgda.task_weights(grads, losses)
    assert torch.allclose(alpha, expected)
    assert torch.allclose(mgda.combine(grads, losses), torch.einsum("t,tbd->bd", alpha, grads))
    # "loss+" normalises each gradient to u_i / L_i: invariant to a task gradient's scale, not to its loss
    scaled = grads.clone()
    scaled[1] *= 10
    assert torch.allclose(mgda.task_weights(scaled, losses), alpha)
    assert not torch.allclose(mgda.task_weights(grads, losses * torch.tensor([1, 10, 1])), alpha)


# ---------------------------------------------------------------- IMTL

def projections_on_unit_gradients(G, alpha):
    return (alpha @ G) @ (G / G.norm(dim=1, keepdim=True)).T


@pytest.mark.parametrize("T", [2, 3, 5])
def test_imtl_g_gives_equal_projections_on_unit_gradients(T):
    for seed in range(5):
        G = random_grads(T, 12, seed)
        alpha = make("imtl", T).task_weights(G)
        assert alpha.sum().item() == pytest.approx(1, abs=1e-12)
        projections = projections_on_unit_gradients(G, alpha)
        assert torch.allclose(projections, projections[0].expand(T), rtol=1e-9, atol=1e-12)
        assert torch.allclose(make("imtl", T).combine(G), alpha @ G)


def official_orientation_weights(G):
    """What the official code computes: (D U^T)^-1 U g_1, the transposed system."""
    units = G / G.norm(dim=1, keepdim=True)
    D, U = G[0] - G[1:], units[0] - units[1:]
    a = torch.linalg.solve(D @ U.T, U @ G[0])
    return torch.cat([(1 - a.sum())[None], a])


def test_imtl_orientation_matters_for_three_tasks():
    G2, G3 = random_grads(2, 6, 0), random_grads(3, 6, 0)
    assert torch.allclose(official_orientation_weights(G2), make("imtl", 2).task_weights(G2))
    projections = projections_on_unit_gradients(G3, official_orientation_weights(G3))
    assert (projections.max() - projections.min()) > 1e-2 * projections.abs().max()


def test_imtl_l_scales_the_losses():
    imtl = make("imtl", 2)
    losses = torch.tensor([0.5, 2.0])
    assert torch.allclose(imtl.transform_losses(losses), losses)  # s = 0
    imtl.transform_losses(losses).sum().backward()
    assert torch.allclose(imtl.log_scales.grad, losses - 1)  # d/ds (e^s L - s) = e^s L - 1
    with torch.no_grad():
        imtl.log_scales.copy_(torch.tensor([math.log(2.0), 0.0]))
    assert torch.allclose(imtl.transform_losses(losses), torch.tensor([1.0 - math.log(2.0), 2.0]))
    assert not make("imtl", 2, learn_scales=False).learnable


# ---------------------------------------------------------------- CAGrad

def scipy_cagrad_primal(G, c):
    """max_d min_i <g_i, d> s.t. ||d - g0|| <= c ||g0||, variables (d, t)."""
    G = G.numpy()
    g0 = G.mean(0)
    radius_sq = c**2 * g0 @ g0
    constraints = [{"type": "ineq", "fun": lambda x: G @ x[:-1] - x[-1], "jac": lambda x: np.hstack([G, -np.ones((len(G), 1))])},
                   {"type": "ineq", "fun": lambda x: radius_sq - (x[:-1] - g0) @ (x[:-1] - g0),
                    "jac": lambda x: np.append(-2 * (x[:-1] - g0), 0.0)}]
    start = np.append(g0, (G @ g0).min())
    result = minimize(lambda x: -x[-1], start, jac=lambda x: np.append(np.zeros(len(g0)), -1.0), method="SLSQP",
                      constraints=constraints, options={"ftol": 1e-14, "maxiter": 1000})
    return torch.from_numpy(result.x[:-1])


@pytest.mark.parametrize("T", [2, 3, 5])
def test_cagrad_solves_its_primal_problem(T):
    c = 0.5
    for seed in range(5):
        G = random_grads(T, 7, seed) + 0.3
        d = make("cagrad", T, c=c, rescale=0).combine(G)
        g0 = G.mean(0)
        assert (d - g0).norm() <= c * g0.norm() * (1 + 1e-8)
        reference = scipy_cagrad_primal(G, c)
        assert (G @ d).min() >= (G @ reference).min() - 1e-6 * G.norm()
        assert torch.allclose(d, reference, atol=1e-4 * g0.norm())


def test_cagrad_c_zero_is_the_mean_and_rescale_divides():
    G = random_grads(4, 6, 2)
    assert torch.allclose(make("cagrad", 4, c=0.0).combine(G), G.mean(0))
    plain = make("cagrad", 4, c=0.5, rescale=0).combine(G)
    assert torch.allclose(make("cagrad", 4).combine(G), plain / 1.25)  # default c=0.5, rescale=1
    assert torch.allclose(make("cagrad", 4, rescale=2).combine(G), plain / 1.5)


# ---------------------------------------------------------------- Nash-MTL

@pytest.mark.parametrize("T", [2, 3, 5])
def test_nash_mtl_solves_the_bargaining_system(T):
    nash = make("nash_mtl", T, max_norm=0.0)
    for seed in range(5):
        G = random_grads(T, 10, seed) * torch.linspace(0.1, 3, T, dtype=torch.float64)[:, None]
        alpha = nash.task_weights(G)
        M = G @ G.T
        assert (alpha > 0).all()
        assert torch.allclose(M @ alpha, 1 / alpha, rtol=1e-9)
        Mn = M.numpy()
        reference = minimize(lambda a: (0.5 * a @ Mn @ a - np.log(a).sum(), Mn @ a - 1 / a), np.ones(T), jac=True,
                             method="L-BFGS-B", bounds=[(1e-9, None)] * T, options={"gtol": 1e-12, "ftol": 1e-15})
        assert torch.allclose(alpha, torch.from_numpy(reference.x), rtol=1e-5)
        assert torch.allclose(nash.combine(G), alpha @ G)


def test_nash_mtl_orthogonal_gradients_and_clipping():
    G = torch.diag(torch.tensor([2.0, 0.5, 4.0], dtype=torch.float64))
    alpha = make("nash_mtl", 3).task_weights(G)
    assert torch.allclose(alpha, torch.tensor([0.5, 2.0, 0.25], dtype=torch.float64))  # 1 / ||g_i||
    assert make("nash_mtl", 3).combine(G).norm().item() == pytest.approx(1.0)  # sqrt(3) clipped to max_norm 1
    assert make("nash_mtl", 3, max_norm=10.0).combine(G).norm().item() == pytest.approx(math.sqrt(3))
    zero_task = G.clone()
    zero_task[1] = 0
    assert make("nash_mtl", 3).task_weights(zero_task)[1] == 0


def test_nash_mtl_without_a_solution_stays_finite():
    # g1 = -g2: no direction helps both, so their weights grow and the direction serves g3 only
    G = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    direction = make("nash_mtl", 3).combine(G)
    assert torch.isfinite(direction).all()
    assert torch.allclose(direction, torch.tensor([0.0, 1.0], dtype=torch.float64), atol=1e-6)


# ---------------------------------------------------------------- RLW

def draws(name, T, n, seed):
    rlw, generator = make(name, T), seeded(seed)
    return torch.stack([rlw.weights(generator=generator) for _ in range(n)]).double()


@pytest.mark.parametrize("name", ["rlw_normal", "rlw_dirichlet"])
def test_rlw_weights_are_positive_sum_to_T_and_reproducible(name):
    w = draws(name, 4, 200, 0)
    assert (w > 0).all()
    assert torch.allclose(w.sum(1), torch.full((200,), 4.0, dtype=torch.float64), rtol=1e-6)
    assert torch.equal(w, draws(name, 4, 200, 0))
    assert not torch.equal(w, draws(name, 4, 200, 1))
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert make(name, 4).objective(losses, seeded(5)) == pytest.approx((draws(name, 4, 1, 5)[0] @ losses.double()).item())


def test_rlw_dirichlet_distribution():
    T = 4
    w = draws("rlw_dirichlet", T, 20000, 0)
    assert torch.allclose(w.mean(0), torch.ones(T, dtype=torch.float64), atol=0.03)
    # a Dirichlet(1, ..., 1) coordinate is Beta(1, T - 1)
    assert stats.kstest((w[:, 0] / T).numpy(), stats.beta(1, T - 1).cdf).pvalue > 1e-3


def test_rlw_normal_distribution():
    w = draws("rlw_normal", 3, 20000, 0)
    assert torch.allclose(w.mean(0), torch.ones(3, dtype=torch.float64), atol=0.03)
    # softmax of N(0, I): log(w_0 / w_1) = z_0 - z_1 ~ N(0, 2)
    assert stats.kstest(torch.log(w[:, 0] / w[:, 1]).numpy(), stats.norm(0, math.sqrt(2)).cdf).pvalue > 1e-3


# ---------------------------------------------------------------- GradDrop

def test_graddrop_keeps_everything_when_signs_agree():
    graddrop = make("graddrop", 3)
    for seed in range(5):
        signs = torch.sign(random_grads(1, 50, seed + 100))
        grads = random_grads(3, 50, seed).abs() * signs
        assert torch.allclose(graddrop.combine(grads, generator=seeded(seed)), grads.sum(0), rtol=1e-12)


def test_graddrop_mask_follows_sign_purity_on_a_hand_example():
    from harness.multitask.optimizers.graddrop import sign_masks, sign_purity

    signal = torch.tensor([[1.0, -1.0, 2.0], [-3.0, 1.0, 0.0]])
    assert torch.allclose(sign_purity(signal), torch.tensor([0.25, 0.5, 1.0]))
    masks = sign_masks(signal, torch.tensor([0.2, 0.6, 0.99]))
    # unit 0: 0.2 < 0.25 keeps positives; unit 1: 0.6 >= 0.5 keeps negatives; unit 2: positives (and the zero)
    assert torch.equal(masks, torch.tensor([[True, True, True], [False, False, True]]))


def test_graddrop_keeps_positive_parts_with_probability_purity():
    grads = torch.tensor([[1.0], [-3.0]]).expand(2, 20000)  # purity 0.25 at every unit
    masks = make("graddrop", 2).masks(grads, seeded(0))
    assert masks[0].double().mean().item() == pytest.approx(0.25, abs=0.015)
    assert torch.equal(masks[0], ~masks[1])


def test_graddrop_uses_the_sign_of_the_representation_summed_over_the_batch():
    graddrop = make("graddrop", 2)
    grads = torch.tensor([[[2.0, 1.0], [-1.0, 1.0]], [[1.0, -1.0], [1.0, -2.0]]])  # (T=2, B=2, D=2)
    inputs = torch.tensor([[0.5, -1.0], [-2.0, 1e-9]])
    # G_i[d] = sum_b g_i[b, d] sign(z[b, d]) with sign(1e-9) = 0
    expected = torch.tensor([[2.0 + 1.0, -1.0], [1.0 - 1.0, 1.0]])
    assert torch.equal(graddrop.sign_signal(grads, inputs), expected)
    masks = graddrop.masks(grads, seeded(0), inputs)
    assert masks.shape == (2, 1, 2)  # one decision per unit, shared by the batch
    out = graddrop.combine(grads, generator=seeded(0), inputs=inputs)
    assert out.norm().item() == pytest.approx(grads.sum(0).norm().item())


def test_graddrop_random_drops_with_probability_p():
    grads = torch.ones(1, 100000, dtype=torch.float64)
    out = make("graddrop_random", 1, p=0.3).combine(grads, generator=seeded(0))
    assert (out == 0).double().mean().item() == pytest.approx(0.3, abs=0.01)
    assert out.norm().item() == pytest.approx(grads.sum(0).norm().item())
    assert torch.equal(out, make("graddrop_random", 1, p=0.3).combine(grads, generator=seeded(0)))


# ---------------------------------------------------------------- uncertainty and DWA

def test_uncertainty_objective_and_gradients():
    uncertainty = make("uncertainty", 2)
    with torch.no_grad():
        uncertainty.log_variances.copy_(torch.tensor([0.0, math.log(2.0)]))
    losses = torch.tensor([1.0, 3.0])
    objective = uncertainty.objective(losses)
    assert objective.item() == pytest.approx(1.0 + 1.5 + math.log(2.0))
    objective.backward()
    assert torch.allclose(uncertainty.log_variances.grad, torch.tensor([0.0, -0.5]))  # 1 - e^{-s} L
    assert torch.allclose(uncertainty.weights(), torch.tensor([1.0, 0.5]))


def test_dwa_weights_and_state():
    dwa = make("dwa", 2)
    assert torch.equal(dwa.weights(), torch.ones(2))
    dwa.end_epoch(torch.tensor([1.0, 2.0]))
    assert torch.equal(dwa.weights(), torch.ones(2))  # first two epochs: weight 1
    dwa.end_epoch(torch.tensor([0.5, 2.0]))
    ratios = torch.tensor([0.5, 1.0])
    expected = 2 * torch.exp(ratios / 2) / torch.exp(ratios / 2).sum()
    assert torch.allclose(dwa.weights(), expected)
    restored = make("dwa", 2)
    restored.load_state_dict(dwa.state_dict())
    assert torch.allclose(restored.weights(), expected)
    restored.end_epoch([0.5, 1.0])  # now r = (1, 0.5)
    assert torch.allclose(restored.weights(), expected.flip(0))
    assert restored.objective(torch.tensor([1.0, 1.0])).item() == pytest.approx(2.0)


# ---------------------------------------------------------------- the training-loop contract

def test_representation_combine_matches_backpropagating_weighted_losses():
    """z.backward(combine(...)) gives the trunk the gradient of sum_i alpha_i L_i (MGDA-UB, IMTL-G)."""
    torch.manual_seed(0)
    trunk, heads = torch.nn.Linear(4, 3), torch.nn.ModuleList(torch.nn.Linear(3, 1) for _ in range(3))
    x, y = torch.randn(8, 4), torch.randn(8, 3)

    def task_losses():
        z = trunk(x)
        return z, torch.stack([((head(z)[:, 0] - y[:, i]) ** 2).mean() for i, head in enumerate(heads)])

    for name in ("mgda_ub", "imtl"):
        opt = make(name, 3)
        z, losses = task_losses()
        losses = opt.transform_losses(losses)
        grads = torch.stack([torch.autograd.grad(loss, z, retain_graph=True)[0] for loss in losses])
        alpha = opt.task_weights(grads, losses.detach())
        trunk.zero_grad()
        z.backward(opt.combine(grads, losses.detach()))
        via_combine = trunk.weight.grad.clone()
        trunk.zero_grad()
        (alpha.detach() * task_losses()[1]).sum().backward()  # s = 0, so the IMTL-L scaling is the identity
        assert torch.allclose(via_combine, trunk.weight.grad, atol=1e-6)


# ---------------------------------------------------------------- official and exact variants (issue #20)

# A 3-task example whose two IMTL systems differ: rows are the task gradients g_1, g_2, g_3.
G3 = torch.tensor([[1.0, 0.0, 0.0, 2.0],
                   [0.0, 2.0, 1.0, 0.0],
                   [1.0, 1.0, -1.0, 1.0]], dtype=torch.float64)


def test_imtl_exact_is_libmtls_formula_on_a_hand_example():
    """LibMTL 1.1.5 (weighting/IMTL.py), rows D_k = g_1 - g_k, U_k = u_1 - u_k (k >= 2):
    alpha_{2:T} = g_1 U^T (D U^T)^-1, alpha_1 = 1 - sum(alpha_{2:T})."""
    units = G3 / G3.norm(dim=1, keepdim=True)
    D, U = G3[0] - G3[1:], units[0] - units[1:]
    a = (G3[0] @ U.T) @ torch.linalg.inv(D @ U.T)
    libmtl = torch.cat([(1 - a.sum())[None], a])
    ours = make("imtl", 3).task_weights(G3)
    assert torch.allclose(ours, libmtl, atol=1e-12)
    projections = projections_on_unit_gradients(G3, ours)
    assert torch.allclose(projections, projections[0].expand(3), atol=1e-12)  # the defining property


def test_imtl_official_is_the_official_codes_formula_on_a_hand_example():
    """yobibyte/unitary-scalarization-dmtl optimizers/imtl.py:32-43, columns D_k = g_1 - g_k and
    U_k = u_1 - u_k: A = D^T U + 1e-6 I, alpha_{2:T} = A^-1 U^T g_1, alpha_1 = 1 - sum."""
    units = G3 / G3.norm(dim=1, keepdim=True)
    D = torch.stack([G3[0] - G3[1], G3[0] - G3[2]], dim=1)  # (P, 2)
    U = torch.stack([units[0] - units[1], units[0] - units[2]], dim=1)
    A = D.T @ U + 1e-6 * torch.eye(2, dtype=torch.float64)
    a = torch.linalg.inv(A) @ (U.T @ G3[0])
    official = torch.cat([(1 - a.sum())[None], a])
    ours = make("imtl", 3, solver="official").task_weights(G3)
    assert torch.allclose(ours, official, atol=1e-12)
    exact = make("imtl", 3).task_weights(G3)
    assert (ours - exact).abs().max() > 0.05  # the transposed system is another system for 3 tasks
    projections = projections_on_unit_gradients(G3, ours)
    assert (projections.max() - projections.min()) > 0.05  # ... whose weights do not equalise the projections
    assert torch.allclose(make("imtl", 3, solver="official").combine(G3), ours @ G3)


def test_imtl_official_and_exact_agree_for_two_tasks_up_to_the_diagonal_term():
    for seed in range(5):
        G = random_grads(2, 6, seed)
        exact, official = make("imtl", 2).task_weights(G), make("imtl", 2, solver="official").task_weights(G)
        assert torch.allclose(exact, official, atol=1e-5)
    # the 1e-6 is absolute: with gradients of norm ~1e-6 it moves the weights by a lot
    G = random_grads(2, 6, 0) * 1e-6
    exact, official = make("imtl", 2).task_weights(G), make("imtl", 2, solver="official").task_weights(G)
    assert (exact - official).abs().max() > 0.1


def test_imtl_zero_gradient_gives_zero_weights_in_both_solvers():
    G = G3.clone()
    G[1] = 0
    for solver in ("exact", "official"):
        assert torch.equal(make("imtl", 3, solver=solver).task_weights(G), torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown IMTL solver"):
        make("imtl", 3, solver="libmtl")


def reference_pgd_min_norm(M, max_iter=250, tol=1e-5):
    """LibMTL 1.1.5's MGDA._find_min_norm_element (the official algorithm) written out in scalars:
    the best pair's two-point solution, then at most max_iter projected-gradient steps with a line
    search; stop (returning the current iterate) when a step would move alpha by < tol in L1."""
    M = M.tolist()
    n = len(M)

    def two_point(a, b, c):  # <x1,x1>, <x1,x2>, <x2,x2> -> weight on x1, squared norm
        if b >= a:
            return 0.999, a
        if b >= c:
            return 0.001, c
        g = -(b - c) / (a + c - 2 * b)
        return g, c + g * (b - c)

    best = None
    for i in range(n):
        for j in range(i + 1, n):
            g, d = two_point(M[i][i], M[i][j], M[j][j])
            if best is None or d < best[3]:
                best = (i, j, g, d)
    x = [0.0] * n
    x[best[0]], x[best[1]] = best[2], 1 - best[2]
    if n < 3:
        return x
    for _ in range(max_iter):
        grad = [-sum(M[i][j] * x[j] for j in range(n)) for i in range(n)]
        mean = sum(grad) / n
        p = [v - mean for v in grad]
        t = 1.0
        down = [-x[i] / p[i] for i in range(n) if p[i] < 0 and -x[i] / p[i] > 1e-7]
        up = [(1 - x[i]) / p[i] for i in range(n) if p[i] > 0 and (1 - x[i]) / p[i] > 1e-7]
        if down:
            t = min(down)
        if up:
            t = min(t, min(up))
        y = [p[i] * t + x[i] for i in range(n)]
        s = sorted(y, reverse=True)  # projection onto the simplex
        theta, partial = (sum(y) - 1) / n, 0.0
        for k in range(n - 1):
            partial += s[k]
            if (partial - 1) / (k + 1) > s[k + 1]:
                theta = (partial - 1) / (k + 1)
                break
        y = [max(v - theta, 0.0) for v in y]

        def quad(u, v):
            return sum(u[i] * M[i][j] * v[j] for i in range(n) for j in range(n))

        g, _ = two_point(quad(x, x), quad(x, y), quad(y, y))
        moved = [g * x[i] + (1 - g) * y[i] for i in range(n)]
        if sum(abs(moved[i] - x[i]) for i in range(n)) < tol:
            return x
        x = moved
    return x


def test_mgda_official_two_task_rule_by_hand():
    from harness.multitask.optimizers.mgda_ub import official_min_norm_weights

    def official(M):
        return official_min_norm_weights(torch.tensor(M, dtype=torch.float64))[0].tolist()

    assert official([[1.0, 3.0], [3.0, 9.0]]) == [0.999, pytest.approx(0.001)]  # g_2 = 3 g_1: vertex g_1
    assert official([[9.0, 3.0], [3.0, 1.0]]) == [0.001, pytest.approx(0.999)]  # g_1 = 3 g_2: vertex g_2
    assert official([[1.0, 1.0], [1.0, 1.0]]) == [0.999, pytest.approx(0.001)]  # equal gradients (exact: 1/2)
    # an interior minimum is not clipped: gamma = (4 - 0.999) / (1 + 4 - 2 * 0.999) = 0.99967 > 0.999
    gamma = (4 - 0.999) / (5 - 2 * 0.999)
    assert official([[1.0, 0.999], [0.999, 4.0]]) == [pytest.approx(gamma, abs=1e-15), pytest.approx(1 - gamma)]
    assert gamma > 0.999
    # the exact solver puts 1 and 0 on the vertices
    from harness.multitask.optimizers.mgda_ub import min_norm_weights_from_gram
    assert min_norm_weights_from_gram(torch.tensor([[1.0, 3.0], [3.0, 9.0]], dtype=torch.float64)).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("T", [3, 5, 10])
def test_mgda_official_reproduces_the_official_algorithm(T):
    from harness.multitask.optimizers.mgda_ub import official_min_norm_weights

    for seed in range(5):
        G = (random_grads(T, 20, seed) + 0.3 * (seed % 2)) * torch.rand(T, 1, dtype=torch.float64, generator=seeded(seed))
        M = G @ G.T
        ours, _ = official_min_norm_weights(M)
        assert ours.tolist() == pytest.approx(reference_pgd_min_norm(M), abs=1e-9)  # float rounding only


def test_mgda_official_stops_where_its_rule_says():
    """It returns the iterate before the first step that moves alpha by less than 1e-5 in L1,
    after at most 250 steps."""
    from harness.multitask.optimizers.mgda_ub import official_min_norm_weights

    G = random_grads(5, 20, 3) + 0.2
    M = G @ G.T
    alpha, steps = official_min_norm_weights(M)
    assert 1 < steps < 250

    def iterate(k):  # the k-th iterate: k steps, no stopping rule
        return official_min_norm_weights(M, max_iter=k, tol=0.0)[0]

    assert torch.equal(iterate(steps), alpha)
    assert (iterate(steps) - iterate(steps - 1)).abs().sum() >= 1e-5  # it went on after step steps - 1
    assert (iterate(steps + 1) - iterate(steps)).abs().sum() < 1e-5  # the move it refused
    assert torch.equal(official_min_norm_weights(M, max_iter=steps)[0], alpha)
    # 40 tasks: the 250 steps run out (301 would be needed), short of the min-norm point
    from harness.multitask.optimizers.mgda_ub import min_norm_weights

    G = random_grads(40, 50, 0) + 0.3
    alpha, steps = official_min_norm_weights(G @ G.T)
    assert steps == 250 and official_min_norm_weights(G @ G.T, max_iter=1000)[1] == 301
    assert (alpha @ G).norm() > (min_norm_weights(G) @ G).norm()
    x = alpha @ G  # the optimality certificate <x, g_i> >= ||x||^2 fails
    assert (G @ x).min() < x @ x - 1e-3


def test_mgda_exact_agrees_with_libmtl_where_its_descent_converges():
    from harness.multitask.optimizers.mgda_ub import min_norm_weights

    for seed in range(5):
        G = random_grads(3, 20, seed) + 0.5
        libmtl = torch.tensor(reference_pgd_min_norm(G @ G.T, max_iter=10_000, tol=1e-12), dtype=torch.float64)
        assert torch.allclose(min_norm_weights(G), libmtl, atol=1e-6)


def test_mgda_ub_official_solver_through_the_optimizer():
    from harness.multitask.optimizers.mgda_ub import official_min_norm_weights

    grads = random_grads(3, 8, 11).view(3, 2, 4)
    losses = torch.tensor([0.5, 2.0, 1.5], dtype=torch.float64)
    flat = grads.flatten(1)
    normalised = flat / (losses * flat.norm(dim=1))[:, None]
    mgda = make("mgda_ub", 3, solver="official")
    alpha = mgda.task_weights(grads, losses)
    assert torch.equal(alpha, official_min_norm_weights(normalised @ normalised.T)[0])
    assert torch.allclose(mgda.combine(grads, losses), torch.einsum("t,tbd->bd", alpha, grads))
    with pytest.raises(ValueError, match="unknown MGDA solver"):
        make("mgda_ub", 3, solver="frank_wolfe")


def test_solver_keys_reach_the_optimizers_and_default_to_today():
    from harness.multitask.config import optimizer_options, resolved, schema

    config = resolved({"dataset": "multi_mnist", "method": "imtl", "seed": 0})
    assert optimizer_options(config) == {"solver": "exact", "learn_scales": True}
    config = resolved({"dataset": "multi_mnist", "method": "mgda_ub", "seed": 0, "mgda_solver": "official"})
    assert optimizer_options(config) == {"normalization": "loss+", "solver": "official"}
    keys = schema()
    assert keys["imtl_solver"].default == "exact" and keys["mgda_solver"].default == "exact"
    # declared where the optimizers are registered, in the format the core reads
    for name, key in (("imtl", "imtl_solver"), ("mgda_ub", "mgda_solver")):
        declared = OPTIMIZERS.entry(name).meta["keys"][key]
        assert (declared["default"], declared["choices"], declared["arg"]) == ("exact", ["exact", "official"], "solver")
        assert declared["versions"] == {"official": "1"}


@pytest.mark.parametrize("method, key", [("imtl", "imtl_solver"), ("mgda_ub", "mgda_solver")])
def test_official_solvers_train_multi_mnist_deterministically(method, key):
    from harness.multitask.train import Trainer

    config = {"dataset": "multi_mnist", "seed": 0, "device": "cpu", "method": method, key: "official", "epochs": 1,
              "batch_size": 128, "train_images": 256}
    first, second = (Trainer(config, log=lambda line: None).run()["metrics"] for _ in range(2))
    assert first == second and 0 <= first["average"] <= 100
    assert Trainer(config, log=lambda line: None).mtl.solver == "official"
