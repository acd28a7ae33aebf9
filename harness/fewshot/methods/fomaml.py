"""First-order MAML (Finn, Abbeel & Levine, ICML 2017, section 5.2).

The inner loop is MAML's (``inner_steps`` steps of size ``inner_lr`` on all parameters),
but its gradients are treated as constants, so the meta-gradient is the query loss's
gradient at the adapted weights, with no second-derivative term:

    meta-gradient = grad_theta' CE(query; theta'),   theta' = theta - inner_lr * sum_k grad CE(support; theta_k).
"""
from __future__ import annotations

from harness.fewshot.methods import register
from harness.fewshot.methods._gradient_meta import GradientMetaLearner


@register("fomaml", version="1", keys={
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
class FOMAML(GradientMetaLearner):
    second_order = False
