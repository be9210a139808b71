"""PRISM: popularity-aware initial magnitudes of an embedding table (Loveland, Ju, Zhao, Shah, Koutra, "On the Role
of Weight Decay in Collaborative Filtering: A Popularity Perspective", KDD 2025, arXiv 2505.11318).

Weight decay in dot-product CF mostly writes popularity into the embedding norms. PRISM writes it there at
initialisation instead — the norm grows with the log of the training degree — and then trains without weight
decay. As the authors' code does it: the magnitude of node ``v`` is ``m_v = s·ln(d_v + 2) + (1 − s)``, the direction
is a row of a Xavier-uniform draw over the whole ``(N, d)`` table, L2-normalised, and ``e_v⁽⁰⁾ = m_v · w_v/‖w_v‖``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# s = 1/(1 − ln 2) ≈ 3.26 gives a node without training edges the magnitude s·ln 2 + 1 − s = 0; above it the
# magnitude turns negative and flips the direction (the authors' code does not guard against it).
MAX_STRENGTH = 1.0 / (1.0 - math.log(2.0))


def check_strength(strength: float) -> None:
    """Raise ValueError unless ``0 ≤ strength < MAX_STRENGTH``: every magnitude is then positive and grows with
    the degree (0 gives all nodes the norm 1, 1 the authors' default ``ln(d + 2)``)."""
    if not 0.0 <= strength < MAX_STRENGTH:
        raise ValueError(f"prism_strength must lie in [0, {MAX_STRENGTH:.4f}) so that every initial norm is positive "
                         f"and grows with popularity, got {strength}.")


def prism_magnitudes(degree: Tensor, strength: float) -> Tensor:
    """Initial norms ``s·ln(d + 2) + (1 − s)`` of nodes with training degrees ``degree`` (float32, same shape)."""
    check_strength(strength)
    return strength * torch.log(degree.to(torch.float32) + 2.0) + (1.0 - strength)


@torch.no_grad()
def prism_init_(weight: Tensor, magnitudes: Tensor) -> Tensor:
    """Fill the ``(N, d)`` table ``weight`` in place with Xavier-uniform directions rescaled to the row norms
    ``magnitudes`` ``(N,)``; returns ``weight``."""
    if magnitudes.shape != weight.shape[:1]:
        raise ValueError(f"need one magnitude per row ({weight.size(0)}), got shape {tuple(magnitudes.shape)}")
    torch.nn.init.xavier_uniform_(weight)
    weight.copy_(F.normalize(weight, dim=-1) * magnitudes.to(weight).unsqueeze(-1))
    return weight
