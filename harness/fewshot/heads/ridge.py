"""Ridge-regression head of R2-D2 (Bertinetto, Henriques, Torr & Vedaldi, ICLR 2019), closed form.

Each episode regresses one-hot targets Y (S x ways) on the support embeddings with a
constant 1 appended (the bias column; penalised like the weights, as in the paper's
code), minimising the per-example mean squared error plus lambda times the squared norm:

    W = argmin (1/S) ||X W - Y||^2 + lambda ||W||^2 = (X'X + S lambda I)^{-1} X'Y          (primal, D+1 square)
                                                     = X' (X X' + S lambda I)^{-1} Y          (Woodbury, S x S)

(the paper's code divides X and Y by sqrt(S), which is the same thing). The query scores
are [q, 1] W; R2-D2 then applies a learnable scale and bias, which do not change the
argmax, so this head omits them. lambda is fixed, ``ridge_lambda`` (default 50, the
paper's code and MetaOptNet's R2-D2). Few-shot episodes have S <= D + 1, so the
Woodbury form is used then; both are differentiable (torch.linalg.solve).

Precision: the system is always formed and solved in float32 (float64 inputs stay
float64) with autocast switched off, whatever the caller's autocast says: under bf16
autocast the Gram matrix would come out in bf16, which ``torch.linalg.solve`` rejects
(and which would lose the ridge solution's accuracy anyway). Gradients flow back to
the caller's dtype through the cast.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.fewshot.heads import register


@register("ridge", version="1")
def ridge(support, support_labels, query, ways, cfg) -> torch.Tensor:
    return ridge_scores(support, support_labels, query, ways, float(cfg.get("ridge_lambda", 50.0))).float()


def ridge_scores(support, support_labels, query, ways, lam, woodbury=None):
    """Query scores (E, Q, ways), float32 or float64; ``woodbury`` None picks the smaller system."""
    dtype = torch.promote_types(support.dtype, torch.float32)
    with torch.autocast(support.device.type, enabled=False):
        return _ridge_scores(support.to(dtype), support_labels, query.to(dtype), ways, lam, woodbury)


def _ridge_scores(support, support_labels, query, ways, lam, woodbury):
    inputs, query = with_bias(support), with_bias(query)
    examples, width = inputs.shape[1:]
    targets = F.one_hot(support_labels, ways).to(inputs.dtype)
    if woodbury is None:
        woodbury = examples <= width
    penalty = examples * lam * torch.eye(examples if woodbury else width, dtype=inputs.dtype, device=inputs.device)
    if woodbury:
        weights = inputs.transpose(1, 2) @ torch.linalg.solve(inputs @ inputs.transpose(1, 2) + penalty, targets)
    else:
        weights = torch.linalg.solve(inputs.transpose(1, 2) @ inputs + penalty, inputs.transpose(1, 2) @ targets)
    return query @ weights


def with_bias(features):
    """Append a constant 1 feature (the bias column)."""
    ones = features.new_ones(features.shape[:-1] + (1,))
    return torch.cat([features, ones], dim=-1)
