"""The ``digits`` family, declared with harness's public API (``harness.api``).

Imported at plan time (it is an entry point that declares a Family): no torch and no
scikit-learn here. Components are one file each in ``datasets/`` and ``methods/``;
their ``register(...)`` calls are read as text to plan and imported by workers only.
"""
from harness.api import REQUIRED, Family, Key, Metric, Registry

DATASETS = Registry("digits.dataset", package="harness_example.digits.datasets")
METHODS = Registry("digits.method", package="harness_example.digits.methods")

KEYS = {
    "dataset": Key(str, REQUIRED, "dataset name (`harness list`)", choices=DATASETS),
    "method": Key(str, REQUIRED, "method name (`harness list`)", choices=METHODS),
    "seed": Key(int, REQUIRED, "training seed (the mlp's initialisation and batch order; svc and logreg are deterministic)", minimum=0),
    "svc_gamma": Key(float, 0.001, "svc: RBF kernel coefficient (scikit-learn's example: 0.001)", minimum=0.0, exclusive=True),
    "svc_C": Key(float, 1.0, "svc: penalty C (scikit-learn's default)", minimum=0.0, exclusive=True),
    "logreg_C": Key(float, 1.0, "logreg: inverse L2 penalty on pixels scaled to [0, 1]", minimum=0.0, exclusive=True),
    "logreg_max_iter": Key(int, 1000, "logreg: maximum L-BFGS iterations", minimum=1),
    "mlp_hidden": Key(int, 128, "mlp: units of each of its two hidden layers", minimum=1),
    "mlp_epochs": Key(int, 40, "mlp: passes over the training images (a checkpoint after each)", minimum=1),
    "mlp_batch_size": Key(int, 32, "mlp: images per Adam step", minimum=1),
    "mlp_lr": Key(float, 1e-3, "mlp: Adam learning rate", minimum=0.0, exclusive=True),
    "mlp_weight_decay": Key(float, 0.0, "mlp: Adam weight decay", minimum=0.0),
}

FAMILY = Family(
    name="digits",
    version="1",
    help="handwritten digits (scikit-learn's load_digits, 8x8): train on the first half, test on the second",
    keys=KEYS,
    trainer="harness_example.digits.train:Trainer",
    metrics=(Metric("accuracy", "higher", "%", samples="correct", samples_name="images",
                    help="share of the test images classified correctly", bounds=(0, 100)),),
)
