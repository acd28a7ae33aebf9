"""One training step of every few-shot method with every backbone, under the GPU settings.

For each (method, backbone) the method is built as the trainer builds it (every
few-shot config key at its default), on a random uint8 split of CIFAR-FS's shape
(64 classes of 600 32x32 RGB images; the step's cost does not depend on pixel
content), and takes optimiser steps as ``Trainer.train_step`` does with
``meta_batch`` 1 and ``augment`` on: one 5-way 5-shot 15-query task gathered and
augmented on the device by the episode engine, the method's ``task_loss``
(``batch_loss`` for methods with ``batched_tasks``) under bf16 autocast,
channels-last tensors and weights, the backbone's forward compiled with
``torch.compile``, backward, Adam. One warm-up step (two when compiling), then
``--steps`` timed steps (device synchronised). Second-order MAML differentiates
through gradients, which torch.compile cannot (no double backward): with compile
on it runs eagerly, and the table says so.

Each case reports ok, or failed with the first line of its error (the others still
run); the script exits 1 when any failed, after printing the table. Run:

    python benchmarks/method_steps.py              # on CUDA: bf16, channels_last and compile all on
    python benchmarks/method_steps.py --device cpu --precision bf16 --compile off --quick

``--quick``: 5-way 1-shot 1-query tasks of 16x16 images, one inner step for the
gradient-based meta-learners (a smoke test of every code path, for CI).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from harness.fewshot.backbones import BACKBONES
from harness.fewshot.datasets._base import Split
from harness.fewshot.engine import SplitTensor
from harness.fewshot.episodes import EpisodeSampler
from harness.fewshot.methods import METHODS

try:
    from harness.fewshot.config import KEYS, REQUIRED
except ImportError:  # before the few-shot keys moved
    from harness.config import KEYS, REQUIRED

CLASSES, PER_CLASS = 64, 600
MEAN, STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)  # CIFAR-100's
NO_DOUBLE_BACKWARD = "eager: torch.compile has no double backward"


@dataclass(frozen=True)
class Task:
    ways: int = 5
    shots: int = 5
    queries: int = 15
    image_size: int = 32
    padding: int = 4  # of the random crop

    @property
    def images(self) -> int:
        return self.ways * (self.shots + self.queries)


FULL, QUICK = Task(), Task(shots=1, queries=1, image_size=16, padding=2)


@dataclass(frozen=True)
class Settings:
    device: torch.device
    bf16: bool
    channels_last: bool
    compile: bool

    @classmethod
    def resolve(cls, device: str, precision: str, channels_last: str, compile: str) -> Settings:
        """``auto`` means what the harness does on that device: on for CUDA (bf16 where supported), off on the CPU."""
        device = torch.device(device)
        cuda = device.type == "cuda"
        bf16 = precision == "bf16" or (precision == "auto" and cuda and torch.cuda.is_bf16_supported())
        return cls(device, bf16, channels_last == "on" or (channels_last == "auto" and cuda),
                   compile == "on" or (compile == "auto" and cuda))

    @property
    def memory_format(self):
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def describe(self) -> str:
        on = {True: "on", False: "off"}
        return (f"bf16 autocast {on[self.bf16]}, channels_last {on[self.channels_last]}, "
                f"torch.compile {on[self.compile]}")


def default_config(**overrides) -> dict:
    """Every few-shot config key at its default, then ``overrides``."""
    config = {name: key.default for name, key in KEYS.items() if key.default is not REQUIRED}
    config.update(overrides)
    return config


def random_split(task: Task, classes: int = CLASSES, per_class: int = PER_CLASS, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    size = task.image_size
    return Split(images=rng.integers(0, 256, (classes * per_class, size, size, 3), dtype=np.uint8),
                 labels=np.repeat(np.arange(classes), per_class), classes=tuple(map(str, range(classes))))


class DatasetFacts:
    """What the episode engine reads from a dataset: normalisation and crop padding."""

    def __init__(self, padding: int):
        self.mean, self.std, self.crop_padding = MEAN, STD, padding


def build_method(name: str, backbone: str, config: dict, task: Task, settings: Settings, num_classes: int = CLASSES):
    """The method as the trainer builds it, moved to the device in its memory format; the
    backbone's forward compiled when asked."""
    torch.manual_seed(0)
    network = BACKBONES.get(backbone)(3, task.image_size)
    method = METHODS.get(name)(network, config, num_classes)
    method.to(settings.device, memory_format=settings.memory_format)
    method.bf16 = settings.bf16
    if settings.compile:
        method.backbone.compile()
    return method


class Stepper:
    """Optimiser steps of one method on random tasks, as ``Trainer.train_step`` takes them
    (one task per step, augmented)."""

    def __init__(self, method, split: Split, task: Task, settings: Settings, lr: float = 1e-3):
        self.method, self.task, self.settings = method, task, settings
        self.images = SplitTensor(split, DatasetFacts(task.padding), settings.device, settings.memory_format)
        self.sampler = EpisodeSampler(split.labels, task.ways, task.shots + task.queries)
        self.rng = np.random.default_rng(0)
        self.augmentation = torch.Generator(device=settings.device).manual_seed(0)
        self.optimizer = torch.optim.Adam(method.parameters(), lr=lr)

    def step(self) -> float:
        method, shots = self.method, self.task.shots
        method.train()
        self.optimizer.zero_grad(set_to_none=True)
        indices, classes = self.sampler.sample(self.rng, 1)
        classes = torch.as_tensor(classes, device=self.settings.device)
        with method.autocast():
            if getattr(method, "batched_tasks", False):
                support = self.images.gather(indices[:, :, :shots], self.augmentation)
                query = self.images.gather(indices[:, :, shots:], self.augmentation)
                loss, _ = method.batch_loss(support, query, classes, shots)
            else:
                loss, _ = method.task_loss(self.images.gather(indices[0], self.augmentation), classes[0], shots)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def timed_steps(self, steps: int) -> list[float]:
        """Seconds of each of ``steps`` steps, device synchronised."""
        seconds = []
        for _ in range(steps):
            synchronize(self.settings.device)
            started = time.perf_counter()
            loss = self.step()
            synchronize(self.settings.device)
            seconds.append(time.perf_counter() - started)
            if not np.isfinite(loss):
                raise FloatingPointError(f"the loss is {loss}")
        return seconds


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:160]


def time_case(method: str, backbone: str, task: Task, settings: Settings, steps: int, split: Split) -> dict:
    overrides = {"ways": task.ways, "shots": task.shots, "queries": task.queries, "backbone": backbone}
    if task is QUICK:
        overrides["inner_steps"] = 1
    torch._dynamo.reset()  # each case compiles afresh (and stays under the recompile limit)
    config = default_config(**overrides)
    stepper = Stepper(build_method(method, backbone, config, task, settings), split, task, settings)
    warmup = stepper.timed_steps(2 if settings.compile else 1)[0]
    return {"ms_per_step": 1000 * statistics.median(stepper.timed_steps(steps)), "first_step_s": warmup,
            "compiled": settings.compile}


def run_case(method: str, backbone: str, task: Task, settings: Settings, steps: int, split: Split) -> dict:
    """One case as a result row. A method whose training differentiates through gradients
    (second-order MAML) cannot be compiled (AOTAutograd has no double backward): with
    compile on, such a case runs eagerly (known from the method's ``second_order``, or
    from that error) and says so."""
    row = {"check": "method step", "case": f"{method} / {backbone}"}
    eager = replace(settings, compile=False)
    try:
        if settings.compile and getattr(METHODS.get(method), "second_order", False):
            row.update(time_case(method, backbone, task, eager, steps, split), note=NO_DOUBLE_BACKWARD)
        else:
            try:
                row.update(time_case(method, backbone, task, settings, steps, split))
            except RuntimeError as error:
                if not (settings.compile and "double backward" in str(error)):
                    raise
                row.update(time_case(method, backbone, task, eager, steps, split), note=NO_DOUBLE_BACKWARD)
    except Exception as error:  # noqa: BLE001 - any failure is a result to report
        return {**row, "status": "failed", "result": first_line(error)}
    row["result"] = f"{row['ms_per_step']:.1f} ms/step, first step {row['first_step_s']:.1f} s"
    if "note" in row:
        row["result"] += f" ({row['note']})"
    return {**row, "status": "ok"}


def table(rows: list[dict]) -> str:
    lines = ["| method / backbone | status | compiled | median step | first step |", "|---|---|---|---:|---:|"]
    for r in rows:
        if r["status"] == "ok":
            compiled = "yes" if r["compiled"] else f"no ({r['note']})" if "note" in r else "no"
            lines.append(f"| {r['case']} | ok | {compiled} | {r['ms_per_step']:.1f} ms | {r['first_step_s']:.1f} s |")
        else:
            lines.append(f"| {r['case']} | **failed**: {r['result']} | | | |")
    return "\n".join(lines)


def write_rows(path: str | None, rows: list[dict]) -> None:
    """The result rows as JSON, rewritten after each case: a run stopped half way keeps what it measured."""
    if path:
        with open(path, "w") as out:
            json.dump(rows, out, indent=1)


def settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="bf16 autocast; auto = on CUDA where supported")
    parser.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto", help="auto = on CUDA")
    parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                        help="torch.compile the backbone's forward; auto = on CUDA")
    parser.add_argument("--threads", type=int, default=None, help="torch threads on the CPU (default: torch's)")
    parser.add_argument("--json", help="also write the result rows to this file (scripts/gpu_check.sh)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    settings_arguments(parser)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case, after one warm-up step")
    parser.add_argument("--quick", action="store_true", help="tiny tasks and one inner step (CI)")
    parser.add_argument("--methods", nargs="+", default=None, help="default: every registered method")
    parser.add_argument("--backbones", nargs="+", default=None, help="default: every registered backbone")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings.resolve(args.device, args.precision, args.channels_last, args.compile)
    task = QUICK if args.quick else FULL
    split = random_split(task)
    print(f"device {settings.device}, torch {torch.__version__}; {settings.describe()}; "
          f"{task.ways}-way {task.shots}-shot {task.queries}-query tasks of {task.image_size}x{task.image_size} "
          f"images; median of {args.steps} steps after one warm-up\n", flush=True)
    rows = []
    for method in args.methods or METHODS.names():
        for backbone in args.backbones or BACKBONES.names():
            rows.append(run_case(method, backbone, task, settings, args.steps, split))
            write_rows(args.json, rows)
    print(table(rows), flush=True)
    raise SystemExit(1 if any(r["status"] != "ok" for r in rows) else 0)


if __name__ == "__main__":
    main()
