"""The training step gives the trunk exactly the gradient each optimizer space prescribes,
checked against hand computations on a tiny model; heads always get the plain-sum gradient."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.multitask import step
from harness.multitask.datasets._base import Task
from harness.multitask.models._base import MultiTaskModel
from harness.multitask.optimizers import OPTIMIZERS


class Tiny(MultiTaskModel):
    kinds = ("classification",)

    def __init__(self, tasks):
        super().__init__(tasks)
        self.shared = nn.Sequential(nn.Linear(5, 4), nn.Tanh())
        self.task_heads = nn.ModuleDict({t.name: nn.Sequential(nn.Linear(4, t.classes), nn.LogSoftmax(1))
                                         for t in self.tasks})


def setup(num_tasks=2, seed=0):
    torch.manual_seed(seed)
    tasks = tuple(Task(f"t{i}", "classification", 3) for i in range(num_tasks))
    model = Tiny(tasks).double()
    x = torch.randn(6, 5, dtype=torch.float64)
    targets = {t.name: torch.randint(0, 3, (6,)) for t in tasks}
    return model, x, targets


def losses_of(model, x, targets):
    z = model.trunk(x)
    outputs = model.heads(z)
    return z, torch.stack([F.nll_loss(outputs[t.name], targets[t.name]) for t in model.tasks])


def flat(grads):
    return torch.cat([g.flatten() for g in grads])


def run_step(model, mtl, x, targets, generator=None):
    model.zero_grad(set_to_none=True)
    raw = step.backward(model, mtl, x, targets, generator)
    trunk = flat([p.grad for p in model.shared_parameters()])
    heads = flat([p.grad for p in model.head_parameters()])
    return raw, trunk, heads


def plain_sum(model, x, targets):
    _, losses = losses_of(model, x, targets)
    shared, heads = list(model.shared_parameters()), list(model.head_parameters())
    grads = torch.autograd.grad(losses.sum(), shared + heads)
    return losses.detach(), flat(grads[:len(shared)]), flat(grads[len(shared):])


def per_task_shared(model, x, targets):
    _, losses = losses_of(model, x, targets)
    shared = list(model.shared_parameters())
    return [flat(torch.autograd.grad(losses[i], shared, retain_graph=True)) for i in range(len(losses))]


def test_unitary_gives_the_plain_sum_gradient_everywhere():
    model, x, targets = setup(3)
    losses, trunk, heads = plain_sum(model, x, targets)
    raw, got_trunk, got_heads = run_step(model, OPTIMIZERS.get("unitary")(3), x, targets)
    assert torch.allclose(raw, losses) and torch.allclose(got_trunk, trunk) and torch.allclose(got_heads, heads)


def test_pcgrad_projects_the_per_task_parameter_gradients():
    model, x, targets = setup(2, seed=3)
    g1, g2 = per_task_shared(model, x, targets)
    for _ in range(20):  # find a batch with conflicting gradients, so the projection matters
        if g1 @ g2 < 0:
            break
        x = torch.randn_like(x)
        g1, g2 = per_task_shared(model, x, targets)
    assert g1 @ g2 < 0
    # by hand, two tasks: each gradient loses its component along the other's when they conflict
    expected = (g1 - (g1 @ g2) / (g2 @ g2) * g2) + (g2 - (g2 @ g1) / (g1 @ g1) * g1)
    _, _, heads = plain_sum(model, x, targets)
    _, got_trunk, got_heads = run_step(model, OPTIMIZERS.get("pcgrad")(2), x, targets, torch.Generator().manual_seed(0))
    assert torch.allclose(got_trunk, expected) and torch.allclose(got_heads, heads)
    assert not torch.allclose(got_trunk, g1 + g2)


def test_pcgrad_with_three_tasks_matches_its_combine_with_the_same_generator():
    model, x, targets = setup(3, seed=1)
    grads = torch.stack(per_task_shared(model, x, targets))
    pcgrad = OPTIMIZERS.get("pcgrad")(3)
    expected = pcgrad.combine(grads, generator=torch.Generator().manual_seed(5))
    _, got_trunk, _ = run_step(model, pcgrad, x, targets, torch.Generator().manual_seed(5))
    assert torch.allclose(got_trunk, expected)


def test_mgda_ub_weights_the_losses_by_the_min_norm_point_of_representation_gradients():
    model, x, targets = setup(2, seed=2)
    z, losses = losses_of(model, x, targets)
    z1, z2 = (torch.autograd.grad(losses[i], z, retain_graph=True)[0].flatten() for i in range(2))
    # by hand: "loss+" normalisation, two-task closed form of the min-norm point
    v1, v2 = z1 / (losses[0] * z1.norm()), z2 / (losses[1] * z2.norm())
    gamma = ((v2 @ v2 - v1 @ v2) / ((v1 - v2) @ (v1 - v2))).clamp(0, 1).detach()
    shared = list(model.shared_parameters())
    expected = flat(torch.autograd.grad(gamma * losses[0] + (1 - gamma) * losses[1], shared))
    _, _, heads = plain_sum(model, x, targets)
    _, got_trunk, got_heads = run_step(model, OPTIMIZERS.get("mgda_ub")(2), x, targets)
    assert 0 < gamma < 1
    assert torch.allclose(got_trunk, expected) and torch.allclose(got_heads, heads)


@pytest.mark.parametrize("name", ["mgda_ub", "imtl", "graddrop", "graddrop_random"])
def test_representation_space_backpropagates_combine_through_the_trunk(name):
    model, x, targets = setup(3, seed=4)
    mtl = OPTIMIZERS.get(name)(3).double()
    z, raw = losses_of(model, x, targets)
    losses = mtl.transform_losses(raw)
    grads = torch.stack([torch.autograd.grad(losses[i], z, retain_graph=True)[0] for i in range(3)])
    combined = mtl.combine(grads, losses.detach(), torch.Generator().manual_seed(9),
                           inputs=z.detach() if mtl.uses_inputs else None)
    expected = flat(torch.autograd.grad(z, list(model.shared_parameters()), grad_outputs=combined))
    heads = flat(torch.autograd.grad(losses.sum(), list(model.head_parameters())))
    _, got_trunk, got_heads = run_step(model, mtl, x, targets, torch.Generator().manual_seed(9))
    assert torch.allclose(got_trunk, expected) and torch.allclose(got_heads, heads)


def test_learnable_loss_scales_get_the_plain_sum_gradient():
    model, x, targets = setup(2, seed=5)
    imtl = OPTIMIZERS.get("imtl")(2).double()
    with torch.no_grad():
        imtl.log_scales.copy_(torch.tensor([0.3, -0.2]))
    raw, _, _ = run_step(model, imtl, x, targets)
    # d/ds_i sum_j (exp(s_j) L_j - s_j) = exp(s_i) L_i - 1
    assert torch.allclose(imtl.log_scales.grad, torch.exp(imtl.log_scales.detach()) * raw - 1)
    uncertainty = OPTIMIZERS.get("uncertainty")(2).double()
    raw, _, _ = run_step(model, uncertainty, x, targets)
    assert torch.allclose(uncertainty.log_variances.grad, 1 - raw)  # d/ds (exp(-s) L + s) at s = 0


def test_parameter_space_methods_write_combine_into_the_shared_gradient():
    model, x, targets = setup(3, seed=6)
    grads = torch.stack(per_task_shared(model, x, targets))
    for name in ("cagrad", "nash_mtl"):
        mtl = OPTIMIZERS.get(name)(3)
        _, got_trunk, _ = run_step(model, mtl, x, targets)
        assert torch.allclose(got_trunk, mtl.combine(grads), atol=1e-9)
