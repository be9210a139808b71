"""Popularity, item-kNN and GF-CF scores equal dense hand computations on a small matrix, and survive a save."""
import numpy as np
import pytest
import torch

from models.graph.bipartite import BipartiteGraph
from models.recsys.contract import Runtime
from models.recsys.registry import FAMILIES

# 7 users × 6 items with no tied neighbours at the pruning boundary; item 5 has no training user (its
# normalisation must give 0, not NaN).
R = np.array([
    [1, 0, 1, 1, 1, 0],
    [0, 1, 0, 0, 1, 0],
    [1, 1, 1, 0, 0, 0],
    [1, 1, 0, 0, 0, 0],
    [1, 0, 0, 0, 1, 0],
    [0, 0, 0, 1, 1, 0],
    [1, 0, 1, 0, 1, 0],
], dtype=np.float64)
GRAPH = BipartiteGraph(torch.tensor(np.stack(np.nonzero(R)), dtype=torch.long), 7, 6)
USERS = torch.arange(7)


def _fit(name, **settings):
    family = FAMILIES[name]
    return family.fit(GRAPH, torch.empty(2, 0, dtype=torch.long), family.config_type(**settings), Runtime())


def _inv_sqrt(d):
    return np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0.0)


def test_popularity_scores_every_user_by_training_degree():
    fitted = _fit("popularity")
    expected = np.tile(R.sum(0), (7, 1))
    np.testing.assert_allclose(fitted.score(USERS).numpy(), expected)
    assert fitted.has_vectors and fitted.user_emb.shape == (7, 1)


@pytest.mark.parametrize("neighbours,shrink", [(5, 0.0), (2, 0.0), (2, 3.0)])
def test_item_knn_equals_dense_pruned_cosine(neighbours, shrink):
    norms = np.sqrt(R.sum(0))
    similarity = (R.T @ R) / (np.outer(norms, norms) + shrink + 1e-6)
    np.fill_diagonal(similarity, 0.0)
    pruned = np.zeros_like(similarity)
    for j in range(6):  # keep the largest `neighbours` of each column (no ties among the positive ones here)
        keep = np.argsort(-similarity[:, j], kind="stable")[:neighbours]
        pruned[keep, j] = similarity[keep, j]
    fitted = _fit("item_knn", neighbours=neighbours, shrink=shrink)
    np.testing.assert_allclose(fitted.score(USERS).numpy(), R @ pruned, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_gf_cf_equals_dense_filter(alpha):
    du, di = R.sum(1), R.sum(0)
    normalized = _inv_sqrt(du)[:, None] * R * _inv_sqrt(di)[None, :]
    _, _, vt = np.linalg.svd(normalized)
    top = vt[:3].T  # rank 3 of a 7 × 6 matrix
    ideal = (R * _inv_sqrt(di)) @ top @ top.T * np.sqrt(di)
    expected = R @ normalized.T @ normalized + alpha * ideal
    fitted = _fit("gf_cf", rank=3, alpha=alpha)
    scores = fitted.score(USERS).numpy()
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["popularity", "item_knn", "gf_cf"])
def test_a_saved_fit_restores_the_same_scores(tmp_path, name):
    fitted = _fit(name, **({"rank": 3} if name == "gf_cf" else {}))
    torch.save(fitted.tensors(), tmp_path / "fit.pt")
    restored = FAMILIES[name].restore(torch.load(tmp_path / "fit.pt", weights_only=True), fitted.config)
    torch.testing.assert_close(restored.score(USERS), fitted.score(USERS))
