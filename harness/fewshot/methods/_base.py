"""What a few-shot method is: a backbone plus a loss on one training task."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FewShotMethod(nn.Module):
    """Subclasses define ``task_loss``; evaluation uses frozen backbone features and a head:
    the config's ``eval_head``, else the one the method's registration names in
    ``uses={"eval_head": ...}``, else logreg.

    A training task is ``images`` (ways * per_class, C, H, W), class-major (the first
    per_class images are the task's class 0, and so on), ``classes`` (ways,) the
    train-split class ids of those classes, and ``shots``: the first ``shots`` images of
    each class are its support set, the rest its queries.

    A method with ``batched_tasks`` True gets all the tasks of an optimiser step at once
    instead, through ``batch_loss`` (see ``_episodic``).
    """

    adapts_at_test = False  # True: scored per episode by adapt_and_score, not by a head on frozen features
    supports_separate_passes = False  # the config's separate_passes is meaningful for this method
    batched_tasks = False  # True: the trainer calls batch_loss with every task of a step, not task_loss per task
    fixed_ways = False  # True: its head has `ways` outputs, so it trains on `ways`-way tasks only

    def __init__(self, backbone: nn.Module, config: dict, num_train_classes: int):
        super().__init__()
        self.backbone = backbone
        self.config = config
        self.num_train_classes = num_train_classes
        if config.get("separate_passes") and not self.supports_separate_passes:
            raise ValueError(f"separate_passes: {type(self).__name__} embeds each task in one pass; "
                             "only protonet, metaoptnet_svm and r2d2 take separate support and query passes")
        self.label_smoothing = float(config.get("label_smoothing") or 0.0)
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")

    bf16 = False  # the trainer turns bf16 autocast on where the device supports it

    def autocast(self, evaluation: bool = False):
        """bf16 autocast when the run trains in bf16; for evaluation only when ``eval_precision`` is
        ``train`` (else evaluation runs in fp32)."""
        device_type = next(self.parameters()).device.type
        enabled = self.bf16 and (not evaluation or self.config.get("eval_precision", "fp32") == "train")
        return torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled)

    @property
    def validation_passes(self) -> int:
        """Backbone forward passes the reference code makes per validation episode (for the DropBlock ramp)."""
        return 1

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The outer training loss: cross-entropy, label-smoothed by ``label_smoothing``."""
        return smoothed_cross_entropy(logits, labels, self.label_smoothing)

    def task_loss(self, images: torch.Tensor, classes: torch.Tensor, shots: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (mean loss, accuracy in [0, 1]) of one training task."""
        raise NotImplementedError

    def adapt_and_score(self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor,
                        ways: int) -> torch.Tensor:
        """Methods with ``adapts_at_test``: adapt to one episode's support set, return query scores (Q, ways)."""
        raise NotImplementedError


def class_major_labels(ways: int, per_class: int, device) -> torch.Tensor:
    return torch.arange(ways, device=device).repeat_interleave(per_class)


def smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean cross-entropy against targets 1 - eps on the true class and eps / (ways - 1) on the others,
    MetaOptNet's label smoothing (train.py); eps = 0 is plain cross-entropy. Computed in float32 at least."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    if eps == 0:
        return F.cross_entropy(logits, labels)
    ways = logits.shape[-1]
    one_hot = F.one_hot(labels, ways).to(logits.dtype)
    targets = one_hot * (1 - eps) + (1 - one_hot) * (eps / (ways - 1))
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def train_ways(config: dict) -> int:
    """Classes per training task: ``train_ways``, else ``ways``."""
    return int(config.get("train_ways") or config["ways"])
