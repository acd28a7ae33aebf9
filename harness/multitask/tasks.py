"""Per-task losses and metrics, by task kind (Kurin et al. 2022, official code's choices).

Losses (mean over the batch, one scalar per task):
- classification: NLL of the head's log-probabilities (heads end in log-softmax);
- segmentation: pixel-wise NLL, label -1 ignored, mean over the labelled pixels;
- depth: L1 over the pixels whose true depth is not 0 (0 = no measurement), mean
  over those pixels (0 when a batch has none).

Metrics, accumulated over a whole split (not averaged over batches):

| metric name               | task kind      | meaning                                   | better |
|---------------------------|----------------|-------------------------------------------|--------|
| ``<task>``                | classification | accuracy, %                               | higher |
| ``<task>_miou``           | segmentation   | mean over classes of IoU from the split's confusion matrix, % (classes absent from both prediction and truth are left out) | higher |
| ``<task>_pixel_accuracy`` | segmentation   | labelled pixels predicted right, %        | higher |
| ``<task>_abs_error``      | depth          | mean abs(pred - true) over measured pixels | lower |
| ``<task>_rel_error``      | depth          | mean abs(pred - true) / true over them    | lower  |

With ``per_example`` and classification tasks only (Multi-MNIST, CelebA), the meter also
keeps each image's score, the share of its tasks predicted right in %: their mean is the
mean of the task accuracies (every task scores every image), the split's ``average``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

HIGHER, LOWER = "higher", "lower"


def metric_directions(tasks) -> dict[str, str]:
    """metric name -> "higher" or "lower" (which is better), in a fixed order."""
    out = {}
    for task in tasks:
        if task.kind == "classification":
            out[task.name] = HIGHER
        elif task.kind == "segmentation":
            out.update({f"{task.name}_miou": HIGHER, f"{task.name}_pixel_accuracy": HIGHER})
        else:
            out.update({f"{task.name}_abs_error": LOWER, f"{task.name}_rel_error": LOWER})
    return out


def score(metrics: dict, directions: dict) -> float:
    """The mean of the higher-is-better metrics: what model selection maximises ("average")."""
    values = [metrics[name] for name, direction in directions.items() if direction == HIGHER]
    return sum(values) / len(values)


def task_loss(task, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if task.kind == "classification":
        return F.nll_loss(output, target)
    if task.kind == "segmentation":
        return F.nll_loss(output, target, ignore_index=-1)
    mask = target != 0
    if not mask.any():
        return output.sum() * 0.0
    return (output[:, 0][mask] - target[mask]).abs().mean()


def task_losses(tasks, outputs: dict, targets: dict) -> torch.Tensor:
    """(T,) per-task mean losses, in task order."""
    return torch.stack([task_loss(task, outputs[task.name], targets[task.name]) for task in tasks])


class Meter:
    """Accumulates one split's metrics for every task; ``result()`` -> {metric name: float}."""

    def __init__(self, tasks, per_example: bool = False):
        self.tasks = tasks
        self.sums: dict[str, torch.Tensor] = {}  # kept on the device: no synchronisation per batch
        self.counts: dict[str, int] = {}
        every_image = all(task.kind == "classification" for task in tasks)
        self.examples: list[torch.Tensor] | None = [] if per_example and every_image else None  # per batch

    def _add(self, key: str, value: torch.Tensor) -> None:
        value = value.detach().double()
        self.sums[key] = self.sums[key] + value if key in self.sums else value

    @torch.no_grad()
    def update(self, outputs: dict, targets: dict) -> None:
        right = 0  # per image: how many of its tasks were predicted right
        for task in self.tasks:
            output, target = outputs[task.name], targets[task.name]
            if task.kind == "classification":
                hits = output.argmax(1) == target
                self._add(f"{task.name}:correct", hits.sum())
                self.counts[task.name] = self.counts.get(task.name, 0) + target.numel()
                right = right + hits.int()
            elif task.kind == "segmentation":
                labelled = target >= 0
                pairs = target[labelled] * task.classes + output.argmax(1)[labelled]
                confusion = torch.bincount(pairs, minlength=task.classes**2).view(task.classes, task.classes)
                self._add(f"{task.name}:confusion", confusion)
            else:
                measured = target != 0
                pred, true = output[:, 0][measured].double(), target[measured].double()
                self._add(f"{task.name}:abs", (pred - true).abs().sum())
                self._add(f"{task.name}:rel", ((pred - true).abs() / true).sum())
                self._add(f"{task.name}:count", measured.sum())
        if self.examples is not None:
            self.examples.append(right)

    def example_scores(self) -> list[float] | None:
        """Each image's score (% of its tasks right), in split order; None without per_example
        or when some task is not classification."""
        if self.examples is None:
            return None
        return (torch.cat(self.examples).double() * (100 / len(self.tasks))).tolist()

    def result(self) -> dict[str, float]:
        sums = {key: value.cpu() for key, value in self.sums.items()}
        out = {}
        for task in self.tasks:
            name = task.name
            if task.kind == "classification":
                out[name] = float(100 * sums[f"{name}:correct"] / self.counts[name])
            elif task.kind == "segmentation":
                confusion = sums[f"{name}:confusion"]  # rows: truth, columns: prediction
                hits = confusion.diagonal()
                union = confusion.sum(0) + confusion.sum(1) - hits
                present = union > 0
                out[f"{name}_miou"] = float(100 * (hits[present] / union[present]).mean())
                out[f"{name}_pixel_accuracy"] = float(100 * hits.sum() / confusion.sum())
            else:
                count = sums[f"{name}:count"].clamp_min(1)
                out[f"{name}_abs_error"] = float(sums[f"{name}:abs"] / count)
                out[f"{name}_rel_error"] = float(sums[f"{name}:rel"] / count)
        return out
