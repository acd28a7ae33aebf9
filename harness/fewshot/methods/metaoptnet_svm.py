"""MetaOptNet-SVM (Lee, Maji, Ravichandran & Soatto, CVPR 2019).

Each training task fits a Crammer-Singer multi-class SVM to the support embeddings
(the dual QP of ``heads/svm.py``: C = ``svm_C``, 0.1; MetaOptNet's identity added to the
quadratic term, ``svm_ridge``, 1.0), solved exactly and differentiated implicitly
through its KKT conditions; the query logits are a learnable scale (initialised at 1,
as MetaOptNet) times the SVM scores sum_i alpha_im <x_i, q>, trained with cross-entropy.
(MetaOptNet also smooths the labels, eps = 0.1, and trains with 15 shots; not done here.)
Evaluation uses the same solver as the ``svm`` head, on frozen features; the scale does
not change the argmax.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.fewshot.heads.svm import crammer_singer_scores
from harness.fewshot.methods import register
from harness.fewshot.methods._base import FewShotMethod
from harness.fewshot.methods._gradient_meta import split_task


@register("metaoptnet_svm", version="1", uses={"eval_head": "svm"})
class MetaOptNetSVM(FewShotMethod):
    def __init__(self, backbone, config, num_train_classes):
        super().__init__(backbone, config, num_train_classes)
        self.scale = nn.Parameter(torch.tensor(1.0))

    def task_loss(self, images, classes, shots):
        ways = len(classes)
        support, support_labels, query, query_labels = split_task(self.backbone(images), ways, shots)
        scores = crammer_singer_scores(support[None], support_labels[None], query[None], ways,
                                       float(self.config.get("svm_C", 0.1)), float(self.config.get("svm_ridge", 1.0)))
        logits = self.scale * scores[0]
        return F.cross_entropy(logits, query_labels), (logits.argmax(1) == query_labels).float().mean()
