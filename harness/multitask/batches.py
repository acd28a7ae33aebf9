"""A split held as tensors on the run's device, gathered into normalised batches by index.

Inputs stay in their stored dtype (uint8 images, float Cityscapes images) and targets
in theirs; a batch is one gather: inputs to float (B, C, H, W), /255 for uint8, then
(x - mean) / std per channel; class targets to int64, depth to float32. Memory: the
whole split on the device (Multi-MNIST 6 MB, CelebA train 2.0 GB, Cityscapes train 0.9 GB).
"""
from __future__ import annotations

import numpy as np
import torch


class DeviceSplit:
    def __init__(self, split, dataset, device, limit: int | None = None):
        count = len(split) if limit is None else min(limit, len(split))
        self.inputs = torch.from_numpy(np.array(split.inputs[:count])).to(device)
        self.targets = {task.name: torch.from_numpy(np.array(split.targets[task.name][:count])).to(device)
                        for task in dataset.tasks}
        self.kinds = {task.name: task.kind for task in dataset.tasks}
        self.scale = 1 / 255 if dataset.input_kind == "uint8" else 1.0
        self.mean = torch.tensor(dataset.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(dataset.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return len(self.inputs)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, dict]:
        x = self.inputs[indices].permute(0, 3, 1, 2).float() * self.scale
        x = ((x - self.mean) / self.std).contiguous()
        targets = {name: target[indices].float() if self.kinds[name] == "depth" else target[indices].long()
                   for name, target in self.targets.items()}
        return x, targets

    def ordered_batches(self, batch_size: int):
        """Index tensors covering the split in order (evaluation)."""
        device = self.inputs.device
        for start in range(0, len(self), batch_size):
            yield torch.arange(start, min(start + batch_size, len(self)), device=device)
