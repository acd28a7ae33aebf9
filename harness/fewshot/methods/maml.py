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


@register("maml", version="1")
class MAML(GradientMetaLearner):
    second_order = True
