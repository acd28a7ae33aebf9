"""What a few-shot method written outside harness builds on (imports torch: for method
modules, which only workers import).

A method is a ``FewShotMethod`` (an ``nn.Module`` holding the backbone) registered with
``harness.api.register("fewshot.method", "<name>", version="1", uses={"eval_head": ...})``:
it defines ``task_loss(images, classes, shots) -> (loss, accuracy)`` on one training task
(``images`` class-major: the first ``len(images) // ways`` images are the task's class 0,
...; ``classes`` their train-split class ids) and may override ``embed(images)``, the
features the evaluation head sees. ``class_major_labels(ways, per_class, device)`` gives
the labels 0..ways-1 in that order.
"""
from harness.fewshot.methods._base import FewShotMethod, class_major_labels

__all__ = ["FewShotMethod", "class_major_labels"]
