"""Batched training augmentation in torch, on whatever device the images are on.

The few-shot papers' code applies, per image with PIL: random crop with zero
padding, colour jitter (brightness, contrast, saturation 0.4), horizontal flip.
Here each op acts on a whole batch (B, C, H, W) of floats in [0, 1] with per-image
random parameters drawn from one explicit generator, so the same seed gives the
same augmentations on the same device. Colour jitter follows torchvision's
definitions (contrast blends with the mean grey level, saturation with the grey
image, ITU-R 601 luma weights), in a fixed order: brightness, contrast, saturation.
"""
from __future__ import annotations

import torch

LUMA = (0.299, 0.587, 0.114)


def uniform(shape, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, device=device)


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and crop back to the original size at a random offset per image."""
    if padding <= 0:
        return images
    batch, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    offset_y = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=images.device)
    offset_x = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=images.device)
    rows = (offset_y[:, None] + torch.arange(height, device=images.device))[:, :, None]  # (B, H, 1)
    cols = (offset_x[:, None] + torch.arange(width, device=images.device))[:, None, :]  # (B, 1, W)
    batch_index = torch.arange(batch, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch_index, rows, cols].permute(0, 3, 1, 2)


def horizontal_flip(images: torch.Tensor, generator: torch.Generator, probability: float = 0.5) -> torch.Tensor:
    flip = torch.rand(len(images), generator=generator, device=images.device) < probability
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def grey(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images
    weights = torch.tensor(LUMA, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def colour_jitter(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and saturation factors drawn from U[1 - s, 1 + s] per image."""
    shape = (len(images), 1, 1, 1)
    low, high = max(0.0, 1 - strength), 1 + strength
    brightness = uniform(shape, low, high, generator, images.device)
    contrast = uniform(shape, low, high, generator, images.device)
    saturation = uniform(shape, low, high, generator, images.device)
    images = (images * brightness).clamp(0, 1)
    mean = grey(images).mean(dim=(1, 2, 3), keepdim=True)
    images = (mean + contrast * (images - mean)).clamp(0, 1)
    if images.shape[1] == 3:
        images = (grey(images) + saturation * (images - grey(images))).clamp(0, 1)
    return images


def augment(images: torch.Tensor, padding: int, generator: torch.Generator, jitter: float = 0.4) -> torch.Tensor:
    images = random_crop(images, padding, generator)
    if jitter > 0:
        images = colour_jitter(images, jitter, generator)
    return horizontal_flip(images, generator)
