"""The run configuration schema of multi-task runs (Kurin et al. 2022): every key, its type,
default and meaning, as ``harness.keys.Key`` entries. Pure Python: no torch.

Every optimizer runs with the same regularisation knobs (``weight_decay``, ``dropout``,
``patience``). The optimizer-specific options (``cagrad_c``, ``graddrop_p``,
``dwa_temperature``, ``nash_max_norm``, ``mgda_normalization``, ``imtl_learn_scales``) are
declared by their optimizer, in its ``register(..., keys=...)`` call: the family's schema
(``schema()``, ``harness.api.Family.keys``) adds them.
"""
from __future__ import annotations

from harness.api import family_keys
from harness.keys import REQUIRED, Key
from harness.multitask.datasets import DATASETS
from harness.multitask.models import MODELS
from harness.multitask.optimizers import OPTIMIZERS

KEYS: dict[str, Key] = {
    # what is run
    "dataset": Key(str, REQUIRED, "multi-task dataset name: multi_mnist, celeba, cityscapes", choices=DATASETS),
    "method": Key(str, REQUIRED, "multi-task optimizer (harness/multitask/optimizers), e.g. unitary, pcgrad, mgda_ub", choices=OPTIMIZERS),
    "seed": Key(int, REQUIRED, "training seed (initialisation, batch order, dropout, the optimizer's randomness)", minimum=0),
    "model": Key(str, None, "network; null = the dataset's own (multi_mnist: multilenet, celeba: resnet18_celeba, "
                            "cityscapes: resnet50_dilated_deeplab)", choices=MODELS, nullable=True),
    # training
    "optimizer": Key(str, "adam", "adam, or sgd (Nesterov momentum 0.9)", choices=("adam", "sgd")),
    "lr": Key(float, 1e-3, "learning rate of the network (and of learnable loss weights)", minimum=0.0, exclusive=True),
    "weight_decay": Key(float, 0.0, "L2 penalty of the optimiser (torch's coupled weight_decay), on every network parameter", minimum=0.0),
    "lr_decay": Key(float, 1.0, "the lr is multiplied by this after every epoch (exponential decay; 0.95 for "
                                "Multi-MNIST and CelebA in the paper); 1.0 = constant", minimum=0.0, exclusive=True),
    "epochs": Key(int, 100, "training epochs (passes over the training split)", minimum=1),
    "batch_size": Key(int, 256, "training and evaluation batch size", minimum=1),
    "dropout": Key(bool, None, "the dropout layers of the official code; null = the model's default (multilenet: on, "
                               "resnet18_celeba and resnet50_dilated_deeplab: off)", nullable=True),
    "patience": Key(int, None, "early stopping: epochs without a better validation average; null = never stop early",
                    minimum=1, nullable=True),
    "train_images": Key(int, None, "use only the first N images of the training split (quick runs, tests); "
                                   "null = all", minimum=1, nullable=True),
    # where
    "device": Key(str, "auto", "auto (cuda when available), cpu or cuda", choices=("auto", "cpu", "cuda")),
}

AXES_REQUIRED = ("dataset", "method", "seed")


def schema() -> dict:
    """Every key of a multi-task run: KEYS and the keys its components declare."""
    return family_keys("multitask", KEYS)


def optimizer_options(config: dict) -> dict:
    """The constructor arguments of the run's multi-task optimizer, from the config keys it
    declares (``config`` resolved)."""
    return OPTIMIZERS.options(config["method"], config)


def resolved(config: dict) -> dict:
    """``config`` with every key of the schema: defaults filled in; raises ValueError on a
    missing required key or an unknown key (the suite validator gives the user-facing errors)."""
    keys = schema()
    unknown = sorted(set(config) - set(keys))
    if unknown:
        raise ValueError(f"unknown multi-task config keys: {unknown}")
    missing = [name for name, key in keys.items() if key.default is REQUIRED and name not in config]
    if missing:
        raise ValueError(f"missing required multi-task config keys: {missing}")
    return {name: config.get(name, key.default) for name, key in keys.items()}
