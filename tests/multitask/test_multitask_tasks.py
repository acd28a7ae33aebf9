"""Per-task losses and metrics against hand computations."""
from __future__ import annotations

import math

import pytest
import torch

from harness.multitask.datasets._base import Task
from harness.multitask.tasks import Meter, metric_directions, score, task_loss

SEG, DEPTH, CLS = Task("seg", "segmentation", 3), Task("depth", "depth"), Task("digit", "classification", 4)


def one_hot_log(labels, classes):
    """Log-probabilities whose argmax is ``labels`` (class dim 1)."""
    return torch.log(torch.nn.functional.one_hot(labels, classes).movedim(-1, 1).float() * 0.9 + 0.1 / classes)


def test_metrics_accumulate_over_batches_like_one_pass():
    truth = {"digit": torch.tensor([0, 3]),
             "seg": torch.tensor([[[0, 0, 1, -1]]]),          # 3 labelled pixels, class 2 never occurs
             "depth": torch.tensor([[[2.0, 0.0, 4.0, 1.0]]])}  # 0 = not measured
    outputs = {"digit": one_hot_log(torch.tensor([0, 1]), 4),
               "seg": one_hot_log(torch.tensor([[[0, 1, 1, 2]]]), 3),
               "depth": torch.tensor([[[[3.0, 9.0, 2.0, 1.0]]]])}
    meter = Meter((CLS, SEG, DEPTH))
    for part in (0, 1):  # two batches: one digit each, and the left / right half of the pixels
        pixels = slice(2 * part, 2 * part + 2)
        meter.update({"digit": outputs["digit"][part:part + 1], "seg": outputs["seg"][..., pixels],
                      "depth": outputs["depth"][..., pixels]},
                     {"digit": truth["digit"][part:part + 1], "seg": truth["seg"][..., pixels],
                      "depth": truth["depth"][..., pixels]})
    result = meter.result()
    assert result["digit"] == 50.0
    # confusion (truth x prediction): class 0 -> {0: 1, 1: 1}, class 1 -> {1: 1}: IoU 1/2 and 1/2;
    # class 2 is predicted only on the ignored pixel, so absent from both and left out
    assert result["seg_miou"] == pytest.approx(50.0) and result["seg_pixel_accuracy"] == pytest.approx(200 / 3)
    assert result["depth_abs_error"] == pytest.approx((1 + 2 + 0) / 3)
    assert result["depth_rel_error"] == pytest.approx((1 / 2 + 2 / 4 + 0) / 3)


def test_per_example_scores_are_each_images_share_of_tasks_right_and_average_to_the_mean_accuracy():
    other = Task("other", "classification", 4)
    outputs = {"digit": one_hot_log(torch.tensor([0, 1, 2]), 4), "other": one_hot_log(torch.tensor([1, 1, 3]), 4)}
    truth = {"digit": torch.tensor([0, 3, 2]), "other": torch.tensor([1, 2, 0])}
    meter = Meter((CLS, other), per_example=True)
    for part in (slice(0, 2), slice(2, 3)):
        meter.update({k: v[part] for k, v in outputs.items()}, {k: v[part] for k, v in truth.items()})
    assert meter.example_scores() == [100.0, 0.0, 50.0]  # in split order, across batches
    result = meter.result()
    assert sum(meter.example_scores()) / 3 == pytest.approx((result["digit"] + result["other"]) / 2)
    assert Meter((CLS, other)).example_scores() is None  # only when asked (the test split)
    mixed = Meter((CLS, SEG), per_example=True)  # mIoU is no mean over images: no per-image scores
    mixed.update({"digit": outputs["digit"][:1], "seg": one_hot_log(torch.tensor([[[0, 1]]]), 3)},
                 {"digit": truth["digit"][:1], "seg": torch.tensor([[[0, 1]]])})
    assert mixed.example_scores() is None


def test_losses():
    seg_out = one_hot_log(torch.tensor([[[0, 1]]]), 3)
    expected = -(seg_out[0, 0, 0, 0] + seg_out[0, 2, 0, 1]) / 2
    assert task_loss(SEG, seg_out, torch.tensor([[[0, 2]]])) == pytest.approx(expected.item())
    assert task_loss(SEG, seg_out, torch.tensor([[[-1, 2]]])) == pytest.approx(-seg_out[0, 2, 0, 1].item())
    pred = torch.tensor([[[[1.0, 5.0]]]], requires_grad=True)
    assert task_loss(DEPTH, pred, torch.tensor([[[2.0, 0.0]]])).item() == 1.0
    empty = task_loss(DEPTH, pred, torch.zeros(1, 1, 2))  # no measured pixel: 0, still differentiable
    empty.backward()
    assert empty.item() == 0 and torch.equal(pred.grad, torch.zeros_like(pred))


def test_directions_and_score_use_only_higher_is_better_metrics():
    directions = metric_directions((SEG, DEPTH))
    assert directions == {"seg_miou": "higher", "seg_pixel_accuracy": "higher",
                          "depth_abs_error": "lower", "depth_rel_error": "lower"}
    assert score({"seg_miou": 40, "seg_pixel_accuracy": 80, "depth_abs_error": 9, "depth_rel_error": 9}, directions) == 60
    assert not math.isnan(score({"digit": 10}, metric_directions((CLS,))))
