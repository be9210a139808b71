"""Lorentz (hyperboloid) model maths for the hyperbolic compatibility loss: exp/log maps at the origin, geodesic
distances, and MERU-style entailment cones (half-aperture, exterior angle), numerically clamped.

Points are stored by their space components ``x`` (shape ``(..., d)``); the time component is implied by the
hyperboloid constraint ``⟨x, x⟩_L = −1/c`` as ``x_time = sqrt(1/c + ‖x‖²)`` (the convention of MERU, Desai et al.,
ICML 2023). Points lifted from the origin, ``x = exp_0(v)``, also have a *polar form*: the scaled radius
``ρ = √c‖v‖`` (√c times the distance to the origin) and the direction of ``v``. Cones and distances between two
lifted points depend only on ``(ρ_x, ρ_y, cos θ)``, so the loss computes them from norms and inner products of
the tangent vectors, a few passes over the data instead of one per operation on the explicit points. Scalar
polar quantities are computed in float64 (a few numbers per row; it keeps arccosh accurate near 1), everything
else in at least float32, since arccosh and arcsin lose all accuracy near their branch points in half precision.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-7  # keeps sqrt, division and the arc functions away from their singular points
# sinh(ρ) overflows float32 near ρ = 89; radii are clipped at asinh(2^15) as in MERU's exp map, which bounds
# ‖x_space‖ by 2^15 / √c: far beyond any radius a trained model reaches.
MAX_RADIUS = math.asinh(2.0 ** 15)


def _at_least_fp32(x: Tensor) -> Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def time_component(x: Tensor, c: float) -> Tensor:
    r"""Time coordinate :math:`x_{time} = \sqrt{1/c + \|x\|^2}` of points given by their space components.

    Shapes:
        x: ``(..., d)`` → ``(...)``.
    """
    x = _at_least_fp32(x)
    return torch.sqrt(1.0 / c + x.pow(2).sum(-1))


def expmap0(v: Tensor, c: float) -> Tensor:
    r"""Exponential map at the hyperboloid's origin, lifting a tangent (Euclidean) vector onto the manifold:
    :math:`x = \sinh(\sqrt{c}\|v\|)\, v / (\sqrt{c}\|v\|)` (space components).

    Shapes:
        v: ``(..., d)`` → ``(..., d)``.
    """
    v = _at_least_fp32(v)
    rc_norm = (math.sqrt(c) * v.norm(dim=-1, keepdim=True)).clamp(min=EPS)
    return torch.sinh(rc_norm.clamp(max=MAX_RADIUS)) * v / rc_norm


def logmap0(x: Tensor, c: float) -> Tensor:
    r"""Logarithmic map at the origin, the inverse of :func:`expmap0`:
    :math:`v = \operatorname{arcsinh}(\sqrt{c}\|x\|)\, x / (\sqrt{c}\|x\|)`.

    Shapes:
        x: ``(..., d)`` → ``(..., d)``.
    """
    x = _at_least_fp32(x)
    rc_norm = (math.sqrt(c) * x.norm(dim=-1, keepdim=True)).clamp(min=EPS)
    return torch.asinh(rc_norm) * x / rc_norm


def lorentz_inner(x: Tensor, y: Tensor, c: float, pairwise: bool = False) -> Tensor:
    r"""Lorentzian inner product :math:`\langle x, y\rangle_L = x_{space}^\top y_{space} - x_{time} y_{time}`.

    Args:
        pairwise: ``False`` pairs row ``i`` of ``x`` with row ``i`` of ``y``; ``True`` gives every row of ``x``
            against every row of ``y`` through one matrix product (no ``(N, M, d)`` intermediate).

    Shapes:
        x: ``(N, d)``, y: ``(N, d)`` → ``(N,)``; pairwise: x ``(N, d)``, y ``(M, d)`` → ``(N, M)``.
    """
    x, y = _at_least_fp32(x), _at_least_fp32(y)
    x_time, y_time = time_component(x, c), time_component(y, c)
    if pairwise:
        return x @ y.T - x_time[:, None] * y_time[None, :]
    return (x * y).sum(-1) - x_time * y_time


def distance(x: Tensor, y: Tensor, c: float, pairwise: bool = False) -> Tensor:
    r"""Geodesic distance :math:`d(x, y) = \operatorname{arccosh}(-c\langle x, y\rangle_L) / \sqrt{c}`, with the
    arccosh argument clamped to ``≥ 1 + eps`` (rounding puts it below 1 for nearly equal points).

    Shapes: as :func:`lorentz_inner`.
    """
    return torch.acosh((-c * lorentz_inner(x, y, c, pairwise)).clamp(min=1.0 + EPS)) / math.sqrt(c)


def distance_to_origin(x: Tensor, c: float) -> Tensor:
    r"""Geodesic distance from the origin, :math:`\operatorname{arcsinh}(\sqrt{c}\|x\|)/\sqrt{c}`; for
    ``x = expmap0(v)`` it equals ``‖v‖``.

    Shapes:
        x: ``(..., d)`` → ``(...)``.
    """
    x = _at_least_fp32(x)
    return torch.asinh(math.sqrt(c) * x.norm(dim=-1)) / math.sqrt(c)


def polar(v: Tensor, w: Tensor, c: float, pairwise: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    r"""Polar form of the lifted points ``exp_0(v)`` and ``exp_0(w)``: radii :math:`\rho = \sqrt{c}\|v\|` (clipped
    at :data:`MAX_RADIUS`, like :func:`expmap0`) and :math:`\cos\theta = v^\top w / (\|v\|\|w\|)`, in float64.

    Shapes:
        v: ``(N, d)``, w: ``(N, d)`` → ``(N,)``, ``(N,)``, ``(N,)``; pairwise: v ``(N, d)``, w ``(M, d)`` →
        ``(N,)``, ``(M,)``, ``(N, M)``.
    """
    v, w = _at_least_fp32(v), _at_least_fp32(w)
    v_norm, w_norm = v.norm(dim=-1), w.norm(dim=-1)
    if pairwise:
        cos = F.normalize(v, dim=-1, eps=EPS) @ F.normalize(w, dim=-1, eps=EPS).T
    else:
        cos = (v * w).sum(-1) / (v_norm * w_norm).clamp(min=EPS)
    radius = (lambda norm: (math.sqrt(c) * norm).clamp(max=MAX_RADIUS).double())
    return radius(v_norm), radius(w_norm), cos.double().clamp(min=-1.0, max=1.0)


def scaled_lorentz_inner(rho_x: Tensor, rho_y: Tensor, cos: Tensor) -> Tensor:
    r""":math:`c\langle x, y\rangle_L = \sinh\rho_x \sinh\rho_y \cos\theta - \cosh\rho_x \cosh\rho_y` of two
    lifted points in polar form (≤ −1; broadcasts)."""
    return torch.sinh(rho_x) * torch.sinh(rho_y) * cos - torch.cosh(rho_x) * torch.cosh(rho_y)


def polar_distance(rho_x: Tensor, rho_y: Tensor, cos: Tensor, c: float) -> Tensor:
    r"""Geodesic distance :math:`\operatorname{arccosh}(-c\langle x, y\rangle_L)/\sqrt{c}` in polar form (the
    arccosh argument clamped to ``≥ 1 + eps``; broadcasts)."""
    return torch.acosh((-scaled_lorentz_inner(rho_x, rho_y, cos)).clamp(min=1.0 + EPS)) / math.sqrt(c)


def half_aperture(rho_x: Tensor, min_radius: float = 0.1) -> Tensor:
    r"""Half-aperture of the entailment cone at ``x`` (MERU, Desai et al. 2023, `arXiv 2304.09172
    <https://arxiv.org/abs/2304.09172>`_): :math:`\operatorname{aper}(x) = \arcsin(2K / (\sqrt{c}\|x\|))` with
    :math:`\sqrt{c}\|x\| = \sinh\rho_x`.

    Inside ``√c‖x‖ < 2K`` the formula is undefined; the arcsin argument is clamped to ``1 − eps``, so those points
    get the widest cone (π/2).

    Args:
        rho_x: the scaled radius of :func:`polar`.
        min_radius: ``K`` of the formula (default: 0.1).
    """
    return torch.asin((2.0 * min_radius / (torch.sinh(rho_x) + EPS)).clamp(max=1.0 - EPS))


def exterior_angle(rho_x: Tensor, rho_y: Tensor, cos: Tensor) -> Tensor:
    r"""Exterior angle at ``x`` of the geodesic triangle ``O, x, y``, i.e. the angle between the geodesic
    ``x → y`` and the continuation of ``O → x`` (MERU's ``oxy_angle``), in polar form:

    .. math::
        \operatorname{ext}(x, y) = \arccos\left(\frac{y_{time} + c\langle x, y\rangle_L\, x_{time}}
        {\|x\|\,\sqrt{(c\langle x, y\rangle_L)^2 - 1}}\right)
        = \arccos\left(\frac{\cosh\rho_y + c\langle x, y\rangle_L \cosh\rho_x}
        {\sinh\rho_x \sqrt{(c\langle x, y\rangle_L)^2 - 1}}\right)

    The square root and the arccos argument are clamped, so equal points and points on the ray ``O → x``
    stay finite.
    """
    c_inner = scaled_lorentz_inner(rho_x, rho_y, cos)
    numerator = torch.cosh(rho_y) + c_inner * torch.cosh(rho_x)
    denominator = torch.sinh(rho_x) * torch.sqrt((c_inner.pow(2) - 1.0).clamp(min=EPS)) + EPS
    return torch.acos((numerator / denominator).clamp(min=-1.0 + EPS, max=1.0 - EPS))


def entailment_loss(rho_x: Tensor, rho_y: Tensor, cos: Tensor, min_radius: float = 0.1) -> Tensor:
    r"""Per-pair entailment-cone violation :math:`\max(0, \operatorname{ext}(x, y) - \operatorname{aper}(x))`
    with ``x`` the parent and ``y`` the child, in polar form: zero when the child lies inside the parent's cone
    (Ganea et al. 2018, `arXiv 1804.01882 <https://arxiv.org/abs/1804.01882>`_; Lorentz form from MERU).
    """
    return torch.relu(exterior_angle(rho_x, rho_y, cos) - half_aperture(rho_x, min_radius))
