"""Scopes: shaDow's relative threshold, k-hop scopes with a budget, and isolated node-induced batches (found in the
graph, or gathered from subgraphs extracted once)."""

import pytest
import torch
from torch_geometric.utils import erdos_renyi_graph, subgraph, to_undirected

from models.graph.ppr import TopKPPR, forward_push
from models.graph.scopes import (
    GraphIndex,
    ScopeError,
    Scopes,
    ScopeSubgraphs,
    _edges_by_neighbour_lists,
    _edges_by_pairs,
    _ragged_arange,
    isolated_batch,
    khop_scopes,
    ppr_scopes,
)
from models.graph.sparse import binary_adjacency

# Two triangles 0-1-2 and 2-3-4 sharing node 2, plus 4-5.
EDGES = torch.tensor([[0, 1], [0, 2], [1, 2], [2, 3], [2, 4], [3, 4], [4, 5]]).T
UNDIRECTED = torch.cat([EDGES, EDGES.flip(0)], 1)
NUM_NODES = 6


def test_relative_threshold_is_taken_against_the_best_other_node():
    ppr = TopKPPR(targets=torch.tensor([0, 4]), indptr=torch.tensor([0, 4, 7]),
                  nodes=torch.tensor([0, 3, 1, 2, 2, 4, 5]),
                  scores=torch.tensor([0.5, 0.2, 0.1, 0.001, 0.3, 0.2, 0.01]))
    scopes = ppr_scopes(ppr, threshold=0.1)
    # Target 0: π_max = 0.2 (node 3), node 2 falls below 0.1·0.2. Target 4 is second in its list but still leads
    # its scope; 5 falls below 0.1·0.3.
    assert scopes.indptr.tolist() == [0, 3, 5]
    assert scopes.nodes.tolist() == [0, 3, 1, 4, 2]
    assert ppr_scopes(ppr, threshold=0.0).sizes().tolist() == [4, 3]


def test_khop_scopes_take_every_neighbour_within_budget_and_sample_above_it():
    adj = binary_adjacency(UNDIRECTED, NUM_NODES)
    full = khop_scopes(adj, torch.tensor([0, 5]), depth=2, budget=10)
    assert full.nodes.tolist() == [0, 1, 2, 3, 4, 5, 2, 3, 4]
    # Node 2 has 4 neighbours; with a budget of 1 each frontier node adds one draw.
    small = khop_scopes(adj, torch.tensor([2]), depth=1, budget=1, seed=3)
    assert small.sizes().tolist() == [2] and small.nodes[0] == 2
    again = khop_scopes(adj, torch.tensor([2]), depth=1, budget=1, seed=3)
    assert torch.equal(small.nodes, again.nodes)


def test_scopes_in_a_batch_are_isolated_copies():
    adj = binary_adjacency(UNDIRECTED, NUM_NODES)
    scopes = Scopes(targets=torch.tensor([0, 4]), indptr=torch.tensor([0, 3, 7]),
                    nodes=torch.tensor([0, 1, 2, 4, 2, 3, 5]))
    sub = isolated_batch(scopes, torch.tensor([0, 1, 0]), GraphIndex(adj))
    # Node 2 is in both scopes and scope 0 is asked for twice: every copy is its own batch node.
    assert sub.node_id.tolist() == [0, 1, 2, 4, 2, 3, 5, 0, 1, 2]
    assert sub.batch.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert sub.center.tolist() == [0, 3, 7]
    src, dst = sub.edge_index
    assert torch.equal(sub.batch[src], sub.batch[dst])  # no message crosses scopes
    for b, row in enumerate([0, 1, 0]):
        nodes = scopes.nodes[scopes.indptr[row]:scopes.indptr[row + 1]]
        expected, _ = subgraph(nodes, UNDIRECTED, num_nodes=NUM_NODES)
        mine = sub.node_id[sub.edge_index[:, sub.batch[src] == b]]
        assert sorted(map(tuple, mine.T.tolist())) == sorted(map(tuple, expected.T.tolist()))


def test_pair_lookup_and_neighbour_lists_find_the_same_scope_edges():
    # isolated_batch picks the cheaper strategy per batch; both must give the induced subgraphs exactly.
    torch.manual_seed(0)
    edge_index = to_undirected(erdos_renyi_graph(300, 0.03))
    adj = binary_adjacency(edge_index, 300)
    graph = GraphIndex(adj)
    scopes = ppr_scopes(forward_push(adj, torch.arange(300), top_k=20))
    rows = torch.randint(300, (50,), generator=torch.Generator().manual_seed(0))
    counts = scopes.indptr[rows + 1] - scopes.indptr[rows]
    node_id = scopes.nodes[_ragged_arange(scopes.indptr[rows], counts)]
    batch = torch.repeat_interleave(torch.arange(rows.numel()), counts)
    center = torch.cumsum(counts, 0) - counts
    degree = graph.indptr[node_id + 1] - graph.indptr[node_id]
    by_pairs = torch.stack(_edges_by_pairs(node_id, batch, center, counts, graph))
    by_lists = torch.stack(_edges_by_neighbour_lists(node_id, batch, degree, graph))
    assert by_pairs.size(1) > 500
    assert sorted(map(tuple, by_pairs.T.tolist())) == sorted(map(tuple, by_lists.T.tolist()))


def test_subgraphs_extracted_once_give_the_batches_found_in_the_graph(monkeypatch):
    torch.manual_seed(0)
    edge_index = to_undirected(erdos_renyi_graph(300, 0.03))
    graph = GraphIndex(binary_adjacency(edge_index, 300))
    scopes = ppr_scopes(forward_push(binary_adjacency(edge_index, 300), torch.arange(300), top_k=20), threshold=0.05)
    # Small chunks, so that the extraction's chunk boundaries are crossed too.
    monkeypatch.setattr(ScopeSubgraphs, "PAIRS_PER_CHUNK", 1000)
    subgraphs = ScopeSubgraphs.extract(scopes, graph)
    assert subgraphs.edge_ptr[-1] == subgraphs.edges.size(1) > 1000
    rows = torch.randint(300, (80,), generator=torch.Generator().manual_seed(1))
    for wanted in (rows, rows[:1], torch.tensor([], dtype=torch.long)):
        found, gathered = isolated_batch(scopes, wanted, graph), subgraphs.batch(wanted)
        for name in ("node_id", "edge_index", "batch", "center"):
            assert torch.equal(getattr(gathered, name), getattr(found, name)), name


def test_subgraphs_refuse_rows_outside_the_scopes():
    subgraphs = ScopeSubgraphs.extract(Scopes(torch.tensor([0]), torch.tensor([0, 2]), torch.tensor([0, 1])),
                                       GraphIndex(binary_adjacency(UNDIRECTED, NUM_NODES)))
    assert subgraphs.edges.tolist() == [[0, 1], [1, 0]]
    with pytest.raises(ScopeError, match=r"\[0, 1\)"):
        subgraphs.batch(torch.tensor([1]))
