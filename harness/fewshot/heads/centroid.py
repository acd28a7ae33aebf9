"""Nearest-centroid head (ProtoNet): score = -squared Euclidean distance to each class mean."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.fewshot.heads import register


@register("centroid", version="1")
def centroid(support, support_labels, query, ways, cfg) -> torch.Tensor:
    dtype = torch.promote_types(support.dtype, torch.float32)  # the expanded form cancels: never in bf16
    support, query = support.to(dtype), query.to(dtype)
    one_hot = F.one_hot(support_labels, ways).to(support.dtype)  # (E, S, ways)
    prototypes = one_hot.transpose(1, 2) @ support / one_hot.sum(1)[..., None]
    squared_distances = (
        query.pow(2).sum(-1, keepdim=True)
        - 2 * query @ prototypes.transpose(1, 2)
        + prototypes.pow(2).sum(-1)[:, None, :]
    )
    return (-squared_distances).float()
