"""Dilated ResNet-50 trunk with DeepLab-v3 ASPP heads: the Cityscapes network of Kurin et al.
(2022) (after MTAN / Liu et al. 2019), for (B, 3, H, W) inputs with H and W multiples of 8.

Trunk: torchvision's ResNet-50 (stem conv 7x7/2 - BN - ReLU - max-pool 3x3/2, stages of
3, 4, 6, 3 bottlenecks) with the strides of stages 3 and 4 replaced by dilation 2 and 4
(output stride 8): z is (B, 2048, H/8, W/8). Randomly initialised: the official code
starts from ImageNet weights, which are not available here. With ``dropout=True``,
Dropout2d(0.1) after the stem and after each stage (Kurin et al.'s ``--dropout``).
Head per task: ASPP (1x1 conv, 3x3 convs of dilation 12, 24, 36, and image pooling,
256 channels each, BN-ReLU) - concat - 1x1 conv 256 - BN - ReLU - Dropout(0.5) -
3x3 conv 256 - BN - ReLU - 1x1 conv to classes (segmentation) or 1 (depth) - bilinear
upsampling (align_corners=True) by 8 to the input size; segmentation ends in
log-softmax. The ASPP dropout is part of DeepLab and always on, as in the official code.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.multitask.models import register
from harness.multitask.models._base import MultiTaskModel

STRIDE = 8


def conv_bn_relu(inputs: int, outputs: int, kernel: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, kernel, padding=dilation * (kernel // 2), dilation=dilation,
                                   bias=False), nn.BatchNorm2d(outputs), nn.ReLU())


class ImagePooling(nn.Module):
    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        self.project = conv_bn_relu(inputs, outputs, 1)

    def forward(self, x):
        pooled = self.project(F.adaptive_avg_pool2d(x, 1))
        return F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False)


class DeepLabHead(nn.Module):
    def __init__(self, inputs: int, outputs: int, log_softmax: bool, rates=(12, 24, 36), width: int = 256):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(inputs, width, 1)]
                                      + [conv_bn_relu(inputs, width, 3, rate) for rate in rates]
                                      + [ImagePooling(inputs, width)])
        self.project = nn.Sequential(conv_bn_relu(width * (len(rates) + 2), width, 1), nn.Dropout(0.5))
        self.refine = conv_bn_relu(width, width, 3)
        self.classifier = nn.Conv2d(width, outputs, 1)
        self.log_softmax = log_softmax

    def forward(self, z):
        x = self.project(torch.cat([branch(z) for branch in self.branches], dim=1))
        x = self.classifier(self.refine(x))
        x = F.interpolate(x, scale_factor=STRIDE, mode="bilinear", align_corners=True)
        return F.log_softmax(x, dim=1) if self.log_softmax else x


class Trunk(nn.Module):
    def __init__(self, dropout: bool):
        super().__init__()
        from torchvision.models import resnet50

        net = resnet50(weights=None, replace_stride_with_dilation=[False, True, True])
        drop = nn.Dropout2d(0.1) if dropout else nn.Identity()
        self.body = nn.Sequential(net.conv1, net.bn1, net.relu, drop, net.maxpool, net.layer1, drop,
                                  net.layer2, drop, net.layer3, drop, net.layer4, drop)

    def forward(self, x):
        return self.body(x)


@register("resnet50_dilated_deeplab", version="1")
class ResNet50DilatedDeepLab(MultiTaskModel):
    kinds = ("segmentation", "depth")

    def __init__(self, tasks, dropout: bool | None = None):
        super().__init__(tasks, dropout)
        self.shared = Trunk(self.dropout)
        self.task_heads = nn.ModuleDict({
            t.name: DeepLabHead(2048, t.classes if t.kind == "segmentation" else 1, t.kind == "segmentation")
            for t in self.tasks})
