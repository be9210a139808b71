"""A learned linear map from a new embedding version's space into the promoted (old) version's space, for versions
that cannot be trained with a compatibility loss (training-free families, or a switch between families).

The map is fitted on the users and items both versions hold (the first rows of the append-only id maps) and
published vectors are ``new @ W``, users and items through the same ``W``:

- **Procrustes** (``scipy.linalg.orthogonal_procrustes``) when the dimensions match. An orthogonal ``W`` keeps every
  dot product, so the new model ranks exactly as it did before the map; it only turns its space onto the old one.
  Retrains of one family differ mostly by such a rotation (dot-product models are rotation invariant, and an SVD's
  singular vectors come with arbitrary signs), and a rotation has too few degrees of freedom to overfit.
- **Least squares** (ridge, ``numpy.linalg.lstsq`` on the normal equations) when they differ: no rotation exists
  between spaces of different dimension. ``W`` is then a general ``(d_new, d_old)`` matrix, and the new model's own
  scores become ``u W Wᵀ iᵀ``: the published vectors keep what of the new model the old space can hold (compare the
  report's ``new_new`` with its ``independent_new``). The ridge keeps the fit determined when the known rows are few
  next to ``d_new`` (a filter's vectors have hundreds of dimensions); an exact fit would copy the old vectors and
  could never beat them.

One ``W`` is fitted jointly on the users and items rather than one per side: separate maps ``W_u ≠ W_i`` would score
the new version through ``u W_u W_iᵀ iᵀ``, a bilinear form unrelated to the model. What may differ between the sides
is a positive factor each (a filter's user vectors are orders of magnitude longer than its item vectors, a trained
model's are not); such a factor changes no ranking, so it is fitted beside ``W``, and each side is divided by its norm
first so that users and items weigh the same in the fit whatever their counts and scales.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy.linalg import orthogonal_procrustes
from torch import Tensor

MapKind = Literal["auto", "procrustes", "least_squares"]
KINDS = ("auto", "procrustes", "least_squares")
DEFAULT_RIDGE = 1e-3  # λ over the mean eigenvalue of the balanced XᵀX: near plain least squares when determined


@dataclass(frozen=True)
class CompatibilityMap:
    """A fitted map: ``weight`` ``(d_new, d_old)``, the positive factor per side, and the fit.

    ``residual`` is the relative Frobenius residual ``‖t X W − Y‖ / ‖Y‖`` of the joint fit on the rows of each side
    divided by the side's norm (0: exact; 1: no better than ``W = 0``); ``user_residual`` and ``item_residual``
    split it by side.
    """

    kind: str
    weight: np.ndarray
    user_scale: float
    item_scale: float
    residual: float
    user_residual: float
    item_residual: float
    known_users: int
    known_items: int
    ridge: float

    def apply(self, user_emb: Tensor, item_emb: Tensor) -> tuple[Tensor, Tensor]:
        """The new version's ``(user_emb (U, d_new), item_emb (I, d_new))`` in the old space, ``(U, d_old)`` and
        ``(I, d_old)``; every row is mapped, including entities the old version never saw."""
        weight = torch.from_numpy(self.weight).to(user_emb.device, user_emb.dtype)
        return user_emb @ weight * self.user_scale, item_emb @ weight * self.item_scale

    def summary(self, fitted_to: str | None = None) -> dict[str, Any]:
        """The map's record for version metadata (JSON): kind, dimensions, fit residuals and what it was fitted on."""
        return {"kind": self.kind, "fitted_to": fitted_to, "dims": list(self.weight.shape),
                "residual": self.residual, "user_residual": self.user_residual, "item_residual": self.item_residual,
                "known_users": self.known_users, "known_items": self.known_items, "ridge": self.ridge,
                "user_scale": self.user_scale, "item_scale": self.item_scale}

    def tensors(self) -> dict[str, Tensor]:
        """The map as named tensors, to keep beside the version (for vectors added later, e.g. by fold-in)."""
        return {"weight": torch.from_numpy(self.weight),
                "scales": torch.tensor([self.user_scale, self.item_scale], dtype=torch.float64)}


def choose_kind(new_dim: int, old_dim: int, kind: MapKind = "auto") -> str:
    """``procrustes`` when the dimensions match, else ``least_squares`` (``auto``); an explicit kind is checked."""
    if kind not in KINDS:
        raise ValueError(f"unknown map kind {kind!r}; expected one of {KINDS}")
    if kind == "auto":
        return "procrustes" if new_dim == old_dim else "least_squares"
    if kind == "procrustes" and new_dim != old_dim:
        raise ValueError(f"an orthogonal map needs equal dimensions, got new {new_dim} and old {old_dim}: "
                         "use least_squares (or auto)")
    return kind


def _solve(kind: str, x: list[np.ndarray], y: list[np.ndarray], scales: list[float], ridge: float) -> np.ndarray:
    """``W`` minimising ``Σ_side ‖t_side x_side W − y_side‖²`` (orthogonal for Procrustes; for least squares plus
    ``λ‖W‖²`` with ``λ = ridge · tr(Σ t² xᵀx) / d``, scale free, solved by ``lstsq`` on the normal equations, which
    also copes with a singular Gram matrix when ``ridge`` is 0)."""
    if kind == "procrustes":
        return orthogonal_procrustes(np.vstack([t * a for t, a in zip(scales, x)]), np.vstack(y))[0]
    gram = sum(t * t * (a.T @ a) for t, a in zip(scales, x))
    cross = sum(t * (a.T @ b) for t, a, b in zip(scales, x, y))
    dim = gram.shape[0]
    lam = ridge * float(np.trace(gram)) / dim
    return np.linalg.lstsq(gram + lam * np.eye(dim), cross, rcond=None)[0]


def _side_scale(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> float:
    """The positive factor ``t`` that best fits ``t x W`` to ``y`` (a non-positive fit is floored: it would flip the
    side's rankings)."""
    mapped = x @ weight
    return max(float(np.sum(mapped * y)) / max(float(np.sum(mapped * mapped)), 1e-30), 1e-12)


def _norm(block: np.ndarray, side: str) -> float:
    norm = float(np.linalg.norm(block))
    if norm == 0:
        raise ValueError(f"the {side} vectors the two versions share are all zero: nothing to fit a map on")
    return norm


def fit_compatibility_map(new_users: Tensor, new_items: Tensor, old_users: Tensor, old_items: Tensor,
                          kind: MapKind = "auto", ridge: float = DEFAULT_RIDGE, iterations: int = 50,
                          tol: float = 1e-9) -> CompatibilityMap:
    """Fit ``W`` with ``users_new W ≈ a · users_old`` and ``items_new W ≈ b · items_old`` on the entities both
    versions hold, ``a, b > 0``.

    Rows are dense ids of the append-only id maps, so the first ``min(U_new, U_old)`` users (and items) are the same
    entities in both. Each side of each version is divided by its norm; ``W`` and a positive factor per side are
    then fitted in turn (each step solves its part exactly, so the residual never grows) for at most ``iterations``
    rounds, until the factors change by less than ``tol``. An exact linear map or rotation between the versions is
    recovered exactly. ``kind`` ``auto`` picks Procrustes for equal dimensions and ridge least squares otherwise
    (see the module's docstring); ``ridge`` applies to least squares only (0: plain least squares).

    Shapes:
        new_users ``(U_new, d_new)``, new_items ``(I_new, d_new)``, old_users ``(U_old, d_old)``,
        old_items ``(I_old, d_old)`` → a map with ``weight`` ``(d_new, d_old)``.
    """
    if new_users.size(1) != new_items.size(1) or old_users.size(1) != old_items.size(1):
        raise ValueError("users and items of one version must share a dimension, got "
                         f"new {new_users.size(1)}/{new_items.size(1)}, old {old_users.size(1)}/{old_items.size(1)}")
    kind = choose_kind(new_users.size(1), old_users.size(1), kind)
    n_users, n_items = min(new_users.size(0), old_users.size(0)), min(new_items.size(0), old_items.size(0))
    x, y, norm_ratio = [], [], []
    for new, old, side in ((new_users[:n_users], old_users[:n_users], "user"),
                           (new_items[:n_items], old_items[:n_items], "item")):
        new, old = new.double().cpu().numpy(), old.double().cpu().numpy()
        new_norm, old_norm = _norm(new, f"new {side}"), _norm(old, f"old {side}")
        x.append(new / new_norm)
        y.append(old / old_norm)
        norm_ratio.append(old_norm / new_norm)
    scales = [1.0, 1.0]
    weight = _solve(kind, x, y, scales, ridge)
    for _ in range(iterations):
        fitted = [_side_scale(a, b, weight) for a, b in zip(x, y)]
        # Least squares can take a common factor into W: keep the product of the side factors at 1.
        common = 1.0 if kind == "procrustes" else float(np.sqrt(fitted[0] * fitted[1]))
        fitted = [t / common for t in fitted]
        converged = max(abs(t - u) for t, u in zip(fitted, scales)) < tol
        scales = fitted
        weight = _solve(kind, x, y, scales, ridge)
        if converged:
            break

    def residual(sides: list[int]) -> float:
        errors = sum(float(np.sum((scales[s] * x[s] @ weight - y[s]) ** 2)) for s in sides)
        return float(np.sqrt(errors / sum(float(np.sum(y[s] ** 2)) for s in sides)))

    return CompatibilityMap(
        kind=kind, weight=weight.astype(np.float32), user_scale=scales[0] * norm_ratio[0],
        item_scale=scales[1] * norm_ratio[1], residual=residual([0, 1]), user_residual=residual([0]),
        item_residual=residual([1]), known_users=n_users, known_items=n_items,
        ridge=ridge if kind == "least_squares" else 0.0)
