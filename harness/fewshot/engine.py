"""The episode engine: a split as ONE uint8 tensor, episodes gathered and augmented in torch.

No PIL, no DataLoader workers, no Python loop over images: an episode batch is an
index tensor; gathering, augmentation and normalisation are a few batched tensor
ops on the run's device. A split that does not fit on the GPU stays in pinned
host memory and each batch is copied over.
"""
from __future__ import annotations

import numpy as np
import torch

from harness.fewshot.augment import augment

DEVICE_MEMORY_SHARE = 0.5  # keep at most this share of free GPU memory for one split's images


class SplitTensor:
    def __init__(self, split, dataset, device: torch.device, memory_format=torch.contiguous_format):
        self.labels = split.labels
        self.device = device
        self.memory_format = memory_format
        self.padding = getattr(dataset, "crop_padding", 0)
        self.mean = torch.tensor(dataset.mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(dataset.std, device=device).view(1, -1, 1, 1)
        images = torch.from_numpy(np.ascontiguousarray(split.images)).permute(0, 3, 1, 2)  # (N, C, H, W) view
        if device.type == "cuda" and not fits_on_device(images.numel(), device):
            self.images = images.contiguous().pin_memory()  # host-resident fallback
        else:
            self.images = images.contiguous().to(device)

    @property
    def on_device(self) -> bool:
        return self.images.device == self.device

    def __len__(self) -> int:
        return len(self.labels)

    def gather(self, indices, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images at ``indices`` (any shape, flattened) as normalised floats; augmented when a
        generator is given."""
        index = torch.as_tensor(np.asarray(indices).ravel())
        if self.on_device:
            batch = self.images[index.to(self.device)]
        else:
            batch = self.images[index].pin_memory().to(self.device, non_blocking=True)
        if generator is not None:
            batch = augment(batch, self.padding, generator, jitter=0.4 if batch.shape[1] == 3 else 0.0)
        else:
            batch = batch.float().div_(255)
        return batch.sub_(self.mean).div_(self.std).contiguous(memory_format=self.memory_format)


def fits_on_device(num_bytes: int, device: torch.device) -> bool:
    free, _ = torch.cuda.mem_get_info(device)
    return num_bytes <= DEVICE_MEMORY_SHARE * free
