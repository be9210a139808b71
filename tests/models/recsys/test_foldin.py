"""LightGCN fold-in: on a tiny hand-built graph, folding users in equals propagating the augmented graph in full
(dense ``D^-1/2 A D^-1/2`` computed here, independently of the CSR path), for both initialisations."""
import pytest
import torch

from models.graph.bipartite import BipartiteGraph
from models.recsys.foldin import fold_in_users

# 3 trained users, 3 items; user 3 is in the ID map without training edges (a new user to fold in).
GRAPH = BipartiteGraph(torch.tensor([[0, 0, 1, 2, 2], [0, 1, 1, 1, 2]]), num_users=4, num_items=3)
K = 2


def _dense_lightgcn(layer0: torch.Tensor, edges: torch.Tensor, num_users: int, num_items: int) -> torch.Tensor:
    """Final LightGCN vectors by dense algebra: mean over k = 0..K of (D^-1/2 A D^-1/2)^k E0."""
    n = num_users + num_items
    a = torch.zeros(n, n, dtype=torch.float64)
    a[edges[0], num_users + edges[1]] = 1.0
    a = a + a.T
    d = a.sum(1).pow(-0.5)
    d[torch.isinf(d)] = 0.0
    a_hat = d[:, None] * a * d[None, :]
    layers, e = [layer0.double()], layer0.double()
    for _ in range(K):
        e = a_hat @ e
        layers.append(e)
    return torch.stack(layers).mean(0)


@pytest.mark.parametrize("init", ["mean", "zero"])
def test_fold_in_equals_full_propagation_of_the_augmented_graph(init):
    layer0 = torch.randn(GRAPH.num_users + GRAPH.num_items, 4, generator=torch.Generator().manual_seed(0))
    new_edges = torch.tensor([[3, 3], [0, 2]])
    got = fold_in_users(layer0, GRAPH, new_edges, torch.tensor([3]), K, init=init)

    expected_table = layer0.clone()
    # Trained rows: users 0-2 and every item (all have edges); user 3's untrained row is replaced.
    expected_table[3] = layer0[[0, 1, 2, 4, 5, 6]].mean(0) if init == "mean" else 0.0
    full = _dense_lightgcn(expected_table, torch.cat([GRAPH.edge_index, new_edges], 1), 4, 3)
    assert got.shape == (1, 4)
    torch.testing.assert_close(got.double(), full[[3]], atol=1e-6, rtol=1e-5)


def test_fold_in_of_one_hop_matches_the_closed_form():
    # With K = 1 and init zero, e_u* = ½ Σ_i e0_i / sqrt(|N*| |N_i|), degrees counted with the new edges.
    layer0 = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    got = fold_in_users(layer0, GRAPH, torch.tensor([[3, 3], [0, 2]]), torch.tensor([3]), 1, init="zero")
    # deg(i0) = 1 + 1, deg(i2) = 1 + 1, |N*| = 2.
    expected = 0.5 * (layer0[4] / (2 * 2) ** 0.5 + layer0[6] / (2 * 2) ** 0.5)
    torch.testing.assert_close(got[0], expected, atol=1e-6, rtol=1e-5)


def test_users_appended_beyond_the_id_map_are_folded_in_jointly():
    # Two appended users (ids 4, 5) share item 1: joint fold-in lets each reach the other at layer 2.
    layer0 = torch.randn(7, 4, generator=torch.Generator().manual_seed(2))
    new_edges = torch.tensor([[4, 5, 5], [1, 1, 0]])
    got = fold_in_users(layer0, GRAPH, new_edges, torch.tensor([4, 5]), K, init="mean")
    table = torch.cat([layer0[:4], torch.zeros(2, 4), layer0[4:]])
    table[[4, 5]] = layer0[[0, 1, 2, 4, 5, 6]].mean(0)
    full = _dense_lightgcn(table, torch.cat([GRAPH.edge_index, new_edges], 1), 6, 3)
    torch.testing.assert_close(got.double(), full[[4, 5]], atol=1e-6, rtol=1e-5)


def test_a_user_with_training_edges_is_refused():
    with pytest.raises(ValueError, match="training edges"):
        fold_in_users(torch.zeros(7, 2), GRAPH, torch.tensor([[0], [2]]), torch.tensor([0]), K)


def test_training_returns_the_layer0_table_its_final_vectors_come_from():
    # The table fold-in propagates must be the best state's, the one whose propagation gave user_emb and item_emb.
    from models.graph.bipartite import normalized_adjacency
    from models.recsys.lightgcn import build_lightgcn
    from models.recsys.training import LightGCNConfig, train_lightgcn

    graph = BipartiteGraph(torch.tensor([[0, 0, 1, 1, 2, 2, 3], [0, 1, 1, 2, 2, 3, 3]]), num_users=4, num_items=5)
    valid = torch.tensor([[0, 3], [2, 4]])
    config = LightGCNConfig(embedding_dim=8, num_layers=2, lr=0.05, batch_size=4, epochs=6, eval_every=2, eval_k=3,
                            seed=3)
    result = train_lightgcn(graph, valid, config, log=lambda _: None)
    assert result.layer0.shape == (9, 8)
    model = build_lightgcn(4, 5, 8, 2, init_std=0.0)
    with torch.no_grad():
        model.embedding.weight.copy_(result.layer0)
        node_emb = model.get_embedding(normalized_adjacency(graph))
    torch.testing.assert_close(node_emb[:4], result.user_emb)
    torch.testing.assert_close(node_emb[4:], result.item_emb)


def test_serving_scorers_rank_with_stored_vectors_or_fold_in():
    from models.eval.ranking import user_csr
    from models.recsys.serving import fold_in_scorer, precomputed_scorer

    layer0 = torch.randn(7, 4, generator=torch.Generator().manual_seed(4))
    item_emb = torch.randn(3, 4, generator=torch.Generator().manual_seed(5))
    user_emb = torch.randn(4, 4, generator=torch.Generator().manual_seed(6))
    assert torch.equal(precomputed_scorer(user_emb, item_emb, k=2)(torch.tensor([1, 2])),
                       (user_emb[[1, 2]] @ item_emb.T).topk(2).indices)
    serving = torch.tensor([[3, 3], [0, 2]])
    indptr, items = user_csr(serving, GRAPH.num_users)
    folded = fold_in_users(layer0, GRAPH, serving, torch.tensor([3]), K)
    got = fold_in_scorer(layer0, GRAPH, indptr, items, item_emb, K, k=3)(torch.tensor([3]))
    assert torch.equal(got, (folded @ item_emb.T).topk(3).indices)
