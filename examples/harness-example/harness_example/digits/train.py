"""The digits trainer (harness's trainer contract, ``harness.api``): build the method,
train it epoch by epoch, predict the test images, return the metrics.

Resumable: after every epoch but the last, the method's state, the epoch counter and
the training time are written to the checkpoint atomically (a temporary file, fsync,
then a rename), and a stop request (preemption, SIGTERM) is honoured right after that
write. A Trainer built with the same config and checkpoint path continues from it.
No torch here: a scikit-learn method runs without it.

The runs are tiny, so training and prediction run with one BLAS/OpenMP thread
(threadpoolctl): harness hands a worker's thread count to torch only, and OpenBLAS
spinning on a busy machine's cores made scikit-learn's L-BFGS 100x slower here.
"""
from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from harness.api import StopRequested
from harness_example.digits.family import DATASETS, METHODS


def write_atomic(path: Path, payload: bytes) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


class Trainer:
    def __init__(self, config: dict, checkpoint: Path | None = None, log: Callable[[str], None] = print):
        self.config, self.log = config, log
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.stop_requested = False
        started = time.perf_counter()
        self.splits = DATASETS.get(config["dataset"]).load()
        self.method = METHODS.get(config["method"])(config)
        self.epoch, self.train_seconds = 0, 0.0
        self.load_seconds = time.perf_counter() - started
        self.resumed_from = self.resume()

    def save(self) -> None:
        if self.checkpoint is not None:
            state = {"epoch": self.epoch, "train_seconds": self.train_seconds, "method": self.method.state_dict()}
            write_atomic(self.checkpoint, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    def resume(self) -> int | None:
        if self.checkpoint is None or not self.checkpoint.exists():
            return None
        state = pickle.loads(self.checkpoint.read_bytes())
        self.method.load_state_dict(state["method"])
        self.epoch, self.train_seconds = state["epoch"], state["train_seconds"]
        self.log(f"resumed from checkpoint at epoch {self.epoch}")
        return self.epoch

    def train(self) -> None:
        train, epochs = self.splits["train"], self.method.epochs
        while self.epoch < epochs:
            started = time.perf_counter()
            note = self.method.train_epoch(train.images, train.labels, self.epoch)
            self.epoch += 1
            self.train_seconds += time.perf_counter() - started
            self.log(f"epoch {self.epoch}/{epochs}" + (f"  {note}" if note else ""))
            if self.epoch < epochs:
                self.save()
                if self.stop_requested:
                    raise StopRequested(f"stopped after epoch {self.epoch}; checkpoint saved")

    def run(self) -> dict:
        with threadpool_limits(limits=1):
            self.train()
            started = time.perf_counter()
            test, train = self.splits["test"], self.splits["train"]
            correct = np.where(np.asarray(self.method.predict(test.images)) == test.labels, 100.0, 0.0)
            eval_seconds = time.perf_counter() - started
            train_accuracy = float(np.mean(np.asarray(self.method.predict(train.images)) == train.labels) * 100)
        self.log(f"test accuracy {correct.mean():.2f}% ({int(correct.sum() / 100)}/{len(correct)} images)")
        return {
            "metrics": {"accuracy": float(correct.mean()), "correct": correct.tolist(), "train_accuracy": train_accuracy},
            "timing": {"load_seconds": self.load_seconds, "train_seconds": self.train_seconds,
                       "eval_seconds": eval_seconds, "epochs": self.epoch},
            "details": {"device": "cpu", "resumed_from_epoch": self.resumed_from,
                        "train_images": len(train.labels), "test_images": len(test.labels)},
        }
