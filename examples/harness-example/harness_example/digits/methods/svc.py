"""Support vector classifier, exactly as scikit-learn's example "Recognizing
hand-written digits": ``svm.SVC(gamma=0.001)`` (RBF kernel, C=1) on the raw pixel
values 0-16. Deterministic: every seed gives the same result."""
from __future__ import annotations

from sklearn.svm import SVC

from harness_example.digits.api import EstimatorMethod
from harness_example.digits.methods import register


@register("svc", version="1")
class SupportVectorClassifier(EstimatorMethod):
    def estimator(self):
        return SVC(gamma=self.config["svc_gamma"], C=self.config["svc_C"])
