"""Approximate personalized PageRank for many targets at once: a batched, synchronous forward push (Andersen, Chung
and Lang, FOCS 2006) with the residual tolerance ε·d(u), top-k per target, and an exact power iteration to check it
against.

Convention: ``r = (1 − c)·e_s + c·A·r`` with ``A = W·D⁻¹`` column-stochastic and ``c`` the damping
(:data:`DAMPING`), so the teleport probability is ``α = 1 − c``. The graph is undirected: ``adj`` holds both
directions of every edge.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

# PageRank's damping c (continuation probability; teleport α = 1 − c = 0.15): the value of Brin and Page's PageRank
# (WWW 1998), kept by shaDow-GNN's PPR scopes (Zeng et al., NeurIPS 2021) and most PPR code. Every PPR default in the
# package, the assets and the benchmarks reads it from here.
DAMPING = 0.85

# Dense residual and estimate buffers of one block of targets cost 8 bytes × targets × nodes; blocks are
# shrunk to stay under this many bytes per worker thread.
BLOCK_BYTES = 256 << 20

Read = TypeVar("Read")


class PPRError(ValueError):
    """A PPR request that cannot be computed as asked (bad damping, tolerance or target ids)."""


@dataclass(frozen=True)
class TopKPPR:
    """Approximate PPR vectors of ``targets`` as a CSR: target ``i`` holds ``nodes[indptr[i]:indptr[i + 1]]`` with
    their ``scores``, best first (ties by node id).

    Shapes:
        targets: ``(T,)`` int64; indptr: ``(T + 1,)`` int64; nodes: ``(nnz,)`` int64; scores: ``(nnz,)`` float32.
    """

    targets: Tensor
    indptr: Tensor
    nodes: Tensor
    scores: Tensor

    def __len__(self) -> int:
        return self.targets.numel()

    def row(self, i: int) -> tuple[Tensor, Tensor]:
        """``(nodes, scores)`` of target ``i``, best first."""
        start, end = int(self.indptr[i]), int(self.indptr[i + 1])
        return self.nodes[start:end], self.scores[start:end]

    def to_tensors(self) -> dict[str, Tensor]:
        """The four tensors, for ``torch.save`` (read back with :meth:`from_tensors`)."""
        return {"targets": self.targets, "indptr": self.indptr, "nodes": self.nodes, "scores": self.scores}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> TopKPPR:
        """The inverse of :meth:`to_tensors`."""
        return cls(tensors["targets"], tensors["indptr"], tensors["nodes"], tensors["scores"])


def _check(adj: sp.csr_matrix, targets: np.ndarray, damping: float, epsilon: float) -> None:
    if not 0.0 < damping < 1.0:
        raise PPRError(f"damping must lie in (0, 1) ({DAMPING} is the usual value), got {damping}.")
    if epsilon <= 0.0:
        raise PPRError(f"epsilon must be positive (1e-5 or 1e-6 are usual), got {epsilon}.")
    if targets.size and (targets.min() < 0 or targets.max() >= adj.shape[0]):
        raise PPRError(f"target ids must lie in [0, {adj.shape[0]}); got min {targets.min()}, max {targets.max()}.")


class _BlockPush:
    """Forward push for one block of targets at a time, with dense per-block buffers.

    Hand-written (numpy + one scipy sparse product per round) because no library pushes many sources at once:
    every round pushes all (target, node) residuals with ``r ≥ ε·d(node)`` together. A push keeps the ACL invariant
    whatever the order, so the synchronous schedule stops with the same guarantee ``0 ≤ π − p < ε·d`` per node.
    Only the entries a round touched can cross the threshold, so each round costs its push volume, not the block.
    Each thread keeps its two buffers from block to block and clears only the entries a block touched: fresh
    buffers would cost a zero fill of targets × nodes per block, which grows as nodes² over all targets.
    """

    def __init__(self, adj: sp.csr_matrix, damping: float, epsilon: float, top_k: int | None) -> None:
        degree = np.diff(adj.indptr).astype(np.float64)
        self.num_nodes, self.top_k = adj.shape[0], top_k
        self.alpha = np.float32(1.0 - damping)
        # Row u spreads c·r(u)/d(u) to each neighbour: the transpose of c·A·D⁻¹, so a block is a row-major product.
        spread = sp.diags((damping / np.maximum(degree, 1.0)).astype(np.float32)) @ adj
        self.spread = spread.astype(np.float32).tocsr()
        self.threshold = (epsilon * degree).astype(np.float32)
        self._buffers = threading.local()

    def __call__(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR arrays ``(indptr, nodes, scores)`` of the block's targets, each row's ``top_k`` best first."""
        return self.estimates(targets, lambda estimate, support: self._top_k(support, estimate, targets.size))

    def estimates(self, targets: np.ndarray, read: Callable[[np.ndarray, np.ndarray], Read]) -> Read:
        """``read(estimate, support)`` of the block's dense flat estimates (row ``i`` at ``[i·N, (i + 1)·N)``) and
        their sorted positive support; the buffers are cleared for the thread's next block once ``read`` returns."""
        residual, estimate = self._clean_buffers(targets.size * self.num_nodes)
        try:
            support, touched = self._push(targets, residual, estimate)
            result = read(estimate, support)
        except BaseException:
            self._buffers.arrays = None  # left half-written: the thread's next block starts from fresh ones
            raise
        for flat in touched:
            residual[flat] = 0.0
        estimate[support] = 0.0
        return result

    def _push(self, targets: np.ndarray, residual: np.ndarray, estimate: np.ndarray
              ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Push the block's targets to the tolerance into the all-zero buffers: the estimates' sorted positive support
        and every position where a residual was written."""
        n, size = self.num_nodes, targets.size
        block_rows = np.arange(size)
        rows, cols = block_rows, targets.astype(np.int64)
        flat = rows * n + cols
        values = np.ones(size, dtype=np.float32)  # the residuals at ``flat``, kept so no round reads them twice
        residual[flat] = values
        support, touched = [], [flat]
        while True:
            active = values >= self.threshold[cols]
            if not active.any():
                break
            flat, values, rows, cols = flat[active], values[active], rows[active], cols[active]
            residual[flat] = 0.0
            before = estimate[flat]
            support.append(flat[before == 0.0])  # first push of a node: p(v) becomes positive
            estimate[flat] = before + self.alpha * values
            # Rows stay sorted (CSR output of the last round), so each row's pushes are a contiguous run.
            indptr = np.searchsorted(rows, np.arange(size + 1))
            pushed = sp.csr_matrix((values, cols, indptr), shape=(size, n)) @ self.spread
            rows = np.repeat(block_rows, np.diff(pushed.indptr))
            cols = pushed.indices.astype(np.int64)
            flat = rows * n + cols
            touched.append(flat)
            # One entry per (row, node) in a CSR product: no duplicate indices, so a gather and a scatter add.
            values = residual[flat] + pushed.data
            residual[flat] = values
        return np.sort(np.concatenate(support)), touched

    def _clean_buffers(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """This thread's all-zero residual and estimate buffers, at least ``length`` long (grown when a block
        needs more)."""
        buffers = getattr(self._buffers, "arrays", None)
        if buffers is None or buffers[0].size < length:
            buffers = self._buffers.arrays = (np.zeros(length, dtype=np.float32), np.zeros(length, dtype=np.float32))
        return buffers

    def _top_k(self, support: np.ndarray, estimate: np.ndarray, size: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row, the ``top_k`` best of the (sorted, flat) support, by score and then node id."""
        scores = estimate[support]
        rows = support // self.num_nodes
        # One int64 key per entry, row first, then score descending (the bits of a positive float32 order like
        # the float); a stable sort of the flat-sorted support breaks ties by node id. Faster than np.lexsort.
        descending = 0x7FFFFFFF - scores.view(np.int32).astype(np.int64)
        order = np.argsort((rows << 31) | descending, kind="stable")
        support, rows, scores = support[order], rows[order], scores[order]
        starts = np.searchsorted(rows, np.arange(size + 1))
        if self.top_k is not None:
            keep = np.arange(rows.size) - starts[rows] < self.top_k
            support, rows, scores = support[keep], rows[keep], scores[keep]
            starts = np.searchsorted(rows, np.arange(size + 1))
        return starts, support - rows * self.num_nodes, scores


def forward_push(
    adj: sp.csr_matrix,
    targets: Tensor | np.ndarray,
    damping: float = DAMPING,
    epsilon: float = 1e-5,
    top_k: int | None = 200,
    block_size: int = 256,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> TopKPPR:
    """Approximate PPR of every target by non-lazy forward push, keeping the ``top_k`` nodes of each.

    Every returned score ``p(v)`` satisfies ``π(v) − ε·d(v) < p(v) ≤ π(v)`` for the exact PPR ``π`` of
    :func:`power_iteration`. The result is deterministic: blocks are independent and each is computed in a fixed
    order, whatever the number of threads.

    Args:
        adj: ``(N, N)`` symmetric CSR adjacency (:func:`adjacency`).
        targets: ``(T,)`` node ids.
        damping: ``c``, the continuation probability (default: :data:`DAMPING`, 0.85).
        epsilon: residual tolerance per unit of degree (default: ``1e-5``).
        top_k: nodes kept per target, best first; ``None`` keeps every node with a positive score.
        block_size: targets pushed together (memory: 8 bytes × block × N per thread, capped at 256 MiB).
        workers: threads, each pushing its own blocks (scipy and numpy release the GIL); 0 means
            ``torch.get_num_threads()``.
        progress: called as ``progress(done, total)`` after each block, in order.
    """
    targets = np.asarray(targets.cpu() if isinstance(targets, Tensor) else targets, dtype=np.int64)
    _check(adj, targets, damping, epsilon)
    push = _BlockPush(adj, damping, epsilon, top_k)
    blocks = _blocks(targets, block_size, adj.shape[0])
    workers = workers or torch.get_num_threads()
    indptr, nodes, scores, offset, done = [np.zeros(1, dtype=np.int64)], [], [], 0, 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for chunk, (starts, cols, values) in zip(blocks, pool.map(push, blocks)):
            indptr.append(starts[1:] + offset)
            nodes.append(cols)
            scores.append(values)
            offset += cols.size
            done += chunk.size
            if progress is not None:
                progress(done, targets.size)
    return TopKPPR(
        targets=torch.from_numpy(targets.copy()),
        indptr=torch.from_numpy(np.concatenate(indptr)),
        nodes=torch.from_numpy(np.concatenate(nodes) if nodes else np.zeros(0, dtype=np.int64)),
        scores=torch.from_numpy(np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32)),
    )


def pair_scores(adj: sp.csr_matrix, sources: Tensor | np.ndarray, nodes: Tensor | np.ndarray,
                damping: float = DAMPING, epsilon: float = 1e-7, block_size: int = 256, workers: int = 0) -> np.ndarray:
    """Approximate PPR ``p_s(v)`` of each pair ``(sources[i], nodes[i])`` by forward push, each distinct source
    pushed once, with the same bound as :func:`forward_push`: ``π_s(v) − ε·d(v) < p_s(v) ≤ π_s(v)``.

    Unlike :func:`forward_push` it keeps no top-k: each block's estimates are read at the block's pairs and
    dropped, so memory stays at one block per thread whatever the number of pairs.

    Shapes:
        sources, nodes: ``(P,)`` node ids; output: ``(P,)`` float32.
    """
    sources = np.asarray(sources.cpu() if isinstance(sources, Tensor) else sources, dtype=np.int64)
    nodes = np.asarray(nodes.cpu() if isinstance(nodes, Tensor) else nodes, dtype=np.int64)
    _check(adj, np.concatenate([sources, nodes]), damping, epsilon)
    push = _BlockPush(adj, damping, epsilon, top_k=None)
    distinct, row_of_pair = np.unique(sources, return_inverse=True)
    blocks = _blocks(distinct, block_size, adj.shape[0])
    starts = np.cumsum([0] + [block.size for block in blocks])
    order = np.argsort(row_of_pair, kind="stable")  # pairs grouped by source, so each block reads one slice
    bounds = np.searchsorted(row_of_pair[order], starts)
    out = np.zeros(sources.size, dtype=np.float32)

    def read(index: int) -> None:
        pairs = order[bounds[index]:bounds[index + 1]]
        positions = (row_of_pair[pairs] - starts[index]) * adj.shape[0] + nodes[pairs]
        out[pairs] = push.estimates(blocks[index], lambda estimate, _: estimate[positions])

    with ThreadPoolExecutor(max_workers=max(1, workers or torch.get_num_threads())) as pool:
        list(pool.map(read, range(len(blocks))))
    return out


def _blocks(targets: np.ndarray, block_size: int, num_nodes: int) -> list[np.ndarray]:
    """``targets`` in blocks of at most ``block_size``, shrunk so one block's dense buffers stay under
    :data:`BLOCK_BYTES`."""
    block = max(1, min(block_size, BLOCK_BYTES // (8 * max(num_nodes, 1))))
    return [targets[i:i + block] for i in range(0, targets.size, block)]


def power_iteration(adj: sp.csr_matrix, sources: Tensor | np.ndarray, damping: float = DAMPING, tol: float = 1e-12,
                    max_iter: int = 10_000) -> np.ndarray:
    """Exact PPR of each source by iterating ``r ← (1 − c)·e_s + c·A·D⁻¹·r`` until the largest change is below
    ``tol`` (float64): the reference the push is checked against.

    Shapes:
        output: ``(S, N)``, row ``i`` the PPR vector of ``sources[i]``.
    """
    sources = np.asarray(sources, dtype=np.int64)
    _check(adj, sources, damping, 1.0)
    degree = np.diff(adj.indptr).astype(np.float64)
    walk = (adj.astype(np.float64) @ sp.diags(1.0 / np.maximum(degree, 1.0))).tocsr()  # A·D⁻¹, column-stochastic
    restart = np.zeros((adj.shape[0], sources.size))
    restart[sources, np.arange(sources.size)] = 1.0 - damping
    scores = restart.copy()
    for _ in range(max_iter):
        updated = restart + damping * (walk @ scores)
        change = np.abs(updated - scores).max() if scores.size else 0.0
        scores = updated
        if change < tol:
            break
    return scores.T

