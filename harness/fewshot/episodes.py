"""N-way K-shot episodes as index arrays, and the fixed evaluation sets.

An episode is an int64 array (ways, per_class) of image indices into one split,
class-major: row c holds the images of the episode's c-th class. Sampling is
vectorised numpy on a seeded Generator, so it is identical on every machine.
"""
from __future__ import annotations

import hashlib

import numpy as np

EVAL_CHUNK = 100


class EpisodeSampler:
    def __init__(self, labels: np.ndarray, ways: int, per_class: int):
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels)
        if ways > len(counts):
            raise ValueError(f"{ways}-way episodes need {ways} classes; the split has {len(counts)}")
        if per_class > counts.min():
            raise ValueError(f"{per_class} images per class requested; the smallest class has {counts.min()}")
        self.ways, self.per_class = ways, per_class
        self.counts = counts
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.order = order
        self.num_classes = len(counts)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n episodes: (image indices (n, ways, per_class), class ids (n, ways))."""
        classes = np.argsort(rng.random((n, self.num_classes)), axis=1)[:, : self.ways]
        keys = rng.random((n, self.ways, int(self.counts.max())))
        keys[np.arange(keys.shape[-1]) >= self.counts[classes][..., None]] = np.inf
        positions = np.argsort(keys, axis=2)[:, :, : self.per_class]
        indices = self.order[self.starts[classes][..., None] + positions]
        return indices, classes


def episode_seed(*parts) -> int:
    """A seed derived from named parts, stable across machines and Python versions."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def fixed_episodes(split: str, labels: np.ndarray, ways: int, shots: int, queries: int, n: int, seed: int) -> np.ndarray:
    """The evaluation episodes (n, ways, shots + queries) for (split, ways, shots, queries, seed):
    the same for every method and training seed. Drawn in fixed chunks, so episode i does
    not depend on n (a longer set extends a shorter one)."""
    rng = np.random.default_rng(episode_seed("eval", split, ways, shots, queries, seed))
    sampler = EpisodeSampler(labels, ways, shots + queries)
    chunks = [sampler.sample(rng, EVAL_CHUNK)[0] for _ in range(-(-n // EVAL_CHUNK))]
    return np.concatenate(chunks)[:n]
