"""ResNet-18 trunk with 40 linear heads: the CelebA network of Sener & Koltun (2018) as run
by Kurin et al. (2022), for 64x64 RGB inputs.

Trunk: conv 3x3 (3->64, stride 1) - BN - ReLU [- Dropout2d 0.25], NO stem max-pool;
four stages of two BasicBlocks (64, 128, 256, 512 channels, strides 1, 2, 2, 2; a
block is conv3x3-BN-ReLU [- Dropout2d 0.5] - conv3x3-BN, plus the identity or a
1x1-conv-BN shortcut, then ReLU); average pooling 4x4 (an 8x8 map becomes 2x2),
flattened: z has 2048 units for 64x64 inputs [- dropout 0.5].
Heads: one Linear(2048 -> classes) per task, log-softmax (each attribute is a 2-class task).

The bracketed dropout layers are the ones Kurin et al. added "to prevent overfitting"
(their ``--dropout``), off by default; their last one is an elementwise Dropout(0.5)
here (the official code applies Dropout2d to the flat 2048-vector).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from harness.multitask.models import register
from harness.multitask.models._base import MultiTaskModel


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int, dropout: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.drop = nn.Dropout2d(0.5) if dropout else nn.Identity()
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x):
        out = self.drop(F.relu(self.bn1(self.conv1(x))))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Trunk(nn.Module):
    def __init__(self, dropout: bool):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.Dropout2d(0.25) if dropout else nn.Identity())
        blocks, channels = [], 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(channels, width, stride, dropout), BasicBlock(width, width, 1, dropout)]
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(0.5) if dropout else nn.Identity()

    def forward(self, x):
        return self.drop(F.avg_pool2d(self.blocks(self.stem(x)), 4).flatten(1))


class Head(nn.Module):
    def __init__(self, features: int, classes: int):
        super().__init__()
        self.linear = nn.Linear(features, classes)

    def forward(self, z):
        return F.log_softmax(self.linear(z), dim=1)


@register("resnet18_celeba", version="1")
class ResNet18CelebA(MultiTaskModel):
    kinds = ("classification",)

    def __init__(self, tasks, dropout: bool | None = None, features: int = 2048):
        super().__init__(tasks, dropout)
        self.shared = Trunk(self.dropout)
        self.task_heads = nn.ModuleDict({t.name: Head(features, t.classes) for t in self.tasks})
