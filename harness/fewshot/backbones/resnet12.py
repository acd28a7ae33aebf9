"""ResNet-12 of MetaOptNet (Lee et al. 2019), as used by Wang, Zhao & Li (2021), with global average pooling.

Four residual blocks of widths 64-160-320-640. Each block: three 3x3 conv (no bias) +
BatchNorm, LeakyReLU(0.1) after the first two and after the residual sum, a 1x1 conv +
BN shortcut, then 2x2 max-pool. Regularisation after the pool: dropout 0.1 in blocks
1-2, DropBlock in blocks 3-4 (block size 5 for inputs of 64 pixels or more, i.e.
84x84 mini/tiered-ImageNet; 2 for smaller inputs, i.e. 32x32 CIFAR-FS/FC100; clamped to
the feature map) with the keep rate ramped linearly from 1 to 0.9 over the first
40,000 training forward passes (MetaOptNet's drop_rate 0.1 and 20 x 2000 batches; the
Wang et al. code uses the same module; the ramp counts evaluation passes too, see
``_dropblock``). Global average pooling gives 640-d features; with ``global_pool=False``
the last feature map is flattened instead, as MetaOptNet's ``resnet12(avg_pool=False)``
feeds its SVM, ridge and ProtoNet heads: 640 x 5 x 5 = 16,000-d at 84x84 and
640 x 2 x 2 = 2,560-d at 32x32 (each block's 2x2 max-pool floors: 84 -> 42 -> 21 -> 10 -> 5).
Convs: Kaiming normal (fan_out, leaky_relu gain); BN: weight 1, bias 0.

Variants of the DropBlock layers (``_dropblock``): ``dropblock_schedule`` (``ramp``, or
``stuck``: MetaOptNet's 4-GPU DataParallel runs, DropBlock effectively off) and
``dropblock_mask`` (``full`` blocks, or ``reference``: the partial blocks of MetaOptNet's
and RFS's mask code).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from harness.fewshot.backbones import register
from harness.fewshot.backbones._dropblock import DropBlock

WIDTHS = (64, 160, 320, 640)
DROP_RATE = 0.1  # dropout rate in blocks 1-2; DropBlock's final keep rate is 1 - DROP_RATE


def conv_bn(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout))


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, dropblock_size: int | None, dropblock_options: dict | None = None):
        super().__init__()
        self.convs = nn.ModuleList([conv_bn(cin, cout, 3), conv_bn(cout, cout, 3), conv_bn(cout, cout, 3)])
        self.shortcut = conv_bn(cin, cout, 1)
        self.dropblock = None
        if dropblock_size:
            self.dropblock = DropBlock(dropblock_size, final_keep=1 - DROP_RATE, **(dropblock_options or {}))

    def forward(self, x):
        out = x
        for i, conv in enumerate(self.convs):
            out = conv(out)
            if i < 2:
                out = F.leaky_relu(out, 0.1)
        out = F.max_pool2d(F.leaky_relu(out + self.shortcut(x), 0.1), 2)
        if self.dropblock is not None:
            return self.dropblock(out)
        return F.dropout(out, DROP_RATE, self.training)


class ResNet12(nn.Module):
    def __init__(self, in_channels: int, image_size: int, global_pool: bool = True, dropblock_schedule: str = "ramp",
                 dropblock_mask: str = "full"):
        super().__init__()
        self.global_pool = global_pool
        size = image_size
        for _ in WIDTHS:
            size //= 2
        self.out_dim = WIDTHS[-1] * (1 if global_pool else size * size)
        dropblock_size = 5 if image_size >= 64 else 2
        channels = (in_channels,) + WIDTHS
        dropblock_options = {"schedule": dropblock_schedule, "mask": dropblock_mask}
        self.blocks = nn.Sequential(*[
            Block(channels[i], channels[i + 1], dropblock_size if i >= 2 else None, dropblock_options) for i in range(4)
        ])
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="leaky_relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        features = self.blocks(x)
        if self.global_pool:
            return features.mean(dim=(2, 3))
        return features.flatten(1)  # (C, H, W) order whatever the memory format


@register("resnet12", version="1", keys={
    "dropblock_schedule": {
        "type": "str", "default": "ramp", "choices": ["ramp", "stuck"], "arg": "dropblock_schedule",
        "versions": {"stuck": "1"},
        "help": "resnet12: DropBlock keep rate ramped from 1 to 0.9 over 40,000 passes (ramp), or stuck at "
                "1 - 0.1/40000 as in MetaOptNet's 4-GPU DataParallel runs, whose replicas never advance the plain-int "
                "counter (kjunelee/MetaOptNet models/ResNet12_embedding.py:32,38,62; train.py get_model): "
                "DropBlock effectively off"},
    "dropblock_mask": {
        "type": "str", "default": "full", "choices": ["full", "reference"], "arg": "dropblock_mask",
        "versions": {"reference": "1"},
        "help": "resnet12: each DropBlock seed drops its full block, or (reference) the partial blocks of "
                "MetaOptNet's / RFS's _compute_block_mask when gcd(seeds, block**2) > 1 "
                "(kjunelee/MetaOptNet models/dropblock.py:40-59)"}})
def resnet12(in_channels: int, image_size: int, global_pool: bool = True, dropblock_schedule: str = "ramp",
             dropblock_mask: str = "full") -> nn.Module:
    return ResNet12(in_channels, image_size, global_pool, dropblock_schedule, dropblock_mask)
