"""Multi-task learning for few-shot classification (Wang, Zhao & Li, ICML 2021).

One head matrix holds a row per training class; a task's head is the rows of its
classes, applied without bias, so every task is a linear classifier on shared
features. All (shots + queries) images of a task are classified (no support/query
split in training); the loss is the mean cross-entropy, first order. Features may be
L2-normalised before the head (``feature_norm``). The head is initialised Kaiming
uniform (a = sqrt(5)) scaled by sqrt(num_train_classes / train ways), as the official code
does (``train_ways``, null = ways). Evaluation: logistic regression on frozen, L2-normalised
features. The official code validates on a fresh sample of tasks each epoch, with 30
queries per class (``val_resample``, ``val_queries`` in ``suites/wang2021.yaml``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from harness.fewshot.methods import register
from harness.fewshot.methods._base import FewShotMethod, class_major_labels, train_ways


@register("mtl", version="1", uses={"eval_head": "logreg"})
class MTL(FewShotMethod):
    def __init__(self, backbone, config, num_train_classes):
        super().__init__(backbone, config, num_train_classes)
        self.head = nn.Parameter(torch.empty(num_train_classes, backbone.out_dim))
        nn.init.kaiming_uniform_(self.head, a=math.sqrt(5))
        with torch.no_grad():
            self.head.mul_(math.sqrt(num_train_classes / train_ways(config)))

    def task_loss(self, images, classes, shots):
        features = self.backbone(images)
        if self.config["feature_norm"]:
            features = F.normalize(features, dim=1)
        logits = features @ self.head[classes].t()
        labels = class_major_labels(len(classes), len(images) // len(classes), images.device)
        return self.loss(logits, labels), (logits.argmax(1) == labels).float().mean()
