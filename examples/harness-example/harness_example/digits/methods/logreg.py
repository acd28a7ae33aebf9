"""Multinomial logistic regression (scikit-learn, L-BFGS, L2 penalty ``logreg_C``) on
pixels scaled to [0, 1]. Deterministic: every seed gives the same result."""
from __future__ import annotations

from sklearn.linear_model import LogisticRegression

from harness_example.digits.api import PIXEL_MAX, EstimatorMethod
from harness_example.digits.methods import register


@register("logreg", version="1")
class LogisticRegressionMethod(EstimatorMethod):
    scale = 1.0 / PIXEL_MAX

    def estimator(self):
        return LogisticRegression(C=self.config["logreg_C"], max_iter=self.config["logreg_max_iter"])
