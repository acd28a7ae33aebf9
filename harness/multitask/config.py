"""The run configuration schema of multi-task runs (Kurin et al. 2022): every key, its type,
default and meaning, as ``harness.keys.Key`` entries. Pure Python: no torch.

Every optimizer runs with the same regularisation knobs (``weight_decay``, ``dropout``,
``patience``); the optimizer-specific options below are read only by their optimizer.
"""
from __future__ import annotations

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
    # optimizer options
    "cagrad_c": Key(float, 0.5, "cagrad: radius c of the conflict-averse ball", minimum=0.0),
    "graddrop_p": Key(float, 0.5, "graddrop_random: probability of dropping each gradient entry", minimum=0.0),
    "dwa_temperature": Key(float, 2.0, "dwa: softmax temperature", minimum=0.0, exclusive=True),
    "nash_max_norm": Key(float, 1.0, "nash_mtl: the combined gradient is clipped to this norm; 0 = no clipping", minimum=0.0),
    "mgda_normalization": Key(str, "loss+", "mgda_ub: gradient normalisation before the min-norm solve",
                              choices=("loss+", "l2", "loss", "none")),
    # Declared by the optimizers' register(..., keys=...) too; listed here until the core reads them there.
    "mgda_solver": Key(str, "exact", "mgda_ub: exact = Wolfe's min-norm algorithm; official = the official code's "
                                     "projected gradient descent (250 steps, 1e-5 stop, 0.999/0.001 on a vertex)",
                       choices=("exact", "official")),
    "imtl_solver": Key(str, "exact", "imtl: exact = the equal-projection IMTL-G system; official = the official "
                                     "code's transposed system plus 1e-6 I (the same for 2 tasks)",
                       choices=("exact", "official")),
    # where
    "device": Key(str, "auto", "auto (cuda when available), cpu or cuda", choices=("auto", "cpu", "cuda")),
}

AXES_REQUIRED = ("dataset", "method", "seed")

# optimizer -> {constructor argument: config key}
OPTIMIZER_OPTIONS = {
    "cagrad": {"c": "cagrad_c"},
    "graddrop_random": {"p": "graddrop_p"},
    "dwa": {"temperature": "dwa_temperature"},
    "nash_mtl": {"max_norm": "nash_max_norm"},
    "mgda_ub": {"normalization": "mgda_normalization", "solver": "mgda_solver"},
    "imtl": {"solver": "imtl_solver"},
}


def optimizer_options(config: dict) -> dict:
    """The constructor arguments of the run's multi-task optimizer, from its config keys."""
    return {arg: config[key] for arg, key in OPTIMIZER_OPTIONS.get(config["method"], {}).items()}


def resolved(config: dict) -> dict:
    """``config`` with every key of KEYS: defaults filled in; raises ValueError on a missing
    required key or an unknown key (the suite validator gives the user-facing errors)."""
    unknown = sorted(set(config) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown multi-task config keys: {unknown}")
    missing = [name for name, key in KEYS.items() if key.default is REQUIRED and name not in config]
    if missing:
        raise ValueError(f"missing required multi-task config keys: {missing}")
    return {name: config.get(name, key.default) for name, key in KEYS.items()}
