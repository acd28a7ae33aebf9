"""Sign-agnostic random GradDrop (the variant run by Kurin et al., 2022).

Like ``graddrop`` but each entry of each task's representation gradient is dropped
independently with probability p (default 0.5), regardless of signs; the masked sum
is rescaled to the norm of the plain sum. (The GradDrop paper's own "random"
baseline instead keeps one random sign per unit; this follows the official code.)
"""
from __future__ import annotations

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer, rescale_to_norm, uniform


@register("graddrop_random", version="1", keys={"graddrop_p": {
    "type": "float", "default": 0.5, "minimum": 0.0, "arg": "p",
    "help": "graddrop_random: probability of dropping each gradient entry"}})
class RandomGradDrop(MultiTaskOptimizer):
    space = "representation"

    def __init__(self, num_tasks: int, p: float = 0.5):
        super().__init__(num_tasks)
        if not 0 <= p < 1:
            raise ValueError(f"drop probability p must be in [0, 1), got {p}")
        self.p = p

    def masks(self, grads, generator=None, inputs=None):
        return uniform(self.check(grads).shape, generator, grads.device) >= self.p

    def combine(self, grads, losses=None, generator=None, inputs=None):
        kept = (grads * self.masks(grads, generator)).sum(0)
        return rescale_to_norm(kept, grads.sum(0))
