"""Per-task gradients: the (k, P) matrix whose row t is the gradient of task t's mean loss
(``TaskSplit.means``) w.r.t. the flattened parameters, three ways.

- ``loop``: one backward pass per task (the paper's code, U ``mtrl/agent/pcgrad.py``).
- ``batched``: one backward pass vmapped over the k identity cotangents of the (k,) task
  losses (``torch.autograd.grad(..., is_grads_batched=True)``): k times the backward's
  arithmetic, in batched kernels.
- ``segment``: ONE ordinary backward pass. The networks are MLPs without batch
  statistics, so each sample's loss depends only on its own row: the backward of
  sum_b w_b l_b (w_b = 1 / count of b's task) gives, at every linear layer's output, the
  per-sample signals delta_b = w_b dl_b/dz_b; task t's gradient of that layer is then
  sum over t's samples of delta_b x_b^T (and sum delta_b for the bias), one batched
  matrix product over the samples grouped by task. Its arithmetic is about that of one
  backward pass (times n_max / mean count, from the padding), whatever k.
  It needs the ``tape`` the forward filled (``harness.rl.networks``) and every parameter
  to belong to a taped linear layer.

``benchmarks/rl_step.py`` times the three; the trainer uses ``segment`` where it applies
(actor and critic) and ``batched`` for the temperature.
"""
from __future__ import annotations

import torch

from harness.rl.task_losses import TaskSplit

METHODS = ("segment", "batched", "loop")


def per_task_gradients(per_sample: torch.Tensor, split: TaskSplit, params: list, tape: list | None = None,
                       method: str = "segment") -> torch.Tensor:
    if method == "segment":
        if tape is None:
            raise ValueError("segment per-task gradients need the tape of the forward pass")
        return segment(per_sample, split, params, tape)
    losses = split.means(per_sample)
    if method == "batched":
        identity = torch.eye(len(losses), device=losses.device, dtype=losses.dtype)
        grads = torch.autograd.grad(losses, params, grad_outputs=identity, is_grads_batched=True)
        return torch.cat([g.reshape(len(losses), -1) for g in grads], dim=1)
    if method == "loop":
        rows = []
        for t in range(len(losses)):
            grads = torch.autograd.grad(losses[t], params, retain_graph=t < len(losses) - 1)
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
        return torch.stack(rows)
    raise ValueError(f"unknown per-task gradient method {method!r} (known: {', '.join(METHODS)})")


def segment(per_sample: torch.Tensor, split: TaskSplit, params: list, tape: list) -> torch.Tensor:
    outputs = [out for _, _, out in tape]
    deltas = torch.autograd.grad((per_sample * split.sample_weights(per_sample.dtype)).sum(), outputs)
    slots, n_max = split.padded_slots()
    k = split.num_present
    found: dict[int, torch.Tensor] = {}  # id(parameter) -> (k, *shape) gradient, summed over its uses
    for (layer, x, _), delta in zip(tape, deltas):
        x_grouped = _grouped(x.detach(), slots, k, n_max)
        delta_grouped = _grouped(delta, slots, k, n_max)
        weight = torch.bmm(delta_grouped.transpose(1, 2), x_grouped)  # (k, out, in)
        bias = delta.new_zeros(k, delta.shape[1]).index_add_(0, split.position, delta)
        for parameter, grad in ((layer.weight, weight), (layer.bias, bias)):
            found[id(parameter)] = found[id(parameter)] + grad if id(parameter) in found else grad
    missing = [i for i, p in enumerate(params) if id(p) not in found]
    if missing:
        raise ValueError(f"parameters {missing} are in no taped linear layer: use the batched or loop method")
    return torch.cat([found[id(p)].reshape(k, -1) for p in params], dim=1)


def _grouped(rows: torch.Tensor, slots: torch.Tensor, k: int, n_max: int) -> torch.Tensor:
    """(B, d) rows -> (k, n_max, d), task t's rows first in block t, zero padding after."""
    out = rows.new_zeros(k * n_max, rows.shape[1])
    out.index_copy_(0, slots, rows)
    return out.view(k, n_max, rows.shape[1])


def write_gradient(params: list, flat: torch.Tensor) -> None:
    """Set each parameter's ``.grad`` from one flattened (P,) gradient."""
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
        offset += p.numel()
