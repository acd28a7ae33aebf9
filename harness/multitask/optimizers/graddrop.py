"""GradDrop, gradient sign dropout (Chen et al., NeurIPS 2020, "Just Pick a Sign").

On the per-task gradients g_i w.r.t. the shared representation z (shape (T, B, ...)):
1. G_i = sum over the batch of g_i * sign(z) (section 3.2; pass ``inputs=z``; values
   |z| <= 1e-7 count as sign 0, where the official code uses z / (1 + z) ~ 0).
   Without ``inputs``, G_i = g_i elementwise (GradDrop on parameter gradients).
2. sign purity per unit P = 0.5 (1 + sum_i G_i / sum_i |G_i|) (0.5 where all G_i = 0);
3. U ~ U[0, 1) per unit; keep the positive parts (G_i >= 0) where U < P, else the
   negative parts (G_i <= 0); a zero G_i is kept either way, as in the official code;
4. the masked sum sum_i M_i g_i (masks broadcast over the batch) is rescaled to the
   norm of the plain sum sum_i g_i (official code; not in the paper).
"""
from __future__ import annotations

import torch

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer, rescale_to_norm, uniform

SIGN_EPS = 1e-7


@register("graddrop", version="1")
class GradDrop(MultiTaskOptimizer):
    space = "representation"
    uses_inputs = True

    def sign_signal(self, grads, inputs=None):
        """G_i: (T, ...) per unit, the batch summed out when ``inputs`` is given."""
        if inputs is None:
            return grads
        if inputs.shape != grads.shape[1:]:
            raise ValueError(f"inputs {tuple(inputs.shape)} do not match gradients {tuple(grads.shape[1:])}")
        signs = torch.sign(inputs) * (inputs.abs() > SIGN_EPS)
        return (grads * signs).sum(1)

    def masks(self, grads, generator=None, inputs=None):
        """(T, ...) boolean keep-masks, broadcastable against ``grads``."""
        signal = self.sign_signal(self.check(grads), inputs)
        masks = sign_masks(signal, uniform(signal.shape[1:], generator, signal.device))
        return masks if inputs is None else masks.unsqueeze(1)

    def combine(self, grads, losses=None, generator=None, inputs=None):
        kept = (grads * self.masks(grads, generator, inputs)).sum(0)
        return rescale_to_norm(kept, grads.sum(0))


def sign_purity(signal):
    total, magnitude = signal.sum(0), signal.abs().sum(0)
    return 0.5 * (1 + torch.where(magnitude > 0, total / magnitude.clamp_min(torch.finfo(signal.dtype).tiny), 0.0))


def sign_masks(signal, uniform_draws):
    """Keep G_i >= 0 where uniform < purity, else G_i <= 0."""
    keep_positive = uniform_draws < sign_purity(signal)
    return torch.where(keep_positive, signal >= 0, signal <= 0)
