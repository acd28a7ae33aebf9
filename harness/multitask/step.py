"""One training step's gradients, for each optimizer space (contract in optimizers/_base.py).

The trunk runs forward ONCE. With ``raw`` the (T,) per-task mean losses and
``losses = mtl.transform_losses(raw)``:

- ``losses``: back-propagate ``mtl.objective(losses)``;
- ``representation``: the heads run on a detached copy z' of z; for each task i one
  ``autograd.grad`` of L_i w.r.t. z' and the heads' (and learnable optimizer)
  parameters, through the heads only; the per-task z'-gradients are combined and
  ``z.backward(combined)`` runs the trunk's backward once. Heads and learnable
  parameters get the sum of their per-task gradients (the plain-sum gradient);
- ``parameters``: for each task i one ``autograd.grad`` of L_i w.r.t. all parameters
  (T backward passes through the trunk), the shared parts flattened into the rows of a
  (T, P) matrix; the combined row is written into the shared ``.grad``; heads and
  learnable parameters get the plain-sum gradient.

The caller zeroes the gradients before and steps the optimisers after.
"""
from __future__ import annotations

import torch

from harness.multitask.tasks import task_losses


def accumulate(parameters: list, gradients) -> None:
    for parameter, gradient in zip(parameters, gradients):
        if gradient is not None:
            parameter.grad = gradient if parameter.grad is None else parameter.grad + gradient


def backward(model, mtl, x: torch.Tensor, targets: dict, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``.grad`` of the model's and ``mtl``'s parameters; return the raw (T,) losses, detached."""
    tasks = model.tasks
    z = model.trunk(x)
    if mtl.space == "losses":
        raw = task_losses(tasks, model.heads(z), targets)
        mtl.objective(mtl.transform_losses(raw), generator).backward()
        return raw.detach()

    others = [p for p in list(model.head_parameters()) + list(mtl.parameters()) if p.requires_grad]
    if mtl.space == "representation":
        z_in = z.detach().requires_grad_()
        raw = task_losses(tasks, model.heads(z_in), targets)
        losses = mtl.transform_losses(raw)
        grads = torch.empty((len(tasks), *z.shape), dtype=z.dtype, device=z.device)
        for i in range(len(tasks)):
            grad_z, *rest = torch.autograd.grad(losses[i], [z_in] + others, retain_graph=i < len(tasks) - 1,
                                                allow_unused=True)
            grads[i] = 0 if grad_z is None else grad_z
            accumulate(others, rest)
        inputs = z.detach() if mtl.uses_inputs else None
        z.backward(mtl.combine(grads, losses.detach(), generator, inputs=inputs))
        return raw.detach()

    shared = [p for p in model.shared_parameters() if p.requires_grad]
    raw = task_losses(tasks, model.heads(z), targets)
    losses = mtl.transform_losses(raw)
    sizes = [p.numel() for p in shared]
    grads = torch.zeros((len(tasks), sum(sizes)), dtype=z.dtype, device=z.device)
    for i in range(len(tasks)):
        gradients = torch.autograd.grad(losses[i], shared + others, retain_graph=i < len(tasks) - 1, allow_unused=True)
        for row, gradient in zip(grads[i].split(sizes), gradients[:len(shared)]):
            if gradient is not None:
                row.copy_(gradient.flatten())
        accumulate(others, gradients[len(shared):])
    combined = mtl.combine(grads, losses.detach(), generator)
    for parameter, part in zip(shared, combined.split(sizes)):
        parameter.grad = part.view_as(parameter).clone()
    return raw.detach()
