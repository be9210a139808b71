"""The shaDow-GNN model (Zeng et al., NeurIPS 2021, https://arxiv.org/abs/2201.07858): an L'-layer GNN run on each
target's isolated subgraph, whatever the scope's radius, and a readout of the target (and of the pooled subgraph).
"""
from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv, global_max_pool, global_mean_pool
from torch_geometric.utils import to_torch_csr_tensor

CONVS = ("gcn", "sage", "gat")
# Layers that aggregate by one sparse-dense product on a CSR adjacency (a fused kernel forward and backward) instead
# of gathering and scattering every edge: on a Gowalla training batch of 49,152 nodes and 165,430 edges, three SAGE
# layers forward and backward took 0.17 s against 0.34 s on one thread. GAT needs every edge's attention.
SPARSE_AGGREGATION = ("gcn", "sage")
READOUTS = ("center", "center+mean", "center+max")


class ShadowError(ValueError):
    """A shaDow model asked for with an unknown layer or readout."""


def _conv(kind: str, in_channels: int, out_channels: int, heads: int) -> nn.Module:
    if kind == "gcn":
        return GCNConv(in_channels, out_channels)
    if kind == "sage":
        return SAGEConv(in_channels, out_channels)
    if kind == "gat":
        if out_channels % heads:
            raise ShadowError(f"GAT needs hidden_channels divisible by heads, got {out_channels} and {heads}.")
        return GATConv(in_channels, out_channels // heads, heads=heads)
    raise ShadowError(f"unknown layer {kind!r}; use one of {CONVS}.")


class ShadowGNN(nn.Module):
    r"""shaDow-GNN's backbone and readout over a batch of isolated subgraphs.

    .. math::
        h^{(\ell)} = h^{(\ell-1)} + \mathrm{ReLU}(\mathrm{LayerNorm}(\mathrm{conv}_\ell(h^{(\ell-1)}, G_{[v]}))),\quad
        z_v = W\,[h^{(L')}_v \,\Vert\, \mathrm{pool}_{u \in G_{[v]}} h^{(L')}_u]

    The first layer has no residual term (its input width may differ). The depth ``num_layers`` is set independently
    of the scope: messages never leave a subgraph, so a deep model smooths towards the scope's own stationary state,
    not the whole graph's.

    Args:
        in_channels: size of the input vectors of the batch nodes.
        hidden_channels: width of every layer.
        out_channels: size of the readout (classes, or the embedding size).
        num_layers: L', the number of message-passing layers.
        conv: ``"gcn"``, ``"sage"`` or ``"gat"`` (default: ``"sage"``).
        readout: ``"center"``, ``"center+mean"`` or ``"center+max"`` (default: ``"center"``).
        dropout: dropout before every layer and the readout (default: ``0.0``).
        heads: attention heads of GAT layers (default: ``4``).

    Shapes:
        x: ``(N, in_channels)``; edge_index: ``(2, E)`` batch-local; batch: ``(N,)``; center: ``(B,)``;
        output: ``(B, out_channels)``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int,
                 conv: str = "sage", readout: str = "center", dropout: float = 0.0, heads: int = 4) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ShadowError(f"unknown readout {readout!r}; use one of {READOUTS}.")
        self.readout, self.dropout, self.sparse = readout, dropout, conv in SPARSE_AGGREGATION
        sizes = [in_channels] + [hidden_channels] * num_layers
        self.convs = nn.ModuleList(_conv(conv, a, b, heads) for a, b in pairwise(sizes))
        # shaDow normalizes every layer's output (its "norm_feat"); without it 5-layer stacks barely train.
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_channels) for _ in range(num_layers))
        pooled = 2 if readout != "center" else 1
        self.out = nn.Linear(pooled * hidden_channels, out_channels)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor, center: Tensor) -> Tensor:
        # The transposed adjacency (a row per receiving node), as PyG's layers take a sparse one.
        adjacency = to_torch_csr_tensor(edge_index.flip(0), size=x.size(0)) if self.sparse else edge_index
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = F.relu(norm(conv(F.dropout(x, self.dropout, self.training), adjacency)))
            # A residual path past every layer but the first (whose input width may differ) keeps deep stacks trainable.
            x = h if i == 0 else x + h
        z = x[center]
        if self.readout == "center+mean":
            z = torch.cat([z, global_mean_pool(x, batch, size=center.numel())], dim=1)
        elif self.readout == "center+max":
            z = torch.cat([z, global_max_pool(x, batch, size=center.numel())], dim=1)
        return self.out(F.dropout(z, self.dropout, self.training))


def activation_megabytes(step) -> float:
    """MiB of the distinct tensors autograd saves for backward while ``step()`` runs its forward pass: the training
    memory that grows with depth (weights and optimizer state do not)."""
    seen: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        if tensor.layout == torch.strided:
            parts = [tensor]
        elif tensor.layout == torch.sparse_coo:
            parts = [tensor._indices(), tensor._values()]
        else:  # compressed layouts (CSR): row pointers, column indices and values
            parts = [tensor.crow_indices(), tensor.col_indices(), tensor.values()]
        for part in parts:
            seen[part.untyped_storage().data_ptr()] = part.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return sum(seen.values()) / 2**20
