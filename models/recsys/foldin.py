"""LightGCN fold-in: embed users the model never trained on, from their known interactions, with no gradient step.

LightGCN's only parameters are its layer-0 vectors and propagation is a fixed linear operator, so a new user is
embedded exactly by adding its edges to the training graph and propagating the trained layer-0 table over it
(jointly for all new users, as INMO does: they reach one another through shared items from layer 2 on).
"""
from __future__ import annotations

import torch
from torch import Tensor

from models.graph.bipartite import BipartiteGraph, normalized_adjacency
from models.recsys.lightgcn import build_lightgcn, split_embeddings

# Layer-0 vector of a new user. "mean": the mean of every trained layer-0 vector (users and items), INMO's choice
# for LightGCN, so the new user's layer-0 term sits at the trained vectors' scale in the layer mean. "zero": the
# layer-0 term drops out and only propagated terms remain. Which is better is not established; mean is the default
# because it is the published recipe.
FOLD_IN_INITS = ("mean", "zero")


def fold_in_users(layer0: Tensor, graph: BipartiteGraph, new_edge_index: Tensor, new_users: Tensor,
                  num_layers: int, init: str = "mean") -> Tensor:
    """Final (layer-mean) LightGCN vectors of ``new_users``, folded in jointly on ``graph`` plus ``new_edge_index``.

    New users may be ids inside ``graph``'s ID map that have no training edge (their layer-0 rows were never
    trained and are ignored), or ids at or beyond ``graph.num_users``, which are appended. Every trained layer-0
    row is kept; the new users' rows are set by ``init`` (:data:`FOLD_IN_INITS`); the normalised adjacency is
    rebuilt on the augmented graph (new users' and their items' degrees included), as training built it.

    Args:
        layer0: the trained ``(graph.num_users + num_items, d)`` layer-0 table, users first (PyG ``LightGCN``'s
            ``embedding.weight``).
        graph: the training graph.
        new_edge_index: ``(2, E*)`` (user, item) known interactions of the new users, users among ``new_users``.
        new_users: ``(M,)`` distinct ids of the users to fold in.
        num_layers: the trained model's number of propagation layers ``K``.
        init: the new users' layer-0 vector, ``mean`` or ``zero``.

    Shapes:
        output: ``(M, d)``, row ``j`` for ``new_users[j]``.
    """
    if init not in FOLD_IN_INITS:
        raise ValueError(f"unknown fold-in init {init!r}; use one of {FOLD_IN_INITS}")
    if layer0.size(0) != graph.num_users + graph.num_items:
        raise ValueError(f"layer0 has {layer0.size(0)} rows; the graph has {graph.num_users} users + "
                         f"{graph.num_items} items")
    num_users = max(graph.num_users, int(new_users.max()) + 1 if new_users.numel() else 0)
    is_new = torch.zeros(num_users, dtype=torch.bool)
    is_new[new_users] = True
    if new_edge_index.numel() and not bool(is_new[new_edge_index[0]].all()):
        raise ValueError("new_edge_index has edges of users not listed in new_users")
    trained_degree = torch.bincount(graph.edge_index[0], minlength=num_users)
    if bool((trained_degree[new_users] > 0).any()):
        raise ValueError("some new_users have training edges: their trained vectors already hold them")

    user0, item0 = split_embeddings(layer0.detach(), graph.num_users)
    table = torch.cat([user0, user0.new_zeros(num_users - graph.num_users, user0.size(1)), item0])
    table[new_users] = 0.0
    if init == "mean":
        # Only rows with training edges were trained; the ID map's edgeless users kept their random initialisation.
        trained = torch.cat([trained_degree > 0, graph.item_degree() > 0])
        table[new_users] = table[trained].mean(0)
    augmented = BipartiteGraph(torch.cat([graph.edge_index, new_edge_index.to(graph.edge_index)], dim=1),
                               num_users, graph.num_items)
    model = build_lightgcn(num_users, graph.num_items, table.size(1), num_layers, init_std=0.0).to(table.device)
    with torch.no_grad():
        model.embedding.weight.copy_(table)
        return model.get_embedding(normalized_adjacency(augmented).to(table.device))[new_users]
