"""MultiLeNet, the Multi-MNIST network of Sener & Koltun (2018) as run by Kurin et al. (2022).

Trunk: conv(1->10, k5) - maxpool 2 - ReLU - conv(10->20, k5) - [dropout] - maxpool 2 -
ReLU - flatten (320) - FC(320->50) - ReLU; z is this 50-vector.
Head per task: FC(50->50) - ReLU - [dropout] - FC(50->classes) - log-softmax.

Dropout as in the official code, and ON by default as there (``dropout=False`` is its
``--no_dropout``): in training, the conv2 output is multiplied by a 0/1 mask drawn per
CHANNEL with probability 0.5 and shared by the whole batch, and each head's hidden
layer by a 0/1 mask drawn per unit and example with probability 0.5; nothing is
rescaled (no 1 / (1 - p)), and nothing is masked at evaluation. Masks use the global
torch random generator.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.multitask.models import register
from harness.multitask.models._base import MultiTaskModel

KEEP = 0.5


class Trunk(nn.Module):
    def __init__(self, dropout: bool):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 10, kernel_size=5), nn.Conv2d(10, 20, kernel_size=5)
        self.fc = nn.Linear(320, 50)
        self.dropout = dropout

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = self.conv2(x)
        if self.dropout and self.training:
            x = x * torch.bernoulli(torch.full((1, x.shape[1], 1, 1), KEEP, device=x.device))
        x = F.relu(F.max_pool2d(x, 2))
        return F.relu(self.fc(x.flatten(1)))


class Head(nn.Module):
    def __init__(self, classes: int, dropout: bool):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(50, 50), nn.Linear(50, classes)
        self.dropout = dropout

    def forward(self, z):
        x = F.relu(self.fc1(z))
        if self.dropout and self.training:
            x = x * torch.bernoulli(torch.full_like(x, KEEP))
        return F.log_softmax(self.fc2(x), dim=1)


@register("multilenet", version="1")
class MultiLeNet(MultiTaskModel):
    default_dropout = True
    kinds = ("classification",)

    def __init__(self, tasks, dropout: bool | None = None):
        super().__init__(tasks, dropout)
        self.shared = Trunk(self.dropout)
        self.task_heads = nn.ModuleDict({t.name: Head(t.classes, self.dropout) for t in self.tasks})
