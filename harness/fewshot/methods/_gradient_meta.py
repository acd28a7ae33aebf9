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

Variants of MAML and FOMAML (config keys; defaults = the paper's equations as above):

- ``inner_loop_batchnorm``: ``adapt`` (every parameter is adapted) or ``fixed``: the
  batch-norm parameters stay out of the inner loop and are trained by the outer loop only,
  as in cbfinn/maml, whose fast weights are the conv and linear weights and biases
  (maml.py construct_conv_weights) while tf.contrib's batch_norm keeps its variables in its
  own scope (utils.py:39-41). (That batch_norm has no scale, only an offset; our BN keeps
  its scale, which ``fixed`` also leaves out of the inner loop.)
- ``maml_loss``: ``mean`` (mean cross-entropy, inner and outer) or ``official``: cbfinn/maml's
  loss, the cross-entropy SUMMED over the examples and divided by the shots
  (utils.py:56-58 xent, summed by tf.gradients and maml.py's reduce_sum): the mean times
  ways on the support set and times (queries per task / shots) on the queries. With a
  fixed inner lr this makes the inner steps ``ways`` times larger (5x for 5-way); Adam is
  indifferent to the outer scale except through ``meta_grad_clip``.
- ``meta_grad_clip``: null, or c: every element of the meta-gradient (of the mean outer
  loss over the meta-batch) is clipped to [-c, c] before the optimiser step, as
  cbfinn/maml does on mini-ImageNet (maml.py construct_model:
  ``gvs = [(tf.clip_by_value(grad, -10, 10), var) ...]`` under ``datasource ==
  'miniimagenet'``). The step's tasks then go through one backward pass (``batch_loss``),
  so the clip sees the whole meta-gradient.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable

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
    """A backbone and a linear head (ways outputs), adapted in the inner loop (MAML / FOMAML).

    Config: ``inner_steps`` (5), ``inner_lr`` (0.01), ``test_inner_steps`` (null = inner_steps),
    ``inner_loop_batchnorm`` (adapt), ``maml_loss`` (mean), ``meta_grad_clip`` (null).
    """

    adapts_at_test = True
    fixed_ways = True
    second_order = True

    def __init__(self, backbone, config, num_train_classes):
        super().__init__(backbone, config, num_train_classes)
        add_head_and_inner_loop(self, backbone, config)
        self.adapt_batchnorm = config.get("inner_loop_batchnorm", "adapt") == "adapt"
        self.official_loss = config.get("maml_loss", "mean") == "official"
        self.meta_grad_clip = config.get("meta_grad_clip")
        if self.meta_grad_clip is not None:
            for parameter in self.parameters():
                parameter.register_post_accumulate_grad_hook(self._clip_meta_gradient)

    def _clip_meta_gradient(self, parameter):
        parameter.grad.clamp_(-self.meta_grad_clip, self.meta_grad_clip)

    @property
    def batched_tasks(self) -> bool:
        return self.meta_grad_clip is not None  # one backward for the step: the clip sees the whole meta-gradient

    def forward(self, images):
        return self.head(self.backbone(images))

    def scale(self, examples: int, shots: int) -> float:
        """cbfinn/maml's loss over ``examples`` examples is the mean cross-entropy times examples / shots."""
        return examples / shots if self.official_loss else 1.0

    def adapt(self, support, labels, steps, create_graph) -> dict:
        params = dict(self.named_parameters())
        fixed = {} if self.adapt_batchnorm else {name: params.pop(name) for name in batchnorm_parameters(self)}
        scale = self.scale(len(labels), len(labels) // self.head.out_features)

        def support_loss(fast):
            return F.cross_entropy(functional_call(self, {**fast, **fixed}, (support,)), labels) * scale

        return {**inner_loop(support_loss, params, steps, self.inner_lr, create_graph), **fixed}

    @property
    def validation_passes(self) -> int:
        return self.test_inner_steps + 1  # one support pass per inner step, one query pass

    def episode_loss(self, support, support_labels, query, query_labels, shots):
        fast = self.adapt(support, support_labels, self.inner_steps, self.second_order)
        logits = functional_call(self, fast, (query,))
        loss = self.loss(logits, query_labels) * self.scale(len(query_labels), shots)
        return loss, (logits.argmax(1) == query_labels).float().mean()

    def task_loss(self, images, classes, shots):
        return self.episode_loss(*split_task(images, len(classes), shots), shots)

    def batch_loss(self, support_images, query_images, classes, shots):
        """The step's T tasks at once (``batched_tasks``): images task-major, then class-major; the mean loss."""
        tasks, ways = classes.shape
        support_labels = class_major_labels(ways, shots, classes.device)
        query_labels = class_major_labels(ways, len(query_images) // (tasks * ways), classes.device)
        losses, accuracies = zip(*(
            self.episode_loss(support, support_labels, query, query_labels, shots)
            for support, query in zip(support_images.chunk(tasks), query_images.chunk(tasks))))
        return torch.stack(losses).mean(), torch.stack(accuracies).mean()

    def adapt_and_score(self, support, support_labels, query, ways):
        assert ways == self.head.out_features, "the head was built for config['ways'] classes"
        with torch.enable_grad(), batch_statistics(self):
            fast = self.adapt(support, support_labels, self.test_inner_steps, create_graph=False)
            with torch.no_grad():
                return functional_call(self, fast, (query,))


def batchnorm_parameters(module: nn.Module) -> list[str]:
    """Names of the batch-norm layers' affine parameters."""
    return [f"{prefix}.{name}" if prefix else name
            for prefix, layer in module.named_modules() if isinstance(layer, nn.modules.batchnorm._BatchNorm)
            for name, _ in layer.named_parameters(recurse=False)]


def add_head_and_inner_loop(method, backbone, config) -> None:
    """The linear head and inner-loop settings shared by MAML, FOMAML and ANIL."""
    if train_ways(config) != config["ways"]:
        raise ValueError(f"train_ways: {type(method).__name__}'s head has `ways` = {config['ways']} outputs, "
                         f"so it cannot train on {train_ways(config)}-way tasks")
    method.head = nn.Linear(backbone.out_dim, config["ways"])
    method.inner_steps = int(config.get("inner_steps", 5))
    method.inner_lr = float(config.get("inner_lr", 0.01))
    method.test_inner_steps = int(config.get("test_inner_steps") or method.inner_steps)
