"""Train one few-shot method on one dataset, select by validation, score the fixed test episodes."""
from __future__ import annotations

import copy
import time
from typing import Callable

import numpy as np
import torch

from harness.fewshot.backbones import BACKBONES
from harness.fewshot.datasets import DATASETS
from harness.fewshot.episodes import EpisodeSampler, fixed_episodes
from harness.fewshot.heads import HEADS
from harness.fewshot.methods import METHODS
from harness.fewshot.methods._base import class_major_labels

EVAL_BATCH_IMAGES = 512
EVAL_BATCH_EPISODES = 250


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SplitOnDevice:
    """A split's images as one uint8 tensor (N, C, H, W) on the device, normalised on gather."""

    def __init__(self, split, mean, std, device):
        self.labels = split.labels
        self.images = torch.from_numpy(split.images).permute(0, 3, 1, 2).contiguous().to(device)
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)

    def __getitem__(self, indices) -> torch.Tensor:
        index = torch.as_tensor(np.asarray(indices).ravel(), device=self.images.device)
        return (self.images[index].float() / 255 - self.mean) / self.std


def make_optimizer(config: dict, parameters) -> torch.optim.Optimizer:
    kind, lr, decay = config["optimizer"], config["lr"], config["weight_decay"]
    if kind == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=decay)
    if kind == "radam":
        return torch.optim.RAdam(parameters, lr=lr, weight_decay=decay)
    return torch.optim.SGD(parameters, lr=lr, weight_decay=decay, momentum=0.9, nesterov=True)


@torch.no_grad()
def evaluate(method, split: SplitOnDevice, episodes: np.ndarray, shots: int, head: Callable, config: dict) -> np.ndarray:
    """Per-episode accuracy (%) with the backbone frozen: each image is embedded once."""
    method.eval()
    features = torch.cat([
        method.embed(split[np.arange(start, min(start + EVAL_BATCH_IMAGES, len(split.labels)))])
        for start in range(0, len(split.labels), EVAL_BATCH_IMAGES)
    ]).float()
    n, ways, per_class = episodes.shape
    support_labels = class_major_labels(ways, shots, features.device)
    query_labels = class_major_labels(ways, per_class - shots, features.device)
    accuracies = []
    for start in range(0, n, EVAL_BATCH_EPISODES):
        chunk = torch.as_tensor(episodes[start:start + EVAL_BATCH_EPISODES], device=features.device)
        episode_features = features[chunk]  # (E, ways, per_class, D)
        e, dim = len(chunk), features.shape[1]
        support = episode_features[:, :, :shots].reshape(e, ways * shots, dim)
        query = episode_features[:, :, shots:].reshape(e, -1, dim)
        scores = head(support, support_labels.expand(e, -1), query, ways, config)
        accuracies.append((scores.argmax(-1) == query_labels).double().mean(1) * 100)
    return torch.cat(accuracies).cpu().numpy()


def run(config: dict, log: Callable[[str], None] = print) -> dict:
    """Train and test one run; return metrics, timing and details (no environment, no I/O)."""
    device = pick_device(config["device"])
    seed, ways, shots = config["seed"], config["ways"], config["shots"]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()

    dataset = DATASETS.get(config["dataset"])
    splits = {name: dataset.load(name) for name in ("train", "val", "test")}
    on_device = {name: SplitOnDevice(split, dataset.mean, dataset.std, device) for name, split in splits.items()}
    backbone = BACKBONES.get(config["backbone"])(dataset.channels, dataset.image_size)
    method = METHODS.get(config["method"])(backbone, config, splits["train"].num_classes).to(device)
    head_name = config["eval_head"] or method.eval_head
    head = HEADS.get(head_name)
    optimizer = make_optimizer(config, method.parameters())
    sampler = EpisodeSampler(splits["train"].labels, ways, shots + config["queries"])
    val_episodes = fixed_episodes("val", splits["val"].labels, ways, shots, config["test_queries"],
                                  config["val_episodes"], config["eval_seed"])
    synchronize(device)
    load_seconds = time.perf_counter() - started

    best = {"accuracy": -1.0, "step": 0, "state": None}
    stale, step, images_seen = 0, 0, 0
    train_started = time.perf_counter()
    for step in range(1, config["steps"] + 1):
        method.train()
        optimizer.zero_grad(set_to_none=True)
        indices, classes = sampler.sample(rng, config["meta_batch"])
        for task_indices, task_classes in zip(indices, classes):
            loss, _ = method.task_loss(on_device["train"][task_indices],
                                       torch.as_tensor(task_classes, device=device), shots)
            (loss / config["meta_batch"]).backward()
            images_seen += task_indices.size
        optimizer.step()
        if step % config["val_every"] == 0 or step == config["steps"]:
            accuracy = float(evaluate(method, on_device["val"], val_episodes, shots, head, config).mean())
            log(f"step {step}/{config['steps']}  loss {loss.item():.4f}  val {accuracy:.2f}%")
            if accuracy > best["accuracy"]:
                best = {"accuracy": accuracy, "step": step, "state": copy.deepcopy(method.state_dict())}
                stale = 0
            else:
                stale += 1
                if config["patience"] is not None and stale >= config["patience"]:
                    log(f"early stop at step {step}: no validation gain for {stale} validations")
                    break
    synchronize(device)
    train_seconds = time.perf_counter() - train_started

    method.load_state_dict(best["state"])
    eval_started = time.perf_counter()
    test_episodes = fixed_episodes("test", splits["test"].labels, ways, shots, config["test_queries"],
                                   config["test_episodes"], config["eval_seed"])
    accuracies = evaluate(method, on_device["test"], test_episodes, shots, head, config)
    synchronize(device)
    eval_seconds = time.perf_counter() - eval_started
    log(f"test accuracy {accuracies.mean():.2f}% over {len(accuracies)} episodes")

    return {
        "metrics": {
            "accuracy": float(accuracies.mean()),
            "episode_accuracies": [float(a) for a in accuracies],
            "val_accuracy": best["accuracy"],
            "best_step": best["step"],
        },
        "timing": {
            "load_seconds": load_seconds,
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            "steps": step,
            "seconds_per_step": train_seconds / max(step, 1),
            "images_seen": images_seen,
        },
        "details": {
            "device": str(device),
            "eval_head": head_name,
            "parameters": sum(p.numel() for p in method.parameters()),
            "peak_gpu_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        },
    }
