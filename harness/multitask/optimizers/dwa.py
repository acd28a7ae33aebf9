"""Dynamic weight average (Liu, Johns & Davison, CVPR 2019, "End-to-End Multi-Task Learning with Attention").

For epoch t (0-based) with r_i = L_i(t-1) / L_i(t-2), L_i(t) the mean training
loss of task i over epoch t:
    w_i(t) = T exp(r_i / temperature) / sum_j exp(r_j / temperature),
and w_i = 1 for the first two epochs. Call ``end_epoch(mean_losses)`` after every
epoch; the last two epochs' losses are buffers, so they are in ``state_dict``.
"""
from __future__ import annotations

import torch

from harness.multitask.optimizers import register
from harness.multitask.optimizers._base import MultiTaskOptimizer


@register("dwa", version="1", keys={"dwa_temperature": {
    "type": "float", "default": 2.0, "minimum": 0.0, "exclusive": True, "arg": "temperature",
    "help": "dwa: softmax temperature"}})
class DWA(MultiTaskOptimizer):
    space = "losses"

    def __init__(self, num_tasks: int, temperature: float = 2.0):
        super().__init__(num_tasks)
        self.temperature = temperature
        self.register_buffer("loss_history", torch.ones(2, num_tasks, dtype=torch.float64))  # epochs t-2, t-1
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))

    def end_epoch(self, mean_losses):
        mean_losses = torch.as_tensor(mean_losses, dtype=torch.float64).detach().to(self.loss_history.device)
        self.loss_history.copy_(torch.stack([self.loss_history[1], mean_losses]))
        self.epochs_seen += 1

    def weights(self, losses=None, generator=None):
        if self.epochs_seen < 2:
            return torch.ones(self.num_tasks, device=self.loss_history.device)
        ratios = self.loss_history[1] / self.loss_history[0]
        return (self.num_tasks * torch.softmax(ratios / self.temperature, dim=0)).float()
