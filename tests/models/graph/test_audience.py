"""PPR audience matching: the plain and degree-normalized rankings against the closed form on a tiny graph."""

import numpy as np
import torch

from models.graph.audience import VARIANTS, match_audience
from models.graph.bipartite import BipartiteGraph, to_homogeneous_edge_index
from models.graph.sparse import binary_adjacency

DAMPING = 0.85


def _graph():
    """User 0 is heavy (items 0–3); users 1, 2 and 3 took item 0 and one other each; user 4 only item 3."""
    users = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4])
    items = torch.tensor([0, 1, 2, 3, 0, 1, 0, 2, 0, 3, 3])
    graph = BipartiteGraph(torch.stack([users, items]), 5, 4)
    return binary_adjacency(to_homogeneous_edge_index(graph), 9)


def test_audiences_follow_the_closed_form_plain_and_per_degree():
    adj = _graph()
    a = adj.toarray().astype(np.float64)
    degree = a.sum(0)
    exact = (1 - DAMPING) * np.linalg.inv(np.eye(9) - DAMPING * a / degree)
    seed = 5  # item 0
    audience = match_audience(adj, num_users=5, seeds=torch.tensor([seed]), top_n=3, epsilon=1e-9)
    for variant, name in enumerate(VARIANTS):
        rows = audience.variant == variant
        assert audience.rank[rows].tolist() == [1, 2, 3]
        assert (audience.seed[rows] == seed).all()
        score = exact[:5, seed] / (degree[:5] if name == "ppr_per_degree" else 1.0)
        assert audience.user[rows].tolist() == list(np.argsort(-score, kind="stable")[:3])
        np.testing.assert_allclose(audience.score[rows].numpy(), np.sort(score)[::-1][:3], atol=1e-6)


def test_degree_normalization_does_not_favour_the_heavy_user():
    audience = match_audience(_graph(), num_users=5, seeds=torch.tensor([5]), top_n=1, epsilon=1e-9)
    plain, normalized = audience.user[audience.variant == 0], audience.user[audience.variant == 1]
    assert plain.tolist() == [0] and normalized.tolist() != [0]
    assert audience.score.dtype == torch.float64
    # Fewer users than top_n: every reached user is ranked, no padding.
    assert match_audience(_graph(), 5, torch.tensor([5]), top_n=10).rank.max() == 5
