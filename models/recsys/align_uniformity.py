"""Alignment and uniformity (DirectAU: Wang, Yu, Ma, Wang, Zhang, Liu, Ma, "Towards Representation Alignment and
Uniformity in Collaborative Filtering", KDD 2022), the loss PRISM's authors train with by default.

On L2-normalised vectors, alignment pulls every observed (user, item) pair of a batch together and uniformity
spreads users, and items, over the sphere:

    loss = mean_b ‖ũ_b − ĩ_b‖² + γ · (U(users) + U(items)) / 2,   U(X) = log mean_{x ≠ y ∈ X} exp(−t ‖x̃ − ỹ‖²), t = 2,

with U over the distinct users and the distinct items of the batch (PRISM's code averages it "over the user and item
sets"). No negatives are sampled. The loss does not see the norms of the vectors it is given, so dot-product scores
keep the magnitudes that the initial table (PRISM's popularity) gives them, as far as the optimiser's steps leave it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

TEMPERATURE = 2.0  # t of both papers


def alignment(user_vectors: Tensor, item_vectors: Tensor) -> Tensor:
    """Mean squared distance ``‖ũ − ĩ‖²`` between the normalised rows of ``(B, d)`` user and item vectors."""
    return (F.normalize(user_vectors, dim=-1) - F.normalize(item_vectors, dim=-1)).pow(2).sum(-1).mean()


def uniformity(vectors: Tensor, temperature: float = TEMPERATURE) -> Tensor:
    """``log`` of the mean of ``exp(−t‖x̃ − ỹ‖²)`` over the distinct pairs of the normalised rows of ``(n, d)``
    ``vectors`` (n ≥ 2); 0 would mean every row in one point, lower is more uniform."""
    if vectors.size(0) < 2:
        raise ValueError(f"uniformity needs at least two vectors, got {vectors.size(0)}")
    return torch.pdist(F.normalize(vectors, dim=-1), p=2).pow(2).mul(-temperature).exp().mean().log()


def align_uniformity_loss(user_vectors: Tensor, item_vectors: Tensor, distinct_users: Tensor, distinct_items: Tensor,
                          uniformity_weight: float) -> Tensor:
    """Alignment of the batch's ``(B, d)`` pairs plus ``uniformity_weight`` (γ) times the mean uniformity of the
    vectors of its distinct users ``(n_u, d)`` and distinct items ``(n_i, d)``; a side with a single row (a batch of
    one pair, or of one user's pairs) has no pair to spread and adds 0."""
    loss = alignment(user_vectors, item_vectors)
    if uniformity_weight == 0:
        return loss
    spread = [uniformity(rows) if rows.size(0) > 1 else rows.new_zeros(()) for rows in (distinct_users, distinct_items)]
    return loss + uniformity_weight * (spread[0] + spread[1]) / 2
