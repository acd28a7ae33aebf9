"""Batched training augmentation in torch, on whatever device the images are on.

The few-shot papers' code applies, per image with PIL: random crop with zero
padding, colour jitter (brightness, contrast, saturation 0.4), horizontal flip.
Here each op acts on a whole batch (B, C, H, W) with per-image random parameters
drawn from one explicit generator, so the same seed gives the same augmentations
on the same device. Crop and flip are one gather over uint8 bytes; the colour ops
then work in place on floats. Colour jitter follows torchvision's definitions
(contrast blends with the mean grey level, saturation with the grey image,
torchvision's luma weights), in a fixed order: brightness, contrast, saturation.
"""
from __future__ import annotations

import torch

LUMA = (0.2989, 0.587, 0.114)  # torchvision's weights


def uniform(shape, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, device=device)


def crop_and_flip(images: torch.Tensor, padding: int, generator: torch.Generator, flip: bool = True) -> torch.Tensor:
    """Zero-pad by ``padding``, crop back to the original size at a random offset per image,
    and mirror half of the images: one gather over flat pixel indices, any dtype."""
    batch, channels, height, width = images.shape
    device = images.device
    padded = torch.nn.functional.pad(images, (padding,) * 4) if padding else images
    offset_y = torch.randint(0, 2 * padding + 1, (batch, 1, 1), generator=generator, device=device)
    offset_x = torch.randint(0, 2 * padding + 1, (batch, 1, 1), generator=generator, device=device)
    columns = torch.arange(width, device=device).view(1, 1, -1)
    if flip:
        mirrored = torch.rand(batch, 1, 1, generator=generator, device=device) < 0.5
        columns = torch.where(mirrored, width - 1 - columns, columns)
    rows = offset_y + torch.arange(height, device=device).view(1, -1, 1)
    pixels = (rows * padded.shape[-1] + offset_x + columns).view(batch, 1, height * width)
    return padded.flatten(2).gather(2, pixels.expand(batch, channels, -1)).view(batch, channels, height, width)


def grey(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images
    red, green, blue = LUMA
    return images[:, 0:1] * red + images[:, 1:2] * green + images[:, 2:3] * blue


# The adjust_* ops work in place on a float batch in [0, 1] and return it.
def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return images.mul_(factor).clamp_(0, 1)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    blend = grey(images.mean(dim=(2, 3), keepdim=True)) * (1 - factor)  # mean grey level per image
    return images.mul_(factor).add_(blend).clamp_(0, 1)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    blend = grey(images) * (1 - factor)
    return images.mul_(factor).add_(blend).clamp_(0, 1)


def colour_jitter(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and saturation factors drawn from U[1 - s, 1 + s] per image."""
    shape = (len(images), 1, 1, 1)
    low, high = max(0.0, 1 - strength), 1 + strength
    brightness, contrast, saturation = (uniform(shape, low, high, generator, images.device) for _ in range(3))
    images = adjust_contrast(adjust_brightness(images, brightness), contrast)
    return adjust_saturation(images, saturation) if images.shape[1] == 3 else images


def augment(images: torch.Tensor, padding: int, generator: torch.Generator, jitter: float = 0.4) -> torch.Tensor:
    """uint8 batch (B, C, H, W) -> augmented float batch in [0, 1]."""
    images = crop_and_flip(images, padding, generator).float().div_(255)
    return colour_jitter(images, jitter, generator) if jitter > 0 else images
