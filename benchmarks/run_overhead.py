"""What a local run costs beyond its trainer's own work: `harness run --cluster local`.

Writes, in a temp folder, a tiny family as a suite's local plugin (``busywork.py``
declares it without torch; its trainer, ``busywork_train.py``, imports torch as real
trainers do and keeps one CPU busy for ``--work`` seconds of CPU time, with small
matrix products), and a suite of ``--runs`` runs of it. Then, in one go, for each way
of running local runs (today's default and, where this harness has `--executor`, each
executor), alternately ``--repeat`` times, it times the real command line

    harness run SUITE --cluster local --quiet --max-parallel P [--executor X]

into a fresh results folder, and reads each run's trainer time (``timing.train_seconds``)
from its record. The overhead per run is (wall-clock x P - the trainers' time) / runs:
what each run cost beyond its work, the command's own start and report included. The
same command for one run of the suite splits it: what each further run adds (the
difference between the two launches, per run) and what every launch pays once (the
command, the fork server's start). Wall-clock stretches with the machine's load, so
the same split of the CPU time of the whole process tree (launcher, servers, workers)
beyond the trainers' CPU work (``--work`` each) is shown too. Also timed: the command
once everything is done (nothing to run). Run:

    python benchmarks/run_overhead.py [--runs 9] [--work 2] [--parallel 1] [--repeat 1]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from tabulate import tabulate

FAMILY = '''
"""A family whose runs only keep a CPU busy (benchmarks/run_overhead.py). No torch here."""
from harness.api import REQUIRED, Family, Key, Metric, Registry, register

DATASETS = Registry("busywork.dataset")
METHODS = Registry("busywork.method")


@register("busywork.dataset", "nothing", version="1")
class Nothing:
    """No data."""


@register("busywork.method", "busy", version="1")
class Busy:
    """Matrix products until the run's CPU time is spent."""


FAMILY = Family(
    name="busywork", version="1", help="runs that keep one CPU busy for work_s seconds",
    keys={"dataset": Key(str, REQUIRED, "dataset", choices=DATASETS),
          "method": Key(str, REQUIRED, "method", choices=METHODS),
          "seed": Key(int, REQUIRED, "seed", minimum=0),
          "work_s": Key(float, 2.0, "CPU seconds of work", minimum=0.0)},
    trainer="busywork_train:Trainer",
    metrics=(Metric("work_seconds", "lower", "s", help="wall-clock of the work"),),
)
'''

TRAINER = '''
"""Keeps one CPU busy for config["work_s"] seconds of CPU time."""
import time

import torch


class Trainer:
    def __init__(self, config, checkpoint=None, log=print):
        self.config, self.log, self.stop_requested = config, log, False

    def run(self):
        generator = torch.Generator().manual_seed(self.config["seed"])
        matrix = torch.rand(64, 64, generator=generator)
        started, cpu = time.perf_counter(), time.process_time()
        while time.process_time() - cpu < self.config["work_s"]:
            matrix = torch.tanh(matrix @ matrix)
        seconds = time.perf_counter() - started
        self.log(f"worked {seconds:.3f} s")
        return {"metrics": {"work_seconds": seconds}, "timing": {"train_seconds": seconds, "eval_seconds": 0.0},
                "details": {"device": "cpu"}}
'''

SUITE = """
name: overhead
family: busywork
plugins: [busywork.py]
paper: benchmarks/run_overhead.py
defaults: {{work_s: {work}}}
grid:
  dataset: [nothing]
  method: [busy]
  seed: {seeds}
resources: {{cpus: 1, mem_gb: 1, timeout_min: 10}}
"""


def write_suite(folder: Path, runs: int, work: float) -> Path:
    (folder / "busywork.py").write_text(textwrap.dedent(FAMILY))
    (folder / "busywork_train.py").write_text(textwrap.dedent(TRAINER))
    suite = folder / "overhead.yaml"
    suite.write_text(SUITE.format(work=work, seeds=list(range(runs))))
    return suite


def executors() -> list[str]:
    """The values of `harness run --executor` this harness knows (none before it had the flag)."""
    shown = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--help"], capture_output=True, text=True,
                           check=True).stdout
    if "--executor" not in shown:
        return []
    listed = shown.split("--executor", 1)[1].split("{", 1)[1].split("}", 1)[0]
    return listed.split(",")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def launch(suite: Path, results: Path, parallel: int, executor: str | None, *more: str) -> tuple[float, float]:
    """Wall-clock and CPU seconds (its whole process tree) of one `harness run` into ``results``."""
    command = [sys.executable, "-m", "harness.cli", "--results", str(results), "run", str(suite), "--cluster", "local",
               "--quiet", "--max-parallel", str(parallel), *more] + (["--executor", executor] if executor else [])
    started, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, check=False, cwd=suite.parent, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return wall, cpu


def measure(suite: Path, results: Path, parallel: int, executor: str | None, runs: int, *more: str) -> tuple:
    """(wall-clock s, CPU s, the trainers' seconds) of one launch of ``runs`` runs."""
    wall, cpu = launch(suite, results, parallel, executor, *more)
    work = [json.loads(path.read_text())["timing"]["train_seconds"] for path in results.glob("overhead/*/record.json")]
    if len(work) != runs:
        raise SystemExit(f"{executor}: {len(work)} records for {runs} runs")
    return wall, cpu, sum(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--work", type=float, default=2.0, help="CPU seconds each run works")
    parser.add_argument("--parallel", type=int, default=1, help="--max-parallel of every launch")
    parser.add_argument("--repeat", type=int, default=1, help="launches per way, alternated (medians shown)")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be >= 2 (a one-run launch is timed beside it)")
    known = executors()
    ways = {"default (this harness)": None} if not known else {f"--executor {name}": name for name in known}
    measured = {way: [] for way in ways}
    with tempfile.TemporaryDirectory(prefix="harness-overhead-") as temp:
        suite = write_suite(Path(temp), args.runs, args.work)
        for attempt in range(args.repeat):
            for way, executor in ways.items():
                many = measure(suite, Path(temp) / f"{attempt}-{executor}-all", args.parallel, executor, args.runs)
                one = measure(suite, Path(temp) / f"{attempt}-{executor}-one", args.parallel, executor, 1,
                              "--filter", "seed=0")
                measured[way].append(many + one)
        idle = launch(suite, Path(temp) / f"{attempt}-{executor}-all", args.parallel, executor)  # nothing to run
    table, overhead = [], {}
    n, p = args.runs, args.parallel
    for way, rounds in measured.items():
        wall, cpu, work, wall_1, cpu_1, work_1 = (statistics.median(r[i] for r in rounds) for i in range(6))
        overhead[way] = (wall * p - work) / n
        marginal = ((wall - wall_1) * p - (work - work_1)) / (n - 1)
        cpu_marginal = (cpu - cpu_1) / (n - 1) - args.work
        table.append([way, n, p, f"{wall:.1f}", f"{work:.1f}", f"{overhead[way]:.2f}", f"{marginal:.2f}",
                      f"{wall_1 - work_1 - marginal:.1f}", f"{cpu_marginal:.2f}", f"{cpu_1 - args.work - cpu_marginal:.1f}"])
    print(f"{n} runs of {args.work:g} CPU s each, {p} at once, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}; median of {args.repeat} launch(es) per way")
    print(tabulate(table, tablefmt="github", headers=[
        "way", "runs", "at once", "wall s", "trainers s", "overhead s per run", "of it: s each run adds",
        "s each launch adds", "CPU s each run adds", "CPU s each launch adds"]))
    print(f"overhead per run: (wall x at once - trainers) / runs; each run adds: the same between this launch and "
          f"a one-run launch; `harness run` with nothing to run (start, plan, report): {idle[0]:.1f} s, "
          f"{idle[1]:.1f} CPU s")
    if len(overhead) == 2:
        (slow_way, slow), (fast_way, fast) = sorted(overhead.items(), key=lambda item: -item[1])
        ratio = f" = {slow / fast:.1f}x" if fast > 0 else ""
        print(f"overhead per run: {slow:.2f} s ({slow_way}), {fast:.2f} s ({fast_way}){ratio}")


if __name__ == "__main__":
    main()
