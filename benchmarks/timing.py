"""Interleaved timing shared by the step benchmarks: every contender takes one call per
round, in a shuffled order, so that drift in the machine's load falls on all of them."""
from __future__ import annotations

import random
import statistics
import time


def interleaved_medians(calls: dict, warmup: int, rounds: int, synchronize=lambda: None) -> dict:
    """name -> (median wall seconds, median process CPU seconds) of ``calls[name]()`` over
    ``rounds`` timed rounds after ``warmup`` untimed ones; ``synchronize`` waits for the
    device before and after each call."""
    wall = {name: [] for name in calls}
    cpu = {name: [] for name in calls}
    order = random.Random(0)
    for round_ in range(warmup + rounds):
        for name in order.sample(list(calls), len(calls)):
            synchronize()
            started, started_cpu = time.perf_counter(), time.process_time()
            calls[name]()
            synchronize()
            if round_ >= warmup:
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - started_cpu)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in calls}
