"""The run configuration keys of the few-shot family: every key a suite may set, its
type, default and meaning. Pure Python (no torch): the suite validator checks every
value against this table; keys at their default are left out of the run id.

A default of None for a method-specific key means "the method's own default".
"""
from __future__ import annotations

from harness.keys import REQUIRED, Key
from harness.fewshot.backbones import BACKBONES
from harness.fewshot.datasets import DATASETS
from harness.fewshot.heads import HEADS
from harness.fewshot.methods import METHODS

KEYS: dict[str, Key] = {
    # what is run
    "dataset": Key(str, REQUIRED, "dataset name (`harness list`)", choices=DATASETS),
    "method": Key(str, REQUIRED, "method name (`harness list`)", choices=METHODS),
    "shots": Key(int, REQUIRED, "labelled images per class in each task", minimum=1),
    "seed": Key(int, REQUIRED, "training seed", minimum=0),
    "ways": Key(int, 5, "classes per task", minimum=2),
    "queries": Key(int, 15, "query images per class in each training task (MTL: images per class = shots + queries)", minimum=1),
    "backbone": Key(str, "conv4", "feature extractor", choices=BACKBONES),
    # training
    "steps": Key(int, 1000, "optimiser steps", minimum=1),
    "meta_batch": Key(int, 1, "tasks whose mean loss makes one optimiser step", minimum=1),
    "optimizer": Key(str, "adam", "optimiser", choices=("adam", "radam", "sgd")),
    "lr": Key(float, 1e-3, "learning rate", minimum=0.0, exclusive=True),
    "weight_decay": Key(float, 0.0, "weight decay", minimum=0.0),
    "feature_norm": Key(bool, False, "L2-normalise features before the training head (mtl)"),
    "augment": Key(bool, False, "training augmentation: random crop with padding, colour jitter 0.4, horizontal flip"),
    "lr_patience": Key(int, None, "ReduceLROnPlateau on validation accuracy: validations without gain before the lr drops; null = constant lr", minimum=0, nullable=True),
    "lr_factor": Key(float, 0.1, "ReduceLROnPlateau factor", minimum=0.0, exclusive=True),
    # validation and model selection
    "val_every": Key(int, 100, "steps between validations", minimum=1),
    "val_episodes": Key(int, 100, "validation episodes (a fixed set)", minimum=1),
    "patience": Key(int, None, "early stopping: validations without improvement; null = never stop early", minimum=1, nullable=True),
    # evaluation
    "test_episodes": Key(int, 2000, "test episodes (a fixed set shared by all methods and seeds)", minimum=1),
    "test_queries": Key(int, 15, "query images per class in validation and test episodes", minimum=1),
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
}

AXES_REQUIRED = ("dataset", "shots", "method", "seed")
