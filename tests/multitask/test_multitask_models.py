"""Each multi-task model: shapes of z and of every head's output, gradients reach every parameter."""
from __future__ import annotations

import pytest
import torch

from harness.multitask.datasets import DATASETS
from harness.multitask.datasets._base import Task
from harness.multitask.models import MODELS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def check_backward(model, z, outputs):
    loss = sum(out.float().mean() for out in outputs.values())
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
    shared = {id(p) for p in model.shared_parameters()}
    heads = {id(p) for p in model.head_parameters()}
    assert not shared & heads and shared | heads == {id(p) for p in model.parameters()}


@pytest.mark.parametrize("dropout", [None, False])
def test_multilenet(dropout):
    torch.manual_seed(0)
    model = MODELS.get("multilenet")(DATASETS.get("multi_mnist").tasks, dropout=dropout)
    assert model.dropout is (dropout is None)  # on by default, as the official code
    z, outputs = model(torch.randn(8, 1, 28, 28))
    assert z.shape == (8, 50) and set(outputs) == {"left", "right"}
    for out in outputs.values():
        assert out.shape == (8, 10) and torch.allclose(out.exp().sum(1), torch.ones(8))
    check_backward(model, z, outputs)
    assert sum(p.numel() for p in model.shared_parameters()) == 10 * 25 + 10 + 20 * 250 + 20 + 320 * 50 + 50
    model.eval()
    assert torch.equal(model(torch.ones(2, 1, 28, 28))[0], model(torch.ones(2, 1, 28, 28))[0])


def test_multilenet_dropout_masks_whole_channels_and_units_without_rescaling():
    F = torch.nn.functional
    model = MODELS.get("multilenet")(DATASETS.get("multi_mnist").tasks, dropout=True).train()
    trunk, head = model.shared, model.task_heads["left"]
    x = torch.randn(4, 1, 28, 28)
    torch.manual_seed(3)
    z = trunk(x)
    torch.manual_seed(3)
    mask = torch.bernoulli(torch.full((1, 20, 1, 1), 0.5))  # one 0/1 per channel, for the whole batch
    pre = trunk.conv2(F.relu(F.max_pool2d(trunk.conv1(x), 2))) * mask
    assert torch.allclose(z, F.relu(trunk.fc(F.relu(F.max_pool2d(pre, 2)).flatten(1))), atol=1e-6)
    torch.manual_seed(4)
    out = head(z)
    torch.manual_seed(4)
    hidden = F.relu(head.fc1(z)) * torch.bernoulli(torch.full((4, 50), 0.5))  # per unit and example
    assert torch.allclose(out, F.log_softmax(head.fc2(hidden), dim=1), atol=1e-6)
    model.eval()
    assert torch.allclose(model.shared(x), F.relu(trunk.fc(F.relu(F.max_pool2d(
        trunk.conv2(F.relu(F.max_pool2d(trunk.conv1(x), 2))), 2)).flatten(1))), atol=1e-6)


def test_resnet18_celeba():
    torch.manual_seed(0)
    tasks = DATASETS.get("celeba").tasks
    model = MODELS.get("resnet18_celeba")(tasks, dropout=True)
    z, outputs = model(torch.randn(2, 3, 64, 64))
    assert z.shape == (2, 2048) and len(outputs) == 40
    assert all(out.shape == (2, 2) for out in outputs.values())
    check_backward(model, z, outputs)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())  # no stem max-pool
    assert sum(p.numel() for p in model.head_parameters()) == 40 * (2048 * 2 + 2)


def test_resnet50_dilated_deeplab():
    torch.manual_seed(0)
    model = MODELS.get("resnet50_dilated_deeplab")(DATASETS.get("cityscapes").tasks, dropout=True)
    z, outputs = model(torch.randn(2, 3, 32, 64))
    assert z.shape == (2, 2048, 4, 8)  # output stride 8
    assert outputs["segmentation"].shape == (2, 7, 32, 64) and outputs["depth"].shape == (2, 1, 32, 64)
    assert torch.allclose(outputs["segmentation"].exp().sum(1), torch.ones(2, 32, 64), atol=1e-5)
    check_backward(model, z, outputs)
    dilations = {m.dilation for m in model.shared.modules() if isinstance(m, torch.nn.Conv2d)}
    assert dilations == {(1, 1), (2, 2), (4, 4)}


def test_models_refuse_tasks_they_cannot_head():
    with pytest.raises(ValueError, match="heads only classification"):
        MODELS.get("multilenet")((Task("depth", "depth"),))
    with pytest.raises(ValueError, match="segmentation, depth"):
        MODELS.get("resnet50_dilated_deeplab")((Task("a", "classification", 2),))
