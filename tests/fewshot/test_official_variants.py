"""The `official` variants of the few-shot components (issue #20), each against a hand-built case:
DropBlock's reference mask and stuck ramp, MetaOptNet's 3-iteration test-time SVM, MAML's inner
loop without batch-norm adaptation, cbfinn/maml's loss scale and meta-gradient clip, the tested
checkpoint; the family's check before dispatch, through the real command line; and
`suites/wang2021.yaml` resolving to the official variants. (The multi-task variants, IMTL and
MGDA-UB, are in test_mtl_optimizers.py.)
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_cli_errors import (
    assert_nothing_written,
    assert_one_line_error,
    harness_cli,
    write_suite,
)
from test_fewshot_recipes import make_config, quiet
from torch import nn

import harness.fewshot.train as train_module
from harness.fewshot.backbones._dropblock import (
    DropBlock,
    draw_seeds,
    full_blocks,
    reference_blocks,
)
from harness.fewshot.checks import config_problem
from harness.fewshot.heads import HEADS
from harness.fewshot.heads.svm import (
    crammer_singer_dual,
    crammer_singer_scores,
    qpth_style_dual,
    qpth_style_scores,
)
from harness.fewshot.methods import METHODS
from harness.fewshot.train import Trainer, build_backbone
from harness.suite import load_suite

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SUITE = Path(__file__).resolve().parents[2] / "suites" / "wang2021.yaml"




# -- DropBlock: the reference mask ---------------------------------------------------------------------


def seed_map(positions, size, block_size, channels=1):
    """A (1, channels, h', h') seed map with ones at (channel, y, x) positions, h' = size - block_size + 1."""
    seeds = torch.zeros(1, channels, size - block_size + 1, size - block_size + 1)
    for c, y, x in positions:
        seeds[0, c, y, x] = 1
    return seeds


def count_reference(positions, block_size):
    """The reference rule counted on a set, independently of the tensor code: seed j (row-major order)
    drops its block's offsets k = j mod gcd(n, block_size^2), and the unit (block_size - 1) // 2 down
    and right of it; full blocks drop every offset."""
    n, area, centre = len(positions), block_size**2, (block_size - 1) // 2
    period = math.gcd(n, area)
    reference, full = set(), set()
    for j, (c, y, x) in enumerate(sorted(positions)):
        reference.add((c, y + centre, x + centre))
        for k in range(area):
            unit = (c, y + k // block_size, x + k % block_size)
            full.add(unit)
            if k % period == j % period:
                reference.add(unit)
    return len(reference), len(full)


def test_reference_mask_with_25_seeds_drops_one_unit_per_seed_besides_its_centre():
    """Block 5, 25 seeds on a lattice of step 5 (blocks that neither overlap nor touch): gcd(25, 25) = 25,
    so seed j keeps only offset j = (j // 5, j % 5), i.e. (a, b) for the seed at row a, column b of
    the lattice, plus its centre (2, 2): two units each, one for the seed at (2, 2): 49, against
    25 x 25 = 625 for full blocks."""
    positions = [(0, 5 * a, 5 * b) for a in range(5) for b in range(5)]
    seeds = seed_map(positions, 25, 5)
    reference = reference_blocks(seeds, 5)
    assert reference.shape == (1, 1, 25, 25)
    assert int(reference.sum()) == 49 and int(full_blocks(seeds, 5).sum()) == 625
    expected = {(5 * a + a, 5 * b + b) for a in range(5) for b in range(5)} | {(5 * a + 2, 5 * b + 2) for a in range(5) for b in range(5)}
    assert set(map(tuple, reference[0, 0].nonzero().tolist())) == expected


def test_reference_mask_with_5_seeds_drops_columns():
    """5 seeds: gcd(5, 25) = 5, seed j keeps the offsets k = j, j + 5, ..., i.e. column j of its block
    (5 units) plus its centre, which is in that column for j = 2: 5 x 5 + 4 = 29 against 125."""
    positions = [(0, 0, 6 * j) for j in range(5)]
    seeds = seed_map(positions, 29, 5)
    reference = reference_blocks(seeds, 5)[0, 0]
    assert int(reference.sum()) == 29 and int(full_blocks(seeds, 5).sum()) == 125
    for j in range(5):
        block = reference[:5, 6 * j:6 * j + 5]
        assert block[:, j].tolist() == [1.0] * 5  # column j
        assert int(block.sum()) == (5 if j == 2 else 6)  # and the centre (2, 2)


def test_reference_mask_is_the_full_block_mask_when_the_seed_count_is_coprime():
    torch.manual_seed(0)
    for _ in range(20):
        seeds = torch.bernoulli(torch.full((2, 3, 6, 6), 0.1))
        if math.gcd(int(seeds.sum()), 25) == 1:
            assert torch.equal(reference_blocks(seeds, 5), full_blocks(seeds, 5))


def test_reference_mask_38_against_99_units():
    """The setup of the issue's count: block 5 on a 10 x 10 map (ResNet-12's third block at 84 x 84),
    so a 6 x 6 seed grid, with 25 seeds: every position but these 11. Reference: 38 units; full: 99."""
    missing = {(0, 2), (0, 3), (0, 5), (1, 0), (1, 1), (3, 4), (3, 5), (4, 3), (4, 4), (5, 2), (5, 3)}
    positions = [(0, y, x) for y in range(6) for x in range(6) if (y, x) not in missing]
    assert len(positions) == 25
    assert count_reference(positions, 5) == (38, 99)
    seeds = seed_map(positions, 10, 5)
    assert int(reference_blocks(seeds, 5).sum()) == 38 and int(full_blocks(seeds, 5).sum()) == 99


def test_reference_mask_orders_seeds_across_channels_and_handles_block_2():
    """Row-major order over (batch, channel, y, x); block 2 (32 x 32 inputs) has its centre at offset (0, 0)."""
    positions = [(0, 0, 0), (0, 3, 3), (1, 0, 0), (1, 3, 3)]  # 4 seeds: gcd(4, 4) = 4, one offset each
    assert count_reference(positions, 2) == (1 + 3 * 2, 16)  # seed 0's offset is its centre
    reference = reference_blocks(seed_map(positions, 6, 2, channels=2), 2)[0]
    # seed j keeps offset j = (j // 2, j % 2): (0, 0), (0, 1), (1, 0), (1, 1); its centre is offset (0, 0)
    assert set(map(tuple, reference.nonzero().tolist())) == {(0, 0, 0), (0, 3, 3), (0, 3, 4), (1, 1, 0), (1, 0, 0),
                                                              (1, 4, 4), (1, 3, 3)}
    random_seeds = torch.bernoulli(torch.full((3, 4, 5, 5), 0.2), generator=torch.Generator().manual_seed(1))
    positions = [tuple(p) for p in random_seeds[0].nonzero().tolist()]
    single = random_seeds[:1]
    assert int(reference_blocks(single, 2).sum()) == count_reference(positions, 2)[0]


def test_dropblock_module_uses_the_reference_mask_and_rescales():
    drop = DropBlock(5, final_keep=0.9, ramp_steps=1, mask="reference").train()
    drop.forward_passes.fill_(1)
    x = torch.ones(8, 16, 10, 10)
    torch.manual_seed(3)
    out = drop(x)
    torch.manual_seed(3)
    seeds = draw_seeds(x.shape, 5, 0.1 / 25 * 100 / 36, x.device, x.dtype)
    keep = 1 - reference_blocks(seeds, 5)
    assert torch.allclose(out, keep * keep.numel() / keep.sum())
    assert not torch.equal(keep, 1 - full_blocks(seeds, 5))


# -- DropBlock: the stuck ramp of DataParallel replicas -------------------------------------------------


def test_stuck_schedule_keeps_the_first_pass_rate():
    drop = DropBlock(2, final_keep=0.9, ramp_steps=40_000, schedule="stuck").train()
    for passes in (0, 1, 20_000, 10**6):
        drop.forward_passes.fill_(passes)
        assert drop.keep_rate == pytest.approx(1 - 0.1 / 40_000, abs=1e-15)
    ramp = DropBlock(2, final_keep=0.9, ramp_steps=40_000).train()
    ramp.forward_passes.fill_(1)
    assert ramp.keep_rate == drop.keep_rate  # what a fresh replica (its counter at 0, plus 1) computes


def test_backbone_options_reach_resnet12_and_other_backbones_ignore_them():
    model = build_backbone(make_config(backbone="resnet12", dropblock_schedule="stuck", dropblock_mask="reference"), 3, 84)
    blocks = [m for m in model.modules() if isinstance(m, DropBlock)]
    assert len(blocks) == 2 and all((b.schedule, b.mask, b.block_size) == ("stuck", "reference", 5) for b in blocks)
    default = build_backbone(make_config(backbone="resnet12"), 3, 84)
    assert all((b.schedule, b.mask) == ("ramp", "full") for b in default.modules() if isinstance(b, DropBlock))
    # resnet12 declares the DropBlock keys: conv4, which does not, is built as without them
    plain = build_backbone(make_config(backbone="conv4"), 3, 84)
    ignored = build_backbone(make_config(backbone="conv4", dropblock_mask="reference"), 3, 84)
    assert [p.shape for p in ignored.parameters()] == [p.shape for p in plain.parameters()]
    with pytest.raises(ValueError, match="global_pool"):  # a family key: a backbone without it refuses it
        build_backbone(make_config(backbone="conv4", global_pool=False), 3, 84)


# -- MetaOptNet's test-time SVM: 3 qpth iterations in float32 ------------------------------------------


def svm_episodes(episodes=12, ways=5, shots=5, dim=64, queries=10, noise=1.6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    means = torch.randn(episodes, ways, 1, dim, generator=generator)
    support = torch.relu(means + noise * torch.randn(episodes, ways, shots, dim, generator=generator))
    query = torch.relu(means + noise * torch.randn(episodes, ways, queries, dim, generator=generator))
    labels = torch.arange(ways).repeat_interleave(shots).expand(episodes, -1)
    return support.flatten(1, 2), labels, query.flatten(1, 2)


def dual_objective(alpha, kernel, labels, ways, ridge=1.0):
    """1/2 sum_m ||sum_i alpha_im x_i||^2 + ridge/2 ||alpha||^2 - sum_i alpha_{i, y_i}."""
    alpha = alpha.double()
    quadratic = torch.einsum("eim,eij,ejm->e", alpha, kernel, alpha) + ridge * alpha.square().sum((1, 2))
    return 0.5 * quadratic - alpha.gather(2, labels.unsqueeze(-1)).sum((1, 2))


def test_qpth_style_solver_converges_to_the_exact_dual():
    support, labels, _ = svm_episodes()
    kernel = support.double() @ support.double().transpose(1, 2)
    exact = crammer_singer_dual(kernel, labels, 5, 0.1, 1.0)
    converged = qpth_style_dual(kernel, labels, 5, 0.1, 1.0, iterations=30)
    assert torch.allclose(converged, exact, atol=1e-7)


def test_three_float32_iterations_differ_from_the_exact_svm_as_expected():
    """3 iterations = the best of the start and two interior-point steps: not the optimum (a higher
    objective, the bound alpha <= C onehot violated), the equality constraints kept (Newton steps
    satisfy linear equalities); float32 instead of float64 changes far less than the iterations."""
    support, labels, query = svm_episodes()
    kernel = support.double() @ support.double().transpose(1, 2)
    exact = crammer_singer_dual(kernel, labels, 5, 0.1, 1.0)
    three = qpth_style_dual(kernel.float(), labels, 5, 0.1, 1.0, iterations=3)
    assert three.dtype == torch.float32
    gap = dual_objective(three, kernel, labels, 5) - dual_objective(exact, kernel, labels, 5)
    bound_violation = (three.double() - 0.1 * F.one_hot(labels, 5)).amax((1, 2))
    assert ((gap > 1e-4) | (bound_violation > 1e-5)).all()
    assert (three.double() - exact).abs().max() > 1e-3
    assert three.sum(-1).abs().max() < 1e-5
    three64 = qpth_style_dual(kernel, labels, 5, 0.1, 1.0, iterations=3)
    assert (three.double() - three64).abs().max() < 1e-4 < (three64 - exact).abs().max()
    fifteen = qpth_style_dual(kernel.float(), labels, 5, 0.1, 1.0, iterations=15)
    assert (fifteen.double() - exact).abs().max() < (three.double() - exact).abs().max() / 100
    # the scores: the predictions mostly agree, the scores do not
    exact_scores = crammer_singer_scores(support, labels, query, 5, 0.1, 1.0)
    official_scores = qpth_style_scores(support, labels, query, 5, 0.1, 1.0, 3)
    agreement = (exact_scores.argmax(-1) == official_scores.argmax(-1)).float().mean()
    assert agreement > 0.8 and (exact_scores - official_scores).abs().max() > 1e-3


def test_qpth_style_solver_treats_every_episode_alone():
    support, labels, _ = svm_episodes(episodes=4)
    kernel = support @ support.transpose(1, 2)
    batched = qpth_style_dual(kernel, labels, 5, 0.1, 1.0, iterations=3)
    for e in range(4):
        alone = qpth_style_dual(kernel[e:e + 1], labels[e:e + 1], 5, 0.1, 1.0, iterations=3)
        assert torch.allclose(batched[e:e + 1], alone, atol=1e-6)


def test_svm_head_official_solver():
    support, labels, query = svm_episodes(episodes=3)
    head = HEADS.get("svm")
    official = head(support, labels, query, 5, {"svm_solver": "official"})
    assert torch.equal(official, qpth_style_scores(support, labels, query, 5, 0.1, 1.0, 3))
    assert torch.equal(head(support, labels, query, 5, {}), crammer_singer_scores(support, labels, query, 5, 0.1, 1.0).float())


# -- MAML: batch norm out of the inner loop, cbfinn/maml's loss, the meta-gradient clip -------------------


class TinyBackbone(nn.Sequential):
    """Flatten, linear, batch norm, tanh."""

    def __init__(self, in_features=12, out_dim=6):
        super().__init__(nn.Flatten(), nn.Linear(in_features, out_dim), nn.BatchNorm1d(out_dim), nn.Tanh())
        self.out_dim = out_dim


def tiny_maml(name="maml", **config):
    torch.manual_seed(0)
    return METHODS.get(name)(TinyBackbone(), {"ways": 5, "inner_steps": 2, "inner_lr": 0.3, **config},
                             num_train_classes=20).double()


def tiny_task(shots=2, queries=3, ways=5, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(ways * (shots + queries), 12, dtype=torch.float64, generator=generator), torch.arange(ways), shots


def test_fixed_batchnorm_is_left_out_of_the_inner_loop():
    images, classes, shots = tiny_task()
    support, labels = images.view(5, 5, 12)[:, :shots].flatten(0, 1), torch.arange(5).repeat_interleave(shots)
    for name in ("maml", "fomaml"):
        method = tiny_maml(name, inner_loop_batchnorm="fixed")
        fast = method.adapt(support, labels, 2, create_graph=True)
        norm = method.backbone[2]
        assert fast["backbone.2.weight"] is norm.weight and fast["backbone.2.bias"] is norm.bias  # untouched
        assert not torch.equal(fast["backbone.1.weight"], method.backbone[1].weight)  # the linear layers adapt
        assert not torch.equal(fast["head.weight"], method.head.weight)
        adapted = tiny_maml(name).adapt(support, labels, 2, create_graph=True)
        assert not torch.equal(adapted["backbone.2.bias"], norm.bias)  # the default adapts them
        method.zero_grad()
        method.task_loss(images, classes, shots)[0].backward()
        assert norm.weight.grad.abs().sum() > 0 and norm.bias.grad.abs().sum() > 0  # trained by the outer loop


def test_official_loss_makes_inner_steps_ways_times_larger():
    """cbfinn/maml: CE summed over the support set / shots = ways x the mean CE, so a step of lr on it is a
    step of ways x lr on the mean; the outer loss is the mean CE x (queries per task / shots)."""
    images, classes, shots = tiny_task()
    support, labels = images.view(5, 5, 12)[:, :shots].flatten(0, 1), torch.arange(5).repeat_interleave(shots)
    official = tiny_maml(maml_loss="official", inner_lr=0.01).adapt(support, labels, 2, create_graph=False)
    mean = tiny_maml(inner_lr=0.05).adapt(support, labels, 2, create_graph=False)
    for name in official:
        assert torch.allclose(official[name], mean[name], atol=1e-12)
    outer_official, _ = tiny_maml(maml_loss="official", inner_lr=0.01).task_loss(images, classes, shots)
    outer_mean, _ = tiny_maml(inner_lr=0.05).task_loss(images, classes, shots)
    assert outer_official.item() == pytest.approx(outer_mean.item() * 15 / shots)  # 15 queries, 2 shots


def test_meta_gradient_clip_clips_the_whole_meta_gradient():
    tasks = [tiny_task(seed=s) for s in (1, 2, 3)]
    support = torch.cat([images.view(5, 5, 12)[:, :2].flatten(0, 1) for images, _, _ in tasks])
    query = torch.cat([images.view(5, 5, 12)[:, 2:].flatten(0, 1) for images, _, _ in tasks])
    classes = torch.stack([c for _, c, _ in tasks])

    unclipped = tiny_maml()
    for images, task_classes, shots in tasks:  # the trainer's per-task path: the mean over tasks
        (unclipped.task_loss(images, task_classes, shots)[0] / 3).backward()
    gradients = {name: p.grad.clone() for name, p in unclipped.named_parameters()}
    clip = 0.5 * max(g.abs().max().item() for g in gradients.values())

    clipped = tiny_maml(meta_grad_clip=clip)
    assert clipped.batched_tasks and not unclipped.batched_tasks
    loss, _ = clipped.batch_loss(support, query, classes, 2)
    loss.backward()  # one backward for the whole step, as the trainer's batched path
    assert any((g.abs() > clip).any() for g in gradients.values())
    for name, p in clipped.named_parameters():
        assert torch.allclose(p.grad, gradients[name].clamp(-clip, clip), atol=1e-12), name


def test_meta_gradient_clip_leaves_the_inner_loop_alone():
    images, _, shots = tiny_task()
    support, labels = images.view(5, 5, 12)[:, :shots].flatten(0, 1), torch.arange(5).repeat_interleave(shots)
    clipped = tiny_maml(meta_grad_clip=1e-9).adapt(support, labels, 1, create_graph=False)
    free = tiny_maml().adapt(support, labels, 1, create_graph=False)
    assert all(torch.equal(clipped[name], free[name]) for name in free)


# -- the tested checkpoint -----------------------------------------------------------------------------


@pytest.mark.parametrize("tested", ["best", "final"])
def test_tested_checkpoint(monkeypatch, tested):
    """Validation accuracy falls after the first validation, so the best checkpoint is step 1's; the test
    episodes are scored with those weights, or with the final ones."""
    config = make_config(method="protonet", steps=3, val_every=1, tested_checkpoint=tested)
    trainer = Trainer(config, log=quiet)
    real_evaluate = train_module.evaluate
    falling = iter([90.0, 50.0, 10.0])
    snapshots = {}

    def fake_evaluate(method, split, episodes, shots, head, cfg):
        if split is trainer.splits["test"]:
            snapshots["tested"] = copy.deepcopy(method.state_dict())
            return real_evaluate(method, split, episodes, shots, head, cfg)
        snapshots.setdefault("validated", []).append(copy.deepcopy(method.state_dict()))
        return np.full(len(episodes), next(falling))

    monkeypatch.setattr(train_module, "evaluate", fake_evaluate)
    trainer.run()
    first, last = snapshots["validated"][0], snapshots["validated"][-1]
    expected = first if tested == "best" else last
    assert all(torch.equal(snapshots["tested"][k], expected[k]) for k in expected)
    assert not all(torch.equal(first[k], last[k]) for k in first)
    assert trainer.best["step"] == 1


# -- the few-shot check before dispatch ------------------------------------------------------------------


@pytest.mark.parametrize("overrides, fragment", [
    ({"method": "maml", "train_ways": 10}, "train_ways: 10, but maml's head has `ways` = 5 outputs"),
    ({"method": "anil", "train_ways": 7}, "train_ways: 7, but anil's head"),
    ({"method": "mtl", "separate_passes": True}, "separate_passes: true, but mtl"),
    ({"method": "protonet", "backbone": "resnet12", "backbone_width": 32}, "backbone resnet12 takes no backbone_width"),
    ({"method": "protonet", "global_pool": False}, "backbone conv4 takes no global_pool"),
    ({"method": "protonet", "lr_patience": 2, "lr_schedule": "metaoptnet"}, "choose one"),
    ({"method": "protonet", "label_smoothing": 1.0}, "label_smoothing: 1.0 must be < 1"),
])
def test_check_refuses_what_the_worker_would(overrides, fragment):
    problem = config_problem(make_config(**overrides))
    assert problem is not None and fragment in problem, problem
    assert "\n" not in problem


@pytest.mark.parametrize("overrides", [
    {"method": "maml", "maml_loss": "official", "inner_loop_batchnorm": "fixed", "meta_grad_clip": 10.0},
    {"method": "metaoptnet_svm", "svm_solver": "official"},
    {"method": "protonet", "backbone": "resnet12", "dropblock_schedule": "stuck", "dropblock_mask": "reference"},
    {"method": "r2d2", "train_ways": 10},
    {"method": "maml", "train_ways": 5},
    # a key only components declare is ignored by a run whose components do not (harness.spec:
    # left out of its run id, and `plan` says so once per key)
    {"method": "protonet", "dropblock_schedule": "stuck"},
    {"method": "protonet", "svm_solver": "official"},
    {"method": "metaoptnet_svm", "eval_head": "logreg", "svm_solver": "official"},
    {"method": "anil", "maml_loss": "official"},
])
def test_check_accepts_what_the_worker_runs(overrides):
    assert config_problem(make_config(**overrides)) is None


def test_every_wang2021_run_passes_the_check():
    for config in load_suite(SUITE).configs():
        assert config_problem(config) is None, config


CHECKED = """\
name: t
paper: p
defaults: {steps: 1, val_every: 1, val_episodes: 1, test_episodes: 2, queries: 1, test_queries: 1, device: cpu}
grid:
  dataset: [omniglot]
  shots: [1]
  method: [protonet, maml]
  seed: [0]
overrides:
  - when: {method: maml}
    set: {train_ways: 10}
"""


def test_harness_run_refuses_a_config_the_worker_would_fail_before_launching(tmp_path):
    path = write_suite(tmp_path, CHECKED)
    assert harness_cli(tmp_path, "plan", str(path)).returncode == 0  # the plan shows it ...
    result = harness_cli(tmp_path, "run", str(path), "--cluster", "local")  # ... the run refuses it
    assert_one_line_error(result, str(path), "omniglot 5-way 1-shot maml seed 0", "train_ways: 10")
    assert_nothing_written(tmp_path)


# -- suites/wang2021.yaml: the official variants ------------------------------------------------------


@pytest.fixture(scope="module")
def wang2021():
    return {(c["method"], c["dataset"], c["shots"]): c for c in load_suite(SUITE).configs() if c["seed"] == 0}


def test_wang2021_mtl_and_r2d2_official_settings(wang2021):
    for dataset in ("mini_imagenet", "tiered_imagenet", "cifar_fs", "fc100"):
        for shots in (1, 5):
            mtl, r2d2 = wang2021[("mtl", dataset, shots)], wang2021[("r2d2", dataset, shots)]
            assert (mtl["tested_checkpoint"], mtl["dropblock_mask"], mtl["dropblock_schedule"]) == ("final", "reference", "ramp")
            assert (r2d2["patience"], r2d2["tested_checkpoint"]) == (200, "best")
            assert wang2021[("anil", dataset, shots)]["tested_checkpoint"] == "final"
            assert all(c["precision"] == "fp32" and c["label_smoothing"] in (0.0, 0.1)
                       for (method, d, s), c in wang2021.items() if (d, s) == (dataset, shots))
            assert all(wang2021[(m, dataset, shots)]["label_smoothing"] == 0.0 for m in ("mtl", "maml", "r2d2", "anil"))


def test_default_variant_keys_leave_run_ids_unchanged():
    """Keys at their default are left out of the identity: setting every new key to its default gives the
    run ids of a config without them."""
    from harness.spec import run_id

    base = make_config(method="maml")
    stripped = {k: v for k, v in base.items() if k not in (
        "dropblock_schedule", "dropblock_mask", "svm_solver", "inner_loop_batchnorm", "maml_loss", "meta_grad_clip",
        "tested_checkpoint")}
    assert run_id(base, "fewshot") == run_id(stripped, "fewshot")
    assert run_id({**base, "maml_loss": "official"}, "fewshot") != run_id(base, "fewshot")


# -- a few CPU training steps of every variant, deterministic -----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    {"method": "maml", "maml_loss": "official", "inner_loop_batchnorm": "fixed", "meta_grad_clip": 10.0,
     "tested_checkpoint": "final", "meta_batch": 2},
    {"method": "mtl", "backbone": "resnet12", "dropblock_schedule": "stuck", "dropblock_mask": "reference",
     "tested_checkpoint": "final"},
    {"method": "metaoptnet_svm", "svm_solver": "official", "shots": 5},
], ids=["maml", "resnet12-dropblock", "svm-official"])
def test_variants_train_a_few_steps_deterministically(overrides):
    config = make_config(**{"steps": 2, "val_every": 2, "meta_batch": 1, **overrides})
    first, second = (Trainer(config, log=quiet).run()["metrics"] for _ in range(2))
    assert first == second
    assert 0 <= first["accuracy"] <= 100


def test_official_svm_solves_in_float32_under_bf16_autocast():
    support, labels, query = svm_episodes(episodes=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = HEADS.get("svm")(support.bfloat16(), labels, query.bfloat16(), 5, {"svm_solver": "official"})
    assert scores.dtype == torch.float32
    expected = qpth_style_scores(support.bfloat16().float(), labels, query.bfloat16().float(), 5, 0.1, 1.0, 3)
    assert torch.allclose(scores, expected)


@pytest.mark.slow
def test_official_maml_under_bf16_and_channels_last():
    config = make_config(method="maml", maml_loss="official", inner_loop_batchnorm="fixed", meta_grad_clip=10.0,
                         meta_batch=2, steps=1, val_every=1, precision="bf16", channels_last="on")
    result = Trainer(config, log=quiet).run()
    assert result["details"]["bf16"] and 0 <= result["metrics"]["accuracy"] <= 100
