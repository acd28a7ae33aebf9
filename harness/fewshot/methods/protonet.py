"""Prototypical networks (Snell et al., 2017).

Each class's prototype is the mean support embedding; a query is scored by the
negative squared Euclidean distance to each prototype, trained with cross-entropy
on the queries. Evaluation defaults to the same nearest-centroid rule.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.fewshot.methods import register
from harness.fewshot.methods._base import FewShotMethod, class_major_labels


@register("protonet", version="1", uses={"eval_head": "centroid"})
class ProtoNet(FewShotMethod):
    def task_loss(self, images, classes, shots):
        ways = len(classes)
        features = self.backbone(images).view(ways, -1, self.backbone.out_dim)
        prototypes = features[:, :shots].mean(dim=1)
        queries = features[:, shots:].reshape(-1, features.shape[-1])
        logits = -squared_distances(queries, prototypes)
        labels = class_major_labels(ways, features.shape[1] - shots, images.device)
        return F.cross_entropy(logits, labels), (logits.argmax(1) == labels).float().mean()


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)
