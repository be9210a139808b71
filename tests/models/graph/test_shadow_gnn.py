"""shaDow-GNN: readouts, isolation within a batch, activation memory growing with depth only, and the recommender
serving a user it never saw."""

import pytest
import torch
from torch_geometric.nn import global_mean_pool

from models.graph.bipartite import BipartiteGraph, to_homogeneous_edge_index
from models.graph.ppr import forward_push
from models.graph.scopes import GraphIndex, Scopes, isolated_batch, ppr_scopes
from models.graph.shadow_gnn import (
    CONVS,
    READOUTS,
    SPARSE_AGGREGATION,
    ShadowError,
    ShadowGNN,
    activation_megabytes,
)
from models.graph.sparse import binary_adjacency
from models.nodeclf.shadow import parse_model
from models.recsys.shadow import ShadowRecConfig, ShadowRecError, recommend_for_new_user, train_shadow_recommender

EDGES = torch.tensor([[0, 1], [0, 2], [1, 2], [2, 3], [2, 4], [3, 4], [4, 5]]).T
UNDIRECTED = torch.cat([EDGES, EDGES.flip(0)], 1)
SCOPES = Scopes(targets=torch.tensor([0, 4]), indptr=torch.tensor([0, 3, 7]), nodes=torch.tensor([0, 1, 2, 4, 2, 3, 5]))


def _community_graph() -> BipartiteGraph:
    """Users 0–19 took items 0–9, users 20–39 items 10–19, each user 4 items of its own block."""
    generator = torch.Generator().manual_seed(0)
    users = torch.arange(40).repeat_interleave(4)
    offsets = torch.stack([torch.randperm(10, generator=generator)[:4] for _ in range(40)]).flatten()
    items = offsets + (users >= 20).long() * 10
    return BipartiteGraph(torch.stack([users, items]), 40, 20)


@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("readout", READOUTS)
def test_a_scope_reads_out_the_same_alone_or_batched(conv, readout):
    torch.manual_seed(0)
    model = ShadowGNN(3, 8, 2, num_layers=4, conv=conv, readout=readout).eval()
    x = torch.randn(6, 3)
    graph = GraphIndex(binary_adjacency(UNDIRECTED, 6))
    both = isolated_batch(SCOPES, torch.tensor([0, 1]), graph)
    alone = isolated_batch(SCOPES, torch.tensor([1]), graph)
    out_both = model(x[both.node_id], both.edge_index, both.batch, both.center)
    out_alone = model(x[alone.node_id], alone.edge_index, alone.batch, alone.center)
    assert out_both.shape == (2, 2)
    torch.testing.assert_close(out_both[1:], out_alone)


def test_unknown_layer_or_readout_is_refused():
    with pytest.raises(ShadowError, match="readout"):
        ShadowGNN(3, 8, 2, 2, readout="sum")
    with pytest.raises(ShadowError, match="layer"):
        ShadowGNN(3, 8, 2, 2, conv="gin")
    assert parse_model("gcn5") == ("full", "gcn", 5) and parse_model("shadow_gat3") == ("shadow", "gat", 3)


def test_activation_memory_grows_by_one_layer_of_the_scope_per_layer():
    graph = GraphIndex(binary_adjacency(UNDIRECTED, 6))
    sub = isolated_batch(SCOPES, torch.tensor([0, 1] * 50), graph)
    x = torch.randn(6, 32)[sub.node_id]

    def megabytes(layers: int) -> float:
        model = ShadowGNN(32, 32, 2, layers, "gcn")
        return activation_megabytes(lambda: model(x, sub.edge_index, sub.batch, sub.center).sum().backward())

    three, five, seven = megabytes(3), megabytes(5), megabytes(7)
    assert three < five < seven
    assert five - three == pytest.approx(seven - five, rel=1e-6)  # each layer adds the same, scope-sized amount
    per_layer = (five - three) / 2
    assert per_layer < 20 * sub.node_id.numel() * 32 * 4 / 2**20  # a few (N, 32) float tensors, not the graph


def test_an_unseen_user_with_two_items_gets_recommendations_without_retraining():
    graph = _community_graph()
    n = graph.num_users + graph.num_items
    ppr = forward_push(binary_adjacency(to_homogeneous_edge_index(graph), n), torch.arange(n), top_k=16)
    config = ShadowRecConfig(embedding_dim=16, num_layers=2, batch_size=32, epochs=3, lr=0.02, seed=0)
    result = train_shadow_recommender(graph, ppr_scopes(ppr), config, log=lambda _: None)
    model_state = result.state_dict
    from models.recsys.shadow import ShadowRecommender

    model = ShadowRecommender(graph.num_users, graph.num_items, config)
    model.load_state_dict(model_state)
    top = recommend_for_new_user(model, graph, result.item_emb, torch.tensor([1, 3]), k=5, top_k=16)
    assert top.numel() == 5 and top.unique().numel() == 5
    assert not set(top.tolist()) & {1, 3}
    assert sum(item < 10 for item in top.tolist()) >= 4  # the user's own community
    with pytest.raises(ShadowRecError, match="item ids"):
        recommend_for_new_user(model, graph, result.item_emb, torch.tensor([20]))


@pytest.mark.parametrize("conv", SPARSE_AGGREGATION)
def test_sparse_aggregation_equals_message_passing_on_the_edge_list(conv):
    # The model aggregates SAGE and GCN layers on a CSR adjacency; its own layers run on the edge list must agree,
    # forward and backward.
    torch.manual_seed(0)
    model = ShadowGNN(3, 8, 2, num_layers=3, conv=conv, readout="center+mean")
    sub = isolated_batch(SCOPES, torch.tensor([0, 1, 1]), GraphIndex(binary_adjacency(UNDIRECTED, 6)))
    # One direction of each edge, so that a wrong orientation of the adjacency shows.
    edge_index = sub.edge_index[:, sub.edge_index[0] < sub.edge_index[1]]
    x = torch.randn(sub.node_id.numel(), 3, requires_grad=True)
    z = model(x, edge_index, sub.batch, sub.center)
    (z_grad,) = torch.autograd.grad(z.square().sum(), x)

    h = x
    for i, (layer, norm) in enumerate(zip(model.convs, model.norms)):
        out = torch.relu(norm(layer(h, edge_index)))
        h = out if i == 0 else h + out
    expected = model.out(torch.cat([h[sub.center], global_mean_pool(h, sub.batch, size=sub.center.numel())], 1))
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), x)
    torch.testing.assert_close(z, expected)
    torch.testing.assert_close(z_grad, expected_grad)
