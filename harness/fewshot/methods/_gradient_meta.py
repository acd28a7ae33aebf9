"""Shared by the gradient-based meta-learners (maml, fomaml, anil): the inner loop and BatchNorm handling.

Inner loop (Finn, Abbeel & Levine, ICML 2017): theta_0 = theta, and for k < steps

    theta_{k+1} = theta_k - inner_lr * grad_theta CE(f(support; theta_k), support_labels)

with the fast weights held in a dict and the network applied with
``torch.func.functional_call``. With ``create_graph`` the gradients are themselves
differentiable, so backpropagating the query loss through theta_K gives the exact
(second-order) meta-gradient; without it each step's gradient is a constant and the
meta-gradient is grad CE(query; theta_K), evaluated at the adapted weights (first order).

BatchNorm always normalises with the statistics of the batch it sees, in training and
at test time, as in Finn et al.'s code (transductive: at test the query batch is
normalised with its own statistics); running statistics are never used by these
methods, and at test time they are not updated.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from harness.fewshot.methods._base import FewShotMethod, class_major_labels, train_ways


def inner_loop(loss: Callable[[dict], torch.Tensor], params: dict, steps: int, lr: float,
               create_graph: bool) -> dict:
    """``steps`` plain gradient-descent steps on ``loss(params)``; returns the fast weights."""
    for _ in range(steps):
        grads = torch.autograd.grad(loss(params), list(params.values()), create_graph=create_graph)
        params = {name: same_layout(p - lr * g, p) for (name, p), g in zip(params.items(), grads)}
    return params


def same_layout(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``new`` with ``old``'s strides (differentiably): a conv weight's gradient can come back
    channels-first, and such a fast weight would turn the rest of the inner loop's convolutions
    channels-first under ``channels_last`` (strides, not ``is_contiguous``, decide it: a
    1-input-channel weight is "contiguous" in both formats)."""
    if new.stride() == old.stride():
        return new
    return torch.empty_like(old).copy_(new)


@contextlib.contextmanager
def batch_statistics(module: nn.Module):
    """BatchNorm layers normalise with batch statistics and leave their running statistics untouched."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.track_running_stats) for m in norms]
    for m in norms:
        m.training, m.track_running_stats = True, False
    try:
        yield
    finally:
        for m, (training, track) in zip(norms, saved):
            m.training, m.track_running_stats = training, track


def split_task(images: torch.Tensor, ways: int, shots: int):
    """A class-major training task -> support, support labels, query, query labels."""
    per_class = len(images) // ways
    grouped = images.view(ways, per_class, *images.shape[1:])
    device = images.device
    return (grouped[:, :shots].flatten(0, 1), class_major_labels(ways, shots, device),
            grouped[:, shots:].flatten(0, 1), class_major_labels(ways, per_class - shots, device))


class GradientMetaLearner(FewShotMethod):
    """A backbone and a linear head (ways outputs), all adapted in the inner loop (MAML / FOMAML).

    Config: ``inner_steps`` (5), ``inner_lr`` (0.01), ``test_inner_steps`` (null = inner_steps).
    """

    adapts_at_test = True
    second_order = True

    def __init__(self, backbone, config, num_train_classes):
        super().__init__(backbone, config, num_train_classes)
        add_head_and_inner_loop(self, backbone, config)

    def forward(self, images):
        return self.head(self.backbone(images))

    def adapt(self, support, labels, steps, create_graph) -> dict:
        def support_loss(params):
            return F.cross_entropy(functional_call(self, params, (support,)), labels)

        return inner_loop(support_loss, dict(self.named_parameters()), steps, self.inner_lr, create_graph)

    @property
    def validation_passes(self) -> int:
        return self.test_inner_steps + 1  # one support pass per inner step, one query pass

    def task_loss(self, images, classes, shots):
        support, support_labels, query, query_labels = split_task(images, len(classes), shots)
        fast = self.adapt(support, support_labels, self.inner_steps, self.second_order)
        logits = functional_call(self, fast, (query,))
        return self.loss(logits, query_labels), (logits.argmax(1) == query_labels).float().mean()

    def adapt_and_score(self, support, support_labels, query, ways):
        assert ways == self.head.out_features, "the head was built for config['ways'] classes"
        with torch.enable_grad(), batch_statistics(self):
            fast = self.adapt(support, support_labels, self.test_inner_steps, create_graph=False)
            with torch.no_grad():
                return functional_call(self, fast, (query,))


def add_head_and_inner_loop(method, backbone, config) -> None:
    """The linear head and inner-loop settings shared by MAML, FOMAML and ANIL."""
    if train_ways(config) != config["ways"]:
        raise ValueError(f"train_ways: {type(method).__name__}'s head has `ways` = {config['ways']} outputs, "
                         f"so it cannot train on {train_ways(config)}-way tasks")
    method.head = nn.Linear(backbone.out_dim, config["ways"])
    method.inner_steps = int(config.get("inner_steps", 5))
    method.inner_lr = float(config.get("inner_lr", 0.01))
    method.test_inner_steps = int(config.get("test_inner_steps") or method.inner_steps)
