"""Vectorized BPR triple sampling: (user, positive item, negative item) for a whole epoch at once.

Follows the LightGCN reference code (He et al., SIGIR 2020; gusye1234/LightGCN-PyTorch): as many triples as
training interactions, the user uniform over users with training items, the positive uniform among the user's
items, the negative uniform among items the user has not interacted with. Collisions are redrawn in vectorized
rounds instead of a per-triple Python loop (the reference's sampler is a C++ loop for the same reason).
"""
from __future__ import annotations

import torch
from torch import Tensor

from models.eval.ranking import user_csr
from models.graph.bipartite import BipartiteGraph


class BPRSampler:
    """Draws BPR triples from the training graph with an explicit ``torch.Generator``."""

    def __init__(self, graph: BipartiteGraph, seed: int) -> None:
        self.num_items = graph.num_items
        self.indptr, self.items = user_csr(graph.edge_index, graph.num_users)
        self.degree = self.indptr[1:] - self.indptr[:-1]
        self.active_users = torch.nonzero(self.degree > 0).flatten()
        # Sorted (user * num_items + item) keys make "has u seen j?" a binary search.
        self.seen_keys = torch.sort(graph.edge_index[0] * self.num_items + graph.edge_index[1]).values
        self.generator = torch.Generator().manual_seed(seed)
        if self.active_users.numel() == 0:
            raise ValueError("the training graph has no edges: nothing to sample BPR triples from")
        if int(self.degree.max()) >= self.num_items:
            raise ValueError("a user has interacted with every item: no negative exists for that user")

    def _seen(self, users: Tensor, items: Tensor) -> Tensor:
        keys = users * self.num_items + items
        pos = torch.searchsorted(self.seen_keys, keys).clamp(max=self.seen_keys.numel() - 1)
        return self.seen_keys[pos] == keys

    def sample(self, num_samples: int) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``(users, positives, negatives)``, each ``(num_samples,)`` int64."""
        g = self.generator
        users = self.active_users[torch.randint(self.active_users.numel(), (num_samples,), generator=g)]
        offsets = (torch.rand(num_samples, generator=g) * self.degree[users]).long()
        positives = self.items[self.indptr[users] + offsets]
        negatives = torch.randint(self.num_items, (num_samples,), generator=g)
        clash = self._seen(users, negatives)
        while clash.any():
            redraw = torch.randint(self.num_items, (int(clash.sum()),), generator=g)
            negatives[clash] = redraw
            clash[clash.clone()] = self._seen(users[clash], redraw)
        return users, positives, negatives
