"""Heuristic teachers: CN/AA/RA equal hand-computed values on a small graph, PPR equals the closed form, bipartite
scores count 3-hop paths, and the scores read only the training edges they are given (on a split of the Cora slice
in tests/fixtures)."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from benchmarks.distill_linkpred import edge_split
from models.graph.bipartite import BipartiteGraph
from models.graph.heuristics import (
    HeuristicError,
    _blocks_by_cost,
    _three_hop_overlaps,
    bipartite_heuristic_scores,
    heuristic_scores,
    neighbourhood_overlap,
    personalized_pagerank,
)
from models.graph.sparse import binary_adjacency

# 0-1, 0-2, 1-2, 1-3, 2-3, 3-4 (a duplicate and a self-loop that must be ignored); degrees 2, 3, 3, 3, 1.
EDGES = torch.tensor([[0, 0, 1, 1, 2, 3, 1, 4], [1, 2, 2, 3, 3, 4, 0, 4]])
PAIRS = torch.tensor([[0, 1, 0, 2], [3, 2, 4, 4]])


def test_overlap_heuristics_equal_hand_computed_values():
    adj = binary_adjacency(EDGES, 5)
    scores = heuristic_scores(adj, PAIRS, ("cn", "aa", "ra"))
    # (0,3) share {1,2}; (1,2) share {0,3}; (0,4) share nothing; (2,4) share {3}.
    assert scores["cn"].tolist() == [2.0, 2.0, 0.0, 1.0]
    expected_aa = [2 / math.log(3), 1 / math.log(2) + 1 / math.log(3), 0.0, 1 / math.log(3)]
    assert scores["aa"].tolist() == pytest.approx(expected_aa, rel=1e-6)
    assert scores["ra"].tolist() == pytest.approx([2 / 3, 1 / 2 + 1 / 3, 0.0, 1 / 3], rel=1e-6)


def test_batching_does_not_change_scores():
    adj = binary_adjacency(EDGES, 5)
    for name in ("cn", "aa", "ra"):
        assert torch.equal(neighbourhood_overlap(adj, PAIRS, name, batch_size=1), neighbourhood_overlap(adj, PAIRS, name))


def test_ppr_equals_the_closed_form():
    adj = binary_adjacency(EDGES, 5)
    walk = adj.toarray() / adj.toarray().sum(1, keepdims=True)
    exact = 0.15 * np.linalg.inv(np.eye(5) - 0.85 * walk)  # row u: π_u
    scores = personalized_pagerank(adj, PAIRS, damping=0.85)
    assert scores.tolist() == pytest.approx(exact[PAIRS[0], PAIRS[1]].tolist(), abs=1e-6)


def test_bipartite_overlap_counts_three_hop_paths():
    # Users 0, 1, 2; items 0, 1, 2. User 0 → items 0, 1; user 1 → items 1, 2; user 2 → item 2.
    graph = BipartiteGraph(torch.tensor([[0, 0, 1, 1, 2], [0, 1, 1, 2, 2]]), 3, 3)
    scores = bipartite_heuristic_scores(graph, torch.tensor([0, 0, 2]), torch.tensor([2, 0, 0]), ("cn", "ra"))
    # (u0, i2): paths u0-i1-u1-i2 → 1. (u0, i0): u0-i0-u0-i0 and u0-i1-u0-i0 → 2. (u2, i0): u2 shares nothing with u0.
    assert scores["cn"].tolist() == [1.0, 2.0, 0.0]
    # RA weights the shared item by 1/degree (i1: 2 users); an item of degree 1 (i0) is only ever shared by a user
    # with itself and weighs 0, as a degree-1 node in the homogeneous case.
    assert scores["ra"].tolist() == pytest.approx([0.5, 0.5, 0.0])


def test_bipartite_scores_equal_dense_three_hop_products_and_ppr_across_blocks():
    generator = torch.Generator().manual_seed(3)
    num_users, num_items = 37, 23
    dense = (torch.rand(num_users, num_items, generator=generator) < 0.15).double()
    dense[5] = 0  # a user without training items
    graph = BipartiteGraph(dense.nonzero().T.contiguous(), num_users, num_items)
    users = torch.randint(num_users, (300,), generator=generator)
    items = torch.randint(num_items, (300,), generator=generator)
    item_degree = dense.sum(0)
    ra = torch.where(item_degree > 1, 1 / item_degree, torch.zeros_like(item_degree))
    expected = (dense * ra) @ dense.T @ dense  # (U, I): Σ_j r_uj ra_j Σ_u' r_u'j r_u'i
    paths = dense @ dense.T @ dense  # CN: every 3-hop path counts 1
    user_items = sp.csr_array(dense.numpy())
    blocked = _three_hop_overlaps(user_items, user_items.T.tocsr(), {"ra": ra.numpy(), "cn": np.ones(num_items)},
                                  users.numpy(), items.numpy(), block_entries=8, workers=2)
    assert blocked["ra"].tolist() == pytest.approx(expected[users, items].tolist(), rel=1e-6)
    assert blocked["cn"].tolist() == paths[users, items].tolist()
    # Each pair is summed by one thread over its user's items in order: the threads never change a bit of it.
    one_thread = _three_hop_overlaps(user_items, user_items.T.tocsr(), {"ra": ra.numpy()}, users.numpy(),
                                     items.numpy(), block_entries=8, workers=1)
    np.testing.assert_array_equal(one_thread["ra"], blocked["ra"])
    scores = bipartite_heuristic_scores(graph, users, items, ("ra", "ppr"), ppr_epsilon=1e-8)
    assert scores["ra"].tolist() == pytest.approx(expected[users, items].tolist(), rel=1e-6)
    walk = np.block([[np.zeros((num_users, num_users)), dense.numpy()], [dense.numpy().T, np.zeros((num_items,) * 2)]])
    walk = walk / np.maximum(walk.sum(1, keepdims=True), 1)
    exact = 0.15 * np.linalg.inv(np.eye(num_users + num_items) - 0.85 * walk)  # row u: π_u
    np.testing.assert_allclose(scores["ppr"].numpy(), exact[users, items + num_users], atol=1e-6)


def test_heuristics_never_read_validation_or_test_edges(cora_slice):
    split = edge_split(str(cora_slice), seed=0)
    adj = binary_adjacency(split.train_edges, split.num_nodes)
    held_out = torch.cat([split.valid_pos, split.test_pos], dim=1)
    assert adj.toarray()[held_out[0], held_out[1]].sum() == 0
    # Scores from the training adjacency equal those of the full graph with the held-out edges removed.
    full = binary_adjacency(torch.cat([split.train_edges, held_out], dim=1), split.num_nodes).toarray()
    full[held_out[0], held_out[1]] = full[held_out[1], held_out[0]] = 0
    expected = (full[split.test_pos[0]] * full[split.test_pos[1]]).sum(1)
    assert int((expected > 0).sum()) == 157  # of 359 test edges: the comparison is not between zeros
    assert heuristic_scores(adj, split.test_pos, ("cn",))["cn"].tolist() == expected.tolist()
    # A pair joined only by a held-out edge gets no PPR mass through it.
    isolated = binary_adjacency(torch.tensor([[0], [1]]), 3)
    assert personalized_pagerank(isolated, torch.tensor([[0], [2]])).item() == 0.0


def test_unknown_heuristic_and_out_of_range_pairs_are_refused():
    adj = binary_adjacency(EDGES, 5)
    with pytest.raises(HeuristicError, match="katz"):
        heuristic_scores(adj, PAIRS, ("katz",))
    with pytest.raises(HeuristicError, match=r"range \[0, 5\)"):
        heuristic_scores(adj, torch.tensor([[0], [7]]), ("cn",))


def test_item_blocks_cover_every_item_once_within_the_budget():
    cost = np.array([3.0, 0.0, 9.0, 1.0, 1.0, 1.0, 0.0])
    blocks = _blocks_by_cost(cost, 4.0)
    assert blocks == [(0, 2), (2, 3), (3, 7)]  # the item costing 9 is a block alone
    assert _blocks_by_cost(np.zeros(3), 4.0) == [(0, 3)]
    assert _blocks_by_cost(np.zeros(0), 4.0) == []
