"""Each baseline trains by its own paper's recipe: every recipe element the config can ask for is
checked here by something that breaks when the element does (the lr schedule, label smoothing,
separate support/query passes, the un-pooled ResNet-12 map, MetaOptNet's ProtoNet head, R2-D2's
scale and training ways, the DropBlock ramp counting validation passes, resampled validation
episodes), the settings `suites/wang2021.yaml` resolves to, and the GPU code paths (bf16 autocast,
channels-last) run on the CPU for every method, training and evaluation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import harness.fewshot.train as train_module
from harness.fewshot.backbones import BACKBONES
from harness.fewshot.backbones._dropblock import DropBlock
from harness.fewshot.config import KEYS
from harness.fewshot.heads import HEADS
from harness.fewshot.heads.ridge import ridge_scores
from harness.fewshot.heads.svm import crammer_singer_scores
from harness.fewshot.methods import METHODS
from harness.fewshot.methods._base import smoothed_cross_entropy
from harness.fewshot.train import Trainer, build_backbone, lr_multiplier
from harness.keys import REQUIRED
from harness.suite import load_suite

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SUITE = Path(__file__).resolve().parents[2] / "suites" / "wang2021.yaml"
ALL_METHODS = ("mtl", "protonet", "maml", "fomaml", "anil", "metaoptnet_svm", "r2d2")


def quiet(_line):
    pass


def make_config(**overrides) -> dict:
    config = {name: key.default for name, key in KEYS.items() if key.default is not REQUIRED}
    config.update(dataset="omniglot", shots=1, seed=0, device="cpu", steps=2, val_every=2, val_episodes=3,
                  test_episodes=3, test_queries=2, queries=2)
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def wang2021():
    """(method, dataset, shots) -> the resolved config of seed 0."""
    return {(c["method"], c["dataset"], c["shots"]): c for c in load_suite(SUITE).configs() if c["seed"] == 0}


class TinyBackbone(nn.Sequential):
    """Flatten, linear, batch norm: features whose values depend on the batch's statistics in training."""

    def __init__(self, in_features=12, out_dim=6):
        super().__init__(nn.Flatten(), nn.Linear(in_features, out_dim), nn.BatchNorm1d(out_dim))
        self.out_dim = out_dim


def tiny_method(name, **config):
    torch.manual_seed(0)
    return METHODS.get(name)(TinyBackbone(), {"ways": 5, **config}, num_train_classes=20)


# -- the learning-rate schedules -------------------------------------------------------------------


def test_metaoptnet_schedule_lr_at_given_epochs():
    """MetaOptNet's LambdaLR is stepped at the start of epoch 1, 2, ...: epoch e runs at lr * lambda(e)."""
    config = make_config(lr_schedule="metaoptnet", val_every=1000)
    at = {1: 1.0, 19000: 1.0, 19001: 0.06, 39000: 0.06, 39001: 0.012, 49000: 0.012, 49001: 0.0024, 60000: 0.0024}
    assert {step: lr_multiplier(config, step) for step in at} == at
    config = make_config(lr_schedule="step", val_every=100, lr_step_epochs=20, lr_step_gamma=0.5)  # R2-D2's StepLR
    assert [lr_multiplier(config, s) for s in (1, 1900, 1901, 3900, 3901)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert lr_multiplier(make_config(), 123456) == 1.0


def test_trainer_steps_with_the_scheduled_lr(wang2021):
    recipe = wang2021[("metaoptnet_svm", "cifar_fs", 1)]
    keys = ("optimizer", "lr", "weight_decay", "lr_schedule", "val_every", "meta_batch")
    trainer = Trainer(make_config(method="metaoptnet_svm", **{k: recipe[k] for k in keys}), log=quiet)
    group = trainer.optimizer.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.9, True, 0.0005)
    for step, lr in ((1, 0.1), (19000, 0.1), (19001, 0.006), (39001, 0.0012), (50000, 0.00024)):
        trainer.step = step
        trainer.train_step()
        assert group["lr"] == pytest.approx(lr, rel=1e-12)


def test_plateau_decay_and_a_fixed_schedule_are_exclusive():
    with pytest.raises(ValueError, match="lr_patience"):
        Trainer(make_config(method="protonet", lr_schedule="metaoptnet", lr_patience=2), log=quiet)


# -- label smoothing ---------------------------------------------------------------------------------


def test_label_smoothing_is_metaoptnets_in_the_training_loss():
    """MetaOptNet-SVM's loss with label_smoothing 0.1 equals -sum(t log softmax(scale * svm scores)) with
    t = 0.9 on the true class and 0.1 / 4 elsewhere, computed by hand."""
    method = tiny_method("metaoptnet_svm", label_smoothing=0.1).double().train()
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(5 * 4, 12, dtype=torch.float64, generator=generator)  # 5 ways x (1 shot + 3 queries)
    loss, _ = method.task_loss(images, torch.arange(5), shots=1)

    with torch.no_grad():
        features = method.backbone(images).view(5, 4, -1)
    support, query = features[:, :1].reshape(1, 5, -1), features[:, 1:].reshape(1, 15, -1)
    logits = crammer_singer_scores(support, torch.arange(5)[None], query, 5, 0.1, 1.0)[0].numpy()
    labels = np.repeat(np.arange(5), 3)
    targets = np.full((15, 5), 0.1 / 4)
    targets[np.arange(15), labels] = 0.9
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert loss.item() == pytest.approx(-(targets * log_probs).sum(1).mean(), rel=1e-9)

    torch_logits = torch.from_numpy(logits)
    plain = F.cross_entropy(torch_logits, torch.from_numpy(labels))
    torchs = F.cross_entropy(torch_logits, torch.from_numpy(labels), label_smoothing=0.1)  # eps / ways on every class
    assert abs(loss.item() - plain.item()) > 1e-3 and abs(loss.item() - torchs.item()) > 1e-4
    assert smoothed_cross_entropy(torch_logits, torch.from_numpy(labels), 0.0).item() == pytest.approx(plain.item())


@pytest.mark.parametrize("name", ["mtl", "protonet", "maml", "anil", "r2d2"])
def test_every_method_smooths_its_training_loss(name):
    generator = torch.Generator().manual_seed(4)
    images = torch.randn(5 * 4, 12, generator=generator)
    losses = []
    for eps in (0.0, 0.3):
        method = tiny_method(name, label_smoothing=eps, inner_steps=1, inner_lr=0.1, feature_norm=False).train()
        losses.append(method.task_loss(images, torch.arange(5), shots=1)[0].item())
    assert losses[0] != pytest.approx(losses[1], rel=1e-4)


def test_label_smoothing_must_be_below_one():
    with pytest.raises(ValueError, match="label_smoothing"):
        tiny_method("protonet", label_smoothing=1.0)


# -- separate support and query passes ----------------------------------------------------------------


def test_batch_loss_embeds_support_and_queries_in_separate_passes():
    """Two passes over all tasks' supports, then all queries: in training, batch norm normalises each set
    with its own statistics, so the loss differs from one joint pass per task and equals a hand-made one."""
    method = tiny_method("protonet", separate_passes=True).train()
    assert method.batched_tasks and method.validation_passes == 2
    tasks, ways, shots, queries = 3, 5, 2, 3
    generator = torch.Generator().manual_seed(5)
    support_images = torch.randn(tasks * ways * shots, 12, generator=generator)
    query_images = torch.randn(tasks * ways * queries, 12, generator=generator)
    calls = []
    method.backbone.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    loss, _ = method.batch_loss(support_images, query_images, torch.arange(ways).repeat(tasks, 1), shots)
    assert calls == [tasks * ways * shots, tasks * ways * queries]

    backbone = method.backbone
    support = backbone(support_images).view(tasks, ways, shots, -1)
    query = backbone(query_images).view(tasks, ways * queries, -1)
    prototypes = support.mean(2)
    logits = -(query[:, :, None] - prototypes[:, None]).pow(2).sum(-1)
    labels = torch.arange(ways).repeat_interleave(queries).repeat(tasks)
    assert loss.item() == pytest.approx(F.cross_entropy(logits.reshape(-1, ways), labels).item(), rel=1e-6)

    joint = []  # one pass per task over its support and queries together (class-major)
    for t in range(tasks):
        s = support_images.view(tasks, ways, shots, 12)[t]
        q = query_images.view(tasks, ways, queries, 12)[t]
        joint.append(method.task_loss(torch.cat([s, q], 1).reshape(-1, 12), torch.arange(ways), shots)[0])
    assert abs(torch.stack(joint).mean().item() - loss.item()) > 1e-4


@pytest.mark.parametrize("separate", [True, False])
def test_trainer_makes_two_passes_per_step_with_separate_passes(separate):
    trainer = Trainer(make_config(method="metaoptnet_svm", meta_batch=3, separate_passes=separate), log=quiet)
    sizes = []
    trainer.method.backbone.register_forward_hook(lambda module, args, out: sizes.append(len(args[0])))
    trainer.train_step()
    shots, queries = 1, 2
    assert sizes == ([3 * 5 * shots, 3 * 5 * queries] if separate else [5 * (shots + queries)] * 3)


def test_separate_passes_is_refused_where_it_means_nothing():
    for name in ("mtl", "maml", "anil"):
        with pytest.raises(ValueError, match="separate_passes"):
            tiny_method(name, separate_passes=True)


# -- the backbone options ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size, dim", [(32, 640 * 2 * 2), (84, 640 * 5 * 5)])
def test_resnet12_unpooled_features_are_the_flattened_map(size, dim):
    torch.manual_seed(0)
    model = BACKBONES.get("resnet12")(3, size, global_pool=False).eval()
    assert model.out_dim == dim
    images = torch.randn(1, 3, size, size)
    with torch.no_grad():
        features, feature_map = model(images), model.blocks(images)
    assert features.shape == (1, dim)
    torch.testing.assert_close(features, feature_map.flatten(1))
    pooled = BACKBONES.get("resnet12")(3, size)
    assert pooled.out_dim == 640


def test_backbone_options_from_the_config(wang2021):
    metaoptnet = wang2021[("metaoptnet_svm", "mini_imagenet", 5)]
    assert build_backbone(metaoptnet, 3, 84).out_dim == 16000
    maml = wang2021[("maml", "mini_imagenet", 1)]
    conv4 = build_backbone(maml, 3, 84)
    assert conv4.out_dim == 32 * 5 * 5 and {m.out_channels for m in conv4 if isinstance(m, nn.Conv2d)} == {32}
    with pytest.raises(ValueError, match="backbone_width"):
        build_backbone({**metaoptnet, "backbone_width": 32}, 3, 84)
    with pytest.raises(ValueError, match="global_pool"):
        build_backbone({**maml, "global_pool": False}, 3, 84)


# -- ProtoNet as MetaOptNet's ProtoNet head -------------------------------------------------------------------


def test_protonet_scale_and_dimension_division_by_hand():
    generator = torch.Generator().manual_seed(6)
    support = torch.randn(2, 5 * 3, 7, generator=generator)  # 2 tasks, 5 ways x 3 shots, 7-d
    query = torch.randn(2, 4, 7, generator=generator)
    scaled = tiny_method("protonet", protonet_scale=True)
    assert isinstance(scaled.scale, nn.Parameter) and scaled.scale.item() == 1.0
    with torch.no_grad():
        scaled.scale.fill_(2.5)
    logits = scaled.logits(support, None, query, 5)
    s, q = support.numpy().reshape(2, 5, 3, 7), query.numpy()
    prototypes = s.mean(2)
    distances = ((q[:, :, None] - prototypes[:, None]) ** 2).sum(-1)
    np.testing.assert_allclose(logits.detach().numpy(), -2.5 * distances / 7, rtol=1e-5)
    logits.sum().backward()
    assert scaled.scale.grad is not None and scaled.scale.grad.abs() > 0  # learnable

    plain = tiny_method("protonet")
    assert not hasattr(plain, "scale")
    np.testing.assert_allclose(plain.logits(support, None, query, 5).numpy(), -distances, rtol=1e-5)


# -- R2-D2: scale initialisation and training ways ----------------------------------------------------------


def test_r2d2_scale_init(wang2021):
    assert tiny_method("r2d2").scale.item() == 1.0  # MetaOptNet's R2-D2 head
    assert tiny_method("r2d2", r2d2_scale_init=1e-4).scale.item() == pytest.approx(1e-4)
    assert wang2021[("r2d2", "mini_imagenet", 1)]["r2d2_scale_init"] == 1e-4  # mini_r2d2.sh
    assert wang2021[("r2d2", "cifar_fs", 5)]["r2d2_scale_init"] == 10.0  # cifar_r2d2.sh
    method = METHODS.get("r2d2")(TinyBackbone(), wang2021[("r2d2", "mini_imagenet", 1)], 64)
    assert method.scale.item() == pytest.approx(1e-4) and method.bias.item() == 0.0


def record_evaluations(monkeypatch) -> list:
    """The episode sets the trainer validates on, as it calls ``evaluate``."""
    evaluated, original = [], train_module.evaluate

    def recording(method, split, episodes, *rest):
        evaluated.append(episodes)
        return original(method, split, episodes, *rest)

    monkeypatch.setattr(train_module, "evaluate", recording)
    return evaluated


def test_r2d2_trains_with_more_ways_than_it_tests(wang2021, monkeypatch):
    assert wang2021[("r2d2", "mini_imagenet", 5)]["train_ways"] == 16  # mini_r2d2.sh --data.way 16
    assert wang2021[("r2d2", "cifar_fs", 1)]["train_ways"] == 20  # cifar_r2d2.sh --data.way 20
    for dataset, per_class in (("mini_imagenet", 15), ("cifar_fs", 12)):  # data.batch_size 240 images per task
        for shots in (1, 5):
            config = wang2021[("r2d2", dataset, shots)]
            assert config["train_ways"] * (shots + config["queries"]) == 240 and config["ways"] == 5
            assert shots + config["queries"] == per_class
    trainer = Trainer(make_config(method="r2d2", train_ways=7, shots=1), log=quiet)
    seen = []
    task_loss = trainer.method.task_loss
    trainer.method.task_loss = lambda images, classes, shots: seen.append((len(classes), len(images))) or \
        task_loss(images, classes, shots)
    trainer.train_step()
    assert seen == [(7, 7 * 3)]
    evaluated = record_evaluations(monkeypatch)
    trainer.validate(0.0)
    assert [e.shape for e in evaluated] == [(3, 5, 1 + 2)]  # validation stays 5-way


def test_gradient_meta_learners_refuse_other_training_ways():
    with pytest.raises(ValueError, match="train_ways"):
        tiny_method("maml", train_ways=7)


def test_train_shots_sets_the_training_tasks():
    trainer = Trainer(make_config(method="metaoptnet_svm", train_shots=3, queries=2), log=quiet)
    assert (trainer.sampler.ways, trainer.sampler.per_class) == (5, 3 + 2)
    assert trainer.val_shots == 1  # validation and test keep `shots`


# -- the wang2021 recipes of the gradient-based methods and of MetaOptNet ----------------------------------


def test_wang2021_maml_is_finn_et_al(wang2021):
    for dataset in ("mini_imagenet", "cifar_fs", "fc100", "tiered_imagenet"):
        for shots, meta_batch in ((1, 4), (5, 2)):
            c = wang2021[("maml", dataset, shots)]
            assert (c["backbone"], c["backbone_width"]) == ("conv4", 32)
            assert (c["inner_steps"], c["inner_lr"], c["test_inner_steps"]) == (5, 0.01, 10)
            assert (c["optimizer"], c["lr"], c["meta_batch"], c["steps"], c["queries"]) == ("adam", 0.001, meta_batch, 60000, 15)
            assert not c["augment"] and c["lr_patience"] is None and c["lr_schedule"] == "constant"
            assert (c["maml_loss"], c["inner_loop_batchnorm"], c["meta_grad_clip"]) == ("official", "fixed", 10.0)
            assert c["tested_checkpoint"] == "final" and c["precision"] == "fp32"


def test_wang2021_anil_is_learn2learn(wang2021):
    for dataset in ("mini_imagenet", "fc100"):
        for shots in (1, 5):
            c = wang2021[("anil", dataset, shots)]
            assert (c["inner_lr"], c["meta_batch"], c["inner_steps"]) == (0.1, 32, 5)
            assert (c["test_inner_steps"] or c["inner_steps"]) == 5
            assert (c["optimizer"], c["lr"], c["queries"]) == ("adam", 0.001, shots)
            assert not c["augment"] and c["lr_patience"] is None and c["patience"] is None


def test_wang2021_metaoptnet_and_protonet_are_metaoptnets_train_py(wang2021):
    train_shots = {"mini_imagenet": 15, "tiered_imagenet": 10, "cifar_fs": 5, "fc100": 15}
    for dataset, train_shot in train_shots.items():
        for shots in (1, 5):
            for method in ("metaoptnet_svm", "protonet"):
                c = wang2021[(method, dataset, shots)]
                assert (c["steps"], c["val_every"], c["meta_batch"]) == (60000, 1000, 8)
                assert (c["optimizer"], c["lr"], c["weight_decay"], c["lr_schedule"]) == ("sgd", 0.1, 0.0005, "metaoptnet")
                assert c["lr_patience"] is None and c["patience"] is None
                assert (c["queries"], c["separate_passes"], c["global_pool"]) == (6, True, False)
                assert (c["val_shots"], c["val_queries"], c["val_episodes"], c["val_resample"]) == (5, 15, 2000, True)
                assert c["backbone"] == "resnet12" and c["augment"]
                # smoothing on mini-ImageNet only; DropBlock stuck where DataParallel ran; the reference mask
                assert c["label_smoothing"] == (0.1 if dataset == "mini_imagenet" else 0.0)
                assert c["dropblock_schedule"] == ("stuck" if "imagenet" in dataset else "ramp")
                assert (c["dropblock_mask"], c["precision"], c["tested_checkpoint"]) == ("reference", "fp32", "best")
            assert wang2021[("metaoptnet_svm", dataset, shots)]["svm_solver"] == "official"
            assert wang2021[("metaoptnet_svm", dataset, shots)]["train_shots"] == train_shot
            assert wang2021[("protonet", dataset, shots)]["train_shots"] is None  # = shots
            assert wang2021[("protonet", dataset, shots)]["protonet_scale"]


# -- DropBlock: the ramp counts validation passes --------------------------------------------------------------


@pytest.mark.parametrize("method, extra, per_step, per_episode", [
    ("protonet", {"separate_passes": True}, 2, 2),  # MetaOptNet: support and query passes
    ("mtl", {}, 2, 1),  # one pass per task (meta_batch 2), one per validation task
])
def test_dropblock_ramp_counts_validation_passes(method, extra, per_step, per_episode):
    config = make_config(method=method, backbone="resnet12", meta_batch=2, steps=2, val_every=2, val_episodes=3, **extra)
    trainer = Trainer(config, log=quiet)
    blocks = [m for m in trainer.method.modules() if isinstance(m, DropBlock)]
    assert len(blocks) == 2
    trainer.train()  # 2 steps, then one validation of 3 episodes
    assert [int(b.forward_passes) for b in blocks] == [2 * per_step + 3 * per_episode] * 2
    with torch.no_grad():
        trainer.method.eval()
        trainer.method.embed(trainer.splits["val"].gather(np.arange(4)))
    assert [int(b.forward_passes) for b in blocks] == [2 * per_step + 3 * per_episode] * 2  # eval passes: not by themselves


# -- resampled validation episodes --------------------------------------------------------------------------------


def test_wang2021_mtl_validates_on_fresh_tasks_with_30_queries(wang2021):
    for dataset in ("mini_imagenet", "tiered_imagenet", "cifar_fs", "fc100"):
        for shots in (1, 5):
            c = wang2021[("mtl", dataset, shots)]
            assert (c["val_resample"], c["val_queries"], c["val_episodes"]) == (True, 30, 400)


def test_resampled_validation_episodes_differ_per_epoch(wang2021):
    recipe = wang2021[("mtl", "mini_imagenet", 5)]
    config = make_config(method="mtl", shots=5, **{k: recipe[k] for k in ("val_resample", "val_queries", "val_episodes")})
    trainer = Trainer(config, log=quiet)  # Omniglot has 20 images per class: give the val split 600-image classes
    trainer.splits["val"].labels = np.repeat(np.arange(16), 600)
    trainer.step = 800
    first = trainer.validation_episodes()
    trainer.step = 1600
    second = trainer.validation_episodes()
    assert first.shape == second.shape == (400, 5, 5 + 30)
    assert not np.array_equal(first, second)
    trainer.step = 800
    assert np.array_equal(trainer.validation_episodes(), first)  # a function of the step: resumable


def test_validate_uses_the_fresh_episodes(monkeypatch):
    trainer = Trainer(make_config(method="mtl", val_resample=True, val_queries=4, steps=4, val_every=2), log=quiet)
    evaluated = record_evaluations(monkeypatch)
    trainer.train()
    assert len(evaluated) == 2 and all(e.shape == (3, 5, 1 + 4) for e in evaluated)
    assert not np.array_equal(evaluated[0], evaluated[1])
    fixed = Trainer(make_config(method="mtl", steps=4, val_every=2), log=quiet)
    assert fixed.validation_episodes() is fixed.validation_episodes()


# -- precision: linear algebra in fp32, evaluation in fp32 ---------------------------------------------------------


def test_ridge_and_svm_solve_in_fp32_under_bf16_autocast():
    generator = torch.Generator().manual_seed(7)
    support = torch.randn(2, 10, 16, generator=generator).bfloat16()
    query = torch.randn(2, 6, 16, generator=generator).bfloat16()
    labels = torch.arange(5).repeat_interleave(2).expand(2, -1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ridge = ridge_scores(support, labels, query, 5, 50.0)
        svm = crammer_singer_scores(support, labels, query, 5, 0.1, 1.0)
    assert ridge.dtype == svm.dtype == torch.float32
    torch.testing.assert_close(ridge, ridge_scores(support.float(), labels, query.float(), 5, 50.0))
    torch.testing.assert_close(svm, crammer_singer_scores(support.float(), labels, query.float(), 5, 0.1, 1.0))
    for head in ("ridge", "svm", "centroid", "finetune"):
        assert HEADS.get(head)(support, labels, query, 5, {}).dtype == torch.float32


VARIANTS = {
    "mtl": {"feature_norm": True, "meta_batch": 2},
    "protonet": {"separate_passes": True, "protonet_scale": True, "label_smoothing": 0.1, "meta_batch": 2},
    "maml": {"backbone_width": 16, "test_inner_steps": 2},
    "fomaml": {},
    "anil": {"meta_batch": 2, "inner_lr": 0.1},
    "metaoptnet_svm": {"separate_passes": True, "meta_batch": 2, "train_shots": 2, "val_shots": 2,
                       "lr_schedule": "metaoptnet", "optimizer": "sgd", "lr": 0.1},
    "r2d2": {"train_ways": 7, "r2d2_scale_init": 1e-4, "augment": True},
}


NO_CUDA = not torch.cuda.is_available()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(NO_CUDA, reason="no GPU"))])
@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("eval_precision", ["fp32", "train"])
def test_bf16_and_channels_last_train_and_evaluate(method, eval_precision, device):
    """The GPU code paths (bf16 autocast, channels-last) of every method, training and evaluation; on the CPU
    (CPU autocast has bf16), and on a GPU where there is one."""
    config = make_config(method=method, precision="bf16", channels_last="on", eval_precision=eval_precision,
                         val_resample=True, device=device, **VARIANTS[method])
    trainer = Trainer(config, log=quiet)
    assert trainer.bf16
    convs = [m for m in trainer.method.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    seen, layouts = [], []
    trainer.method.backbone.register_forward_hook(lambda module, args, out: seen.append((module.training, out.dtype)))
    convs[1].register_forward_hook(  # 64-channel input: its layout is not ambiguous as a 1-channel image's is
        lambda module, args, out: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    result = trainer.run()
    trained = {dtype for training, dtype in seen if training}
    evaluated = {dtype for training, dtype in seen if not training}
    assert trained == {torch.bfloat16}
    assert evaluated == {torch.float32 if eval_precision == "fp32" else torch.bfloat16}
    assert layouts and all(layouts)
    accuracy = result["metrics"]["accuracy"]
    assert np.isfinite(accuracy) and 0 <= accuracy <= 100 and np.isfinite(result["metrics"]["val_accuracy"])
    assert result["details"]["bf16"]


def test_bf16_channels_last_metaoptnet_on_the_unpooled_resnet12():
    """The wang2021 MetaOptNet-SVM recipe's code path (flattened ResNet-12 map, separate passes, label smoothing,
    the step schedule) under bf16 autocast and channels-last."""
    config = make_config(method="metaoptnet_svm", backbone="resnet12", global_pool=False, precision="bf16",
                         channels_last="on", separate_passes=True, meta_batch=2, train_shots=2, queries=2,
                         label_smoothing=0.1, lr_schedule="metaoptnet", optimizer="sgd", lr=0.1, weight_decay=5e-4,
                         val_shots=2, val_queries=2, val_resample=True)
    result = Trainer(config, log=quiet).run()
    assert np.isfinite(result["metrics"]["accuracy"])
