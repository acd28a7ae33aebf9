"""What a multi-task model offers the training loop.

A model is built as ``MODELS.get(name)(tasks, dropout=None)`` (``dropout`` None = the
model's own default, True/False = with or without the dropout layers of the official
code) and has two parts:

- ``shared``: the trunk, ``z = model.trunk(x)``, z being the shared representation
  (the tensor the representation-space optimizers differentiate against);
- ``task_heads``: one module per task (``nn.ModuleDict`` keyed by task name),
  ``model.heads(z) -> {task: output}``; classification and segmentation heads end in
  log-softmax over classes, depth heads give (B, 1, H, W).

``shared_parameters()`` and ``head_parameters()`` split the parameters between them.
"""
from __future__ import annotations

from torch import nn


class MultiTaskModel(nn.Module):
    default_dropout = False
    kinds: tuple = ()  # task kinds the model can head

    def __init__(self, tasks, dropout: bool | None = None):
        super().__init__()
        unsupported = [t.name for t in tasks if t.kind not in self.kinds]
        if unsupported:
            raise ValueError(f"{type(self).__name__} heads only {', '.join(self.kinds)} tasks, not {unsupported}")
        self.tasks = tuple(tasks)
        self.dropout = self.default_dropout if dropout is None else bool(dropout)

    def trunk(self, x):
        return self.shared(x)

    def heads(self, z) -> dict:
        return {task.name: self.task_heads[task.name](z) for task in self.tasks}

    def forward(self, x):
        z = self.trunk(x)
        return z, self.heads(z)

    def shared_parameters(self):
        return self.shared.parameters()

    def head_parameters(self):
        return self.task_heads.parameters()
