"""Link-prediction heuristics as teachers: common neighbours, Adamic–Adar, resource allocation and personalized
PageRank scores for batches of node pairs, computed from the sparse adjacency of the training graph only.

CN/AA/RA are sparse row products (cost O(Σ min(d_u, d_v)) per batch); PPR is a batched power iteration. Both work
batch by batch so memory stays bounded by ``batch_size`` rows. These are the teachers of EHDM (Qin et al., LoG 2025).
"""
from __future__ import annotations

import itertools
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
    weights = {name: _node_weight(homogeneous, name)[graph.num_users:] for name in names if name != "ppr"}
    overlaps = _three_hop_overlaps(user_items, item_users, weights, users.cpu().numpy(),
                                   items.cpu().numpy()) if weights else {}
    return {name: personalized_pagerank(homogeneous, pairs, epsilon=ppr_epsilon) if name == "ppr"
            else torch.from_numpy(overlaps[name]) for name in names}


def _three_hop_overlaps(user_items: sp.csr_array, item_users: sp.csr_array, weights: dict[str, np.ndarray],
                        users: np.ndarray, items: np.ndarray, block_entries: int = 1 << 23, workers: int = 0
                        ) -> dict[str, np.ndarray]:
    """``Σ_{u' ∈ N(i)} Σ_{j ∈ N(u) ∩ N(u')} w(j)`` of each pair ``(users[p], items[p])`` for each weight ``w`` of
    ``weights``, float32.

    The sum equals ``Σ_{j ∈ N(u)} w(j) · C[j, i]`` with ``C = RᵀR`` the items' co-occurrence counts, so ``C`` is
    computed once for every weight, in blocks of items ``j`` (a sparse product), and each pair reads it at its user's
    items. That costs Σ_u d_u² (every user's items paired), where expanding every user's 2-hop row costs Σ_j d_j² per
    weight; on power-law data the items' degrees are the more skewed. A block holds about ``block_entries`` product
    entries and lookups. Blocks run on ``workers`` threads (0: ``torch.get_num_threads()``); scipy's sparse kernels
    release the GIL.
    """
    num_items = user_items.shape[1]
    out = {name: np.zeros(users.size, dtype=np.float64) for name in weights}
    # Pairs grouped by user, so each (item j, user u) reads the contiguous run of u's pairs.
    order = np.argsort(users, kind="stable")
    pair_starts = np.searchsorted(users[order], np.arange(user_items.shape[0] + 1))
    pairs_per_user = np.diff(pair_starts)
    user_degree = np.diff(user_items.indptr)
    # Per item j: its block product's entries (Σ_{u ∈ N(j)} d_u) and its lookups (the pairs of its users).
    cost = item_users @ (user_degree + pairs_per_user).astype(np.float64)
    bounds = _blocks_by_cost(cost, block_entries)

    def score_block(first: int, last: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        cooccurrence = (item_users[first:last] @ user_items).tocsr()  # (J, I): C[j, ·] of the block's items
        cooccurrence.sum_duplicates()  # sorted indices within each row, so the flat keys below are sorted
        keys = (np.repeat(np.arange(last - first, dtype=np.int64), np.diff(cooccurrence.indptr)) * num_items
                + cooccurrence.indices)
        lo, hi = item_users.indptr[first], item_users.indptr[last]
        item_of_entry = np.repeat(np.arange(first, last), np.diff(item_users.indptr[first:last + 1]))
        user_of_entry = item_users.indices[lo:hi]
        runs = pairs_per_user[user_of_entry]
        # Every pair p of every user u of item j: (j, p), as ragged ranges of ``order``.
        item_of_term = np.repeat(item_of_entry, runs)
        run_starts = np.repeat(pair_starts[user_of_entry] - np.cumsum(runs) + runs, runs)
        pairs = order[run_starts + np.arange(item_of_term.size)]
        wanted = (item_of_term - first).astype(np.int64) * num_items + items[pairs]
        # A binary search of flat (row, column) keys, by hand: scipy's element lookup scans every row it reads.
        found = np.minimum(np.searchsorted(keys, wanted), max(keys.size - 1, 0))
        counts = np.where(keys[found] == wanted, cooccurrence.data[found], 0.0) if keys.size else np.zeros(wanted.size)
        return pairs, {name: weight[item_of_term] * counts for name, weight in weights.items()}

    with ThreadPoolExecutor(max_workers=max(1, workers or torch.get_num_threads())) as pool:
        # Summed in block order, whichever thread ends first, so the float sums are the same on every run.
        for pairs, terms in pool.map(lambda bound: score_block(*bound), bounds):
            for name, values in terms.items():
                np.add.at(out[name], pairs, values)
    return {name: values.astype(np.float32) for name, values in out.items()}


def _blocks_by_cost(cost: np.ndarray, budget: float) -> list[tuple[int, int]]:
    """Consecutive ``[first, last)`` ranges of ``cost``'s indices, each summing to about ``budget`` (an index whose
    own cost exceeds it is a block alone)."""
    ends = np.searchsorted(np.cumsum(cost), np.arange(budget, cost.sum() + budget, budget), side="right")
    edges = np.unique(np.r_[0, np.minimum(np.maximum(ends, 1), cost.size), cost.size])
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]
