"""Adjacency matrices of edge lists (binary scipy CSR for graph walks and overlaps, GCN-normalised torch CSR for
propagation) and sparse products whose backward pass reuses the forward matrix.

``torch.sparse.mm`` differentiates ``A @ X`` by building ``Aᵀ`` on every backward pass. For a symmetric
propagation matrix ``Aᵀ = A``, so the backward is just another product with the same CSR matrix; this is
what makes a full-graph LightGCN step affordable on a CPU (measured on 2 cores, a 70k-node, 1 M-edge graph: a CSR
adjacency is about 4x faster than an edge list, 1.4 s vs 5.9 s per batch of 8192 with backward).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_torch_csr_tensor


def binary_adjacency(edge_index: Tensor, num_nodes: int) -> sp.csr_matrix:
    """Binary symmetric ``(N, N)`` adjacency of an edge list (either or both directions given; duplicates and
    self-loops dropped) as scipy CSR: the graph that PPR walks and the neighbourhood heuristics overlap.

    Pass the training edges only: what reads it then cannot see validation or test edges.
    """
    row, col = edge_index.cpu().numpy()
    keep = row != col
    row, col = row[keep], col[keep]
    matrix = sp.csr_matrix((np.ones(2 * row.size, dtype=np.float32), (np.r_[row, col], np.r_[col, row])),
                           shape=(num_nodes, num_nodes))
    matrix.data[:] = 1.0  # duplicates were summed
    return matrix


def gcn_adjacency(edge_index: Tensor, num_nodes: int, self_loops: bool) -> Tensor:
    """``D^-1/2 (A [+ I]) D^-1/2`` of an undirected edge list (both directions given) as float32 sparse CSR: PyG's
    ``gcn_norm``, then ``to_torch_csr_tensor``. Isolated nodes get zero rows, not NaN.

    Shapes:
        edge_index: ``(2, E)``. output: ``(N, N)``.
    """
    edge_index, weight = gcn_norm(edge_index, num_nodes=num_nodes, add_self_loops=self_loops)
    return to_torch_csr_tensor(edge_index, weight, size=(num_nodes, num_nodes))


class _SymmetricSpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        return None, torch.sparse.mm(ctx.adj, grad_out)


def symmetric_spmm(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for a symmetric sparse ``adj``; gradients flow to ``x`` only.

    Shapes:
        adj: ``(N, N)`` sparse (CSR preferred), symmetric. x: ``(N, F)``. output: ``(N, F)``.
    """
    return _SymmetricSpMM.apply(adj, x)
