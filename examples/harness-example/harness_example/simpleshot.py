"""SimpleShot (Wang, Chao, Weinberger, van der Maaten 2019, "SimpleShot: Revisiting
Nearest-Neighbor Classification for Few-Shot Learning", arXiv:1911.04623).

Training: the backbone and a linear classifier over every base (train-split) class,
plain softmax cross-entropy; no episodes in the loss (a training task of the few-shot
trainer is only a batch of images of ``train_ways`` base classes, labelled with their
train-split class ids). Evaluation: nearest centroid (the ``centroid`` head, Euclidean)
on CL2N features: subtract the mean base-class feature, then L2-normalise.

The mean base feature is a buffer, ``base_mean``, kept like BatchNorm's running
statistics: updated on every training batch from the features of that batch (no
gradient), as a plain running average for the first 100 batches and then an
exponential moving average with momentum 0.01. It is saved in checkpoints and in the
best-validation state with the weights. How this differs from the paper, which
computes the mean once, over all base-class training images (no augmentation), with
the final network in evaluation mode (the official code, mileyan/simple_shot
``src/train.py``, ``extract_feature``):

- it averages features of the network as it was over the last ~100 batches, not of
  the final (or selected) weights;
- they are training-mode features (BatchNorm normalising with batch statistics), not
  the evaluation-mode features the head then sees;
- the batches are the trainer's tasks (``train_ways`` classes each), not the whole
  base set.

(The few-shot method API gives a method no call with the train split after training,
so the exact mean cannot be computed here; see the example's README.) The paper also
trains with SGD for 90 epochs on mini-ImageNet-size data with its own batches; a
suite sets the few-shot trainer's optimiser, steps and ``train_ways``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.api import register
from harness.fewshot.api import FewShotMethod

CUMULATIVE_BATCHES = 100  # 1 / momentum: plain running average until then
MOMENTUM = 1.0 / CUMULATIVE_BATCHES


@register("fewshot.method", "simpleshot", version="1", uses={"eval_head": "centroid"})
class SimpleShot(FewShotMethod):
    def __init__(self, backbone, config, num_train_classes):
        super().__init__(backbone, config, num_train_classes)
        self.classifier = nn.Linear(backbone.out_dim, num_train_classes)
        self.register_buffer("base_mean", torch.zeros(backbone.out_dim))
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))

    def task_loss(self, images, classes, shots):
        features = self.backbone(images)
        labels = classes.repeat_interleave(len(images) // len(classes))  # class-major: base-class ids
        logits = self.classifier(features)
        if self.training:
            self.update_base_mean(features.detach())
        return self.loss(logits, labels), (logits.argmax(1) == labels).float().mean()

    @torch.no_grad()
    def update_base_mean(self, features: torch.Tensor) -> None:
        self.batches_seen += 1
        weight = max(1.0 / self.batches_seen.item(), MOMENTUM)
        self.base_mean.lerp_(features.float().mean(0), weight)

    def embed(self, images):
        return F.normalize(self.backbone(images).float() - self.base_mean, dim=-1)
