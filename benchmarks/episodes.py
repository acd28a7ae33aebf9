"""Episode throughput: the harness's engine vs the conventional PIL + DataLoader pipeline.

Both produce the same thing: augmented, normalised 5-way 5-shot 15-query training
episodes (random crop with padding, colour jitter 0.4, horizontal flip) from a
uint8 split of the real shape. Throughput does not depend on pixel content, so
the arrays are random. Run:

    python benchmarks/episodes.py [--device cpu|cuda] [--workers 2] [--episodes 40]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from harness.fewshot.datasets._base import Split
from harness.fewshot.engine import SplitTensor
from harness.fewshot.episodes import EpisodeSampler

WAYS, SHOTS, QUERIES = 5, 5, 15
SHAPES = {"cifar_fs (32x32)": (32, 4, 64), "mini_imagenet (84x84)": (84, 8, 64)}  # size, padding, classes
MEAN, STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)


class ImageDataset(Dataset):
    """The conventional way: one PIL image and one transform call per image."""

    def __init__(self, images, size, padding):
        self.images = images
        self.transform = transforms.Compose([
            transforms.RandomCrop(size, padding=padding),
            transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.images[index]))


class EpisodeBatches:
    """A batch sampler yielding the flat image indices of one episode per batch."""

    def __init__(self, sampler, episodes, seed=0):
        self.sampler, self.episodes, self.rng = sampler, episodes, np.random.default_rng(seed)

    def __len__(self):
        return self.episodes

    def __iter__(self):
        for _ in range(self.episodes):
            yield self.sampler.sample(self.rng, 1)[0].ravel().tolist()


def conventional(split, size, padding, episodes, workers, device) -> float:
    sampler = EpisodeSampler(split.labels, WAYS, SHOTS + QUERIES)
    loader = DataLoader(ImageDataset(split.images, size, padding), batch_sampler=EpisodeBatches(sampler, episodes + 2),
                        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=False)
    iterator = iter(loader)
    for _ in range(2):  # warm-up: workers started, first batches out
        next(iterator).to(device)
    started = time.perf_counter()
    for batch in iterator:
        batch.to(device, non_blocking=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return episodes / (time.perf_counter() - started)


def engine(split, size, padding, episodes, device) -> float:
    class Facts:
        mean, std, crop_padding = MEAN, STD, padding

    images = SplitTensor(split, Facts, device)
    sampler = EpisodeSampler(split.labels, WAYS, SHOTS + QUERIES)
    rng, generator = np.random.default_rng(0), torch.Generator(device=device).manual_seed(0)
    for _ in range(2):
        images.gather(sampler.sample(rng, 1)[0], generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(episodes):
        images.gather(sampler.sample(rng, 1)[0], generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return episodes / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8))
    parser.add_argument("--episodes", type=int, default=40, help="episodes timed for the conventional pipeline")
    args = parser.parse_args()
    device = torch.device(args.device)
    per_episode = WAYS * (SHOTS + QUERIES)
    print(f"device {device}, {os.cpu_count()} CPU cores, {args.workers} DataLoader workers, torch {torch.__version__}")
    print(f"{WAYS}-way {SHOTS}-shot {QUERIES}-query training episodes ({per_episode} images), augmented and normalised\n")
    print(f"{'shape':24} {'conventional ep/s':>18} {'engine ep/s':>12} {'engine img/s':>13} {'ratio':>7}")
    for name, (size, padding, classes) in SHAPES.items():
        rng = np.random.default_rng(0)
        split = Split(images=rng.integers(0, 256, (classes * 600, size, size, 3), dtype=np.uint8),
                      labels=np.repeat(np.arange(classes), 600), classes=tuple(map(str, range(classes))))
        slow = conventional(split, size, padding, args.episodes, args.workers, device)
        fast = engine(split, size, padding, args.episodes * 10, device)
        print(f"{name:24} {slow:18.1f} {fast:12.1f} {fast * per_episode:13.0f} {fast / slow:6.1f}x")


if __name__ == "__main__":
    main()
