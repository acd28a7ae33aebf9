"""MetaOptNet-SVM (Lee, Maji, Ravichandran & Soatto, CVPR 2019).

Each training task fits a Crammer-Singer multi-class SVM to the support embeddings
(the dual QP of ``heads/svm.py``: C = ``svm_C``, 0.1; MetaOptNet's identity added to the
quadratic term, ``svm_ridge``, 1.0), solved exactly in float64 (autocast off) and
differentiated implicitly through its KKT conditions; the query logits are a learnable
scale (initialised at 1, as MetaOptNet's ClassificationHead) times the SVM scores
sum_i alpha_im <x_i, q>, trained with cross-entropy. Evaluation uses the same solver as
the ``svm`` head, on frozen features; the scale does not change the argmax.

MetaOptNet's own recipe (kjunelee/MetaOptNet train.py and README) is a matter of config,
set in ``suites/wang2021.yaml``: label smoothing 0.1 (``label_smoothing``), 15/10/5/15
training shots (``train_shots``) and 6 queries, support and query embedded in separate
passes over the 8 episodes of a step (``separate_passes``, ``meta_batch``), the flattened
ResNet-12 map (``global_pool: false``), SGD with its step schedule
(``lr_schedule: metaoptnet``), 5-shot validation (``val_shots``).
"""
from __future__ import annotations

import torch
from torch import nn

from harness.fewshot.heads.svm import crammer_singer_scores
from harness.fewshot.methods import register
from harness.fewshot.methods._episodic import EpisodicMethod


@register("metaoptnet_svm", version="1", uses={"eval_head": "svm"})
class MetaOptNetSVM(EpisodicMethod):
    def __init__(self, backbone, config, num_train_classes):
        super().__init__(backbone, config, num_train_classes)
        self.scale = nn.Parameter(torch.tensor(1.0))

    def logits(self, support, support_labels, query, ways):
        scores = crammer_singer_scores(support, support_labels, query, ways,
                                       float(self.config.get("svm_C", 0.1)), float(self.config.get("svm_ridge", 1.0)))
        return self.scale * scores
