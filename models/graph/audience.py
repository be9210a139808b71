"""PPR audience matching: for each seed item (or creator), the users closest to it by personalized
PageRank ``r = (1 − c)·e_s + c·A·r``, plain and degree-normalized (``r(v)/d_v``, which does not favour heavy users).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from models.graph.ppr import DAMPING, forward_push

VARIANTS = ("ppr", "ppr_per_degree")


@dataclass(frozen=True)
class Audience:
    """Ranked audiences as aligned columns: one row per (seed, variant, rank).

    Shapes: every field ``(R,)``; ``variant`` indexes :data:`VARIANTS`; ``rank`` starts at 1.
    """

    seed: Tensor
    variant: Tensor
    rank: Tensor
    user: Tensor
    score: Tensor


def match_audience(adj: sp.csr_matrix, num_users: int, seeds: Tensor, top_n: int = 100, damping: float = DAMPING,
                   epsilon: float = 1e-6) -> Audience:
    """The ``top_n`` users of each seed node's PPR vector, by score and by score per unit of degree.

    Nodes ``[0, num_users)`` are users. Forward push keeps every node with a positive score; its error per node is
    below ``ε·d(v)``, so the degree-normalized score is off by less than ``ε`` whatever the user's degree.
    """
    seeds = torch.as_tensor(seeds, dtype=torch.long)
    ppr = forward_push(adj, seeds, damping, epsilon, top_k=None)
    degree = torch.from_numpy(np.diff(adj.indptr)).double()
    row = torch.repeat_interleave(torch.arange(len(ppr)), ppr.indptr.diff())
    is_user = ppr.nodes < num_users
    row, user, score = row[is_user], ppr.nodes[is_user], ppr.scores[is_user].double()
    columns = []
    for variant, value in enumerate((score, score / degree[user])):
        # Rank within each seed: sort by (seed, value descending, user id) and number the runs.
        order = np.lexsort((user.numpy(), -value.numpy(), row.numpy()))
        r, u, v = row[order], user[order], value[order]
        rank = torch.arange(r.numel()) - torch.searchsorted(r, r) + 1
        keep = rank <= top_n
        columns.append((seeds[r[keep]], torch.full((int(keep.sum()),), variant), rank[keep], u[keep], v[keep]))
    return Audience(*(torch.cat(parts) for parts in zip(*columns)))
