"""Lorentz-model maths: exp/log maps invert each other, points lie on the hyperboloid, the polar forms agree with
the explicit points (distances, MERU's exterior angle, the law of cosines), and the entailment cone's loss is zero
inside and positive outside."""
import math

import pytest
import torch

from models.recsys.hyperbolic import (
    distance,
    distance_to_origin,
    entailment_loss,
    expmap0,
    exterior_angle,
    half_aperture,
    logmap0,
    lorentz_inner,
    polar,
    polar_distance,
    time_component,
)


@pytest.mark.parametrize("c", [0.5, 1.0, 2.0])
def test_exp_and_log_maps_invert_each_other_in_float64(c):
    # radii up to about 6, inside the exp map's clip at √c‖v‖ = asinh(2^15) ≈ 11.1
    v = torch.randn(50, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = expmap0(v, c)
    assert x.dtype == torch.float64
    torch.testing.assert_close(logmap0(x, c), v, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(expmap0(logmap0(x, c), c), x, rtol=1e-10, atol=1e-10)
    # on the hyperboloid <x, x>_L = -1/c, and the distance to the origin is the tangent norm
    torch.testing.assert_close(lorentz_inner(x, x, c), torch.full((50,), -1 / c, dtype=torch.float64))
    torch.testing.assert_close(distance_to_origin(x, c), v.norm(dim=-1), rtol=1e-10, atol=1e-10)


def test_half_precision_inputs_are_computed_in_float32():
    assert expmap0(torch.ones(3, 4, dtype=torch.bfloat16), 1.0).dtype == torch.float32


def _tangent(seed: int, rows: int, dim: int = 3) -> torch.Tensor:
    return torch.randn(rows, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_distance_along_one_direction_is_the_difference_of_radii():
    direction = torch.tensor([[0.6, 0.8]], dtype=torch.float64)
    x, y = expmap0(0.5 * direction, 1.0), expmap0(2.0 * direction, 1.0)
    assert math.isclose(float(distance(x, y, 1.0)), 1.5, rel_tol=1e-9)
    assert float(distance(x, x, 1.0)) < 1e-3  # arccosh clamped at 1 + eps: finite, near zero


@pytest.mark.parametrize("c", [0.5, 1.5])
def test_polar_distance_equals_the_distance_of_the_lifted_points_rowwise_and_pairwise(c):
    v, w = _tangent(1, 5), _tangent(2, 4)
    rho_v, rho_w, cos = polar(v, w, c, pairwise=True)
    expected = distance(expmap0(v, c), expmap0(w, c), c, pairwise=True)
    torch.testing.assert_close(polar_distance(rho_v[:, None], rho_w[None, :], cos, c), expected)
    torch.testing.assert_close(polar_distance(*polar(v, w[:1].expand(5, 3), c), c), expected[:, 0])


def _meru_oxy_angle(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """MERU's exterior-angle formula (Desai et al., ICML 2023) on explicit points, the reference for the polar form."""
    c_inner = c * lorentz_inner(x, y, c)
    numerator = time_component(y, c) + c_inner * time_component(x, c)
    return torch.acos(numerator / (x.norm(dim=-1) * torch.sqrt(c_inner ** 2 - 1)))


@pytest.mark.parametrize("c", [1.0, 2.0])
def test_exterior_angle_in_polar_form_equals_meru_on_the_points_and_the_law_of_cosines(c):
    v, w = _tangent(3, 6), _tangent(4, 6)
    x, y = expmap0(v, c), expmap0(w, c)
    angle = exterior_angle(*polar(v, w, c))
    torch.testing.assert_close(angle, _meru_oxy_angle(x, y, c))
    # hyperbolic law of cosines (curvature −c: lengths scaled by √c) for the interior angle at x of O, x, y
    a, b, opposite = (math.sqrt(c) * t for t in (distance_to_origin(x, c), distance(x, y, c), distance_to_origin(y, c)))
    interior = torch.acos((torch.cosh(a) * torch.cosh(b) - torch.cosh(opposite)) / (torch.sinh(a) * torch.sinh(b)))
    torch.testing.assert_close(angle, math.pi - interior)


def test_half_aperture_follows_meru_and_is_widest_near_the_origin():
    # √c‖x‖ = sinh ρ: ρ = asinh(1) gives arcsin(2K); ρ = asinh(0.1) lies inside 2K = 0.2, clamped to π/2
    aperture = half_aperture(torch.tensor([math.asinh(1.0), math.asinh(0.1)], dtype=torch.float64), min_radius=0.1)
    assert math.isclose(float(aperture[0]), math.asin(0.2), rel_tol=1e-6)
    assert math.isclose(float(aperture[1]), math.pi / 2, rel_tol=1e-3)


def test_a_child_inside_the_cone_costs_nothing_and_one_outside_costs_its_angle_excess():
    parent = torch.tensor([[1.0, 0.0]] * 3, dtype=torch.float64)
    child = torch.tensor([[2.0, 0.0],    # further along the same ray: exterior angle 0
                          [2.0, 0.05],   # a little off the ray, well within the aperture
                          [0.0, 1.0]],   # orthogonal: far outside
                         dtype=torch.float64)
    rho_x, rho_y, cos = polar(parent, child, 1.0)
    loss = entailment_loss(rho_x, rho_y, cos)
    assert float(loss[0]) == 0.0 and float(loss[1]) == 0.0
    assert float(loss[2]) > 1.0
    torch.testing.assert_close(loss[2], exterior_angle(rho_x, rho_y, cos)[2] - half_aperture(rho_x)[2])


def test_entailment_loss_has_finite_gradients_at_degenerate_points():
    parent = torch.tensor([[1.0, 0.0], [1e-9, 0.0], [1.0, 0.0]])
    child = torch.tensor([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]], requires_grad=True)
    loss = entailment_loss(*polar(parent, child, 1.0)).sum()
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(child.grad).all()
