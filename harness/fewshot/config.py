"""The run configuration keys of the few-shot family: every key a suite may set, its
type, default and meaning. Pure Python (no torch): the suite validator checks every
value against this table; keys at their default are left out of the run id.

A default of None for a method-specific key means "the method's own default".
"""
from __future__ import annotations

from harness.api import family_keys
from harness.fewshot.backbones import BACKBONES
from harness.fewshot.datasets import DATASETS
from harness.fewshot.heads import HEADS
from harness.fewshot.methods import METHODS
from harness.keys import REQUIRED, Key

KEYS: dict[str, Key] = {
    # what is run
    "dataset": Key(str, REQUIRED, "dataset name (`harness list`)", choices=DATASETS),
    "method": Key(str, REQUIRED, "method name (`harness list`)", choices=METHODS),
    "shots": Key(int, REQUIRED, "labelled images per class in each task", minimum=1),
    "seed": Key(int, REQUIRED, "training seed", minimum=0),
    "ways": Key(int, 5, "classes per task", minimum=2),
    "queries": Key(int, 15, "query images per class in each training task (MTL: images per class = shots + queries)", minimum=1),
    "backbone": Key(str, "conv4", "feature extractor", choices=BACKBONES),
    "backbone_width": Key(int, None, "conv4: filters of each of its four conv layers (Finn et al.'s MAML uses 32 on mini-ImageNet); null = 64. Other backbones refuse it", minimum=1, nullable=True),
    "global_pool": Key(bool, True, "resnet12: global average pooling of the last feature map (640-d features); false = the un-pooled map flattened, as MetaOptNet's resnet12(avg_pool=False) feeds its heads (640 x 5 x 5 = 16,000-d at 84x84, 640 x 2 x 2 = 2,560-d at 32x32). Other backbones refuse false"),
    # the training tasks
    "train_ways": Key(int, None, "classes per training task; null = ways. Validation and test tasks always have `ways` classes (R2-D2 trains 16-way on mini-ImageNet, 20-way on CIFAR-FS). maml, fomaml and anil refuse a value other than ways (their head has `ways` outputs)", minimum=2, nullable=True),
    "train_shots": Key(int, None, "support images per class in a training task; null = shots (MetaOptNet-SVM trains with 15 on mini-ImageNet, 10 on tiered, 5 on CIFAR-FS, 15 on FC100). A training task has train_shots + queries images per class", minimum=1, nullable=True),
    "separate_passes": Key(bool, False, "protonet, metaoptnet_svm, r2d2: embed the support images of ALL the step's `meta_batch` training tasks in one forward pass and their query images in a second (batch-norm statistics over each set), as MetaOptNet's train.py does; false = one forward pass per task over its support and queries together. Validation then counts 2 backbone passes per episode for the DropBlock ramp instead of 1. Other methods refuse true"),
    "label_smoothing": Key(float, 0.0, "eps of the training loss's label smoothing, MetaOptNet's form (train.py --eps): the target is 1 - eps on the true class and eps / (ways - 1) on each other class (not torch's eps / ways on every class); applies to every method's outer training loss, never to inner loops or evaluation. Must be < 1", minimum=0.0),
    "protonet_scale": Key(bool, False, "protonet: logits = scale * (-squared distance) / feature dimension, with scale a learnable scalar initialised at 1, as MetaOptNet's ProtoNetHead with its ClassificationHead scale; false = Snell et al.'s plain -squared distance. The centroid evaluation head is unaffected (the argmax is the same)"),
    "r2d2_scale_init": Key(float, 1.0, "r2d2: initial value of the learnable scale applied to the ridge scores (bertinetto/r2d2 base_learner.init_adj_scale: 1e-4 by default and in mini_r2d2.sh, 10 in cifar_r2d2.sh; MetaOptNet's R2D2 head starts at 1)", minimum=0.0, exclusive=True),
    # training
    "steps": Key(int, 1000, "optimiser steps", minimum=1),
    "meta_batch": Key(int, 1, "tasks whose mean loss makes one optimiser step", minimum=1),
    "optimizer": Key(str, "adam", "optimiser", choices=("adam", "radam", "sgd")),
    "lr": Key(float, 1e-3, "learning rate", minimum=0.0, exclusive=True),
    "weight_decay": Key(float, 0.0, "weight decay", minimum=0.0),
    "feature_norm": Key(bool, False, "L2-normalise features before the training head (mtl)"),
    "augment": Key(bool, False, "training augmentation: random crop with padding, colour jitter 0.4, horizontal flip"),
    "lr_patience": Key(int, None, "ReduceLROnPlateau on validation accuracy: validations without gain before the lr drops; null = constant lr. Cannot be combined with an lr_schedule other than constant", minimum=0, nullable=True),
    "lr_factor": Key(float, 0.1, "ReduceLROnPlateau factor", minimum=0.0, exclusive=True),
    "lr_schedule": Key(str, "constant", "fixed learning-rate schedule over epochs of `val_every` steps, counted from 1 (step s is in epoch ceil(s / val_every)); the lr of epoch e is lr x m(e). constant: m = 1. metaoptnet: MetaOptNet's train.py LambdaLR, m = 1 for e < 20, 0.06 for e < 40, 0.012 for e < 50, else 0.0024 (so epochs 1-19 run at lr). step: m = lr_step_gamma ** floor(e / lr_step_epochs), torch's StepLR stepped at each epoch's start as bertinetto/r2d2 does", choices=("constant", "metaoptnet", "step")),
    "lr_step_epochs": Key(int, 20, "lr_schedule step: epochs between decays (bertinetto/r2d2 train.decay_every: 20)", minimum=1),
    "lr_step_gamma": Key(float, 0.5, "lr_schedule step: the factor of each decay (bertinetto/r2d2 train.lr_decay: 0.5)", minimum=0.0, exclusive=True),
    # validation and model selection
    "val_every": Key(int, 100, "steps between validations", minimum=1),
    "val_episodes": Key(int, 100, "validation episodes per validation", minimum=1),
    "val_shots": Key(int, None, "support images per class in validation episodes; null = shots (MetaOptNet validates on 5-shot episodes whatever the test shots)", minimum=1, nullable=True),
    "val_queries": Key(int, None, "query images per class in validation episodes; null = test_queries (MetaOptNet: 15; the official MTL code: 30)", minimum=1, nullable=True),
    "val_resample": Key(bool, False, "draw a fresh set of val_episodes validation episodes at every validation (seeded by the run's seed, eval_seed and the step), as the official MTL code (a new 400-task sample each epoch) and MetaOptNet (episodes seeded by the epoch) do; false = one fixed set, the same for every method and seed (a function of ways, val_shots, val_queries, eval_seed)"),
    "patience": Key(int, None, "early stopping: validations without improvement; null = never stop early", minimum=1, nullable=True),
    "tested_checkpoint": Key(str, "best", "the weights scored on the test episodes: best = those of the best validation; final = those at the end of training (the official MTL code, whose Lightning 1.0 trainer.test(model=...) ignores ckpt_path, and cbfinn/maml, which tests its last model)", choices=("best", "final")),
    # evaluation
    "test_episodes": Key(int, 2000, "test episodes (a fixed set shared by all methods and seeds)", minimum=1),
    "test_queries": Key(int, 15, "query images per class in test episodes (and in validation episodes when val_queries is null)", minimum=1),
    "eval_seed": Key(int, 0, "seed of the fixed validation and test episodes", minimum=0),
    "eval_head": Key(str, None, "evaluation head; null = the method's own", choices=HEADS, nullable=True),
    "logreg_C": Key(float, 3.0, "inverse L2 penalty of the logistic-regression head", minimum=0.0, exclusive=True),
    "logreg_iters": Key(int, 100, "maximum Newton iterations of the logistic-regression head", minimum=1),
    "finetune_steps": Key(int, 100, "SGD steps of the finetune head on the support features", minimum=1),
    "finetune_lr": Key(float, 0.01, "learning rate of the finetune head", minimum=0.0, exclusive=True),
    "svm_C": Key(float, 0.1, "cost C of the Crammer-Singer SVM (metaoptnet_svm, svm head)", minimum=0.0, exclusive=True),
    "svm_ridge": Key(float, 1.0, "identity added to the SVM dual's quadratic term, as MetaOptNet does", minimum=0.0, exclusive=True),
    "ridge_lambda": Key(float, 50.0, "per-example ridge penalty (r2d2, ridge head)", minimum=0.0, exclusive=True),
    # gradient-based meta-learning
    "inner_steps": Key(int, 5, "inner-loop steps on the support set per task (maml, fomaml, anil)", minimum=1),
    "inner_lr": Key(float, 0.01, "inner-loop learning rate (maml, fomaml, anil)", minimum=0.0, exclusive=True),
    "test_inner_steps": Key(int, None, "inner-loop steps at validation and test; null = inner_steps", minimum=1, nullable=True),
    # where
    "device": Key(str, "auto", "auto (cuda when available), cpu or cuda", choices=("auto", "cpu", "cuda")),
    "precision": Key(str, "auto", "bf16 autocast or fp32; auto = bf16 on a GPU that supports it, else fp32", choices=("auto", "bf16", "fp32")),
    "channels_last": Key(str, "auto", "channels-last memory format for convolutions; auto = on for GPUs", choices=("auto", "on", "off")),
    "eval_precision": Key(str, "fp32", "precision of the backbone passes of validation and test (frozen embeddings; adapting methods' test-time adaptation): fp32, or train = the training precision (bf16 autocast when `precision` gives it). Heads always get fp32 features; linear algebra (ridge, SVM) is always solved in fp32 or better", choices=("fp32", "train")),
}

AXES_REQUIRED = ("dataset", "shots", "method", "seed")


def schema() -> dict:
    """Every key of a few-shot run: KEYS and the keys its components declare (DropBlock,
    solver and inner-loop variants: ``harness list --keys fewshot``)."""
    return family_keys("fewshot", KEYS)
