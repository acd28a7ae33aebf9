"""One role's update direction (actor, critic or temperature) from its per-sample losses, through
a multi-task optimizer of ``harness.multitask.optimizers`` (the same objects as the
multi-task family's), as the paper's RL code applies them (U ``mtrl/agent/mtl_optimizer.py``,
``pcgrad.py``, ``optimizers/*.py``; rl.md section 1):

- plain (``unitary``, and the temperature of every method but pcgrad): ``.mean()`` over the
  whole mixed batch, a count-weighted mean of the task losses (U's unitary is this, not
  the multi-task core's sum of task means);
- loss space (``rlw_*``, ``uncertainty``, ``dwa``): the optimizer's objective of the per-task
  mean losses;
- gradient space (every other method): the optimizer's ``combine`` of the per-task gradients
  of ALL the role's parameters (an RL network is shared by every task: there are no task
  heads and no separate representation, so GradDrop works on parameter gradients as the
  scripts' ``use_params_grads=True``), with two conversions to what the paper's code did:
  ``pcgrad`` returns the MEAN of the projected gradients (mtrl's PCGrad; the core sums
  them) and ``mgda_ub`` returns sum_i alpha_i of the NORMALISED gradients (U's
  parameter-space MGDA normalises the gradients in place before combining them).

Tasks missing from the batch are dropped, as in the paper's code: a stateless optimizer is
instantiated for the k tasks present. A stateful one (``uncertainty``'s and IMTL-L's learned
scales, ``dwa``'s loss history) keeps one instance for all T tasks and sees a missing task
with loss 0 and gradient 0 (at the paper's batch of 1280 a batch misses a task with
probability below 1e-9 even on MT50).
"""
from __future__ import annotations

import torch

from harness.multitask.optimizers import OPTIMIZERS
from harness.multitask.optimizers._base import MultiTaskOptimizer
from harness.rl.task_gradients import per_task_gradients, write_gradient
from harness.rl.task_losses import TaskSplit

PLAIN = None  # the method name of a plain mean


class TaskCombiner:
    def __init__(self, method: str | None, num_tasks: int, options: dict, lr: float, device: torch.device,
                 gradients: str = "segment"):
        self.method, self.num_tasks, self.options, self.device = method, num_tasks, dict(options), device
        self.gradients = gradients
        self.plain = method in (PLAIN, "unitary")
        self.full = None if self.plain else OPTIMIZERS.get(method)(num_tasks, **options).to(device)
        self.stateful = self.full is not None and (self.full.learnable or any(True for _ in self.full.buffers()))
        self.optimizer = torch.optim.Adam(self.full.parameters(), lr=lr) if self.full is not None and self.full.learnable else None
        self._by_count: dict[int, object] = {num_tasks: self.full}
        self.epoch_sums = torch.zeros(num_tasks, dtype=torch.float64)  # dwa: the losses of the current "epoch"
        self.epoch_updates = 0

    @property
    def space(self) -> str:
        """Where the optimizer acts here: "losses", or "parameters" (every gradient-space one)."""
        return "losses" if self.plain or self.full.space == "losses" else "parameters"

    def instance(self, k: int):
        if k not in self._by_count:
            self._by_count[k] = OPTIMIZERS.get(self.method)(k, **self.options).to(self.device)
        return self._by_count[k]

    def set_gradients(self, per_sample: torch.Tensor, split: TaskSplit, params: list, tape: list | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """Write the update direction into ``params``' (and the optimizer's own parameters') ``.grad``.
        Returns the (k,) per-task mean losses, detached."""
        task_losses = split.means(per_sample)
        if self.plain:
            write_gradient(params, _flat(torch.autograd.grad(per_sample.mean(), params)))
            return task_losses.detach()
        self._remember(task_losses.detach(), split)
        if self.stateful:
            opt, present = self.full, split.present
            losses = task_losses.new_zeros(self.num_tasks).index_copy(0, present, task_losses)
        else:
            opt, present, losses = self.instance(split.num_present), None, task_losses
        own = list(opt.parameters())
        if opt.space == "losses":
            objective = opt.objective(opt.transform_losses(losses), generator)
            grads = torch.autograd.grad(objective, params + own)
            write_gradient(params, _flat(grads[:len(params)]))
            if own:
                write_gradient(own, _flat(grads[len(params):]))
            return task_losses.detach()
        grads = per_task_gradients(per_sample, split, params, tape, self._method_for(tape))
        if present is not None:
            grads = grads.new_zeros(self.num_tasks, grads.shape[1]).index_copy(0, present, grads)
        if own:
            # IMTL-L: its scaled losses act elementwise, so task t's scaled gradient is its gradient
            # times d scaled_t / d L_t; its own scales get the gradient of the scaled losses' plain sum
            base = losses.detach().requires_grad_(True)
            scaled = opt.transform_losses(base)
            slope, *own_grads = torch.autograd.grad(scaled.sum(), [base] + own)
            grads = grads * slope[:, None]
            write_gradient(own, _flat(own_grads))
            losses = scaled
        write_gradient(params, self._direction(opt, grads, losses.detach(), generator))
        return task_losses.detach()

    def _method_for(self, tape) -> str:
        return self.gradients if tape is not None or self.gradients != "segment" else "batched"

    def _direction(self, opt, grads: torch.Tensor, losses: torch.Tensor, generator) -> torch.Tensor:
        if self.method == "mgda_ub":
            return torch.tensordot(opt.task_weights(grads, losses).to(grads), opt.normalized(grads, losses), dims=1)
        direction = opt.combine(grads, losses, generator)
        if self.method == "pcgrad":
            direction = direction / len(grads)
        return direction

    def step(self) -> None:
        """Step the optimizer's own parameters (learned loss scales), after the network's step."""
        if self.optimizer is not None:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

    # -- dwa's "epochs": one per episode of updates ----------------------

    def _remember(self, task_losses: torch.Tensor, split: TaskSplit) -> None:
        if self.full is not None and type(self.full).end_epoch is not MultiTaskOptimizer.end_epoch:
            self.epoch_sums.index_add_(0, split.present.cpu(), task_losses.double().cpu())
            self.epoch_updates += 1

    def end_epoch(self) -> None:
        if self.full is None or not self.epoch_updates:
            return
        self.full.end_epoch((self.epoch_sums / self.epoch_updates).float())
        self.epoch_sums.zero_()
        self.epoch_updates = 0

    # -- checkpoints ----------------------------------------------------

    def state_dict(self) -> dict:
        return {"full": self.full.state_dict() if self.full is not None else None,
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
                "epoch_sums": self.epoch_sums.clone(), "epoch_updates": self.epoch_updates}

    def load_state_dict(self, state: dict) -> None:
        if self.full is not None:
            self.full.load_state_dict(state["full"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.epoch_sums.copy_(state["epoch_sums"])
        self.epoch_updates = state["epoch_updates"]


def _flat(grads) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads])
