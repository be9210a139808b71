"""The bipartite graph keeps its interaction times through a save, and refuses times that do not match its edges."""
import pytest
import torch

from models.graph.bipartite import BipartiteGraph

EDGES = torch.tensor([[0, 0, 1], [0, 2, 1]])


@pytest.mark.parametrize("times", [None, torch.tensor([1.7e9, 1.7e9 + 86_400.5, 1.6e9], dtype=torch.float64)])
def test_a_saved_graph_loads_with_the_same_edges_and_times(tmp_path, times):
    BipartiteGraph(EDGES, 2, 3, times).save(tmp_path / "graph.pt")
    loaded = BipartiteGraph.load(tmp_path / "graph.pt")
    assert torch.equal(loaded.edge_index, EDGES) and (loaded.num_users, loaded.num_items) == (2, 3)
    if times is None:
        assert loaded.edge_time is None
    else:
        assert loaded.edge_time.dtype == torch.float64 and torch.equal(loaded.edge_time, times)


def test_times_must_have_one_entry_per_edge():
    with pytest.raises(ValueError, match="one entry per edge"):
        BipartiteGraph(EDGES, 2, 3, torch.zeros(2, dtype=torch.float64))
