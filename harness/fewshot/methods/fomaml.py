"""First-order MAML (Finn, Abbeel & Levine, ICML 2017, section 5.2).

The inner loop is MAML's (``inner_steps`` steps of size ``inner_lr`` on all parameters),
but its gradients are treated as constants, so the meta-gradient is the query loss's
gradient at the adapted weights, with no second-derivative term:

    meta-gradient = grad_theta' CE(query; theta'),   theta' = theta - inner_lr * sum_k grad CE(support; theta_k).
"""
from __future__ import annotations

from harness.fewshot.methods import register
from harness.fewshot.methods._gradient_meta import GradientMetaLearner


@register("fomaml", version="1")
class FOMAML(GradientMetaLearner):
    second_order = False
