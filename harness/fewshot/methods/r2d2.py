"""R2-D2, ridge regression differentiable discriminator (Bertinetto, Henriques, Torr & Vedaldi, ICLR 2019).

Each training task fits ridge regression from the support embeddings (with a bias
column) to one-hot targets in closed form, with the S x S Woodbury system
(``heads/ridge.py``):

    W = X' (X X' + S lambda I)^{-1} Y,    logits = scale * [q, 1] W + bias,

and backpropagates the query cross-entropy through the solve. lambda is fixed
(``ridge_lambda``, 50 as in the paper's code, where learning it is an option left off by
default): a fixed lambda keeps the ``ridge`` evaluation head, which only sees the
config, identical to the training head. ``scale`` (initialised at 1, MetaOptNet's R2-D2;
the paper's code starts at 1e-4 on mini-ImageNet, 10 on Omniglot) and ``bias`` (0) are
learnable scalars; evaluation drops them, as they do not change the argmax.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.fewshot.heads.ridge import ridge_scores
from harness.fewshot.methods import register
from harness.fewshot.methods._base import FewShotMethod
from harness.fewshot.methods._gradient_meta import split_task


@register("r2d2", version="1", uses={"eval_head": "ridge"})
class R2D2(FewShotMethod):
    def __init__(self, backbone, config, num_train_classes):
        super().__init__(backbone, config, num_train_classes)
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.bias = nn.Parameter(torch.tensor(0.0))

    def task_loss(self, images, classes, shots):
        ways = len(classes)
        support, support_labels, query, query_labels = split_task(self.backbone(images), ways, shots)
        scores = ridge_scores(support[None], support_labels[None], query[None], ways,
                              float(self.config.get("ridge_lambda", 50.0)))
        logits = self.scale * scores[0] + self.bias
        return F.cross_entropy(logits, query_labels), (logits.argmax(1) == query_labels).float().mean()
