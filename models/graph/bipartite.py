"""Bipartite user–item graph tensors: the contract between the warehouse and the models.

Only tensors are stored (``torch.save`` of a dict of tensors and ints), so loading uses ``weights_only=True``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor


@dataclass(frozen=True)
class BipartiteGraph:
    """Interactions as a bipartite graph.

    Args:
        edge_index: ``(2, E)`` int64, row 0 user indices in ``[0, num_users)``, row 1 item indices in ``[0, num_items)``.
        num_users: number of users (ID-map size, including users without edges).
        num_items: number of items.
        edge_time: ``(E,)`` float64 seconds since the Unix epoch of each edge's latest interaction, or None when
            the source has no time (a given split); families that weigh by recency read it.
    """

    edge_index: Tensor
    num_users: int
    num_items: int
    edge_time: Tensor | None = None

    def __post_init__(self) -> None:
        ei = self.edge_index
        if ei.dim() != 2 or ei.size(0) != 2 or ei.dtype != torch.long:
            raise ValueError(f"edge_index must be a (2, E) int64 tensor, got {tuple(ei.shape)} {ei.dtype}")
        if ei.numel() and (ei[0].min() < 0 or ei[0].max() >= self.num_users):
            raise ValueError(f"user index out of range [0, {self.num_users}) in edge_index")
        if ei.numel() and (ei[1].min() < 0 or ei[1].max() >= self.num_items):
            raise ValueError(f"item index out of range [0, {self.num_items}) in edge_index")
        if self.edge_time is not None and tuple(self.edge_time.shape) != (ei.size(1),):
            raise ValueError(f"edge_time must have one entry per edge ({ei.size(1)}), got {tuple(self.edge_time.shape)}")

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    def user_degree(self) -> Tensor:
        """Number of training items per user, shape ``(num_users,)``."""
        return torch.bincount(self.edge_index[0], minlength=self.num_users)

    def item_degree(self) -> Tensor:
        """Number of training users per item, shape ``(num_items,)``."""
        return torch.bincount(self.edge_index[1], minlength=self.num_items)

    def save(self, path: str | Path) -> None:
        """Write the graph as a dict of tensors and ints."""
        data = {"edge_index": self.edge_index, "num_users": self.num_users, "num_items": self.num_items}
        if self.edge_time is not None:
            data["edge_time"] = self.edge_time
        torch.save(data, str(path))

    @classmethod
    def load(cls, path: str | Path) -> BipartiteGraph:
        """Read a graph written by :meth:`save` (no pickled objects: ``weights_only=True``)."""
        data = torch.load(str(path), weights_only=True)
        return cls(data["edge_index"], int(data["num_users"]), int(data["num_items"]), data.get("edge_time"))


def to_homogeneous_edge_index(graph: BipartiteGraph) -> Tensor:
    """Undirected edge list over ``num_users + num_items`` nodes (items offset by ``num_users``), shape ``(2, 2E)``."""
    users, items = graph.edge_index
    items = items + graph.num_users
    return torch.stack([torch.cat([users, items]), torch.cat([items, users])])


def normalized_adjacency(graph: BipartiteGraph, self_loops: bool = False) -> Tensor:
    """Symmetric ``D^-1/2 A D^-1/2`` of the bipartite graph as a sparse CSR tensor.

    LightGCN (He et al., SIGIR 2020) uses it without self-loops; GCN-style models add them. Isolated nodes get
    zero rows, not NaN.

    Shapes:
        output: ``(N, N)`` with ``N = num_users + num_items``, float32 sparse CSR.
    """
    from models.graph.sparse import gcn_adjacency  # lazily: torch_geometric takes seconds to import

    num_nodes = graph.num_users + graph.num_items
    return gcn_adjacency(to_homogeneous_edge_index(graph), num_nodes, self_loops)
