"""DropBlock (Ghiasi, Lin & Le, NeurIPS 2018) with a linearly ramped keep rate, as MetaOptNet's ResNet-12 uses it.

In training mode each forward pass draws block seeds i.i.d. Bernoulli(gamma) at the
positions where a ``block_size`` x ``block_size`` block fits inside the feature map,
zeroes every unit covered by a block, and rescales the survivors by
numel / (number kept), so the expected activation is unchanged. gamma is the paper's
equation (1):

    gamma = (1 - keep) / block_size**2 * (H * W) / ((H - block_size + 1) * (W - block_size + 1))

which makes the expected number of dropped units COUNTED WITH MULTIPLICITY (seeds x
block area) equal to (1 - keep) * H * W. Blocks overlap, so the expected fraction of
units actually zeroed is a little smaller: 1 - mean_u (1 - gamma)**n_u, where n_u is
the number of seed positions whose block covers unit u (``expected_drop_fraction``;
the tests check both).

The keep rate falls linearly from 1 to ``final_keep`` over the first ``ramp_steps``
backbone passes (MetaOptNet: 40,000 = 20 x 2,000, final keep 0.9). The reference
implementations (MetaOptNet's and RFS's ResNet-12) count EVERY forward pass of the
network, evaluation included: MetaOptNet's validation (2,000 episodes, support and
query embedded separately) adds 4,000 passes per epoch to its 2,000 training passes.
Here a training-mode forward counts itself; an evaluation-mode forward does not,
because our evaluation embeds the images of many episodes in batches whose number
says nothing about the reference's passes. Instead the trainer adds, after each
validation, the passes the reference would have made (episodes x passes per
episode) with ``count_passes``. The counter is a registered buffer, so it is saved
and restored with the model's state_dict and a resumed run continues the ramp.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DropBlock(nn.Module):
    def __init__(self, block_size: int, final_keep: float = 0.9, ramp_steps: int = 40_000):
        super().__init__()
        self.block_size, self.final_keep, self.ramp_steps = block_size, final_keep, ramp_steps
        self.register_buffer("forward_passes", torch.zeros((), dtype=torch.long))

    @property
    def keep_rate(self) -> float:
        progress = min(int(self.forward_passes) / self.ramp_steps, 1.0)
        return 1.0 - (1.0 - self.final_keep) * progress

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        self.forward_passes += 1
        keep = self.keep_rate
        if keep >= 1.0:
            return x
        block_size = min(self.block_size, x.shape[-2], x.shape[-1])
        mask = block_mask(x.shape, block_size, seed_rate(keep, block_size, x.shape[-2:]), x.device, x.dtype)
        return x * mask * (mask.numel() / mask.sum().clamp_min(1.0))


def seed_rate(keep: float, block_size: int, size) -> float:
    """The DropBlock paper's gamma for an H x W map."""
    height, width = size
    valid = (height - block_size + 1) * (width - block_size + 1)
    return (1.0 - keep) / block_size**2 * height * width / valid


def block_mask(shape, block_size: int, gamma: float, device, dtype) -> torch.Tensor:
    """1 = keep, 0 = dropped; seeds only where the whole block fits, each zeroing the block to its lower right."""
    batch, channels, height, width = shape
    seeds = torch.bernoulli(torch.full((batch, channels, height - block_size + 1, width - block_size + 1),
                                       gamma, device=device, dtype=dtype))
    pad = block_size - 1
    dropped = F.max_pool2d(F.pad(seeds, (pad, pad, pad, pad)), block_size, stride=1)
    return 1.0 - dropped


def expected_drop_fraction(keep: float, block_size: int, height: int, width: int) -> float:
    """Exact expected fraction of units zeroed, overlaps counted once: 1 - mean_u (1 - gamma)^n_u."""
    gamma = seed_rate(keep, block_size, (height, width))
    ones = torch.ones(1, 1, height - block_size + 1, width - block_size + 1, dtype=torch.float64)
    pad = block_size - 1
    coverage = F.avg_pool2d(F.pad(ones, (pad, pad, pad, pad)), block_size, stride=1) * block_size**2
    return float(1.0 - ((1.0 - gamma) ** coverage).mean())


def count_passes(module: nn.Module, passes: int) -> None:
    """Advance the ramp of every DropBlock in ``module`` by ``passes`` forward passes (those an
    evaluation made in the reference code, which our batched evaluation does not make one by one)."""
    for block in module.modules():
        if isinstance(block, DropBlock):
            block.forward_passes += passes
