"""R2-D2, ridge regression differentiable discriminator (Bertinetto, Henriques, Torr & Vedaldi, ICLR 2019).

Each training task fits ridge regression from the support embeddings (with a bias
column) to one-hot targets in closed form, with the S x S Woodbury system
(``heads/ridge.py``, solved in float32 with autocast off):

    W = X' (X X' + S lambda I)^{-1} Y,    logits = scale * [q, 1] W + bias,

and backpropagates the query cross-entropy through the solve. lambda is fixed
(``ridge_lambda``, 50 as in the paper's code, where learning it is an option left off by
default): a fixed lambda keeps the ``ridge`` evaluation head, which only sees the
config, identical to the training head. ``scale`` and ``bias`` are learnable scalars
(bertinetto/r2d2 ``AdjustLayer``); the scale starts at ``r2d2_scale_init`` (default 1,
MetaOptNet's R2-D2; the paper's code: ``base_learner.init_adj_scale`` 1e-4 in its
default config and mini_r2d2.sh, 1e1 in cifar_r2d2.sh), the bias at 0. Evaluation drops
them, as they do not change the argmax. The paper trains with more classes per task than
it tests (``train_ways``: 16 on mini-ImageNet, 20 on CIFAR-FS). Embedding and loss: see
``_episodic``.
"""
from __future__ import annotations

import torch
from torch import nn

from harness.fewshot.heads.ridge import ridge_scores
from harness.fewshot.methods import register
from harness.fewshot.methods._episodic import EpisodicMethod


@register("r2d2", version="1", uses={"eval_head": "ridge"})
class R2D2(EpisodicMethod):
    def __init__(self, backbone, config, num_train_classes):
        super().__init__(backbone, config, num_train_classes)
        self.scale = nn.Parameter(torch.tensor(float(config.get("r2d2_scale_init", 1.0))))
        self.bias = nn.Parameter(torch.tensor(0.0))

    def logits(self, support, support_labels, query, ways):
        scores = ridge_scores(support, support_labels, query, ways, float(self.config.get("ridge_lambda", 50.0)))
        return self.scale * scores + self.bias
