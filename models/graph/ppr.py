"""Approximate personalized PageRank for many targets: forward push (Andersen, Chung and Lang, FOCS 2006) with the
residual tolerance ε·d(u), top-k per target, and an exact power iteration to check it against.

Convention: ``r = (1 − c)·e_s + c·A·r`` with ``A = W·D⁻¹`` column-stochastic and ``c`` the damping
(:data:`DAMPING`), so the teleport probability is ``α = 1 − c``. The graph is undirected and unweighted: ``adj`` holds
both directions of every edge, each stored as 1 (:func:`models.graph.sparse.binary_adjacency`).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

# PageRank's damping c (continuation probability; teleport α = 1 − c = 0.15): the value of Brin and Page's PageRank
# (WWW 1998), kept by shaDow-GNN's PPR scopes (Zeng et al., NeurIPS 2021) and most PPR code. Every PPR default in the
# package, the assets and the benchmarks reads it from here.
DAMPING = 0.85

# The push's node states, one byte per node.
_SEEN, _QUEUED = np.uint8(1), np.uint8(2)


class PPRError(ValueError):
    """A PPR request that cannot be computed as asked (bad damping, tolerance, target ids or adjacency)."""


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
    if adj.nnz and not (adj.data == 1).all():
        raise PPRError("the adjacency must be binary (every stored entry 1, as binary_adjacency gives): the push walks "
                       f"the unweighted graph; got entries between {adj.data.min()} and {adj.data.max()}.")


# Hand-written (compiled with numba) because no library pushes many targets fast: PyG's ``get_ppr`` keeps every
# node's whole support in Python lists and offers no top-k. One target at a time, each round pushes every node whose
# residual is at least ε·d(node), Gauss–Seidel within the round (a node pushes what it holds when its turn comes). A
# push keeps the ACL invariant whatever the order, so the push stops with ``0 ≤ π − p < ε·d`` per node. The
# buffers are as long as the node count and come back all zero (every node a target touched is cleared), so a thread
# keeps them from target to target: fresh ones would cost a zero fill per target, nodes² over all targets.
@numba.njit(nogil=True, cache=True)
def _push_target(indptr, indices, spread, threshold, alpha, target, estimate, residual, state, current, following,
                 touched, work):
    """Push ``target`` into the all-zero buffers; the count of nodes it touched (``touched[:count]``). Adds the
    pushes and the neighbours they visited to ``work[0]`` and ``work[1]``."""
    residual[target] = 1.0
    state[target] = _SEEN
    touched[0] = target
    count, active = 1, 0
    if residual[target] >= threshold[target]:
        state[target] |= _QUEUED
        current[0] = target
        active = 1
    while active > 0:
        queued = 0
        for i in range(active):
            node = current[i]
            state[node] &= ~_QUEUED
            mass = residual[node]
            residual[node] = 0.0
            estimate[node] += alpha * mass
            share = mass * spread[node]
            work[0] += 1
            work[1] += indptr[node + 1] - indptr[node]
            for e in range(indptr[node], indptr[node + 1]):
                neighbour = indices[e]
                if state[neighbour] == 0:
                    touched[count] = neighbour
                    count += 1
                residual[neighbour] += share
                if state[neighbour] & _QUEUED == 0 and residual[neighbour] >= threshold[neighbour]:
                    following[queued] = neighbour
                    queued += 1
                    state[neighbour] = _SEEN | _QUEUED
                else:
                    state[neighbour] |= _SEEN
        current, following = following, current
        active = queued
    return count


@numba.njit(nogil=True, cache=True)
def _clear(touched, count, estimate, residual, state):
    for i in range(count):
        node = touched[i]
        estimate[node] = 0.0
        residual[node] = 0.0
        state[node] = 0


@numba.njit(nogil=True, cache=True)
def _top_k_block(indptr, indices, spread, threshold, alpha, targets, top_k, estimate, residual, state, current,
                 following, touched, work):
    """CSR arrays ``(indptr, nodes, scores)`` of ``targets``: each row the ``top_k`` nodes with a positive estimate
    (all of them when ``top_k`` is negative), by score and then node id."""
    starts = np.zeros(targets.size + 1, np.int64)
    nodes = np.empty(max(16, targets.size * max(top_k, 16)), np.int64)
    scores = np.empty(nodes.size, np.float32)
    filled = 0
    for t in range(targets.size):
        count = _push_target(indptr, indices, spread, threshold, alpha, targets[t], estimate, residual, state,
                             current, following, touched, work)
        support = _best(touched[:count], estimate, top_k)
        order = np.argsort(-estimate[support], kind="mergesort")  # stable: ties stay in node order
        keep = order.size if top_k < 0 else min(order.size, top_k)
        if filled + keep > nodes.size:
            size = max(2 * nodes.size, filled + keep)
            nodes, scores = _grown(nodes, filled, size), _grown(scores, filled, size)
        for i in range(keep):
            nodes[filled + i] = support[order[i]]
            scores[filled + i] = estimate[support[order[i]]]
        filled += keep
        starts[t + 1] = filled
        _clear(touched, count, estimate, residual, state)
    return starts, nodes[:filled], scores[:filled]


@numba.njit(nogil=True, cache=True)
def _best(touched, estimate, top_k):
    """The touched nodes with a positive estimate, in node order; when ``top_k`` is not negative, only those scoring
    at least the ``top_k``-th best (ties included), so that only they need sorting."""
    support = touched[estimate[touched] > 0.0]
    if 0 <= top_k < support.size:
        scores = estimate[support]
        cut = -np.partition(-scores, top_k - 1)[top_k - 1] if top_k > 0 else np.inf
        support = support[scores >= cut]
    return np.sort(support)


@numba.njit(nogil=True, cache=True)
def _grown(array, filled, size):
    grown = np.empty(size, array.dtype)
    grown[:filled] = array[:filled]
    return grown


@numba.njit(nogil=True, cache=True)
def _pair_block(indptr, indices, spread, threshold, alpha, sources, bounds, nodes, out, estimate, residual, state,
                current, following, touched, work):
    """``out[bounds[i]:bounds[i + 1]]`` = the estimates of ``sources[i]`` at ``nodes[bounds[i]:bounds[i + 1]]``."""
    for i in range(sources.size):
        count = _push_target(indptr, indices, spread, threshold, alpha, sources[i], estimate, residual, state,
                             current, following, touched, work)
        for j in range(bounds[i], bounds[i + 1]):
            out[j] = estimate[nodes[j]]
        _clear(touched, count, estimate, residual, state)


class _Push:
    """The push of one graph at one damping and tolerance: the compiled kernels' graph arguments, and per thread its
    all-zero buffers (kept from block to block) and its work counters (pushes, visited neighbours)."""

    def __init__(self, adj: sp.csr_matrix, damping: float, epsilon: float) -> None:
        degree = np.diff(adj.indptr).astype(np.float64)
        self.num_nodes = adj.shape[0]
        self.graph = (adj.indptr.astype(np.int64), adj.indices.astype(np.int32),
                      damping / np.maximum(degree, 1.0),  # what a push sends each neighbour, per unit of residual
                      epsilon * degree, 1.0 - damping)
        self._local = threading.local()
        self._work, self._lock = np.zeros(2, np.int64), threading.Lock()

    def buffers(self) -> tuple[np.ndarray, ...]:
        """This thread's estimate, residual, state, two frontier and touched buffers (all zero between targets)."""
        buffers = getattr(self._local, "buffers", None)
        if buffers is None:
            n = self.num_nodes
            buffers = self._local.buffers = (np.zeros(n), np.zeros(n), np.zeros(n, np.uint8),
                                             np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int32))
        return buffers

    def counted(self, kernel: Callable, *arguments):
        """``kernel`` on the graph, ``arguments``, this thread's buffers and a work counter added to :meth:`work`."""
        work = np.zeros(2, np.int64)
        result = kernel(*self.graph, *arguments, *self.buffers(), work)
        with self._lock:
            self._work += work
        return result

    def work(self) -> tuple[int, int]:
        """Pushes and visited neighbours so far, over every thread."""
        return int(self._work[0]), int(self._work[1])


def forward_push(
    adj: sp.csr_matrix,
    targets: Tensor | np.ndarray,
    damping: float = DAMPING,
    epsilon: float = 1e-5,
    top_k: int | None = 200,
    block_size: int = 256,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
    work: list[int] | None = None,
) -> TopKPPR:
    """Approximate PPR of every target by non-lazy forward push, keeping the ``top_k`` nodes of each.

    Every returned score ``p(v)`` satisfies ``π(v) − ε·d(v) < p(v) ≤ π(v)`` for the exact PPR ``π`` of
    :func:`power_iteration`. The result is deterministic: each target is pushed on its own in a fixed order, whatever
    the blocks and threads.

    Args:
        adj: ``(N, N)`` symmetric binary CSR adjacency (:func:`models.graph.sparse.binary_adjacency`).
        targets: ``(T,)`` node ids.
        damping: ``c``, the continuation probability (default: :data:`DAMPING`, 0.85).
        epsilon: residual tolerance per unit of degree (default: ``1e-5``).
        top_k: nodes kept per target, best first; ``None`` keeps every node with a positive score.
        block_size: targets per task of a thread (and per ``progress`` call); memory is 29 bytes × N per thread.
        workers: threads, each pushing its own blocks (the compiled push releases the GIL); 0 means
            ``torch.get_num_threads()``.
        progress: called as ``progress(done, total)`` after each block, in order.
        work: when given, the pushes and the neighbours they visited are added to ``work[0]`` and ``work[1]``.
    """
    targets = np.asarray(targets.cpu() if isinstance(targets, Tensor) else targets, dtype=np.int64)
    _check(adj, targets, damping, epsilon)
    push = _Push(adj, damping, epsilon)
    blocks = _blocks(targets, block_size)
    keep = -1 if top_k is None else top_k
    indptr, nodes, scores, offset, done = [np.zeros(1, dtype=np.int64)], [], [], 0, 0
    with ThreadPoolExecutor(max_workers=max(1, workers or torch.get_num_threads())) as pool:
        for chunk, (starts, cols, values) in zip(blocks, pool.map(
                lambda block: push.counted(_top_k_block, block, keep), blocks)):
            indptr.append(starts[1:] + offset)
            nodes.append(cols)
            scores.append(values)
            offset += cols.size
            done += chunk.size
            if progress is not None:
                progress(done, targets.size)
    if work is not None:
        pushes, visits = push.work()
        work[0] += pushes
        work[1] += visits
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

    Unlike :func:`forward_push` it keeps no top-k: each source's estimates are read at its pairs and dropped, so
    memory stays at one set of buffers per thread whatever the number of pairs.

    Shapes:
        sources, nodes: ``(P,)`` node ids; output: ``(P,)`` float32.
    """
    sources = np.asarray(sources.cpu() if isinstance(sources, Tensor) else sources, dtype=np.int64)
    nodes = np.asarray(nodes.cpu() if isinstance(nodes, Tensor) else nodes, dtype=np.int64)
    _check(adj, np.concatenate([sources, nodes]), damping, epsilon)
    push = _Push(adj, damping, epsilon)
    order = np.argsort(sources, kind="stable")  # pairs grouped by source: each source reads one slice
    distinct, first = np.unique(sources[order], return_index=True)
    bounds = np.append(first, sources.size).astype(np.int64)
    grouped_nodes, grouped = nodes[order], np.zeros(sources.size, dtype=np.float64)

    def read(start: int) -> None:
        stop = min(start + block_size, distinct.size)
        push.counted(_pair_block, distinct[start:stop], bounds[start:stop + 1], grouped_nodes, grouped)

    with ThreadPoolExecutor(max_workers=max(1, workers or torch.get_num_threads())) as pool:
        list(pool.map(read, range(0, distinct.size, block_size)))
    out = np.empty(sources.size, dtype=np.float32)
    out[order] = grouped
    return out


def _blocks(targets: np.ndarray, block_size: int) -> list[np.ndarray]:
    """``targets`` in blocks of at most ``block_size``."""
    return [targets[i:i + max(1, block_size)] for i in range(0, targets.size, max(1, block_size))]


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

