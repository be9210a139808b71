"""Popularity (plain and recency-weighted), item-kNN and GF-CF (as a scorer and as published factors) scores equal
dense hand computations on a small matrix, and survive a save."""
import numpy as np
import pytest
import torch

from models.graph.bipartite import BipartiteGraph
from models.recsys.contract import Runtime
from models.recsys.registry import FAMILIES
from tests.models.recsys.small_matrix import EDGES, GRAPH, USERS, R, inv_sqrt

DAY = 86_400.0
# Interaction ages in days (edge order of EDGES): the latest is 0 days old.
AGES = np.arange(EDGES.size(1), dtype=np.float64)[::-1] % 9
TIMED = BipartiteGraph(EDGES, 7, 6, torch.from_numpy(1.7e9 - AGES * DAY))


def _fit(name, **settings):
    family = FAMILIES[name]
    return family.fit(GRAPH, torch.empty(2, 0, dtype=torch.long), family.config_type(**settings), Runtime())


def test_popularity_scores_every_user_by_training_degree():
    fitted = _fit("popularity")
    expected = np.tile(R.sum(0), (7, 1))
    np.testing.assert_allclose(fitted.score(USERS).numpy(), expected)
    assert fitted.has_vectors and fitted.user_emb.shape == (7, 1)


@pytest.mark.parametrize("half_life", [1.0, 7.0])
def test_recent_popularity_weighs_each_interaction_by_its_half_life(half_life):
    weights = np.zeros_like(R)
    weights[EDGES[0].numpy(), EDGES[1].numpy()] = 0.5 ** (AGES / half_life)
    family = FAMILIES["recent_popularity"]
    fitted = family.fit(TIMED, torch.empty(2, 0, dtype=torch.long),
                        family.config_type(half_life_days=half_life), Runtime())
    np.testing.assert_allclose(fitted.score(USERS).numpy(), np.tile(weights.sum(0), (7, 1)), rtol=1e-6)
    assert fitted.has_vectors and fitted.config["half_life_days"] == half_life


def test_recent_popularity_chooses_its_half_life_on_validation():
    # Ten old hits (20 users each, 300 days ago) against twenty fresh items (3 users each, today). Validation asks
    # for fresh items: half-lives up to 90 days rank every fresh item above the old hits (20 · 0.5^(300/90) < 3),
    # longer ones rank the old hits first and push half of the fresh items out of the top 20.
    old = [(user, item) for user in range(20) for item in range(10)]
    fresh = [(20 + j, 10 + (j + m) % 20) for j in range(20) for m in range(3)]
    edges = torch.tensor(old + fresh).T
    times = torch.tensor([1.7e9 - 300 * DAY] * len(old) + [1.7e9] * len(fresh), dtype=torch.float64)
    graph = BipartiteGraph(edges, 40, 30, times)
    valid = torch.tensor([[20 + j for j in range(20)], [10 + (j + 10) % 20 for j in range(20)]])
    family = FAMILIES["recent_popularity"]
    fitted = family.fit(graph, valid, family.config_type(), Runtime())
    by_half_life = {row["half_life_days"]: row["valid_recall"] for row in fitted.record.history}
    assert fitted.config["half_life_days"] <= 90.0 and by_half_life[fitted.config["half_life_days"]] == 1.0
    assert by_half_life[1825.0] < 1.0
    with pytest.raises(ValueError, match="no validation interactions"):
        family.fit(graph, torch.empty(2, 0, dtype=torch.long), family.config_type(), Runtime())


def test_recent_popularity_without_times_is_plain_popularity():
    fitted = _fit("recent_popularity", half_life_days=7.0)
    torch.testing.assert_close(fitted.score(USERS), _fit("popularity").score(USERS))
    assert fitted.config["has_time"] is False


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
    normalized = inv_sqrt(du)[:, None] * R * inv_sqrt(di)[None, :]
    _, _, vt = np.linalg.svd(normalized)
    top = vt[:3].T  # rank 3 of a 7 × 6 matrix
    ideal = (R * inv_sqrt(di)) @ top @ top.T * np.sqrt(di)
    expected = R @ normalized.T @ normalized + alpha * ideal
    fitted = _fit("gf_cf", rank=3, alpha=alpha)
    scores = fitted.score(USERS).numpy()
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_gf_cf_factors_at_full_rank_equal_the_filter(alpha):
    # R̃ has rank 5 here (item 5 has no user), so 5 singular triplets carry the whole linear filter.
    factors = _fit("gf_cf_factors", rank=3, alpha=alpha, factor_rank=5)
    assert factors.has_vectors and factors.user_emb.shape == (7, 5 + (3 if alpha else 0))
    np.testing.assert_allclose(factors.score(USERS).numpy(), _fit("gf_cf", rank=3, alpha=alpha).score(USERS).numpy(),
                               rtol=1e-4, atol=1e-5)


def test_gf_cf_factors_truncate_only_the_linear_filter():
    du, di = R.sum(1), R.sum(0)
    normalized = inv_sqrt(du)[:, None] * R * inv_sqrt(di)[None, :]
    _, values, vt = np.linalg.svd(normalized)
    linear = R @ vt[:2].T @ np.diag(values[:2] ** 2) @ vt[:2]  # the top 2 of 5 singular triplets
    ideal = (R * inv_sqrt(di)) @ vt[:3].T @ vt[:3] * np.sqrt(di)
    factors = _fit("gf_cf_factors", rank=3, alpha=0.3, factor_rank=2)
    np.testing.assert_allclose(factors.score(USERS).numpy(), linear + 0.3 * ideal, rtol=1e-4, atol=1e-5)
    assert not np.allclose(linear, R @ normalized.T @ normalized, atol=1e-3)  # the truncation is a real loss


@pytest.mark.parametrize("name", ["popularity", "recent_popularity", "item_knn", "gf_cf", "gf_cf_factors"])
def test_a_saved_fit_restores_the_same_scores(tmp_path, name):
    fitted = _fit(name, **({"rank": 3} if name.startswith("gf_cf") else {}))
    torch.save(fitted.tensors(), tmp_path / "fit.pt")
    restored = FAMILIES[name].restore(torch.load(tmp_path / "fit.pt", weights_only=True), fitted.config)
    torch.testing.assert_close(restored.score(USERS), fitted.score(USERS))
