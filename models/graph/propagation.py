"""Propagation matrices for LightGCN-style models: symmetric normalization or its doubly stochastic balancing.

The balanced one is RawlsGCN-Graph (Kang et al., WWW 2022) carried over to recommendation: every node gets unit
row and column sums, so every node weighs the same in the gradient. The bipartite adjacency alone has no
doubly stochastic scaling when #users ≠ #items (the user rows and the item columns of the user→item block
would both have to sum to the block's total), so self-loops are added first, as RawlsGCN does.
"""
from __future__ import annotations

from torch import Tensor

from models.graph.bipartite import BipartiteGraph, normalized_adjacency
from models.graph.sinkhorn import sinkhorn_knopp

PROPAGATIONS = ("symmetric", "doubly_stochastic")


def propagation_matrix(graph: BipartiteGraph, kind: str = "symmetric", balance_strength: float = 1.0,
                       tol: float = 1e-3) -> Tensor:
    """Sparse CSR propagation matrix of ``kind`` over ``num_users + num_items`` nodes.

    Args:
        kind: ``symmetric`` (LightGCN's ``D^-1/2 A D^-1/2``, no self-loops) or ``doubly_stochastic``
            (Sinkhorn–Knopp balancing of ``D̃^-1/2 (A+I) D̃^-1/2``, symmetrized).
        balance_strength: β in ``(1−β)·Â + β·SK(Â)`` for ``doubly_stochastic``; 1 is the full balancing,
            smaller values trace the fairness/accuracy trade-off.
        tol: Sinkhorn–Knopp tolerance on row and column sums.
    """
    if kind not in PROPAGATIONS:
        raise ValueError(f"unknown propagation {kind!r}; expected one of {PROPAGATIONS}")
    if kind == "symmetric":
        return normalized_adjacency(graph)
    if not 0.0 <= balance_strength <= 1.0:
        raise ValueError(f"balance_strength must be in [0, 1], got {balance_strength}")
    renormalized = normalized_adjacency(graph, self_loops=True)
    balanced = sinkhorn_knopp(renormalized, tol=tol).matrix
    # SK of a symmetric matrix is symmetric only up to `tol`; averaging with the transpose makes it exact
    # (the symmetric-product backward relies on it) and keeps row and column sums within `tol`.
    balanced = (balanced.to_sparse_coo() + balanced.to_sparse_coo().t()).coalesce() * 0.5
    mixed = balanced * balance_strength + renormalized.to_sparse_coo() * (1.0 - balance_strength)
    return mixed.coalesce().to_sparse_csr()
