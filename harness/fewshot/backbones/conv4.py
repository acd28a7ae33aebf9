"""Conv-4 (Vinyals et al. 2016): four blocks of 3x3 conv (64) - BatchNorm - ReLU - 2x2 max-pool."""
from __future__ import annotations

from torch import nn

from harness.fewshot.backbones import register


@register("conv4", version="1")
def conv4(in_channels: int, image_size: int, width: int = 64) -> nn.Module:
    blocks, channels, size = [], in_channels, image_size
    for _ in range(4):
        blocks += [
            nn.Conv2d(channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        channels, size = width, size // 2
    model = nn.Sequential(*blocks, nn.Flatten())
    model.out_dim = width * size * size
    return model
