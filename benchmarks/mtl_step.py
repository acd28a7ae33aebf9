"""Time and memory of one training step of every multi-task optimizer, relative to unitary
scalarization, measured in the same run (Kurin et al. 2022 compare the cost of the
specialised optimizers against the plain sum).

Setups:
- ``mnist``: MultiLeNet on real Multi-MNIST training batches (batch 256), 2 tasks; any device.
- ``celeba``: the ResNet-18 CelebA network, 40 tasks, random tensors of the real shapes
  (batch 128, 3x64x64, binary targets); CUDA only unless ``--allow-cpu-celeba``.

A step is exactly the Trainer's: zero grads, ``harness.multitask.step.backward``,
optimiser steps. Two measurements per setup:

- time, in ONE process: every optimizer has its own model and optimiser, and the
  optimizers take steps in turn (a fresh shuffled order each round), so slow drifts of
  the machine's load hit all of them alike. After ``--warmup`` rounds, ``--steps``
  rounds are timed: per optimizer the median wall-clock of its steps (device
  synchronised) and, on the CPU, the median process CPU time (immune to other
  processes on a shared machine when ``--threads 1``);
- memory, one fresh process per optimizer: the peak during ``--warmup`` + 2 steps
  minus what was in use just before them (activations, gradients, the (T, P) matrix of
  per-task gradients, optimiser state). CPU: on Linux, free heap memory is returned
  (``malloc_trim``) and the peak RSS reset (``/proc/self/clear_refs``) after loading,
  then the peak (VmHWM) is read; coarse, since the allocator's reuse shows. GPU:
  ``max_memory_allocated``.

    python benchmarks/mtl_step.py                      # mnist on the CPU, celeba too when CUDA is there
    python benchmarks/mtl_step.py --setups mnist --device cpu --threads 1
"""
from __future__ import annotations

import argparse
import ctypes
import json
import resource
import subprocess
import sys

from timing import interleaved_medians

SETUPS = {"mnist": {"dataset": "multi_mnist", "model": "multilenet", "batch": 256},
          "celeba": {"dataset": "celeba", "model": "resnet18_celeba", "batch": 128}}


class Runner:
    """One optimizer's model, optimisers and batches; ``step()`` is one Trainer step."""

    def __init__(self, setup: str, method: str, device):
        import torch

        from harness.multitask.datasets import DATASETS
        from harness.multitask.models import MODELS
        from harness.multitask.optimizers import OPTIMIZERS

        torch.manual_seed(0)
        spec = SETUPS[setup]
        dataset = DATASETS.get(spec["dataset"])
        self.batches = make_batches(setup, dataset, device)
        self.model = MODELS.get(spec["model"])(dataset.tasks, dropout=True).to(device).train()
        self.mtl = OPTIMIZERS.get(method)(len(dataset.tasks)).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.own = torch.optim.Adam(self.mtl.parameters(), lr=1e-3) if self.mtl.learnable else None
        self.generator = torch.Generator(device=device).manual_seed(0)
        self.count = 0

    def step(self) -> None:
        from harness.multitask import step

        self.optimizer.zero_grad(set_to_none=True)
        if self.own:
            self.own.zero_grad(set_to_none=True)
        x, targets = self.batches[self.count % len(self.batches)]
        step.backward(self.model, self.mtl, x, targets, self.generator)
        self.optimizer.step()
        if self.own:
            self.own.step()
        self.count += 1


def make_batches(setup: str, dataset, device) -> list:
    import torch

    batch = SETUPS[setup]["batch"]
    if setup == "mnist":
        from harness.multitask.batches import DeviceSplit

        data = DeviceSplit(dataset.load("train"), dataset, device)
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0)).to(device).split(batch)
        return [data.batch(indices) for indices in order[:-1]]
    x = torch.randn(batch, 3, 64, 64, device=device)
    return [(x, {t.name: torch.randint(0, 2, (batch,), device=device) for t in dataset.tasks})]


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_all(setup: str, methods: list[str], device, steps: int, warmup: int) -> dict[str, dict]:
    runners = {method: Runner(setup, method, device) for method in methods}
    times = interleaved_medians({m: runner.step for m, runner in runners.items()}, warmup, steps, lambda: sync(device))
    return {m: {"method": m, "space": runners[m].mtl.space, "wall": times[m][0], "cpu": times[m][1]} for m in methods}


def resident(key: str) -> int | None:
    """VmRSS or VmHWM of this process in bytes (Linux), else None."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith(key + ":"))
    except (OSError, StopIteration):
        return None


def reset_peak_rss() -> int:
    """Return free heap memory to the system, reset the peak RSS; the RSS now (bytes)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return resident("VmRSS")
    except OSError:  # not Linux: ru_maxrss cannot be reset, the figure includes loading
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss() -> int:
    return resident("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_one(setup: str, method: str, device: str, steps: int) -> dict:
    """In a fresh process: extra peak memory of ``steps`` training steps."""
    import torch

    device = torch.device(device)
    runner = Runner(setup, method, device)
    sync(device)
    rss_before = reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        gpu_before = torch.cuda.memory_allocated(device)
    for _ in range(steps):
        runner.step()
    sync(device)
    return {"rss": peak_rss() - rss_before,
            "gpu": torch.cuda.max_memory_allocated(device) - gpu_before if device.type == "cuda" else None}


def table(rows: list[dict], cpu_time: bool) -> str:
    base = next(r for r in rows if r["method"] == "unitary")

    def ratio(key, row):
        return f"{row[key] / base[key]:.2f}" if base[key] else "-"

    header = "| optimizer | space | wall ms / step | x unitary |"
    header += " CPU ms / step | x unitary |" if cpu_time else ""
    header += " step CPU MiB | x unitary | step GPU MiB | x unitary |"
    lines = [header, "|---|---|" + "---:|" * (header.count("|") - 3)]
    for r in sorted(rows, key=lambda r: r["cpu" if cpu_time else "wall"]):
        line = f"| {r['method']} | {r['space']} | {1000 * r['wall']:.1f} | {ratio('wall', r)} |"
        line += f" {1000 * r['cpu']:.1f} | {ratio('cpu', r)} |" if cpu_time else ""
        line += f" {r['rss'] / 2**20:.1f} | {ratio('rss', r)} |"
        line += " - | - |" if r["gpu"] is None else f" {r['gpu'] / 2**20:.1f} | {ratio('gpu', r)} |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setups", nargs="+", choices=sorted(SETUPS), default=None,
                        help="default: mnist, plus celeba when CUDA is available")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--methods", nargs="+", default=None, help="default: every registered optimizer")
    parser.add_argument("--steps", type=int, default=None, help="timed rounds (default: mnist 40, celeba 10)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU")
    parser.add_argument("--allow-cpu-celeba", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(memory_one(**json.loads(args.child))))
        return

    from harness.multitask.optimizers import OPTIMIZERS

    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    setups = args.setups or (["mnist", "celeba"] if device.type == "cuda" else ["mnist"])
    if "celeba" in setups and device.type != "cuda" and not args.allow_cpu_celeba:
        parser.error("the celeba setup needs CUDA (or --allow-cpu-celeba)")
    methods = args.methods or OPTIMIZERS.names()
    methods = methods if "unitary" in methods else ["unitary"] + methods
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} torch thread(s)"
    print(f"device {device} ({name}), torch {torch.__version__}", flush=True)
    for setup in setups:
        steps = args.steps or (40 if setup == "mnist" else 10)
        rows = time_all(setup, methods, device, steps, args.warmup)
        for method in methods:
            child = json.dumps({"setup": setup, "method": method, "device": str(device), "steps": args.warmup + 2})
            done = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child", child],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{setup} {method} failed:\n{done.stderr}")
            rows[method].update(json.loads(done.stdout.strip().splitlines()[-1]))
        spec = SETUPS[setup]
        print(f"\n{setup}: {spec['model']}, batch {spec['batch']}, {len(methods)} optimizers taking turns, "
              f"{steps} timed steps each after {args.warmup} warm-up\n")
        print(table(list(rows.values()), cpu_time=device.type == "cpu"), flush=True)


if __name__ == "__main__":
    main()
