"""The benchmark scripts: the GPU check's CPU mode runs end to end, and the logistic-regression
head agrees with scikit-learn on real episodes (the benchmark's own functions). No timing
assertions: speed is measured by the benchmarks, not by tests."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

sklearn_linear = pytest.importorskip("sklearn.linear_model")
threadpoolctl = pytest.importorskip("threadpoolctl")


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def eval_episodes():
    return load_benchmark("eval_episodes")


@pytest.fixture(scope="module")
def features(eval_episodes):
    """Omniglot test images through the benchmark's untrained ResNet-12: 640-d features, labels."""
    return eval_episodes.omniglot_features("resnet12", torch.device("cpu"))


@pytest.mark.parametrize("shots", [1, 5])
def test_logreg_accuracy_matches_sklearn_on_real_episodes(eval_episodes, features, shots):
    with threadpoolctl.threadpool_limits(limits=1):
        result = eval_episodes.compare(*features, shots=shots, episodes=300)
    ours, theirs = result["accuracy"]["ours"], result["accuracy"]["sklearn"]
    print(f"{shots}-shot, 300 episodes: ours {ours:.2f}%, sklearn {theirs:.2f}%")
    assert ours > 40  # chance is 20%
    assert abs(ours - theirs) <= eval_episodes.AGREEMENT_POINTS


def test_logreg_rank_deficient_support_matches_sklearn(features):
    """Fewer feature dimensions than support images (8-d features, 25 support images): the
    Gram matrix is singular and the head takes its eigendecomposition path."""
    from harness.fewshot.heads import HEADS

    feats, labels = features
    projected = (feats.double() @ torch.randn(feats.shape[1], 8, generator=torch.Generator().manual_seed(0),
                                               dtype=torch.float64)).relu() + 1e-3
    rng = np.random.default_rng(0)
    ways, shots, queries = 5, 5, 15
    for _ in range(3):
        classes = rng.choice(np.unique(labels), ways, replace=False)
        picks = [rng.permutation(np.flatnonzero(labels == c))[:shots + queries] for c in classes]
        support = torch.cat([projected[p[:shots]] for p in picks])[None]
        query = torch.cat([projected[p[shots:]] for p in picks])[None]
        support_labels = torch.arange(ways).repeat_interleave(shots)[None]
        ours = HEADS.get("logreg")(support, support_labels, query, ways, {"logreg_C": 3.0})[0].double()
        unit = torch.nn.functional.normalize
        model = sklearn_linear.LogisticRegression(C=3.0, tol=1e-10, max_iter=10_000)
        model.fit(unit(support[0], dim=-1).numpy(), support_labels[0].numpy())
        theirs = torch.as_tensor(model.decision_function(unit(query[0], dim=-1).numpy()))
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_gpu_check_cpu_mode_runs_and_prints_one_table(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_LOGS": str(tmp_path / "logs")}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--cpu"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400)
    print(done.stdout[-4000:], done.stderr[-2000:])
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert sum(line.startswith("| check | case | status | result |") for line in lines) == 1
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| check")]
    # the installed methods and backbones as a fresh process sees them (this one may hold a
    # test plugin's components)
    counted = subprocess.run([sys.executable, "-c", "from harness.fewshot.backbones import BACKBONES; "
                              "from harness.fewshot.methods import METHODS; "
                              "print(len(METHODS.names()) * len(BACKBONES.names()))"],
                             capture_output=True, text=True, check=True)
    assert sum(row.startswith("| method step |") for row in rows) == int(counted.stdout) >= 14
    assert any(row.startswith("| train step |") for row in rows)
    assert sum(row.startswith("| logreg eval |") for row in rows) == 2
    assert all("| ok |" in row for row in rows)
