"""Training images/s: the harness's on-device pipeline against the conventional one, and the MFU.

Same method (mtl), same backbone, same task per step (5-way 5-shot 15-query, 100
images), same optimiser (Adam), on random uint8 splits of the real shapes
(throughput does not depend on pixel content). Setups: ResNet-12 and Conv-4 at
CIFAR-FS's 32x32 and mini-ImageNet's 84x84.

- harness: the split is one uint8 tensor on the device (``harness.fewshot.engine.
  SplitTensor``), each task is gathered and augmented there, and the method's
  ``task_loss`` runs under bf16 autocast, with channels-last tensors and the backbone's
  forward compiled (``torch.compile``) where the device supports them (``auto``: on
  CUDA, off on the CPU; see ``--precision``, ``--channels-last``, ``--compile``);
- conventional: a torch DataLoader whose workers apply PIL/torchvision transforms
  per image (random crop with padding, colour jitter 0.4, horizontal flip, ToTensor,
  Normalize; ``benchmarks/episodes.py``), batches copied to the device, fp32, no
  compile.

Each pipeline: warm-up steps (compilation, workers starting), then ``--steps`` timed
steps, device synchronised. MFU: the FLOPs of one training step (forward + backward,
counted with ``torch.utils.flop_counter.FlopCounterMode`` on an eager step) times the
harness's steps/s, over the GPU's bf16 dense peak (``PEAK_BF16_TFLOPS``); n/a on the
CPU or a GPU not in the table. Run:

    python benchmarks/train_step.py                 # CUDA when available, 30 timed steps
    python benchmarks/train_step.py --device cpu --steps 2
    python benchmarks/train_step.py --quick         # 10-image tasks, 1 timed step, no ResNet-12 at 84x84 (CI)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from episodes import EpisodeBatches, ImageDataset  # noqa: E402  (the conventional pipeline)
from method_steps import (  # noqa: E402
    QUICK,
    Settings,
    Stepper,
    Task,
    build_method,
    default_config,
    first_line,
    random_split,
    settings_arguments,
    synchronize,
    write_rows,
)

from harness.fewshot.episodes import EpisodeSampler  # noqa: E402

SETUPS = {"resnet12-32": ("resnet12", 32, 4), "resnet12-84": ("resnet12", 84, 8),  # backbone, size, crop padding
          "conv4-32": ("conv4", 32, 4), "conv4-84": ("conv4", 84, 8)}
QUICK_SETUPS = ("resnet12-32", "conv4-32", "conv4-84")  # ResNet-12 at 84x84 is ~200 GFLOP even for 10 images
SHAPE_NAMES = {32: "32x32 (cifar_fs)", 84: "84x84 (mini_imagenet)"}
# Dense bf16 peak, TFLOP/s, by a substring of torch.cuda.get_device_name(); first match wins.
PEAK_BF16_TFLOPS = (("H100 PCIe", 756), ("H100 NVL", 835), ("H100", 989), ("H200", 989), ("GH200", 989),
                    ("A100", 312), ("L40S", 362), ("L4", 121), ("A10G", 70), ("A10", 125))


class LabelledImages(ImageDataset):
    """The conventional dataset, also returning each image's class (the MTL head needs the task's classes)."""

    def __init__(self, split, size, padding):
        super().__init__(split.images, size, padding)
        self.labels = split.labels

    def __getitem__(self, index):
        return super().__getitem__(index), int(self.labels[index])


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops * 1e12 for key, tflops in PEAK_BF16_TFLOPS if key in name), None)


def warmup_steps(settings: Settings) -> int:
    return 2 if settings.compile else 1  # compiling may take a second step (recompilation)


def harness_pipeline(backbone, task, split, settings, steps) -> float:
    """Seconds for ``steps`` steps of the harness's pipeline."""
    config = default_config(ways=task.ways, shots=task.shots, queries=task.queries, backbone=backbone)
    stepper = Stepper(build_method("mtl", backbone, config, task, settings), split, task, settings)
    stepper.timed_steps(warmup_steps(settings))
    return sum(stepper.timed_steps(steps))


def conventional_pipeline(backbone, task, split, device, steps, workers) -> tuple[float, float]:
    """(seconds for ``steps`` steps, FLOPs of one step) of the conventional pipeline."""
    settings = Settings(device, bf16=False, channels_last=False, compile=False)
    config = default_config(ways=task.ways, shots=task.shots, queries=task.queries, backbone=backbone)
    method = build_method("mtl", backbone, config, task, settings)
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-3)
    sampler = EpisodeSampler(split.labels, task.ways, task.shots + task.queries)
    loader = DataLoader(LabelledImages(split, task.image_size, task.padding),
                        batch_sampler=EpisodeBatches(sampler, 2 + steps),
                        num_workers=workers, pin_memory=device.type == "cuda")

    def step(images, labels):
        method.train()
        optimizer.zero_grad(set_to_none=True)
        images = images.to(device, non_blocking=True)
        classes = labels.view(task.ways, -1)[:, 0].to(device)  # episodes are class-major
        loss, _ = method.task_loss(images, classes, task.shots)
        loss.backward()
        optimizer.step()

    batches = iter(loader)
    with FlopCounterMode(display=False) as counter:
        step(*next(batches))  # warm-up steps: the first is counted
    step(*next(batches))
    synchronize(device)
    started = time.perf_counter()
    for images, labels in batches:
        step(images, labels)
    synchronize(device)
    return time.perf_counter() - started, counter.get_total_flops()


def measure(backbone, size, padding, task, settings, steps, workers) -> dict:
    name = f"{backbone} {SHAPE_NAMES.get(size, f'{size}x{size}')}"
    row = {"check": "train step", "case": name}
    task = Task(task.ways, task.shots, task.queries, size, padding)
    try:
        split = random_split(task, per_class=max(100, task.shots + task.queries))
        slow, flops = conventional_pipeline(backbone, task, split, settings.device, steps, workers)
        torch._dynamo.reset()
        fast = harness_pipeline(backbone, task, split, settings, steps)
    except Exception as error:  # noqa: BLE001 - a failure is a result to report
        return {**row, "status": "failed", "result": first_line(error)}
    images = task.images * steps
    peak = peak_flops(settings.device)
    achieved = flops * steps / fast
    row.update(status="ok", conventional_images_s=images / slow, harness_images_s=images / fast,
               gflop_per_step=flops / 1e9, harness_tflops=achieved / 1e12,
               mfu=achieved / peak if peak else None)
    mfu = f"{100 * row['mfu']:.1f}%" if peak else "n/a"
    row["result"] = (f"harness {row['harness_images_s']:,.0f} img/s vs conventional "
                     f"{row['conventional_images_s']:,.0f} img/s ({slow / fast:.1f}x), MFU {mfu}")
    return row


def table(rows: list[dict]) -> str:
    lines = ["| setup | conventional img/s | harness img/s | x faster | GFLOP/step | harness TFLOP/s | MFU |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['case']} | **failed**: {r['result']} | | | | | |")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        lines.append(f"| {r['case']} | {r['conventional_images_s']:,.0f} | {r['harness_images_s']:,.0f} | "
                     f"{r['harness_images_s'] / r['conventional_images_s']:.1f} | {r['gflop_per_step']:.1f} | "
                     f"{r['harness_tflops']:.2f} | {mfu} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    settings_arguments(parser)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per pipeline (default: 30 on CUDA, 2 on the CPU)")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8), help="DataLoader workers")
    parser.add_argument("--setups", nargs="+", choices=sorted(SETUPS), default=None,
                        help=f"default: all; with --quick {' '.join(QUICK_SETUPS)}")
    parser.add_argument("--quick", action="store_true", help="5-way 1-shot 1-query tasks, 1 timed step (CI)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings.resolve(args.device, args.precision, args.channels_last, args.compile)
    task = QUICK if args.quick else Task()
    steps = 1 if args.quick else args.steps or (30 if settings.device.type == "cuda" else 2)
    name = torch.cuda.get_device_name(settings.device) if settings.device.type == "cuda" else "CPU"
    print(f"device {settings.device} ({name}), {os.cpu_count()} CPU cores, torch {torch.__version__}, "
          f"{args.workers} DataLoader workers; harness: {settings.describe()}; mtl, {task.ways}-way "
          f"{task.shots}-shot {task.queries}-query tasks ({task.images} images per step), Adam; "
          f"{steps} timed steps after {warmup_steps(settings)} warm-up (conventional: 2)\n", flush=True)
    setups = args.setups or (QUICK_SETUPS if args.quick else SETUPS)
    rows = []
    for name in setups:
        rows.append(measure(*SETUPS[name], task, settings, steps, args.workers))
        write_rows(args.json, rows)
    print(table(rows), flush=True)
    raise SystemExit(1 if any(r["status"] != "ok" for r in rows) else 0)


if __name__ == "__main__":
    main()
