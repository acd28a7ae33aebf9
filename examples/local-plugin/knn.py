"""A digits method that is not installed anywhere: a suite names this file in its
``plugins:`` key and harness reads it from there (planning only reads the text; the
worker that runs a knn run imports it).

k-nearest neighbours (scikit-learn ``KNeighborsClassifier``, Euclidean, uniform
votes) on the raw pixel values. The method adds its own config key, ``knn_k``, to the
digits family (``keys=`` in its registration): a suite may set it like any other key,
and runs at its default keep their ids.
"""
from harness_example.digits.api import EstimatorMethod
from sklearn.neighbors import KNeighborsClassifier

from harness.api import register


@register("digits.method", "knn", version="1",
          keys={"knn_k": {"type": "int", "default": 3, "help": "knn: neighbours that vote", "minimum": 1}})
class KNearestNeighbours(EstimatorMethod):
    def estimator(self):
        return KNeighborsClassifier(n_neighbors=self.config["knn_k"])
