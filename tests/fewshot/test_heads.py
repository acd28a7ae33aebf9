"""Few-shot evaluation heads: logreg against scikit-learn on real Omniglot features, centroid by hand."""
from __future__ import annotations

import numpy as np
import pytest
import sklearn.linear_model as sklearn_linear
import torch

from harness.fewshot.datasets import DATASETS
from harness.fewshot.heads import HEADS

WAYS, QUERIES, EPISODES, C = 5, 15, 200, 3.0


@pytest.fixture(scope="module")
def features():
    """Omniglot test images through a fixed random ReLU projection, 784 -> 64: (features, labels)."""
    split = DATASETS.get("omniglot").load("test")
    pixels = split.images.reshape(len(split.images), -1) / 255.0
    projection = np.random.default_rng(0).standard_normal((pixels.shape[1], 64))
    return np.maximum(pixels @ projection, 0.0), split.labels


def make_episodes(features, shots, episodes=EPISODES, ways=WAYS, seed=1):
    """Stacked episodes as torch tensors: support (E, ways*shots, D), support labels, query, query labels."""
    feats, labels = features
    rng = np.random.default_rng(seed)
    support, query = [], []
    for _ in range(episodes):
        classes = rng.choice(np.unique(labels), ways, replace=False)
        picks = [rng.permutation(np.flatnonzero(labels == c))[: shots + QUERIES] for c in classes]
        support.append(np.concatenate([feats[p[:shots]] for p in picks]))
        query.append(np.concatenate([feats[p[shots:]] for p in picks]))
    support_labels = np.tile(np.repeat(np.arange(ways), shots), (episodes, 1))
    query_labels = np.tile(np.repeat(np.arange(ways), QUERIES), (episodes, 1))
    return tuple(map(torch.as_tensor, (np.stack(support), support_labels, np.stack(query), query_labels)))


def unit_rows(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def sklearn_fit(support, support_labels, **options):
    model = sklearn_linear.LogisticRegression(C=C, **options)
    return model.fit(unit_rows(support.numpy()), support_labels.numpy())


def logreg_scores(support, support_labels, query, ways=WAYS):
    return HEADS.get("logreg")(support, support_labels, query, ways, {"logreg_C": C})


@pytest.mark.parametrize("shots, min_accuracy", [(1, 0.30), (5, 0.40)])
def test_logreg_accuracy_agrees_with_sklearn(features, shots, min_accuracy):
    support, support_labels, query, query_labels = make_episodes(features, shots)
    ours = logreg_scores(support, support_labels, query).argmax(-1)
    theirs = torch.stack([
        torch.as_tensor(sklearn_fit(s, y, max_iter=1000).predict(unit_rows(q.numpy())))
        for s, y, q in zip(support, support_labels, query)
    ])
    our_accuracy = (ours == query_labels).double().mean().item()
    their_accuracy = (theirs == query_labels).double().mean().item()
    print(f"{shots}-shot accuracy: ours {our_accuracy:.4f}, sklearn {their_accuracy:.4f}, "
          f"same label {(ours == theirs).double().mean().item():.4f}")
    assert our_accuracy > min_accuracy  # chance is 0.20
    assert abs(our_accuracy - their_accuracy) <= 0.005
    assert (ours == theirs).double().mean() >= 0.98


@pytest.mark.parametrize("shots", [1, 5])
def test_logreg_reaches_sklearn_optimum(features, shots):
    """Logits equal scikit-learn's decision function (coefficients and intercepts) when both converge tightly."""
    support, support_labels, query, _ = make_episodes(features, shots, episodes=4, seed=2)
    ours = logreg_scores(support, support_labels, query).double()
    for episode, (s, y, q) in enumerate(zip(support, support_labels, query)):
        model = sklearn_fit(s, y, tol=1e-10, max_iter=10_000)
        their_logits = torch.as_tensor(model.decision_function(unit_rows(q.numpy())))
        torch.testing.assert_close(ours[episode], their_logits, atol=1e-5, rtol=0)
        loose = sklearn_fit(s, y, max_iter=1000).predict_proba(unit_rows(q.numpy()))
        torch.testing.assert_close(torch.softmax(ours[episode], -1), torch.as_tensor(loose), atol=2e-3, rtol=0)


def test_logreg_two_way_matches_sklearn_binary_model(features):
    support, support_labels, query, _ = make_episodes(features, shots=5, episodes=3, ways=2, seed=3)
    ours = logreg_scores(support, support_labels, query, ways=2).double()
    for episode, (s, y, q) in enumerate(zip(support, support_labels, query)):
        model = sklearn_fit(s, y, tol=1e-10, max_iter=10_000)
        their_margin = torch.as_tensor(model.decision_function(unit_rows(q.numpy())))
        torch.testing.assert_close(ours[episode, :, 1] - ours[episode, :, 0], their_margin, atol=1e-5, rtol=0)


def test_centroid_hand_example():
    support = torch.tensor([[[0.0, 2.0], [0.0, 0.0], [0.0, 4.0], [2.0, 0.0]]])
    support_labels = torch.tensor([[1, 0, 1, 0]])  # prototypes: class 0 (1, 0), class 1 (0, 3)
    query = torch.tensor([[[1.0, 1.0], [0.0, 3.0], [3.0, 0.0]]])
    scores = HEADS.get("centroid")(support, support_labels, query, 2, {})
    expected = torch.tensor([[[-1.0, -5.0], [-10.0, 0.0], [-4.0, -18.0]]])
    assert scores.dtype == torch.float32
    assert torch.equal(scores, expected)


@pytest.mark.parametrize("head", ["logreg", "centroid"])
def test_batched_equals_one_episode_at_a_time(features, head):
    support, support_labels, query, _ = make_episodes(features, shots=5, episodes=6, seed=4)
    support, query = support.float(), query.float()
    run = HEADS.get(head)
    batched = run(support, support_labels, query, WAYS, {})
    single = torch.cat([
        run(support[e : e + 1], support_labels[e : e + 1], query[e : e + 1], WAYS, {})
        for e in range(len(support))
    ])
    assert batched.shape == (6, WAYS * QUERIES, WAYS) and batched.dtype == torch.float32
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=1e-5)


def test_heads_are_registered():
    assert {"logreg", "centroid"} <= set(HEADS.names())
    from harness.fewshot.heads.centroid import centroid
    from harness.fewshot.heads.logreg import logreg

    assert HEADS.get("logreg") is logreg
    assert HEADS.get("centroid") is centroid
