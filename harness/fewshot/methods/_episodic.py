"""Shared by the episodic methods (protonet, metaoptnet_svm, r2d2): a base learner fitted to
each training task's support embeddings scores its queries, trained with cross-entropy.

Two ways to embed a step's tasks (config ``separate_passes``):

- false (default): one backbone pass per task over its support and queries together
  (``task_loss``, called by the trainer for each of the ``meta_batch`` tasks);
- true: MetaOptNet's train.py: the support images of ALL the step's tasks in one pass,
  then their query images in a second pass (``batch_loss``). In training mode the
  batch-norm statistics are then those of all supports, resp. all queries, of the
  step, not of each task's support and queries mixed; and the DropBlock ramp
  advances by 2 passes per step (MetaOptNet: 2,000 per 1,000-step epoch), and by 2 per
  validation episode.

Either way the loss is the mean over all queries of the step (every task has the same
number), label-smoothed by ``label_smoothing``; a subclass gives the base learner as
``logits(support (T, S, D), support_labels (T, S), query (T, Q, D), ways) -> (T, Q, ways)``.
"""
from __future__ import annotations

import torch

from harness.fewshot.methods._base import FewShotMethod, class_major_labels


class EpisodicMethod(FewShotMethod):
    supports_separate_passes = True

    @property
    def batched_tasks(self) -> bool:
        return bool(self.config.get("separate_passes"))

    @property
    def validation_passes(self) -> int:
        return 2 if self.batched_tasks else 1

    def logits(self, support, support_labels, query, ways) -> torch.Tensor:
        raise NotImplementedError

    def task_loss(self, images, classes, shots):
        """One task, one backbone pass over its support and queries together."""
        ways = len(classes)
        features = self.backbone(images)
        grouped = features.reshape(ways, -1, features.shape[-1])
        support = grouped[:, :shots].reshape(1, -1, features.shape[-1])
        query = grouped[:, shots:].reshape(1, -1, features.shape[-1])
        return self.episodes_loss(support, query, ways, shots)

    def batch_loss(self, support_images, query_images, classes, shots):
        """All T tasks of a step: ``support_images`` (T * ways * shots, C, H, W) and ``query_images``
        (T * ways * queries, C, H, W), task-major then class-major; two backbone passes."""
        tasks, ways = classes.shape
        support = self.backbone(support_images)
        query = self.backbone(query_images)
        return self.episodes_loss(support.reshape(tasks, ways * shots, -1), query.reshape(tasks, -1, query.shape[-1]),
                                  ways, shots)

    def episodes_loss(self, support, query, ways, shots):
        tasks, device = len(support), support.device
        support_labels = class_major_labels(ways, shots, device).expand(tasks, -1)
        query_labels = class_major_labels(ways, query.shape[1] // ways, device)
        logits = self.logits(support, support_labels, query, ways).reshape(-1, ways)
        labels = query_labels.repeat(tasks)
        return self.loss(logits, labels), (logits.argmax(1) == labels).float().mean()
