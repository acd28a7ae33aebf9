"""Per-task losses from one mixed batch, as the paper's ``_convert_loss_into_task_loss``
(U ``mtrl/agent/grad_manipulation.py``): the per-sample losses of each task present in
the batch are summed (scatter-add by task index) and divided by that task's count in the
batch; tasks with no sample in the batch are dropped. Tasks keep ascending index order.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TaskSplit:
    present: torch.Tensor  # (k,) task indices in the batch, ascending
    position: torch.Tensor  # (B,) each sample's row in ``present``
    counts: torch.Tensor  # (k,) samples per present task

    @property
    def num_present(self) -> int:
        return len(self.present)

    def means(self, per_sample: torch.Tensor) -> torch.Tensor:
        """(k,) per-task mean losses of (B,) per-sample losses."""
        sums = per_sample.new_zeros(self.num_present).index_add(0, self.position, per_sample)
        return sums / self.counts.to(per_sample.dtype)

    def sample_weights(self, dtype=torch.float32) -> torch.Tensor:
        """(B,) 1 / (count of the sample's task): sum_b w_b l_b = sum_t (mean loss of task t)."""
        return (1.0 / self.counts.to(dtype))[self.position]

    def padded_slots(self) -> tuple[torch.Tensor, int]:
        """(B,) row of each sample in a (k * n_max) layout that groups the samples by task
        (task-major, n_max = the largest count), and n_max."""
        n_max = int(self.counts.max())
        order = torch.argsort(self.position, stable=True)
        starts = torch.cumsum(self.counts, 0) - self.counts
        sorted_position = self.position[order]
        rank = torch.arange(len(order), device=order.device) - starts[sorted_position]
        slots = torch.empty_like(order)
        slots[order] = sorted_position * n_max + rank
        return slots, n_max


def split_by_task(task_index: torch.Tensor) -> TaskSplit:
    present, position, counts = torch.unique(task_index, sorted=True, return_inverse=True, return_counts=True)
    return TaskSplit(present, position, counts)
