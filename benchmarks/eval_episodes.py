"""Logistic-regression evaluation: the harness's batched exact head against scikit-learn per episode.

Both classify the same fixed 5-way test episodes (15 queries per class, 1 and 5
shots) of the same real features: the Omniglot test images shipped with the
package (50 characters x 20 drawings, 28x28) embedded once by a backbone with its
seeded random initialisation, in eval mode (ResNet-12 by default: 640-d features).

- ours: ``harness.fewshot.heads.logreg`` (scikit-learn's C=3 objective, solved
  exactly), on chunks of episodes as ``harness.fewshot.evaluate`` calls it;
- scikit-learn, the conventional way: one ``LogisticRegression(C=3, max_iter=1000)``
  (default lbfgs) fitted per episode on the L2-normalised support features, then
  ``predict`` on the normalised queries.

Timed: the head call (ours, device synchronised) and normalise + fit + predict
(scikit-learn); embedding and slicing out the episodes are done before, for both.
The two take turns chunk by chunk, so a shared machine's load drifts hit both
alike. ``--threads`` caps torch's threads and, through threadpoolctl, the BLAS
threads scikit-learn uses, for both (default 1: a harness run evaluates on
``resources.cpus`` threads, 1 unless the suite says otherwise); ``--threads 0``
leaves both libraries at their defaults (every core), as a script that sets nothing
gets them. (On the CPU our head runs on one torch thread whatever the setting; see
its module docstring.) The check passes when the accuracies agree within 0.5
points. Run:

    python benchmarks/eval_episodes.py                       # 2000 episodes per shot count
    python benchmarks/eval_episodes.py --quick               # 50 episodes (CI)
    python benchmarks/eval_episodes.py --episodes 400 --threads 0 --backbone conv4
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression  # imported before threadpoolctl looks for BLAS libraries
from threadpoolctl import threadpool_info, threadpool_limits  # comes with scikit-learn

from harness.fewshot.backbones import BACKBONES
from harness.fewshot.datasets import DATASETS
from harness.fewshot.engine import SplitTensor
from harness.fewshot.episodes import fixed_episodes
from harness.fewshot.evaluate import EVAL_BATCH_EPISODES
from harness.fewshot.heads import HEADS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from method_steps import first_line, write_rows  # noqa: E402

CPU = torch.device("cpu")

WAYS, QUERIES, C = 5, 15, 3.0
SHOTS = (1, 5)
EMBED_BATCH = 250
AGREEMENT_POINTS = 0.5  # the check: accuracies within this many points


@torch.no_grad()
def omniglot_features(backbone: str, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Every Omniglot test image through a seeded, untrained backbone: (features (N, D) float32, labels)."""
    dataset = DATASETS.get("omniglot")
    split = dataset.load("test")
    torch.manual_seed(seed)
    network = BACKBONES.get(backbone)(dataset.channels, dataset.image_size).to(device).eval()
    images = SplitTensor(split, dataset, device)
    indices = np.arange(len(split.labels))
    features = torch.cat([network(images.gather(indices[start:start + EMBED_BATCH])).float()
                          for start in range(0, len(indices), EMBED_BATCH)])
    return features, split.labels


def episode_chunks(features, labels, shots, episodes, seed=0):
    """The fixed test episodes in chunks: (support (E, ways*shots, D), support labels, query, query labels)."""
    indices = torch.as_tensor(fixed_episodes("test", labels, WAYS, shots, QUERIES, episodes, seed), device=features.device)
    support_labels = torch.arange(WAYS, device=features.device).repeat_interleave(shots)
    query_labels = torch.arange(WAYS, device=features.device).repeat_interleave(QUERIES)
    for start in range(0, episodes, EVAL_BATCH_EPISODES):
        chunk = features[indices[start:start + EVAL_BATCH_EPISODES]]  # (E, ways, shots + queries, D)
        e, dim = len(chunk), features.shape[1]
        yield (chunk[:, :, :shots].reshape(e, -1, dim), support_labels.expand(e, -1),
               chunk[:, :, shots:].reshape(e, -1, dim), query_labels)


def ours(support, support_labels, query) -> torch.Tensor:
    return HEADS.get("logreg")(support, support_labels, query, WAYS, {"logreg_C": C}).argmax(-1)


def sklearn_per_episode(support: np.ndarray, support_labels: np.ndarray, query: np.ndarray) -> np.ndarray:
    def unit_rows(x):
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    return np.stack([LogisticRegression(C=C, max_iter=1000).fit(unit_rows(s), y).predict(unit_rows(q))
                     for s, y, q in zip(support, support_labels, query)])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function, *args, device=CPU):
    synchronize(device)
    started = time.perf_counter()
    result = function(*args)
    synchronize(device)
    return result, time.perf_counter() - started


def compare(features, labels, shots: int, episodes: int) -> dict:
    """Both heads on the same episodes, taking turns per chunk: seconds and accuracy (%) of each."""
    device = features.device
    first = next(episode_chunks(features, labels, shots, 2))
    ours(*first[:3]), sklearn_per_episode(*(t.cpu().numpy() for t in first[:3]))  # warm-up
    seconds = {"ours": 0.0, "sklearn": 0.0}
    correct = {"ours": 0.0, "sklearn": 0.0}
    for support, support_labels, query, query_labels in episode_chunks(features, labels, shots, episodes):
        on_host = [t.cpu().numpy() for t in (support, support_labels, query)]
        predicted, took = timed(ours, support, support_labels, query, device=device)
        seconds["ours"] += took
        correct["ours"] += (predicted == query_labels).double().sum().item()
        predicted, took = timed(sklearn_per_episode, *on_host)
        seconds["sklearn"] += took
        correct["sklearn"] += (predicted == query_labels.cpu().numpy()).sum()
    total = episodes * WAYS * QUERIES
    return {"shots": shots, "episodes": episodes, "seconds": seconds,
            "accuracy": {name: 100 * float(count) / total for name, count in correct.items()}}


def result_row(shots: int, episodes: int, features, labels) -> dict:
    row = {"check": "logreg eval", "case": f"{WAYS}-way {shots}-shot, {episodes} episodes",
           "shots": shots, "episodes": episodes}
    try:
        row.update(compare(features, labels, shots, episodes))
    except Exception as error:  # noqa: BLE001 - a failure is a result to report
        return {**row, "status": "failed", "result": first_line(error)}
    s, a = row["seconds"], row["accuracy"]
    difference = a["ours"] - a["sklearn"]
    row["status"] = "ok" if abs(difference) <= AGREEMENT_POINTS else "failed"
    row["result"] = (f"ours {s['ours']:.3f} s vs sklearn {s['sklearn']:.2f} s ({s['sklearn'] / s['ours']:.1f}x); "
                     f"accuracy {a['ours']:.2f}% vs {a['sklearn']:.2f}% ({difference:+.2f} points)")
    return row


def table(rows: list[dict]) -> str:
    lines = ["| shots | episodes | ours s | sklearn s | x faster | ours acc % | sklearn acc % | diff (points) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "seconds" not in r:
            lines.append(f"| {r['shots']} | {r['episodes']} | **failed**: {r['result']} | | | | | |")
            continue
        s, a = r["seconds"], r["accuracy"]
        lines.append(f"| {r['shots']} | {r['episodes']} | {s['ours']:.3f} | {s['sklearn']:.2f} | "
                     f"{s['sklearn'] / s['ours']:.1f} | {a['ours']:.2f} | {a['sklearn']:.2f} | "
                     f"{a['ours'] - a['sklearn']:+.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and BLAS threads, for both (default 1; 0 = the libraries' defaults)")
    parser.add_argument("--episodes", type=int, default=2000, help="episodes per shot count")
    parser.add_argument("--backbone", default="resnet12", choices=BACKBONES.names())
    parser.add_argument("--quick", action="store_true", help="50 episodes per shot count (CI)")
    parser.add_argument("--json", help="also write the result rows to this file (scripts/gpu_check.sh)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    episodes = 50 if args.quick else args.episodes
    features, labels = omniglot_features(args.backbone, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    threads = args.threads or "default"
    print(f"device {device} ({name}), {os.cpu_count()} CPU cores, threads: {threads} (torch {torch.get_num_threads()}), "
          f"torch {torch.__version__}")
    print(f"{WAYS}-way {QUERIES}-query Omniglot test episodes, {features.shape[1]}-d features "
          f"(untrained {args.backbone}); scikit-learn LogisticRegression(C={C:g}, max_iter=1000) per episode")
    rows = []
    with threadpool_limits(limits=args.threads) if args.threads else contextlib.nullcontext():
        pools = ", ".join(f"{pool['internal_api']} {pool['num_threads']}" for pool in threadpool_info())
        print(f"thread pools (library, threads): {pools}\n", flush=True)
        for shots in SHOTS:
            rows.append(result_row(shots, episodes, features, labels))
            write_rows(args.json, rows)
    print(table(rows), flush=True)
    raise SystemExit(1 if any(r["status"] != "ok" for r in rows) else 0)


if __name__ == "__main__":
    main()
