"""Fine-tuning head: a linear classifier trained for a few gradient steps on frozen support features.

The "fine-tuning" baseline of Chen et al. (ICLR 2019, "A Closer Look at Few-shot
Classification"): a new linear layer (weights and bias) on the frozen backbone's
features. Here the features are L2-normalised (so one learning rate suits any
backbone), the layer starts at zero (its first step then moves each class's weights
towards its centred class mean, a prototype), and it takes ``finetune_steps`` (100)
full-batch steps of SGD with momentum 0.9 and learning rate ``finetune_lr`` (0.01) on
the mean support cross-entropy (Chen et al. use mini-batches of 4 and weight decay
1e-3). The gradient is written out, (softmax - onehot)' [x, 1] / S, so the head needs
no autograd (evaluation runs under no_grad) and is batched: every episode's head is an
independent problem, so E episodes at once give the same result as one at a time.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.fewshot.heads import register
from harness.fewshot.heads.ridge import with_bias

MOMENTUM = 0.9


@register("finetune", version="1")
def finetune(support, support_labels, query, ways, cfg) -> torch.Tensor:
    steps, lr = int(cfg.get("finetune_steps", 100)), float(cfg.get("finetune_lr", 0.01))
    inputs = with_bias(F.normalize(support.float(), dim=-1))
    targets = F.one_hot(support_labels, ways).to(inputs.dtype)
    weights = inputs.new_zeros(len(inputs), inputs.shape[-1], ways)  # (E, D+1, ways), bias in the last row
    velocity = torch.zeros_like(weights)
    for _ in range(steps):
        grad = inputs.transpose(1, 2) @ (torch.softmax(inputs @ weights, -1) - targets) / inputs.shape[1]
        velocity = MOMENTUM * velocity + grad
        weights = weights - lr * velocity
    return with_bias(F.normalize(query.float(), dim=-1)) @ weights
