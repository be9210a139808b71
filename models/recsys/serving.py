"""Serving paths, each scoring every item and keeping the top K for a batch of users: LightGCN as served (vectors
precomputed for known users, fold-in for new users), LightGCN re-propagating the whole graph per request, and a
student that embeds users from their own interactions.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

from models.graph.bipartite import BipartiteGraph, normalized_adjacency
from models.recsys.foldin import fold_in_users
from models.recsys.lightgcn import build_lightgcn
from models.recsys.student import FeatureStudent, bags_of

# Scores a batch of user indices against every item and returns their top-K item indices.
BatchScorer = Callable[[Tensor], Tensor]


def propagation_scorer(graph: BipartiteGraph, embedding_dim: int = 64, num_layers: int = 3, k: int = 20,
                       device: str | torch.device = "cpu") -> BatchScorer:
    """LightGCN's inference path: full ``num_layers``-layer propagation over ``graph``, then user × item scores.

    The embedding values do not change the cost, so a freshly initialized model of the teacher's shape is timed.
    """
    adj = normalized_adjacency(graph).to(device)
    model = build_lightgcn(graph.num_users, graph.num_items, embedding_dim, num_layers, 0.1).to(device).eval()

    @torch.inference_mode()
    def score(users: Tensor) -> Tensor:
        node_emb = model.get_embedding(adj)
        return (node_emb[users] @ node_emb[graph.num_users:].T).topk(k).indices

    return score


def precomputed_scorer(user_emb: Tensor, item_emb: Tensor, k: int = 20) -> BatchScorer:
    """LightGCN's serving path for known users: their stored final vectors against every stored item vector."""

    @torch.inference_mode()
    def score(users: Tensor) -> Tensor:
        return (user_emb[users] @ item_emb.T).topk(k).indices

    return score


def fold_in_scorer(layer0: Tensor, graph: BipartiteGraph, indptr: Tensor, bag_items: Tensor, item_emb: Tensor,
                   num_layers: int, k: int = 20, init: str = "mean") -> BatchScorer:
    """LightGCN's serving path for new users: the request's users folded in jointly from their known interactions
    (``indptr``/``bag_items``, a user→items CSR) on the training ``graph``, scored against the stored item vectors.

    Every request rebuilds the augmented adjacency and propagates it, as exact fold-in must
    (:func:`models.recsys.foldin.fold_in_users`).
    """

    @torch.inference_mode()
    def score(users: Tensor) -> Tensor:
        sub_indptr, items = bags_of(indptr, bag_items, users)
        edges = torch.stack([torch.repeat_interleave(users, sub_indptr.diff()), items])
        user_emb = fold_in_users(layer0, graph, edges, users, num_layers, init)
        return (user_emb @ item_emb.T).topk(k).indices

    return score


def student_scorer(model: FeatureStudent, indptr: Tensor, bag_items: Tensor, user_features: Tensor,
                   item_vectors: Tensor, k: int = 20) -> BatchScorer:
    """The student's inference path: the user tower on each user's interactions, then scores against item vectors
    computed offline."""

    model.eval()

    @torch.inference_mode()
    def score(users: Tensor) -> Tensor:
        sub_indptr, sub_items = bags_of(indptr, bag_items, users)
        return (model.users(sub_indptr, sub_items, user_features[users]) @ item_vectors.T).topk(k).indices

    return score


def users_per_second(score_batch: BatchScorer, users: Tensor, request_size: int | None = None,
                     min_seconds: float = 0.5) -> float:
    """Users scored per second when ``users`` arrive in requests of ``request_size`` (all in one by default).

    Each request holds distinct users, as live traffic would; the requests are cycled, after one warm-up request,
    until ``min_seconds`` have passed, so that a one-user request of a fraction of a millisecond is timed over
    many calls rather than a handful.
    """
    requests = list(users.split(request_size or users.numel()))
    if len(requests) > 1 and requests[-1].numel() < requests[0].numel():
        requests.pop()  # a short last request would be cheaper than the size being measured
    score_batch(requests[0])
    scored, calls, started = 0, 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < min_seconds:
        request = requests[calls % len(requests)]
        score_batch(request)
        scored, calls = scored + request.numel(), calls + 1
    return scored / elapsed
