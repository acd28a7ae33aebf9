"""Cost of the RL family (Kurin et al. 2022, Meta-World with multi-task SAC), in one run:

1. seconds per SAC update of every multi-task optimizer, relative to ``unitary``, at MT10
   and MT50 (T = 10 or 50 tasks): the paper's networks (3 x 400, observation 39, action 4)
   and batch (1280 transitions drawn uniformly from a buffer of random rows of the real
   shapes, every task present). An update is exactly the trainer's (sample, critic,
   actor, temperature, target). In ONE process the optimizers take updates in turn (a
   fresh shuffled order each round) after ``--warmup`` rounds; per optimizer the median
   wall-clock (device synchronised) and, on the CPU, the median process CPU time (immune
   to other processes when ``--threads 1``) of ``--updates`` updates;
2. the per-task gradient methods of ``harness.rl.task_gradients`` (segment, batched, loop)
   inside a pcgrad update, against each other;
3. env steps per second of the real metaworld 3 vector envs (fixed goals, horizon 150,
   uniformly random actions), their build time, and the random policy's success rate per
   task under the evaluation protocol (success at any step of an episode), over
   ``--random-episodes`` episodes for each seed of ``--seeds``.

    python benchmarks/rl_step.py --device cpu --threads 1
    python benchmarks/rl_step.py --device cuda --updates 40      # on a GPU
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from timing import interleaved_medians

from harness.multitask.optimizers import OPTIMIZERS

SHAPES = {"mt10": 10, "mt50": 50}
OBS, ACTIONS = 39, 4


class Runner:
    """One optimizer's SAC agent and a buffer of random rows; ``update()`` is one trainer update."""

    def __init__(self, tasks: int, method: str, device, gradients: str = "segment", batch: int = 1280):
        import numpy as np
        import torch

        from harness.rl.buffer import ReplayBuffer
        from harness.rl.config import alpha_uses_method, optimizer_options, resolved
        from harness.rl.sac import SAC

        config = resolved({"dataset": "mt10", "method": method, "seed": 0, "batch_size": batch})
        self.agent = SAC(OBS, ACTIONS, tasks, config, device, torch.Generator().manual_seed(0),
                         optimizer_options(config), alpha_uses_method(config), gradients)
        self.rng = np.random.default_rng(0)
        self.buffer = ReplayBuffer(200 * tasks, OBS, ACTIONS, tasks, device)
        for _ in range(200):
            self.buffer.add(self.rng.normal(size=(tasks, OBS)), self.rng.uniform(-1, 1, (tasks, ACTIONS)),
                            self.rng.gamma(2.0, size=tasks), self.rng.normal(size=(tasks, OBS)), np.ones(tasks),
                            np.arange(tasks))
        self.noise = torch.Generator(device=device).manual_seed(1)
        self.method_generator = torch.Generator(device=device).manual_seed(2)
        self.batch = batch

    def update(self) -> None:
        self.agent.update(self.buffer.sample(self.batch, self.rng, True), self.noise, self.method_generator)


def time_runners(runners: dict, device, warmup: int, updates: int) -> dict:
    """name -> (median wall seconds, median CPU seconds) per update, taken in shuffled turns."""
    from harness.training import synchronize

    return interleaved_medians({name: runner.update for name, runner in runners.items()}, warmup, updates,
                               lambda: synchronize(device))


def print_table(title: str, times: dict, reference: str, cpu_too: bool) -> None:
    print(f"\n{title}")
    head = f"{'':18s} {'wall ms':>9s} {'× ' + reference:>12s}"
    print(head + (f" {'CPU ms':>9s} {'× ' + reference:>12s}" if cpu_too else ""))
    ref_wall, ref_cpu = times[reference]
    for name, (w, c) in times.items():
        line = f"{name:18s} {w * 1000:9.1f} {w / ref_wall:12.2f}"
        print(line + (f" {c * 1000:9.1f} {c / ref_cpu:12.2f}" if cpu_too else ""))


def update_costs(args, device) -> None:
    cpu_too = device.type == "cpu"
    for name in args.benchmarks:
        tasks = SHAPES[name]
        methods = args.methods or OPTIMIZERS.names()
        runners = {method: Runner(tasks, method, device) for method in methods}
        times = time_runners(runners, device, args.warmup, args.updates)
        print_table(f"{name}: seconds per update (T = {tasks}, batch 1280, 3 x 400; per-task gradients: segment)",
                    dict(sorted(times.items(), key=lambda item: item[1][0])), "unitary", cpu_too)
        del runners
        grads = {f"pcgrad/{g}": Runner(tasks, "pcgrad", device, g) for g in args.gradients}
        grads["unitary"] = Runner(tasks, "unitary", device)
        times = time_runners(grads, device, args.warmup, max(3, args.updates // 4))
        print_table(f"{name}: pcgrad update by per-task gradient method", times, "unitary", cpu_too)


def env_costs(args) -> None:
    import numpy as np

    from harness.rl.benchmarks import BENCHMARKS

    for name in args.env_benchmarks:
        benchmark = BENCHMARKS.get(name)
        hits, episodes, stepping, steps = np.zeros(len(benchmark.tasks)), 0, 0.0, 0
        builds = []
        for seed in args.seeds:
            started = time.perf_counter()
            envs = benchmark.make_envs(seed, 150, "v1", False)
            builds.append(time.perf_counter() - started)
            rng = np.random.default_rng(seed)
            for _ in range(args.random_episodes):
                envs.reset()
                success = np.zeros(envs.num_tasks, dtype=bool)
                for _ in range(envs.horizon):
                    action = rng.uniform(-1, 1, size=(envs.num_tasks, envs.action_dim)).astype(np.float32)
                    started = time.perf_counter()
                    _, _, step_success = envs.step(action)
                    stepping += time.perf_counter() - started
                    steps += envs.num_tasks
                    success |= step_success > 0
                hits += success
                episodes += 1
            envs.close()
        print(f"\n{name}: real vector env (sync, fixed goals, horizon 150, random actions): "
              f"{steps / stepping:,.0f} env steps/s; built in {statistics.mean(builds):.1f} s")
        rates = 100 * hits / episodes
        print(f"random policy success, {episodes} episodes per task (seeds {', '.join(map(str, args.seeds))}): "
              f"mean {rates.mean():.1f}%")
        for task, rate in zip(benchmark.tasks, rates):
            if rate > 0 or len(benchmark.tasks) <= 10:
                print(f"  {task:28s} {rate:5.1f}%")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--benchmarks", nargs="*", default=["mt10", "mt50"], choices=sorted(SHAPES))
    parser.add_argument("--methods", nargs="*", default=None, help="default: all 12")
    parser.add_argument("--gradients", nargs="*", default=["segment", "batched", "loop"])
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--updates", type=int, default=12)
    parser.add_argument("--env-benchmarks", nargs="*", default=["mt10", "mt50"], choices=sorted(SHAPES))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    parser.add_argument("--random-episodes", type=int, default=10)
    args = parser.parse_args(argv)

    import torch

    from harness.training import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads; python {sys.version.split()[0]}")
    if args.benchmarks:
        update_costs(args, device)
    if args.env_benchmarks:
        env_costs(args)


if __name__ == "__main__":
    main()
