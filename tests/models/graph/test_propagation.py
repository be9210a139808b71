"""Propagation matrices: LightGCN's symmetric one and the doubly stochastic (RawlsGCN) balancing."""
import pytest
import torch

from models.graph.bipartite import BipartiteGraph
from models.graph.propagation import propagation_matrix


def _random_bipartite(seed: int) -> BipartiteGraph:
    gen = torch.Generator().manual_seed(seed)
    pairs = torch.stack([torch.randint(30, (200,), generator=gen), torch.randint(45, (200,), generator=gen)])
    return BipartiteGraph(torch.unique(pairs, dim=1), 30, 45)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_doubly_stochastic_propagation_has_unit_row_and_column_sums_and_is_symmetric(seed):
    graph = _random_bipartite(seed)
    dense = propagation_matrix(graph, "doubly_stochastic", tol=1e-4).to_dense()
    ones = torch.ones(graph.num_users + graph.num_items)  # self-loops give every node, even isolated, support
    assert torch.allclose(dense.sum(0), ones, atol=1e-4)
    assert torch.allclose(dense.sum(1), ones, atol=1e-4)
    assert torch.equal(dense, dense.T)


def test_balance_strength_interpolates_between_renormalized_and_balanced():
    graph = _random_bipartite(3)
    full = propagation_matrix(graph, "doubly_stochastic", 1.0).to_dense()
    none = propagation_matrix(graph, "doubly_stochastic", 0.0).to_dense()
    half = propagation_matrix(graph, "doubly_stochastic", 0.5).to_dense()
    assert torch.allclose(half, (full + none) / 2, atol=1e-6)
    assert float(none.diagonal().min()) > 0  # the renormalized matrix keeps its self-loops


def test_unknown_propagation_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="symmetric"):
        propagation_matrix(_random_bipartite(0), "row")
