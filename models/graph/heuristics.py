"""Link-prediction heuristics as teachers: common neighbours, Adamic–Adar, resource allocation and personalized
PageRank scores for batches of node pairs, computed from the sparse adjacency of the training graph only.

CN/AA/RA are sparse row products (cost O(Σ min(d_u, d_v)) per batch); PPR is a batched power iteration. Both work
batch by batch so memory stays bounded by ``batch_size`` rows. These are the teachers of EHDM (Qin et al., LoG 2025).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from models.graph.bipartite import BipartiteGraph
from models.graph.ppr import DAMPING
from models.graph.sparse import binary_adjacency

HEURISTICS = ("cn", "aa", "ra", "ppr")


class HeuristicError(ValueError):
    """A heuristic request names an unknown heuristic or pairs outside the graph."""


def _node_weight(adj: sp.csr_array, name: str) -> np.ndarray:
    """Weight of a common neighbour w: 1 (CN), 1/log d_w (AA), 1/d_w (RA); zero where undefined (d_w ≤ 1)."""
    degree = np.asarray(adj.sum(axis=1)).ravel().astype(np.float64)
    if name == "cn":
        return np.ones_like(degree)
    with np.errstate(divide="ignore"):
        weight = 1.0 / (np.log(degree) if name == "aa" else degree)
    # A common neighbour of two distinct nodes has degree ≥ 2, so d_w ≤ 1 never contributes.
    weight[degree <= 1] = 0.0
    return weight


def _check_pairs(pairs: Tensor, num_nodes: int) -> np.ndarray:
    if pairs.dim() != 2 or pairs.size(0) != 2:
        raise HeuristicError(f"pairs must be a (2, P) tensor of node indices, got shape {tuple(pairs.shape)}")
    pairs_np = pairs.cpu().numpy().astype(np.int64)
    if pairs_np.size and (pairs_np.min() < 0 or pairs_np.max() >= num_nodes):
        raise HeuristicError(f"pair node index out of range [0, {num_nodes}): min {pairs_np.min()}, "
                             f"max {pairs_np.max()}; pass indices of the graph the adjacency was built from")
    return pairs_np


def neighbourhood_overlap(adj: sp.csr_array, pairs: Tensor, name: str, batch_size: int = 65536) -> Tensor:
    """CN, AA or RA of each pair: ``Σ_{w ∈ N(u) ∩ N(v)} weight(w)`` via sparse row products, batch by batch.

    Args:
        adj: symmetric binary adjacency of the training graph (:func:`models.graph.sparse.binary_adjacency`).
        pairs: ``(2, P)`` node indices.
        name: ``"cn"``, ``"aa"`` or ``"ra"``.
        batch_size: pairs per sparse product (bounds memory).

    Shapes:
        output: ``(P,)`` float32.
    """
    if name not in ("cn", "aa", "ra"):
        raise HeuristicError(f"unknown overlap heuristic {name!r}; use 'cn', 'aa' or 'ra'")
    src, dst = _check_pairs(pairs, adj.shape[0])
    weight = _node_weight(adj, name)
    out = np.empty(src.size, dtype=np.float64)
    for start in range(0, src.size, batch_size):
        batch = slice(start, start + batch_size)
        common = adj[src[batch]].multiply(adj[dst[batch]])  # (B, N) sparse: 1 where w is a common neighbour
        out[batch] = common @ weight
    return torch.from_numpy(out.astype(np.float32))


def personalized_pagerank(adj: sp.csr_array, pairs: Tensor, alpha: float = 1.0 - DAMPING, iterations: int = 20,
                          batch_size: int = 256) -> Tensor:
    """PPR score ``π_u(v)`` of each pair (restart probability ``alpha``, default ``1 − DAMPING`` = 0.15) by power
    iteration on the random walk ``P = D⁻¹A``, for ``batch_size`` distinct sources at a time (a dense
    ``(batch_size, N)`` block).

    Shapes:
        output: ``(P,)`` float32.
    """
    src, dst = _check_pairs(pairs, adj.shape[0])
    degree = np.asarray(adj.sum(axis=1)).ravel()
    inv_degree = np.divide(1.0, degree, out=np.zeros_like(degree, dtype=np.float64), where=degree > 0)
    walk_t = (sp.diags_array(inv_degree) @ adj).T.tocsr().astype(np.float32)  # Pᵀ: x_next = x P ⇔ x_nextᵀ = Pᵀ xᵀ
    sources, inverse = np.unique(src, return_inverse=True)
    out = np.empty(src.size, dtype=np.float32)
    for start in range(0, sources.size, batch_size):
        batch_sources = sources[start:start + batch_size]
        restart = np.zeros((adj.shape[0], batch_sources.size), dtype=np.float32)
        restart[batch_sources, np.arange(batch_sources.size)] = 1.0
        scores = restart.copy()
        for _ in range(iterations):
            scores = alpha * restart + (1.0 - alpha) * (walk_t @ scores)
        in_batch = (inverse >= start) & (inverse < start + batch_sources.size)
        out[in_batch] = scores[dst[in_batch], inverse[in_batch] - start]
    return torch.from_numpy(out)


def heuristic_scores(adj: sp.csr_array, pairs: Tensor, names: tuple[str, ...] = HEURISTICS) -> dict[str, Tensor]:
    """Scores of ``pairs`` under each heuristic in ``names`` (``cn``, ``aa``, ``ra``, ``ppr``), each ``(P,)``."""
    unknown = set(names) - set(HEURISTICS)
    if unknown:
        raise HeuristicError(f"unknown heuristics {sorted(unknown)}; choose from {HEURISTICS}")
    return {name: personalized_pagerank(adj, pairs) if name == "ppr" else neighbourhood_overlap(adj, pairs, name)
            for name in names}


def bipartite_heuristic_scores(graph: BipartiteGraph, users: Tensor, items: Tensor,
                               names: tuple[str, ...] = HEURISTICS) -> dict[str, Tensor]:
    """Heuristic scores of (user, item) pairs on the user–item training graph.

    A user and an item share no neighbour in a bipartite graph, so the overlap heuristics count 3-hop paths
    instead: ``h(u, i) = Σ_{u' ∈ N(i)} Σ_{j ∈ N(u) ∩ N(u')} weight(j)`` (user-based collaborative filtering with
    CN/AA/RA weights on the shared items j). PPR runs on the homogeneous graph (items offset by ``num_users``).
    """
    unknown = set(names) - set(HEURISTICS)
    if unknown:
        raise HeuristicError(f"unknown heuristics {sorted(unknown)}; choose from {HEURISTICS}")
    num_nodes = graph.num_users + graph.num_items
    homogeneous = binary_adjacency(torch.stack([graph.edge_index[0], graph.edge_index[1] + graph.num_users]), num_nodes)
    pairs = torch.stack([users, items + graph.num_users])
    _check_pairs(pairs, num_nodes)
    user_items = homogeneous[:graph.num_users, graph.num_users:].tocsr()  # (U, I)
    item_users = user_items.T.tocsr()
    users_np, items_np = users.cpu().numpy(), items.cpu().numpy()
    out = {}
    for name in names:
        if name == "ppr":
            out[name] = personalized_pagerank(homogeneous, pairs)
            continue
        weight = _node_weight(homogeneous, name)[graph.num_users:]
        scores = np.empty(users_np.size, dtype=np.float64)
        batch_size = 1024  # a (batch, U) block of user–user overlaps per product
        for start in range(0, users_np.size, batch_size):
            batch = slice(start, start + batch_size)
            overlap = (user_items[users_np[batch]] @ sp.diags_array(weight)) @ item_users  # (B, U)
            scores[batch] = np.asarray(overlap.multiply(item_users[items_np[batch]]).sum(axis=1)).ravel()
        out[name] = torch.from_numpy(scores.astype(np.float32))
    return out
