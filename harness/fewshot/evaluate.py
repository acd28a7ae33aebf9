"""Scoring episodes: per-episode accuracy (%) of a trained method on a fixed episode set.

Most methods are scored on frozen features: every image the episodes use is
embedded once, then an evaluation head (logistic regression, nearest centroid, fine-tuned
linear head) classifies the queries of all episodes in batches. Methods that
adapt the network itself at test time (MAML and relatives) set
``adapts_at_test`` and score one episode at a time with ``adapt_and_score``.

Precision: the backbone runs in fp32 here unless the config's ``eval_precision`` is
``train`` (then under the training autocast); the heads always receive fp32 features.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from harness.fewshot.engine import SplitTensor
from harness.fewshot.methods._base import class_major_labels

EVAL_BATCH_IMAGES = 512
EVAL_BATCH_EPISODES = 250
EVAL_CHUNK_ELEMENTS = 2**28  # at most this many feature values per chunk of episodes (1 GiB in fp32)


def evaluate(method, split: SplitTensor, episodes: np.ndarray, shots: int, head: Callable, config: dict) -> np.ndarray:
    method.eval()
    if getattr(method, "adapts_at_test", False):
        return evaluate_adapting(method, split, episodes, shots)
    return evaluate_frozen(method, split, episodes, shots, head, config)


@torch.no_grad()
def embed(method, split: SplitTensor, indices: np.ndarray) -> torch.Tensor:
    with method.autocast(evaluation=True):
        return torch.cat([
            method.embed(split.gather(indices[start:start + EVAL_BATCH_IMAGES])).float()
            for start in range(0, len(indices), EVAL_BATCH_IMAGES)
        ])


@torch.no_grad()
def evaluate_frozen(method, split, episodes, shots, head, config) -> np.ndarray:
    used, inverse = np.unique(episodes, return_inverse=True)  # embed each image the episodes use, once
    episodes = inverse.reshape(episodes.shape)
    features = embed(method, split, used)
    n, ways, per_class = episodes.shape
    support_labels = class_major_labels(ways, shots, features.device)
    query_labels = class_major_labels(ways, per_class - shots, features.device)
    accuracies = []
    # Fewer episodes at once for wide features (MetaOptNet's flattened 16,000-d map): the heads are
    # batched per episode, so the chunk size does not change the scores.
    chunk_size = max(1, min(EVAL_BATCH_EPISODES, EVAL_CHUNK_ELEMENTS // (ways * per_class * features.shape[1])))
    for start in range(0, n, chunk_size):
        chunk = torch.as_tensor(episodes[start:start + chunk_size], device=features.device)
        episode_features = features[chunk]  # (E, ways, per_class, D)
        e, dim = len(chunk), features.shape[1]
        support = episode_features[:, :, :shots].reshape(e, ways * shots, dim)
        query = episode_features[:, :, shots:].reshape(e, -1, dim)
        scores = head(support, support_labels.expand(e, -1), query, ways, config)
        accuracies.append((scores.argmax(-1) == query_labels).double().mean(1) * 100)
    return torch.cat(accuracies).cpu().numpy()


def evaluate_adapting(method, split, episodes, shots) -> np.ndarray:
    n, ways, per_class = episodes.shape
    support_labels = class_major_labels(ways, shots, split.device)
    query_labels = class_major_labels(ways, per_class - shots, split.device)
    accuracies = np.empty(n)
    for i, episode in enumerate(episodes):
        support = split.gather(episode[:, :shots])
        query = split.gather(episode[:, shots:])
        with method.autocast(evaluation=True):
            scores = method.adapt_and_score(support, support_labels, query, ways).float()
        accuracies[i] = (scores.argmax(-1) == query_labels).double().mean().item() * 100
    return accuracies
