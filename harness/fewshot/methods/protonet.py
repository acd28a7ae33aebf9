"""Prototypical networks (Snell et al., 2017).

Each class's prototype is the mean support embedding; a query is scored by the
negative squared Euclidean distance to each prototype, trained with cross-entropy
on the queries. With ``protonet_scale`` the scores are MetaOptNet's ProtoNet head
(kjunelee/MetaOptNet, models/classification_heads.py, ``ProtoNetHead(normalize=True)``
inside ``ClassificationHead``, whose learnable scale starts at 1):

    logits = scale * (-||q - p_c||^2) / D,     D = the feature dimension.

The distances are computed in float32. Evaluation defaults to the same nearest-centroid
rule (a positive scale and the division by D do not change the argmax). Embedding and
loss: see ``_episodic`` (``separate_passes``, ``label_smoothing``).
"""
from __future__ import annotations

import torch
from torch import nn

from harness.fewshot.methods import register
from harness.fewshot.methods._episodic import EpisodicMethod


@register("protonet", version="1", uses={"eval_head": "centroid"})
class ProtoNet(EpisodicMethod):
    def __init__(self, backbone, config, num_train_classes):
        super().__init__(backbone, config, num_train_classes)
        self.scaled = bool(config.get("protonet_scale"))
        if self.scaled:
            self.scale = nn.Parameter(torch.tensor(1.0))

    def logits(self, support, support_labels, query, ways):
        tasks, examples, dim = support.shape
        prototypes = support.float().reshape(tasks, ways, examples // ways, dim).mean(2)  # class-major support
        logits = -squared_distances(query.float(), prototypes)
        if self.scaled:
            logits = self.scale * logits / dim
        return logits


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2 for a (..., n, D) and b (..., m, D): (..., n, m)."""
    return (a.unsqueeze(-2) - b.unsqueeze(-3)).pow(2).sum(-1)
