"""What a few-shot method is: a backbone plus a loss on one training task."""
from __future__ import annotations

import torch
from torch import nn


class FewShotMethod(nn.Module):
    """Subclasses define ``task_loss``; evaluation uses frozen backbone features and a head:
    the config's ``eval_head``, else the one the method's registration names in
    ``uses={"eval_head": ...}``, else logreg.

    A training task is ``images`` (ways * per_class, C, H, W), class-major (the first
    per_class images are the task's class 0, and so on), ``classes`` (ways,) the
    train-split class ids of those classes, and ``shots``: the first ``shots`` images of
    each class are its support set, the rest its queries.
    """

    adapts_at_test = False  # True: scored per episode by adapt_and_score, not by a head on frozen features

    def __init__(self, backbone: nn.Module, config: dict, num_train_classes: int):
        super().__init__()
        self.backbone = backbone
        self.config = config
        self.num_train_classes = num_train_classes

    bf16 = False  # the trainer turns bf16 autocast on where the device supports it

    def autocast(self):
        device_type = next(self.parameters()).device.type
        return torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.bf16)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def task_loss(self, images: torch.Tensor, classes: torch.Tensor, shots: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (mean loss, accuracy in [0, 1]) of one training task."""
        raise NotImplementedError

    def adapt_and_score(self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor,
                        ways: int) -> torch.Tensor:
        """Methods with ``adapts_at_test``: adapt to one episode's support set, return query scores (Q, ways)."""
        raise NotImplementedError


def class_major_labels(ways: int, per_class: int, device) -> torch.Tensor:
    return torch.arange(ways, device=device).repeat_interleave(per_class)
