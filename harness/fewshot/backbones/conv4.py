"""Conv-4 (Vinyals et al. 2016): four blocks of 3x3 conv (64) - BatchNorm - ReLU - 2x2 max-pool.

``width`` sets the filters of every conv layer (config ``backbone_width``): Finn et al.'s
MAML uses 32 on mini-ImageNet (cbfinn/maml main.py, ``--num_filters=32 --max_pool=True``),
giving 32 x 5 x 5 = 800-d features at 84x84. The feature map is flattened.
"""
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
