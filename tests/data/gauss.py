"""A family whose runs draw their score from known distributions, instantly: the end-to-end
tests of sequential seeds (``tests/test_until_decided*.py``) name it in a suite's
``plugins:``. A run's score is

    mean of its method + sd * z(seed, method) + common_sd * z(seed)

with z standard normal draws fixed by the seed (and the method's name): the same run gives
the same record, two methods of one seed share z(seed) (paired by seed), and the truth of
every verdict is known. ``sleep_s`` makes a run last that long (to stop a launcher mid-round).
"""
import time
import zlib

import numpy as np

from harness.api import REQUIRED, Family, Key, Metric, Registry, register

DATASETS = Registry("gauss.dataset")
METHODS = Registry("gauss.method")


@register("gauss.dataset", "normal", version="1")
class Normal:
    @staticmethod
    def fingerprint():
        return "normal-v1"


# a method is its mean
@register("gauss.method", "exact", version="1")
def exact():
    return 70.0


@register("gauss.method", "twin", version="1")
def twin():
    return 70.0


@register("gauss.method", "noisy", version="1")
def noisy():
    return 70.0


@register("gauss.method", "far", version="1")
def far():
    return 80.0


@register("gauss.method", "hopeless", version="1")
def hopeless():
    return 70.0


class Trainer:
    def __init__(self, config, checkpoint=None, log=print):
        self.config, self.log, self.stop_requested = config, log, False

    def run(self):
        config = self.config
        own = np.random.default_rng([config["seed"], zlib.crc32(config["method"].encode())]).standard_normal()
        common = np.random.default_rng([config["seed"]]).standard_normal()
        score = METHODS.get(config["method"])() + config["sd"] * own + config["common_sd"] * common
        started = time.monotonic()
        time.sleep(config["sleep_s"])
        self.log(f"score {score:.4f}")
        return {"metrics": {"score": float(score)},
                "timing": {"train_seconds": time.monotonic() - started + 1.0, "eval_seconds": 0.0}, "details": {}}


FAMILY = Family(name="gauss", version="1", help="scores drawn from known normal distributions",
                keys={"dataset": Key(str, REQUIRED, "the dataset", choices=DATASETS),
                      "method": Key(str, REQUIRED, "the method: its mean", choices=METHODS),
                      "seed": Key(int, REQUIRED, "the seed of the draws", minimum=0),
                      "sd": Key(float, 1.0, "sd of a run's own draw", minimum=0.0),
                      "common_sd": Key(float, 0.0, "sd of the draw every method of a seed shares", minimum=0.0),
                      "sleep_s": Key(float, 0.0, "seconds a run lasts", minimum=0.0)},
                trainer="gauss:Trainer", metrics=(Metric("score", "higher"),))
