"""Few-shot methods, the ResNet-12 backbone and the svm / ridge / finetune heads.

Every method trains on the shipped Omniglot data (conv4, 5-way 1-shot, 80 steps) and
must beat a threshold well above chance (20%) and, except for mtl (whose untrained
conv4 features already reach ~50% under the logreg head), above what the untrained
network scores; the solvers are checked against scipy / numpy, MAML's meta-gradient against
finite differences, DropBlock against its expected drop rate.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize
from torch import nn

from harness.fewshot.backbones import BACKBONES
from harness.fewshot.backbones._dropblock import DropBlock, expected_drop_fraction, seed_rate
from harness.fewshot.config import KEYS
from harness.fewshot.heads import HEADS
from harness.fewshot.heads.ridge import ridge_scores
from harness.fewshot.heads.svm import crammer_singer_dual, crammer_singer_scores
from harness.fewshot.methods import METHODS
from harness.fewshot.train import Trainer
from harness.keys import REQUIRED


def make_config(**overrides) -> dict:
    config = {name: key.default for name, key in KEYS.items() if key.default is not REQUIRED}
    config.update(dataset="omniglot", shots=1, seed=0, device="cpu", steps=80, val_every=80, val_episodes=10,
                  test_episodes=50, test_queries=5, queries=3, lr=0.003)
    config.update(overrides)
    return config


GRADIENT_META = dict(inner_steps=1, inner_lr=0.4, test_inner_steps=3, lr=0.01)  # Finn et al.'s Omniglot inner loop
# Untrained (step 0) test accuracies, seeds 0-1: protonet 53%, mtl 50% (random conv4 features are already
# good for centroid/logreg heads); maml, fomaml 29-31%, anil 26-30%, metaoptnet_svm 28-32%, r2d2 31-33%.
# Trained, seeds 0-4: protonet 66-74, mtl 50-67, maml 49-53, fomaml 45-48, anil 45-55, svm 67-74, r2d2 60-67.
TRAINING = {
    "protonet": ({}, 58.0),
    "mtl": ({"feature_norm": True}, 40.0),
    "maml": (GRADIENT_META, 40.0),
    "fomaml": (GRADIENT_META, 38.0),
    "anil": (GRADIENT_META, 40.0),
    "metaoptnet_svm": ({}, 55.0),
    "r2d2": ({}, 50.0),
}


@pytest.mark.parametrize("method", sorted(TRAINING))
def test_method_learns_omniglot(method):
    overrides, threshold = TRAINING[method]
    result = Trainer(make_config(method=method, **overrides), log=lambda line: None).run()
    accuracy = result["metrics"]["accuracy"]
    print(f"{method}: {accuracy:.1f}% in {result['timing']['train_seconds']:.1f}s")
    assert accuracy > threshold


# -- ResNet-12 and DropBlock ---------------------------------------------------


@pytest.mark.parametrize("image_size, block_size", [(32, 2), (84, 5)])
def test_resnet12_forward_backward(image_size, block_size):
    torch.manual_seed(0)
    model = BACKBONES.get("resnet12")(3, image_size)
    assert model.out_dim == 640
    assert [b.dropblock.block_size for b in model.blocks if b.dropblock is not None] == [block_size] * 2
    images = torch.randn(2, 3, image_size, image_size)
    features = model(images)
    assert features.shape == (2, 640)
    features.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_resnet12_dropblock_only_in_training_and_counter_is_state():
    torch.manual_seed(0)
    model = BACKBONES.get("resnet12")(3, 32)
    images = torch.randn(4, 3, 32, 32)
    dropblocks = [b.dropblock for b in model.blocks if b.dropblock is not None]
    for d in dropblocks:
        d.forward_passes.fill_(d.ramp_steps)  # end of the ramp: keep rate 0.9
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(images), model(images))
    # an eval pass does not count itself: the trainer adds validation's passes (see test_fewshot_recipes)
    assert all(int(d.forward_passes) == d.ramp_steps for d in dropblocks)

    model.train()
    model(images)
    assert all(int(d.forward_passes) == d.ramp_steps + 1 for d in dropblocks)
    block3 = model.blocks[:3]
    with torch.no_grad():
        first, second = block3(images), block3(images)
    assert (first == 0).any() and not torch.equal(first, second)  # random blocks dropped

    state = model.state_dict()
    assert "blocks.2.dropblock.forward_passes" in state and "blocks.3.dropblock.forward_passes" in state
    fresh = BACKBONES.get("resnet12")(3, 32)
    assert int(fresh.blocks[2].dropblock.forward_passes) == 0
    fresh.load_state_dict(state)
    assert int(fresh.blocks[2].dropblock.forward_passes) == int(dropblocks[0].forward_passes)


def test_dropblock_keep_rate_ramps_linearly():
    drop = DropBlock(block_size=2, final_keep=0.9, ramp_steps=40_000).train()
    assert drop.keep_rate == 1.0
    x = torch.ones(1, 1, 4, 4)
    for _ in range(3):
        drop(x)
    assert int(drop.forward_passes) == 3
    drop.forward_passes.fill_(20_000)
    assert drop.keep_rate == pytest.approx(0.95)
    drop.forward_passes.fill_(100_000)
    assert drop.keep_rate == pytest.approx(0.9)


@pytest.mark.parametrize("block_size, size", [(1, 8), (2, 4), (3, 12), (5, 10)])
def test_dropblock_drops_the_expected_fraction(block_size, size):
    """Mask mean = 1 - the exact overlap-aware drop fraction; the DropBlock paper's gamma makes the drop
    mass counted with multiplicity (seeds x block area) equal 1 - keep."""
    torch.manual_seed(0)
    keep = 0.9
    drop = DropBlock(block_size, final_keep=keep, ramp_steps=1).train()
    drop.forward_passes.fill_(1)
    x = torch.ones(4000, 8, size, size, dtype=torch.float64)
    out = drop(x)
    dropped = (out == 0).double().mean().item()
    expected = expected_drop_fraction(keep, block_size, size, size)
    print(f"block {block_size} map {size}: dropped {dropped:.4f}, exact {expected:.4f}, paper 1-keep {1 - keep:.4f}")
    assert abs(dropped - expected) < 0.004
    assert out.mean().item() == pytest.approx(1.0)  # survivors rescaled
    gamma = seed_rate(keep, block_size, (size, size))
    assert gamma * (size - block_size + 1) ** 2 * block_size**2 / size**2 == pytest.approx(1 - keep)
    if block_size == 1:
        assert expected == pytest.approx(1 - keep)
    else:
        assert expected < 1 - keep  # overlapping blocks drop less than the multiplicity count


# -- MAML, FOMAML, ANIL gradients -------------------------------------------------


class TinyMLP(nn.Sequential):
    out_dim = 5

    def __init__(self):
        super().__init__(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.Tanh())


def tiny_method(name, inner_steps=2):
    torch.manual_seed(0)
    config = {"ways": 3, "inner_steps": inner_steps, "inner_lr": 0.5}
    return METHODS.get(name)(TinyMLP(), config, num_train_classes=10).double()


def tiny_task(shots=2, queries=3, ways=3):
    generator = torch.Generator().manual_seed(1)
    return torch.randn(ways * (shots + queries), 4, dtype=torch.float64, generator=generator), torch.arange(ways), shots


def meta_gradient(method, task):
    method.zero_grad()
    loss, _ = method.task_loss(*task)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in method.parameters()])


@pytest.mark.parametrize("name, inner_steps", [("maml", 1), ("maml", 2), ("anil", 2)])
def test_second_order_meta_gradient_matches_finite_differences(name, inner_steps):
    method, task = tiny_method(name, inner_steps), tiny_task()
    gradient = meta_gradient(method, task)
    direction = torch.randn(gradient.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    params = list(method.parameters())

    def loss_at(step):
        with torch.no_grad():
            offset = 0
            for p in params:
                p.add_(step * direction[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        loss = method.task_loss(*task)[0].item()
        with torch.no_grad():
            offset = 0
            for p in params:
                p.sub_(step * direction[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        return loss

    eps = 1e-5
    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    analytic = (gradient @ direction).item()
    assert abs(analytic - numeric) <= 1e-4 * abs(numeric)


def test_fomaml_gradient_is_the_query_gradient_at_the_adapted_weights():
    task = tiny_task()
    maml, fomaml = tiny_method("maml"), tiny_method("fomaml")
    first_order = meta_gradient(fomaml, task)
    second_order = meta_gradient(maml, task)
    assert (first_order - second_order).norm() > 1e-3 * second_order.norm()  # no second-order term

    images, classes, shots = task
    grouped = images.view(3, -1, 4)
    support, query = grouped[:, :shots].flatten(0, 1), grouped[:, shots:].flatten(0, 1)
    support_labels, query_labels = torch.arange(3).repeat_interleave(shots), torch.arange(3).repeat_interleave(3)
    fast = {k: v.detach().requires_grad_() for k, v in fomaml.adapt(support, support_labels, 2, False).items()}
    loss = F.cross_entropy(torch.func.functional_call(fomaml, fast, (query,)), query_labels)
    at_adapted = torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(fast.values()))])
    torch.testing.assert_close(first_order, at_adapted, rtol=1e-10, atol=1e-12)


def test_adapting_methods_score_without_touching_running_statistics():
    torch.manual_seed(0)
    backbone = BACKBONES.get("conv4")(1, 28)
    method = METHODS.get("maml")(backbone, {"ways": 5, "inner_steps": 1, "inner_lr": 0.1}, 20).eval()
    before = {k: v.clone() for k, v in method.state_dict().items()}
    scores = method.adapt_and_score(torch.randn(5, 1, 28, 28), torch.arange(5), torch.randn(10, 1, 28, 28), 5)
    assert scores.shape == (10, 5) and not scores.requires_grad
    assert all(torch.equal(before[k], v) for k, v in method.state_dict().items())
    assert not method.training and all(not m.training for m in method.modules())


# -- SVM head -----------------------------------------------------------------------


def scipy_dual(kernel, labels, ways, C, ridge):
    """The same Crammer-Singer dual, solved by SLSQP."""
    n = len(labels)
    targets = np.eye(ways)[labels].ravel()
    hessian = np.kron(kernel, np.eye(ways)) + ridge * np.eye(n * ways)
    sums = np.kron(np.eye(n), np.ones((1, ways)))
    result = minimize(
        lambda a: 0.5 * a @ hessian @ a - targets @ a, np.zeros(n * ways), jac=lambda a: hessian @ a - targets,
        method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000},
        constraints=[{"type": "eq", "fun": lambda a: sums @ a, "jac": lambda a: sums},
                     {"type": "ineq", "fun": lambda a: C * targets - a, "jac": lambda a: -np.eye(n * ways)}])
    assert result.status in (0, 8)  # 8: the line search stalls at machine precision, which ftol 1e-15 asks for
    return result.x.reshape(n, ways), result.fun


def svm_problem(episodes, ways, shots, dim, scale, seed):
    generator = torch.Generator().manual_seed(seed)
    support = torch.randn(episodes, ways * shots, dim, dtype=torch.float64, generator=generator) * scale + 1.0
    labels = torch.arange(ways).repeat_interleave(shots).expand(episodes, -1)
    return support, labels


@pytest.mark.parametrize("ways, shots, dim, scale, ridge", [
    (5, 1, 16, 1.0, 1.0), (5, 5, 32, 1.0, 1.0), (5, 5, 64, 20.0, 1.0), (3, 4, 8, 0.3, 1.0), (5, 3, 32, 5.0, 0.0)])
def test_svm_dual_matches_scipy(ways, shots, dim, scale, ridge):
    C = 0.1
    support, labels = svm_problem(3, ways, shots, dim, scale, seed=ways * shots + dim)
    kernel = support @ support.transpose(1, 2)
    alpha = crammer_singer_dual(kernel, labels, ways, C, ridge)
    for e in range(len(kernel)):
        theirs, their_objective = scipy_dual(kernel[e].numpy(), labels[e].numpy(), ways, C, ridge)
        ours = alpha[e].numpy()
        hessian = np.kron(kernel[e].numpy(), np.eye(ways)) + ridge * np.eye(ours.size)
        targets = np.eye(ways)[labels[e].numpy()]
        our_objective = 0.5 * ours.ravel() @ hessian @ ours.ravel() - (targets * ours).sum()
        assert np.abs(ours.sum(1)).max() < 1e-12 and (ours - C * targets).max() < 1e-12  # feasible
        assert our_objective <= their_objective + 1e-10 * (1 + abs(their_objective))
        np.testing.assert_allclose(ours, theirs, atol=1e-6 * C)


def test_svm_large_correlated_features():
    """Positive, nearly collinear features of norm ~1e4 (a briefly trained ResNet-12 in eval mode gives such):
    early interior-point iterates can leave an example with no free variable, which must not break the solver."""
    generator = torch.Generator().manual_seed(0)
    norms = torch.rand(4, 5, 1, dtype=torch.float64, generator=generator) * 2 + 0.5
    support = norms * (300 + 20 * torch.randn(4, 5, 64, dtype=torch.float64, generator=generator))
    kernel, labels = support @ support.transpose(1, 2), torch.arange(5).expand(4, -1)
    alpha = crammer_singer_dual(kernel, labels, 5, 0.1, 1.0)
    for e in range(4):
        theirs, _ = scipy_dual(kernel[e].numpy(), labels[e].numpy(), 5, 0.1, 1.0)
        np.testing.assert_allclose(alpha[e].numpy(), theirs, atol=1e-7)


def test_svm_without_ridge_is_the_crammer_singer_primal():
    """ridge = 0: the scores equal those of the primal min 1/2 ||W||^2 + C sum xi solved by scipy."""
    ways, C = 3, 0.5
    support, labels = svm_problem(1, ways, 3, 12, 1.0, seed=5)
    query = torch.randn(1, 7, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    ours = crammer_singer_scores(support, labels, query, ways, C, ridge=0.0)[0].numpy()
    x, y, dim = support[0].numpy(), labels[0].numpy(), support.shape[-1]
    n = len(y)

    def margins(v):  # w_{y_i}.x_i - w_m.x_i - 1 + [m = y_i] + xi_i >= 0 for all i, m
        weights, slack = v[: ways * dim].reshape(ways, dim), v[ways * dim:]
        scores = x @ weights.T
        return (scores[np.arange(n), y][:, None] - scores - 1 + np.eye(ways)[y] + slack[:, None]).ravel()

    result = minimize(lambda v: 0.5 * v[: ways * dim] @ v[: ways * dim] + C * v[ways * dim:].sum(),
                      np.zeros(ways * dim + n), method="SLSQP", constraints=[{"type": "ineq", "fun": margins}],
                      options={"ftol": 1e-14, "maxiter": 2000})
    assert result.success
    theirs = query[0].numpy() @ result.x[: ways * dim].reshape(ways, dim).T
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_svm_gradient_is_implicit_differentiation():
    support, labels = svm_problem(2, 3, 2, 8, 1.0, seed=7)
    query = torch.randn(2, 4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    support.requires_grad_()
    torch.autograd.gradcheck(lambda s: crammer_singer_scores(s, labels, query, 3, 0.1, 1.0), (support,))

    scores = HEADS.get("svm")(support.float(), labels, query.float(), 3, {})
    (scores * torch.randn_like(scores)).sum().backward()
    assert torch.isfinite(support.grad).all() and support.grad.abs().sum() > 0


# -- ridge head --------------------------------------------------------------------------


@pytest.mark.parametrize("shots, dim, lam", [(1, 16, 50.0), (5, 16, 0.1), (5, 64, 1.0)])
def test_ridge_matches_numpy_closed_form(shots, dim, lam):
    ways = 5
    generator = torch.Generator().manual_seed(shots + dim)
    support = torch.randn(3, ways * shots, dim, dtype=torch.float64, generator=generator)
    labels = torch.arange(ways).repeat_interleave(shots).expand(3, -1)
    query = torch.randn(3, 10, dim, dtype=torch.float64, generator=generator)
    primal = ridge_scores(support, labels, query, ways, lam, woodbury=False)
    woodbury = ridge_scores(support, labels, query, ways, lam, woodbury=True)
    for e in range(3):
        x = np.hstack([support[e].numpy(), np.ones((ways * shots, 1))])
        targets = np.eye(ways)[labels[e].numpy()]
        weights = np.linalg.solve(x.T @ x + len(x) * lam * np.eye(dim + 1), x.T @ targets)
        expected = np.hstack([query[e].numpy(), np.ones((10, 1))]) @ weights
        np.testing.assert_allclose(primal[e].numpy(), expected, atol=1e-10)
        np.testing.assert_allclose(woodbury[e].numpy(), expected, atol=1e-10)
    head = HEADS.get("ridge")(support.float(), labels, query.float(), ways, {"ridge_lambda": lam})
    torch.testing.assert_close(head, primal.float(), atol=1e-5, rtol=1e-4)


# -- finetune head and batching ------------------------------------------------------


def separable_episodes(episodes=6, ways=5, shots=5, queries=10, dim=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    means = torch.randn(episodes, ways, 1, dim, generator=generator) * 3
    support = (means + 0.5 * torch.randn(episodes, ways, shots, dim, generator=generator)).flatten(1, 2)
    query = (means + 0.5 * torch.randn(episodes, ways, queries, dim, generator=generator)).flatten(1, 2)
    labels = torch.arange(ways).repeat_interleave(shots).expand(episodes, -1)
    return support, labels, query, torch.arange(ways).repeat_interleave(queries).expand(episodes, -1)


def test_finetune_separates_toy_episodes():
    support, labels, query, query_labels = separable_episodes()
    scores = HEADS.get("finetune")(support, labels, query, 5, {"finetune_steps": 100, "finetune_lr": 0.01})
    assert (scores.argmax(-1) == query_labels).float().mean() >= 0.95


@pytest.mark.parametrize("head", ["finetune", "svm", "ridge"])
def test_heads_batched_equals_one_episode_at_a_time(head):
    support, labels, query, _ = separable_episodes(episodes=4, shots=2)
    run = HEADS.get(head)
    batched = run(support, labels, query, 5, {})
    single = torch.cat([run(support[e:e + 1], labels[e:e + 1], query[e:e + 1], 5, {}) for e in range(4)])
    assert batched.shape == (4, 50, 5) and batched.dtype == torch.float32
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=1e-5)


def test_new_entries_are_registered():
    assert {"svm", "ridge", "finetune"} <= set(HEADS.names())
    assert {"maml", "fomaml", "anil", "metaoptnet_svm", "r2d2"} <= set(METHODS.names())
    assert "resnet12" in BACKBONES.names()
