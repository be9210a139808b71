"""shaDow-GNN scopes (Zeng et al., NeurIPS 2021): each target's small node set (top-k PPR with the relative
threshold, or the k-hop neighbourhood with a per-hop budget) and the isolated batch of their node-induced subgraphs.

In a batch every scope is its own subgraph: a node in two scopes is two batch nodes, so scopes never exchange messages.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from models.graph.ppr import TopKPPR


class ScopeError(ValueError):
    """Scopes requested with settings that cannot hold (negative budget, unknown rows)."""


@dataclass(frozen=True)
class Scopes:
    """Node sets per target as a CSR: scope ``i`` is ``nodes[indptr[i]:indptr[i + 1]]`` and starts with its target.

    Shapes:
        targets: ``(T,)`` int64; indptr: ``(T + 1,)`` int64; nodes: ``(nnz,)`` int64.
    """

    targets: Tensor
    indptr: Tensor
    nodes: Tensor

    def __len__(self) -> int:
        return self.targets.numel()

    def sizes(self) -> Tensor:
        """Nodes per scope, ``(T,)``."""
        return self.indptr.diff()

    def to_tensors(self) -> dict[str, Tensor]:
        """The three tensors, for ``torch.save`` (read back with :meth:`from_tensors`)."""
        return {"targets": self.targets, "indptr": self.indptr, "nodes": self.nodes}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> Scopes:
        """The inverse of :meth:`to_tensors`."""
        return cls(tensors["targets"], tensors["indptr"], tensors["nodes"])


def _ragged_arange(starts: Tensor, counts: Tensor) -> Tensor:
    """``cat([arange(s, s + c) for s, c in zip(starts, counts)])`` without a Python loop."""
    ends = torch.cumsum(counts, 0)
    return torch.repeat_interleave(starts - ends + counts, counts) + torch.arange(int(ends[-1]) if ends.numel() else 0)


def ppr_scopes(ppr: TopKPPR, threshold: float = 0.0) -> Scopes:
    """Scopes from top-k PPR lists with shaDow's relative threshold.

    π_max is the largest score of a node other than the target; walking down the sorted list, the scope stops at the
    first node with ``π(u) / π_max < threshold``. The target is always kept, first (``threshold=0`` keeps the list).
    """
    counts = ppr.indptr.diff()
    row = torch.repeat_interleave(torch.arange(len(ppr)), counts)
    is_target = ppr.nodes == ppr.targets[row]
    others = ppr.scores.masked_fill(is_target, float("-inf"))
    best_other = torch.full((len(ppr),), float("-inf")).scatter_reduce(0, row, others, "amax")
    # Lists are sorted, so the nodes that pass form a prefix of each list (ties aside, which pass together).
    keep = ~is_target & (ppr.scores >= threshold * best_other[row])
    order = torch.argsort(row * 2 + keep.logical_not().long(), stable=True)  # kept nodes first, in list order
    kept = torch.bincount(row[keep], minlength=len(ppr))
    kept_nodes = ppr.nodes[order][_ragged_arange(ppr.indptr[:-1], kept)]
    return _with_targets_first(ppr.targets, kept, kept_nodes)


def _with_targets_first(targets: Tensor, counts: Tensor, others: Tensor) -> Scopes:
    """Scopes made of each target followed by its ``counts[i]`` other nodes (``others`` grouped by target)."""
    sizes = counts + 1
    indptr = torch.zeros(targets.numel() + 1, dtype=torch.long)
    indptr[1:] = torch.cumsum(sizes, 0)
    nodes = torch.empty(int(indptr[-1]), dtype=torch.long)
    nodes[indptr[:-1]] = targets
    is_other = torch.ones(nodes.numel(), dtype=torch.bool)
    is_other[indptr[:-1]] = False
    nodes[is_other] = others
    return Scopes(targets.clone(), indptr, nodes)


def khop_scopes(adj: sp.csr_matrix, targets: Tensor, depth: int = 2, budget: int = 20, seed: int = 0) -> Scopes:
    """shaDow's k-hop scopes: ``depth`` BFS levels from each target; a frontier node with more than ``budget``
    neighbours adds ``budget`` of them drawn uniformly with replacement (duplicates collapse), others add all.

    Deterministic for a ``seed``. The target comes first in each scope, the other nodes by id.
    """
    if depth < 0 or budget < 1:
        raise ScopeError(f"khop scopes need depth >= 0 and budget >= 1, got depth={depth}, budget={budget}.")
    indptr, indices = torch.from_numpy(adj.indptr).long(), torch.from_numpy(adj.indices).long()
    n, generator = adj.shape[0], torch.Generator().manual_seed(seed)
    targets = targets.long()
    rows = torch.arange(targets.numel())
    members = rows * n + targets  # (scope, node) keys
    frontier_rows, frontier = rows, targets
    for _ in range(depth):
        degree = indptr[frontier + 1] - indptr[frontier]
        sampled = degree > budget
        # Small frontier nodes add every neighbour; large ones add `budget` draws with replacement.
        take = torch.where(sampled, budget, degree)
        offsets = _ragged_arange(torch.zeros_like(take), take)
        draw_from = torch.repeat_interleave(sampled, take)
        random = (torch.rand(offsets.numel(), generator=generator) * torch.repeat_interleave(degree, take)).long()
        offsets = torch.where(draw_from, random, offsets)
        neighbours = indices[torch.repeat_interleave(indptr[frontier], take) + offsets]
        keys = torch.unique(torch.repeat_interleave(frontier_rows, take) * n + neighbours)
        new = keys[~torch.isin(keys, members)]
        members = torch.cat([members, new])
        frontier_rows, frontier = new // n, new % n
    others = torch.sort(members[targets.numel():]).values  # grouped by scope, then by node id
    counts = torch.bincount(others // n, minlength=targets.numel())
    return _with_targets_first(targets, counts, others % n)


@dataclass(frozen=True)
class SubgraphBatch:
    """Isolated node-induced subgraphs of a batch of scopes, block-diagonal as one PyG graph.

    Shapes:
        node_id: ``(N,)`` global node of each batch node (a node in two scopes appears twice);
        edge_index: ``(2, E)`` batch-local, no edge between two scopes; batch: ``(N,)`` scope of each batch node;
        center: ``(B,)`` batch-local index of each scope's target.
    """

    node_id: Tensor
    edge_index: Tensor
    batch: Tensor
    center: Tensor

    @property
    def num_scopes(self) -> int:
        return self.center.numel()

    def to(self, device: torch.device | str) -> SubgraphBatch:
        """The same batch with every tensor on ``device`` (extraction runs on the CPU, the model anywhere)."""
        return SubgraphBatch(*(t.to(device) for t in (self.node_id, self.edge_index, self.batch, self.center)))


class GraphIndex:
    """The whole graph as tensors, for extracting induced subgraphs of scopes: CSR neighbour lists, and the sorted
    ``u·N + v`` key of every directed edge for pair lookups."""

    def __init__(self, adj: sp.csr_matrix) -> None:
        self.num_nodes = adj.shape[0]
        self.indptr = torch.from_numpy(adj.indptr).long()
        self.indices = torch.from_numpy(adj.indices).long()
        rows = torch.repeat_interleave(torch.arange(self.num_nodes), self.indptr.diff())
        self.edge_keys = torch.sort(rows * self.num_nodes + self.indices).values


def _scope_nodes(scopes: Scopes, rows: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The batch nodes of scopes ``rows``: global ids, scope of each, each scope's first position, and sizes."""
    rows = rows.long()
    if rows.numel() and (rows.min() < 0 or rows.max() >= len(scopes)):
        raise ScopeError(f"scope rows must lie in [0, {len(scopes)}), got {rows.min()}..{rows.max()}.")
    counts = scopes.indptr[rows + 1] - scopes.indptr[rows]
    node_id = scopes.nodes[_ragged_arange(scopes.indptr[rows], counts)]
    batch = torch.repeat_interleave(torch.arange(rows.numel()), counts)
    return node_id, batch, torch.cumsum(counts, 0) - counts, counts


def isolated_batch(scopes: Scopes, rows: Tensor, graph: GraphIndex) -> SubgraphBatch:
    """The node-induced subgraphs of scopes ``rows``, isolated from each other, as one batch.

    Edges are found the cheaper of two ways: reading the neighbour lists of the batch's nodes (cost: their summed
    degree) or looking up every pair of nodes within a scope among the graph's edges (cost: the summed squared scope
    size). Hubs make the first expensive on recommendation graphs; large scopes of low-degree nodes make the second
    expensive on citation graphs. Either way, edges come sorted by (source, target) batch position. A model that
    reads the same scopes again and again takes its batches from :class:`ScopeSubgraphs` instead.
    """
    node_id, batch, center, counts = _scope_nodes(scopes, rows)
    degree = graph.indptr[node_id + 1] - graph.indptr[node_id]
    if int(counts.square().sum()) < int(degree.sum()):
        source, target = _edges_by_pairs(node_id, batch, center, counts, graph)
    else:
        source, target = _edges_by_neighbour_lists(node_id, batch, degree, graph)
    order = torch.argsort(source * max(node_id.numel(), 1) + target)
    return SubgraphBatch(node_id, torch.stack([source[order], target[order]]), batch, center)


@dataclass(frozen=True)
class ScopeSubgraphs:
    """Every scope's node-induced subgraph, extracted once, so that a batch gathers its edges instead of finding
    them in the graph: training reads every scope once an epoch and inference all of them at each validation.

    Shapes:
        edge_ptr: ``(T + 1,)``; scope ``i``'s edges are ``edges[:, edge_ptr[i]:edge_ptr[i + 1]]``;
        edges: ``(2, E)`` int32 positions within the scope, sorted by (source, target) within each scope.
    """

    scopes: Scopes
    edge_ptr: Tensor
    edges: Tensor

    # Scopes per extraction batch are bounded by their summed squared size, the pair lookup's cost (4M pairs: about
    # 100 MB of int64 temporaries).
    PAIRS_PER_CHUNK = 2**22

    @classmethod
    def extract(cls, scopes: Scopes, graph: GraphIndex) -> ScopeSubgraphs:
        """The induced subgraphs of every scope of ``scopes`` in ``graph``, by :func:`isolated_batch` in chunks."""
        chunk = torch.div(torch.cumsum(scopes.sizes().square(), 0) - 1, cls.PAIRS_PER_CHUNK, rounding_mode="floor")
        ends = torch.cumsum(torch.unique_consecutive(chunk, return_counts=True)[1], 0).tolist()
        counts, edges = [], []
        for start, end in zip([0, *ends], ends):
            sub = isolated_batch(scopes, torch.arange(start, end), graph)
            scope = sub.batch[sub.edge_index[0]]
            counts.append(torch.bincount(scope, minlength=end - start))
            edges.append((sub.edge_index - sub.center[scope]).int())
        edge_ptr = torch.zeros(len(scopes) + 1, dtype=torch.long)
        if counts:
            edge_ptr[1:] = torch.cumsum(torch.cat(counts), 0)
        return cls(scopes, edge_ptr, torch.cat(edges, 1) if edges else torch.zeros(2, 0, dtype=torch.int32))

    def batch(self, rows: Tensor) -> SubgraphBatch:
        """The isolated batch of scopes ``rows``: equal to :func:`isolated_batch` in the graph they came from."""
        node_id, batch, center, _ = _scope_nodes(self.scopes, rows)
        rows = rows.long()
        counts = self.edge_ptr[rows + 1] - self.edge_ptr[rows]
        edges = self.edges[:, _ragged_arange(self.edge_ptr[rows], counts)].long()
        # Scopes follow each other in the batch, so each scope's sorted edges shifted to its place stay sorted.
        return SubgraphBatch(node_id, edges + torch.repeat_interleave(center, counts), batch, center)


def _edges_by_neighbour_lists(node_id: Tensor, batch: Tensor, degree: Tensor, graph: GraphIndex
                              ) -> tuple[Tensor, Tensor]:
    """Batch-local edges: each node's neighbours that are members of its own scope."""
    n = graph.num_nodes
    member_keys, position = torch.sort(batch * n + node_id)
    source = torch.repeat_interleave(torch.arange(node_id.numel()), degree)
    neighbour = graph.indices[_ragged_arange(graph.indptr[node_id], degree)]
    query = batch[source] * n + neighbour
    found = torch.searchsorted(member_keys, query).clamp(max=max(member_keys.numel() - 1, 0))
    inside = member_keys[found] == query if member_keys.numel() else torch.zeros(0, dtype=torch.bool)
    return source[inside], position[found[inside]]


def _edges_by_pairs(node_id: Tensor, batch: Tensor, center: Tensor, counts: Tensor, graph: GraphIndex
                    ) -> tuple[Tensor, Tensor]:
    """Batch-local edges: the pairs of nodes of one scope that are edges of the graph."""
    size = counts[batch]  # each batch node's scope size
    source = torch.repeat_interleave(torch.arange(node_id.numel()), size)
    target = _ragged_arange(center[batch], size)  # every position of the same scope
    query = node_id[source] * graph.num_nodes + node_id[target]
    keys = graph.edge_keys
    found = torch.searchsorted(keys, query).clamp(max=max(keys.numel() - 1, 0))
    edge = keys[found] == query if keys.numel() else torch.zeros(0, dtype=torch.bool)
    return source[edge], target[edge]


def receptive_field_sizes(adj: sp.csr_matrix, hops: int) -> Tensor:
    """Nodes within ``hops`` hops of each node (itself included): what an ``hops``-layer full-graph GNN reads, ``(N,)``."""
    step = (adj + sp.eye(adj.shape[0], format="csr")).astype(bool).astype(np.float32)
    reach = sp.eye(adj.shape[0], format="csr", dtype=np.float32)
    for _ in range(hops):
        reach = (reach @ step).astype(bool).astype(np.float32)
    return torch.from_numpy(np.diff(reach.indptr)).long()
