"""The full-graph baselines of the shaDow comparison: the same-backbone GCN computes exactly what shaDow-GCN's
backbone computes when the scope is the whole graph, so the two differ only in receptive field."""
import torch

from models.graph.shadow_gnn import ShadowGNN
from models.graph.sparse import gcn_adjacency
from models.nodeclf.shadow import FullGraphResGCN, parse_model

EDGES = torch.tensor([[0, 1], [0, 2], [1, 2], [2, 3], [2, 4], [3, 4], [4, 5]]).T
UNDIRECTED = torch.cat([EDGES, EDGES.flip(0)], 1)


def test_parse_model_names_the_same_backbone_baseline():
    assert parse_model("gcn_res5") == ("full", "gcn_res", 5) and parse_model("gcn3") == ("full", "gcn", 3)


def test_same_backbone_gcn_equals_shadow_gcn_on_a_scope_that_is_the_whole_graph():
    torch.manual_seed(0)
    x = torch.randn(6, 5)
    full = FullGraphResGCN(5, 8, 3, num_layers=3, dropout=0.5).eval()
    shadow = ShadowGNN(8, 8, 3, 3, conv="gcn", readout="center", dropout=0.5).eval()
    with torch.no_grad():
        for conv, layer, shadow_norm, norm in zip(shadow.convs, full.layers, shadow.norms, full.norms):
            layer.weight.copy_(conv.lin.weight)
            layer.bias.copy_(conv.bias)
            norm.weight.copy_(torch.rand(8))  # non-trivial LayerNorm affine, shared by both
            shadow_norm.weight.copy_(norm.weight)
        full.out.load_state_dict(shadow.out.state_dict())
        encoded = full.encode(x)
        expected = shadow(encoded, UNDIRECTED, torch.zeros(6, dtype=torch.long), torch.arange(6))
        got = full(x, gcn_adjacency(UNDIRECTED, 6, self_loops=True))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
