"""MAML (Finn, Abbeel & Levine, ICML 2017), second order.

A backbone with a linear head is adapted to each task's support set by ``inner_steps``
gradient steps of size ``inner_lr`` on every parameter (BatchNorm affine included):

    theta' = theta - inner_lr * sum_k grad CE(support; theta_k)   (theta_0 = theta, K steps)

and trained on the cross-entropy of the task's queries at theta'. The meta-gradient
differentiates through the inner loop (Hessian-vector products included):

    d/dtheta CE(query; theta') = (prod_k (I - inner_lr * H_k))^T grad CE(query; theta').

At test time the network adapts the same way (``test_inner_steps``, first-order
gradients are enough as nothing is backpropagated) and scores the queries.
BatchNorm uses batch statistics throughout (see ``_gradient_meta``).
"""
from __future__ import annotations

from harness.fewshot.methods import register
from harness.fewshot.methods._gradient_meta import GradientMetaLearner


@register("maml", version="1", keys={
    "inner_loop_batchnorm": {
        "type": "str", "default": "adapt", "choices": ["adapt", "fixed"], "versions": {"fixed": "1"},
        "help": "batch-norm parameters adapted in the inner loop (adapt), or left to the outer loop (fixed: cbfinn/maml, "
                "whose fast weights are the conv and linear weights, maml.py construct_conv_weights)"},
    "maml_loss": {
        "type": "str", "default": "mean", "choices": ["mean", "official"], "versions": {"official": "1"},
        "help": "mean cross-entropy, or cbfinn/maml's: summed over the examples and divided by the shots "
                "(utils.py:56-58 xent)"},
    "meta_grad_clip": {
        "type": "float", "default": None, "nullable": True, "minimum": 0.0, "exclusive": True,
        "help": "clip each meta-gradient element to [-c, c] (cbfinn/maml on mini-ImageNet: 10, maml.py construct_model "
                "tf.clip_by_value); null = none"}})
class MAML(GradientMetaLearner):
    second_order = True
