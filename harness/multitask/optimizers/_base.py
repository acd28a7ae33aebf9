"""What a multi-task optimizer is, and its contract with the training loop.

Each optimizer combines T per-task losses or gradients into one update. Class
attributes say what it needs:

- ``space``: ``"losses"`` (needs only the per-task losses: call ``objective``),
  ``"parameters"`` (per-task gradients of the flattened SHARED parameters, (T, P)) or
  ``"representation"`` (per-task gradients w.r.t. the shared representation z,
  (T, *z.shape)); the gradient-space methods work on any (T, ...) stack, ``space``
  is where the paper's official code applies them.
- ``learnable``: it has parameters of its own (``parameters()``, e.g. uncertainty's
  log-variances, IMTL-L's loss scales), to be given to an optimizer.
- ``uses_inputs``: ``combine`` wants ``inputs=z.detach()`` (GradDrop).

One training step, with ``raw`` the (T,) per-task mean losses::

    losses = opt.transform_losses(raw)            # identity except IMTL-L
    if opt.space == "losses":
        opt.objective(losses, generator).backward()
    else:
        # task heads and opt.parameters(): gradient of losses.sum() (plain sum)
        # shared part: grads = per-task gradients stacked to (T, ...)
        g = opt.combine(grads, losses.detach(), generator, inputs=z.detach())
        # "parameters": write g into the shared parameters' .grad;
        # "representation": z.backward(g) (same as back-propagating sum_i alpha_i L_i
        # through the trunk for the weighting methods MGDA-UB and IMTL-G)

State (DWA's loss history, learnable parameters) lives in buffers and parameters, so
``state_dict``/``load_state_dict`` checkpoint it. All randomness comes from the
``generator`` argument (the global torch RNG when it is None).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class MultiTaskOptimizer(nn.Module):
    space = "losses"
    learnable = False
    uses_inputs = False

    def __init__(self, num_tasks: int):
        super().__init__()
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        self.num_tasks = num_tasks

    def transform_losses(self, losses: Tensor) -> Tensor:
        """The per-task losses the method works on (IMTL-L rescales them)."""
        return losses

    def weights(self, losses: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Loss-space methods: the (T,) weights w of the objective sum_i w_i L_i."""
        raise NotImplementedError(f"{type(self).__name__} works on gradients: use combine")

    def objective(self, losses: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Loss-space methods: the scalar to back-propagate."""
        return (self.weights(losses, generator).to(losses) * losses).sum()

    def combine(self, grads: Tensor, losses: Tensor | None = None, generator: torch.Generator | None = None,
                inputs: Tensor | None = None) -> Tensor:
        """Gradient-space methods: (T, ...) per-task gradients -> the combined (...) gradient."""
        raise NotImplementedError(f"{type(self).__name__} works on losses: use objective")

    def end_epoch(self, mean_losses: Tensor) -> None:
        """Called once per training epoch with the (T,) epoch-mean losses (DWA uses them)."""

    def check(self, grads: Tensor) -> Tensor:
        if grads.dim() < 2 or grads.shape[0] != self.num_tasks:
            raise ValueError(f"expected ({self.num_tasks}, ...) per-task gradients, got {tuple(grads.shape)}")
        return grads


def uniform(shape, generator: torch.Generator | None, device) -> Tensor:
    """U[0, 1) samples drawn on the generator's device, then moved to ``device``."""
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where).to(device)


def rescale_to_norm(update: Tensor, reference: Tensor) -> Tensor:
    """``update`` scaled to the norm of ``reference`` (zero stays zero)."""
    norm = update.norm()
    return update * torch.where(norm > 0, reference.norm() / norm.clamp_min(torch.finfo(norm.dtype).tiny), 0.0)


def gram(grads: Tensor) -> Tensor:
    """(T, T) float64 CPU matrix of inner products of the flattened task gradients."""
    flat = grads.flatten(1)
    return (flat @ flat.T).double().cpu()

