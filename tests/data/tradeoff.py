"""A family whose validation score and test score pull apart: the larger ``lr``, the better
its validation score and the worse its test score (a sweep that overfits validation). The
model-selection tests (``tests/test_model_selection.py``) name it in a suite's ``plugins:``.
Each run is instant and a function of (lr, seed) alone.
"""
import zlib

import numpy as np

from harness.api import REQUIRED, Family, Key, Metric, Registry, register

DATASETS = Registry("tradeoff.dataset")
METHODS = Registry("tradeoff.method")


@register("tradeoff.dataset", "toy", version="1")
class Toy:
    @staticmethod
    def fingerprint():
        return "toy-v1"


@register("tradeoff.method", "sgd", version="1")
def sgd():
    return 70.0


class Trainer:
    def __init__(self, config, checkpoint=None, log=print):
        self.config, self.log, self.stop_requested = config, log, False

    def run(self):
        config = self.config
        noise = np.random.default_rng([config["seed"], zlib.crc32(config["method"].encode())]).standard_normal(2)
        base = METHODS.get(config["method"])()
        validation = base + 100 * config["lr"] + 0.5 * noise[0]
        test = base - 100 * config["lr"] + 0.5 * noise[1]
        self.log(f"validation {validation:.3f} test {test:.3f}")
        return {"metrics": {"score": float(test), "val_score": float(validation)},
                "timing": {"train_seconds": 1.0, "eval_seconds": 0.0}, "details": {}}


FAMILY = Family(name="tradeoff", version="1", help="validation and test scores that disagree on lr",
                keys={"dataset": Key(str, REQUIRED, "the dataset", choices=DATASETS),
                      "method": Key(str, REQUIRED, "the method", choices=METHODS),
                      "seed": Key(int, REQUIRED, "the seed of the noise", minimum=0),
                      "lr": Key(float, 0.1, "validation rises and test falls with it", minimum=0.0)},
                trainer="tradeoff:Trainer", metrics=(Metric("score", "higher", "%", bounds=(0, 100)),),
                validation=(Metric("val_score", "higher", "%", bounds=(0, 200)),))
