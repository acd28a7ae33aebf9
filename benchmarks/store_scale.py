"""The results store at scale: `harness plan`, `status` and `report` of a 10,000-run grid.

Builds, in a temp folder, a few-shot suite of 10,000 runs (2 shots x 5 methods x 10 lr
x 10 meta_batch x 10 seeds: 1,000 cells) and a done record for every run, shaped as
`harness.job` writes them (indent 1, 2,000 per-episode accuracies each, the real keys,
the real component digests), then times the real command line in subprocesses:

- `plan` with no records at all;
- before: each command with ``harness/store.py`` as committed at ``--baseline`` (default
  HEAD; the rest of the package as it is now), in the same run;
- each command with the store cache off (``HARNESS_STORE_CACHE=off``: every record
  parsed and validated);
- each command cold (no cache yet: it is built) and warm (the cache is there).

`report` is timed as `report --no-plots` (the tables) when the report has figures, and
warm as it comes (its figure would need 200 panels: the report says so and draws none),
and filtered to one meta_batch (1,000 runs, 20 panels drawn). Run:

    python benchmarks/store_scale.py [--runs 10000] [--episodes 2000] [--repeat 1] [--keep DIR] [--baseline REV]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

METHODS = ["protonet", "mtl", "maml", "anil", "r2d2"]
SHOTS = [1, 5]


def suite_text(runs: int) -> str:
    """A suite of exactly ``runs`` runs: runs / 10 cells of 10 seeds (runs a multiple of 100)."""
    per_method_shot = runs // (len(METHODS) * len(SHOTS) * 10)
    lrs = [round(0.0001 * (i + 1), 4) for i in range(min(per_method_shot, 10))]
    batches = list(range(1, per_method_shot // len(lrs) + 1))
    assert len(METHODS) * len(SHOTS) * len(lrs) * len(batches) * 10 == runs, "runs must be 100 x (1..100)"
    return (
        "name: scale\n"
        "paper: \"synthetic scale test\"\n"
        "defaults: {ways: 5, steps: 1000, device: cpu}\n"
        "grid:\n"
        "  dataset: [omniglot]\n"
        f"  shots: {SHOTS}\n"
        f"  method: [{', '.join(METHODS)}]\n"
        f"  lr: {lrs}\n"
        f"  meta_batch: {batches}\n"
        "  seed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
        "report: {margin: 1.0}\n"
        "reported:\n"
        "  - {dataset: omniglot, shots: 1, method: protonet, value: 98.8, interval: 0.4, kind: ci95, over: episodes,"
        " episodes: 1000, source: {paper: \"Snell et al. 2017\", table: \"Table 1\"}}\n"
        "  - {dataset: omniglot, shots: 5, method: protonet, value: 99.7, interval: 0.1, kind: ci95, over: episodes,"
        " episodes: 1000, source: {paper: \"Snell et al. 2017\", table: \"Table 1\"}}\n"
    )


def fake_record(spec, code: dict, episodes: int, rng: random.Random) -> dict:
    """A done record with the keys and value shapes `harness.job` writes."""
    base = {"protonet": 96.0, "mtl": 94.0, "maml": 92.0, "anil": 91.0, "r2d2": 95.0}[spec.config["method"]]
    # accuracy of 75 queries (5-way, 15 each), to two decimals
    accuracies = [round(100 * min(75, max(0, int(rng.gauss(base, 4) * 0.75))) / 75, 2) for _ in range(episodes)]
    train = rng.uniform(200, 400) * (2 if spec.config["method"] in ("maml", "mtl") else 1)
    return {
        "status": "done",
        "curve": [{"step": step, "accuracy": round(base - 20 * 100 / step, 4)} for step in range(100, 1001, 100)],
        "metrics": {"accuracy": sum(accuracies) / len(accuracies), "episode_accuracies": accuracies,
                    "val_accuracy": base + 0.3, "best_step": 900},
        "timing": {"load_seconds": 1.2, "train_seconds": train, "eval_seconds": 11.5, "steps": 1000,
                   "seconds_per_step": train / 1000, "images_seen": 80000, "total_seconds": train + 13.4},
        "components": code,
        "memory": {"cpu_peak_rss_bytes": 812_345_344, "gpu_peak_allocated_bytes": None},
        "env": {"host": "node17", "device": "cpu", "device_name": "x86_64", "python": "3.11.7", "harness": "0.1.0",
                "git_commit": "5a76bce0d1f2e3a4b5c6d7e8f9a0b1c2d3e4f5a6", "torch": "2.5.1", "torch_threads": 1},
        "details": {"device": "cpu", "eval_head": "centroid", "parameters": 113088, "resumed_from_step": None,
                    "train_split_on_device": False, "bf16": False, "peak_gpu_bytes": None},
        "error": None,
        "run_id": spec.run_id, "suite": spec.suite, "family": spec.family, "spec": spec.config,
        "plugins": list(spec.plugins), "started": "2026-11-22T19:27:03+00:00", "finished": "2026-11-22T19:33:41+00:00",
        "log": f"{spec.suite}/{spec.run_id}/run.log",
    }


def build_grid(folder: Path, runs: int, episodes: int) -> tuple[Path, Path, int]:
    """(suite file, results root, bytes of records) for a fully finished grid."""
    from harness import families
    from harness.spec import components, expand
    from harness.suite import load_suite

    suite_path = folder / "scale.yaml"
    suite_path.write_text(suite_text(runs), encoding="utf-8")
    suite = load_suite(suite_path)
    family = families.get(suite.family)
    results = folder / "results"
    rng, codes, total = random.Random(0), {}, 0
    for spec in expand(suite):
        method = spec.config["method"]
        if method not in codes:
            codes[method] = components(family, spec.config)
        path = results / suite.name / spec.run_id / "record.json"
        path.parent.mkdir(parents=True)
        with open(path, "w", encoding="utf-8") as handle:  # as write_json_atomic writes, without the fsyncs
            json.dump(fake_record(spec, codes[method], episodes, rng), handle, indent=1, allow_nan=False)
            handle.write("\n")
        total += path.stat().st_size
    return suite_path, results, total


def baseline_package(folder: Path, revision: str) -> Path | None:
    """A copy of the harness package with store.py as committed at ``revision`` (None without git)."""
    import harness

    source = Path(harness.__file__).parent
    done = subprocess.run(["git", "show", f"{revision}:harness/store.py"], cwd=source.parent, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"no baseline: git show {revision}:harness/store.py failed ({done.stderr.strip()})")
        return None
    target = folder / "baseline"
    shutil.copytree(source, target / "harness", ignore=shutil.ignore_patterns("__pycache__", "assets"))
    (target / "harness" / "assets").symlink_to(source / "assets")
    (target / "harness" / "store.py").write_text(done.stdout, encoding="utf-8")
    return target


def time_command(args: list[str], results: Path, cache: bool, package: Path | None = None) -> float:
    env = {**os.environ, "HARNESS_RESULTS": str(results)}
    if not cache:
        env["HARNESS_STORE_CACHE"] = "off"
    if package is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(package), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    start = time.perf_counter()
    # cwd: the grid's folder, so that a checkout's own harness/ never shadows the baseline copy
    done = subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True,
                          cwd=results.parent)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"harness {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return elapsed


def drop_cache(results: Path) -> None:
    for folder in results.glob("*/.cache"):
        shutil.rmtree(folder)


def best(times: list[float]) -> str:
    return f"{min(times):.2f} s" if times else ""


def has_plots_flag() -> bool:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "report", "--help"], capture_output=True, text=True)
    return "--no-plots" in done.stdout


def measure(suite_path: Path, results: Path, repeat: int, baseline: Path | None) -> list[list]:
    empty = results.parent / "empty-results"
    empty.mkdir(exist_ok=True)
    rows = [["plan", "no records", best([time_command(["plan", str(suite_path)], empty, True) for _ in range(repeat)])]]
    plots = has_plots_flag()
    for command in ("plan", "status", "report"):
        args = [command, str(suite_path)] + (["--no-plots"] if command == "report" and plots else [])
        name = " ".join([command] + args[2:])
        if baseline is not None:
            before = [time_command(args, results, True, baseline) for _ in range(repeat)]
            rows.append([name, "before (store.py of the baseline)", best(before)])
        uncached = [time_command(args, results, False) for _ in range(repeat)]
        cold, warm = [], []
        for _ in range(repeat):
            drop_cache(results)
            cold.append(time_command(args, results, True))
            warm.append(time_command(args, results, True))
        rows += [[name, "cache off (every record parsed)", best(uncached)],
                 [name, "cold (cache built)", best(cold)], [name, "warm", best(warm)]]
    if plots:  # the default: its figure would need 200 panels, so the report says so instead of drawing it
        rows.append(["report", "warm (figure not drawn)", best([time_command(["report", str(suite_path)], results, True)])])
        drawn = ["report", str(suite_path), "--filter", "meta_batch=1"]
        rows.append(["report --filter meta_batch=1", "warm (20 panels drawn)", best([time_command(drawn, results, True)])])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="a multiple of 100, at most 10,000")
    parser.add_argument("--episodes", type=int, default=2000, help="per-episode accuracies per record")
    parser.add_argument("--repeat", type=int, default=1, help="time each case this many times; the best is shown")
    parser.add_argument("--keep", default=None, help="build the grid here and keep it (default: a temp folder, removed)")
    parser.add_argument("--baseline", default="HEAD", help="git revision whose store.py is timed as 'before' ('' for none)")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="store-scale-"))
    try:
        if (folder / "scale.yaml").exists() and (folder / "results").is_dir():
            suite_path, results = folder / "scale.yaml", folder / "results"
            size = sum(p.stat().st_size for p in results.glob("*/*/record.json"))
            print(f"reusing the grid in {folder}")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            suite_path, results, size = build_grid(folder, args.runs, args.episodes)
            print(f"built {args.runs} records ({size / 1e6:.0f} MB) in {time.perf_counter() - start:.0f} s in {folder}")
        baseline = baseline_package(Path(tempfile.mkdtemp(prefix="store-baseline-")), args.baseline) if args.baseline else None
        try:
            rows = measure(suite_path, results, args.repeat, baseline)
        finally:
            if baseline is not None:
                shutil.rmtree(baseline.parent, ignore_errors=True)
        print(f"{args.runs} runs, {args.episodes} episodes per record, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}, best of {args.repeat}:")
        print(tabulate(rows, headers=["command", "case", "wall-clock"], tablefmt="github"))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
