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

Variants (config keys, read by ``resnet12``):

- ``dropblock_schedule``: ``ramp`` (default, above) or ``stuck``: the keep rate of
  MetaOptNet's mini- and tiered-ImageNet runs, which wrap the network in
  ``torch.nn.DataParallel`` over 4 GPUs (train.py get_model, lines 43-47 of the version
  with CIFAR-FS / FC100). The ramp counter is a plain int attribute
  (models/ResNet12_embedding.py:32) incremented in forward (line 38); DataParallel runs
  forward on replicas whose ``__dict__`` is a shallow copy, so the original's counter
  stays 0 and every pass sees 1: keep = 1 - (1 - final_keep) / ramp_steps = 0.9999975
  (line 62), DropBlock effectively off.
- ``dropblock_mask``: ``full`` (default: each seed drops its whole block) or ``reference``:
  the mask of MetaOptNet's and RFS's ``_compute_block_mask`` (MetaOptNet
  models/dropblock.py:34-64; the same code in AI-secure/multi-task-learning
  models/resnet.py). It tiles the list of the n seeds (in row-major order of
  (batch, channel, y, x), line 40) block_size**2 times and the list of the block_size**2
  offsets n times, and adds them row by row (lines 52-56): seed j is paired with offset k
  only when j = k modulo g = gcd(n, block_size**2). Each seed therefore drops
  block_size**2 / g of its block's units (the offsets k = j mod g), plus the unit under
  its own position in the padded seed map (lines 35-36, 58: shifted by
  (block_size - 1) // 2). With g = 1 the blocks are full; for block 5 a multiple of 5
  (25) seeds gives columns (single units) instead of blocks.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SCHEDULES = ("ramp", "stuck")
MASKS = ("full", "reference")


class DropBlock(nn.Module):
    def __init__(self, block_size: int, final_keep: float = 0.9, ramp_steps: int = 40_000,
                 schedule: str = "ramp", mask: str = "full"):
        super().__init__()
        if schedule not in SCHEDULES or mask not in MASKS:
            raise ValueError(f"DropBlock: unknown schedule {schedule!r} or mask {mask!r}")
        self.block_size, self.final_keep, self.ramp_steps = block_size, final_keep, ramp_steps
        self.schedule, self.mask = schedule, mask
        self.register_buffer("forward_passes", torch.zeros((), dtype=torch.long))

    @property
    def keep_rate(self) -> float:
        passes = int(self.forward_passes) if self.schedule == "ramp" else 1  # stuck: every replica sees 1
        progress = min(passes / self.ramp_steps, 1.0)
        return 1.0 - (1.0 - self.final_keep) * progress

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        self.forward_passes += 1
        keep = self.keep_rate
        if keep >= 1.0:
            return x
        block_size = min(self.block_size, x.shape[-2], x.shape[-1])
        seeds = draw_seeds(x.shape, block_size, seed_rate(keep, block_size, x.shape[-2:]), x.device, x.dtype)
        mask = 1.0 - (full_blocks if self.mask == "full" else reference_blocks)(seeds, block_size)
        return x * mask * (mask.numel() / mask.sum().clamp_min(1.0))


def seed_rate(keep: float, block_size: int, size) -> float:
    """The DropBlock paper's gamma for an H x W map."""
    height, width = size
    valid = (height - block_size + 1) * (width - block_size + 1)
    return (1.0 - keep) / block_size**2 * height * width / valid


def draw_seeds(shape, block_size: int, gamma: float, device, dtype) -> torch.Tensor:
    """Bernoulli(gamma) block seeds at the (H - block_size + 1) x (W - block_size + 1) positions where a block fits."""
    batch, channels, height, width = shape
    return torch.bernoulli(torch.full((batch, channels, height - block_size + 1, width - block_size + 1),
                                      gamma, device=device, dtype=dtype))


def full_blocks(seeds: torch.Tensor, block_size: int) -> torch.Tensor:
    """1 = dropped, on the H x W map: each seed at (y, x) drops the block [y, y + block_size) x [x, x + block_size)."""
    pad = block_size - 1
    return F.max_pool2d(F.pad(seeds, (pad, pad, pad, pad)), block_size, stride=1)


def reference_blocks(seeds: torch.Tensor, block_size: int) -> torch.Tensor:
    """1 = dropped: what MetaOptNet's ``_compute_block_mask`` drops for these seeds (module docstring): seed j
    (row-major order) drops the offsets (k // block_size, k % block_size) of its block with k = j mod
    gcd(n, block_size**2), and the unit under it in the seed map padded by (block_size - 1) // 2."""
    before, after = (block_size - 1) // 2, block_size // 2
    dropped = F.pad(seeds, (before, after, before, after))
    where = seeds.nonzero()  # (n, 4), row-major order as torch's nonzero
    n, area = len(where), block_size * block_size
    if n == 0:
        return dropped
    period = math.gcd(n, area)
    offsets = torch.arange(area, device=seeds.device).view(area // period, period)  # column r: k = r mod period
    k = offsets[:, torch.arange(n, device=seeds.device) % period]  # (area // period, n): seed j's offsets
    b, c, y, x = where.T
    dropped[b, c, y + k // block_size, x + k % block_size] = 1.0
    return dropped


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
