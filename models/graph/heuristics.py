"""Link-prediction heuristics as teachers: common neighbours, Adamic–Adar, resource allocation and personalized
PageRank scores for batches of node pairs, computed from the sparse adjacency of the training graph only.

CN/AA/RA are sparse row products (cost O(Σ min(d_u, d_v)) per batch); PPR is a batched power iteration. Both work
batch by batch so memory stays bounded by ``batch_size`` rows. These are the teachers of EHDM (Qin et al., LoG 2025).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from models.graph.bipartite import BipartiteGraph
from models.graph.ppr import DAMPING, pair_scores
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


def personalized_pagerank(adj: sp.csr_array, pairs: Tensor, damping: float = DAMPING, epsilon: float = 1e-7
                          ) -> Tensor:
    """PPR score ``π_u(v)`` of each pair (continuation ``damping``, teleport ``1 − damping`` = 0.15 by default) by
    forward push (:func:`models.graph.ppr.pair_scores`): each distinct source is pushed once, and each score is
    within ``ε·d(v)`` below the exact one.

    Shapes:
        output: ``(P,)`` float32.
    """
    src, dst = _check_pairs(pairs, adj.shape[0])
    return torch.from_numpy(pair_scores(adj.tocsr(), src, dst, damping=damping, epsilon=epsilon))


def heuristic_scores(adj: sp.csr_array, pairs: Tensor, names: tuple[str, ...] = HEURISTICS) -> dict[str, Tensor]:
    """Scores of ``pairs`` under each heuristic in ``names`` (``cn``, ``aa``, ``ra``, ``ppr``), each ``(P,)``."""
    unknown = set(names) - set(HEURISTICS)
    if unknown:
        raise HeuristicError(f"unknown heuristics {sorted(unknown)}; choose from {HEURISTICS}")
    return {name: personalized_pagerank(adj, pairs) if name == "ppr" else neighbourhood_overlap(adj, pairs, name)
            for name in names}


def bipartite_heuristic_scores(graph: BipartiteGraph, users: Tensor, items: Tensor,
                               names: tuple[str, ...] = HEURISTICS, ppr_epsilon: float = 1e-5) -> dict[str, Tensor]:
    """Heuristic scores of (user, item) pairs on the user–item training graph.

    A user and an item share no neighbour in a bipartite graph, so the overlap heuristics count 3-hop paths
    instead: ``h(u, i) = Σ_{u' ∈ N(i)} Σ_{j ∈ N(u) ∩ N(u')} weight(j)`` (user-based collaborative filtering with
    CN/AA/RA weights on the shared items j). PPR runs on the homogeneous graph (items offset by ``num_users``),
    each score within ``ppr_epsilon · d(i)`` below the exact one. The default, forward push's usual 1e-5, keeps the median
    user's own item within 2% of its exact PPR on Gowalla, while most random items (exact PPR about 1e-5)
    read 0; 1e-6 resolves a fifth of those at about ten times the cost.
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
            out[name] = personalized_pagerank(homogeneous, pairs, epsilon=ppr_epsilon)
        else:
            weight = _node_weight(homogeneous, name)[graph.num_users:]
            out[name] = torch.from_numpy(_three_hop_overlap(user_items, item_users, weight, users_np, items_np))
    return out


def _three_hop_overlap(user_items: sp.csr_array, item_users: sp.csr_array, weight: np.ndarray, users: np.ndarray,
                       items: np.ndarray, block_users: int = 1024, workers: int = 0) -> np.ndarray:
    """``Σ_{u' ∈ N(i)} Σ_{j ∈ N(u) ∩ N(u')} weight(j)`` of each pair ``(users[p], items[p])``, float32.

    Each distinct user's weighted overlap row ``o_u = r_u · diag(weight) · Rᵀ`` is computed once per block of users
    (a sparse product), and each pair then reads ``o_u`` at the users of its item (a sparse lookup), so the cost is
    the users' 2-hop neighbourhoods plus the items' degrees, not one 2-hop product per pair. Blocks run on
    ``workers`` threads (0: ``torch.get_num_threads()``); scipy's sparse kernels release the GIL.
    """
    out = np.zeros(users.size, dtype=np.float32)
    distinct, row_of_pair = np.unique(users, return_inverse=True)
    order = np.argsort(row_of_pair, kind="stable")  # pairs grouped by user, so each block reads one slice
    sorted_rows = row_of_pair[order]
    weighted = user_items @ sp.diags_array(weight)
    num_users = item_users.shape[1]

    def score_block(start: int) -> None:
        block = distinct[start:start + block_users]
        lo, hi = np.searchsorted(sorted_rows, [start, start + block.size])
        pairs = order[lo:hi]
        overlap = (weighted[block] @ item_users).tocsr()  # (B, U): o_u of each user of the block
        overlap.sum_duplicates()  # sorted indices within each row, so the flat keys below are sorted
        paths = item_users[items[pairs]]  # (P_b, U): the users u' of each pair's item
        pair_of_entry = np.repeat(np.arange(pairs.size), np.diff(paths.indptr))
        # A binary search of (row, u') keys: scipy's own (row, col) lookup scans whole rows when the lookups are
        # few against the matrix's entries, which costs the 2-hop row length per lookup.
        keys = np.repeat(np.arange(block.size, dtype=np.int64), np.diff(overlap.indptr)) * num_users + overlap.indices
        wanted = (row_of_pair[pairs][pair_of_entry] - start).astype(np.int64) * num_users + paths.indices
        found = np.minimum(np.searchsorted(keys, wanted), max(keys.size - 1, 0))
        values = np.where(keys[found] == wanted, overlap.data[found], 0.0) if keys.size else np.zeros(wanted.size)
        out[pairs] = np.bincount(pair_of_entry, weights=values, minlength=pairs.size)

    with ThreadPoolExecutor(max_workers=max(1, workers or torch.get_num_threads())) as pool:
        list(pool.map(score_block, range(0, distinct.size, block_users)))
    return out
