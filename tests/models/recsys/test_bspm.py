"""BSPM scores equal dense matrix polynomials of the same blurring and sharpening steps, and the spec's closed
forms for the authors' Gowalla and Amazon-Book settings, on a small matrix (the solver steps as polynomial
coefficients too); a fit survives a save."""
import math

import numpy as np
import pytest
import torch

from models.recsys.bspm import BSPM, BSPMConfig, BSPMFactors, BSPMFactorsConfig, polynomials
from models.recsys.contract import Runtime
from tests.models.recsys.small_matrix import GRAPH, USERS, R, inv_sqrt

RANK = 3  # of a 7 × 6 matrix of rank 5: the projection is unique


def _filters():
    """Dense ``P̃ = R̃ᵀR̃`` and ``Π = D_I^-1/2 V_k V_kᵀ D_I^1/2``."""
    di = R.sum(0)
    normalized = inv_sqrt(R.sum(1))[:, None] * R * inv_sqrt(di)[None, :]
    top = np.linalg.svd(normalized)[2][:RANK].T
    return normalized.T @ normalized, inv_sqrt(di)[:, None] * (top @ top.T) * np.sqrt(di)[None, :]


def _scores(**settings):
    fitted = BSPM().fit(GRAPH, torch.empty(2, 0, dtype=torch.long), BSPMConfig(rank=RANK, **settings), Runtime())
    return fitted, fitted.score(USERS).numpy()


SETTINGS = [
    {},  # the authors' Gowalla setting: early merge, one RK4 step of 2.5
    {"sharpen_solver": "euler", "sharpen_steps": 3, "sharpen_time": 1.2, "early_merge": False, "beta": 0.3,
     "blur_time": 0.5, "blur_steps": 2},
    {"sharpen_steps": 2, "sharpen_time": 2.2, "early_merge": False, "beta": 0.0},
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_bspm_equals_dense_matrix_polynomials(settings):
    config = BSPMConfig(rank=RANK, **settings)
    p, ideal = _filters()
    eye = np.eye(6)
    h_blur, h_sharpen = config.blur_time / config.blur_steps, config.sharpen_time / config.sharpen_steps
    order = {"euler": 1, "rk4": 4}[config.sharpen_solver]
    blur_step = (1 - h_blur) * eye + h_blur * p  # Euler on dx/dt = x(P̃ − I)
    sharpen_step = sum(np.linalg.matrix_power(-h_sharpen * p, j) / math.factorial(j) for j in range(order + 1))
    blurred = R @ np.linalg.matrix_power(blur_step, config.blur_steps)
    merged = config.beta * (R @ ideal)
    sharpen = np.linalg.matrix_power(sharpen_step, config.sharpen_steps)
    expected = (blurred + merged) @ sharpen if config.early_merge else blurred @ sharpen + merged
    _, scores = _scores(**settings)
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)


def test_bspm_defaults_are_the_spec_closed_form_for_gowalla():
    p, ideal = _filters()
    polynomial = np.eye(6) - 2.5 * p + 3.125 * p @ p - 2.6042 * p @ p @ p + 1.6276 * np.linalg.matrix_power(p, 4)
    _, scores = _scores()
    np.testing.assert_allclose(scores, (R @ p + 0.2 * R @ ideal) @ polynomial, atol=1e-4)


def test_bspm_late_merge_without_ideal_is_the_spec_closed_form_for_amazon_book():
    p, _ = _filters()
    step = np.eye(6) - 1.1 * p + 0.605 * p @ p - 0.22183 * p @ p @ p + 0.061004 * np.linalg.matrix_power(p, 4)
    _, scores = _scores(sharpen_steps=2, sharpen_time=2.2, early_merge=False, beta=0.0)
    np.testing.assert_allclose(scores, R @ p @ step @ step, atol=1e-4)


def test_the_solver_steps_as_polynomial_coefficients_are_the_spec_closed_forms():
    linear, sharpening = polynomials(BSPMConfig())  # Gowalla: x_b = r P̃, one RK4 step of 2.5
    np.testing.assert_allclose(sharpening.numpy(), [1, -2.5, 3.125, -2.6042, 1.6276], atol=1e-4)
    np.testing.assert_allclose(linear.numpy(), [0, 1, -2.5, 3.125, -2.6042, 1.6276], atol=1e-4)
    linear, sharpening = polynomials(BSPMConfig(sharpen_steps=2, sharpen_time=2.2, early_merge=False, beta=0.0))
    step = np.array([1, -1.1, 0.605, -0.22183, 0.061004])  # Amazon-Book: two RK4 steps of 1.1, late merge
    np.testing.assert_allclose(linear.numpy(), np.r_[0, np.convolve(step, step)], atol=1e-4)
    assert sharpening.tolist() == [1.0]
    linear, _ = polynomials(BSPMConfig(blur_time=1.0, blur_steps=2, sharpen_solver="euler", sharpen_time=1.0))
    np.testing.assert_allclose(linear.numpy(), np.convolve([0.25, 0.5, 0.25], [1, -1]), atol=1e-12)


@pytest.mark.parametrize("settings", SETTINGS[:2])
def test_a_saved_bspm_fit_restores_the_same_scores(tmp_path, settings):
    fitted, scores = _scores(**settings)
    torch.save(fitted.tensors(), tmp_path / "fit.pt")
    restored = BSPM().restore(torch.load(tmp_path / "fit.pt", weights_only=True), fitted.config)
    np.testing.assert_allclose(restored.score(USERS).numpy(), scores, rtol=1e-6, atol=1e-7)
    assert restored.config == fitted.config


@pytest.mark.parametrize("settings,message", [
    ({"sharpen_steps": 0}, "sharpen_steps must be an integer >= 1"),
    ({"blur_steps": 1.5}, "blur_steps must be an integer >= 1"),
    ({"sharpen_time": -1.0}, "sharpen_time must be >= 0"),
    ({"sharpen_solver": "dopri5"}, "sharpen_solver must be one of"),
    ({"rank": 0}, "rank must be >= 1 when beta != 0"),
])
def test_a_bad_bspm_config_says_what_is_wrong(settings, message):
    with pytest.raises(ValueError, match=message):
        BSPMConfig(**settings)


def _factors(**settings):
    config = BSPMFactorsConfig(rank=RANK, factor_rank=5, **settings)
    return BSPMFactors().fit(GRAPH, torch.empty(2, 0, dtype=torch.long), config, Runtime())


@pytest.mark.parametrize("settings", SETTINGS)
def test_bspm_factors_at_full_rank_equal_the_filter_off_the_training_items(settings):
    # R̃ has rank 5 (item 5 has no user), so 5 singular triplets carry the whole linear part; the vectors drop only
    # f(0)·r_u, which the blurring's one Euler step of time 1 zeroes and the second setting's does not.
    config = BSPMConfig(rank=RANK, **settings)
    blur_zero = (1 - config.blur_time / config.blur_steps) ** config.blur_steps  # b(0); q(0) = 1
    factors = _factors(**settings)
    _, scores = _scores(**settings)
    assert factors.has_vectors and factors.user_emb.shape == (7, 5 + (RANK if config.beta else 0))
    np.testing.assert_allclose(factors.score(USERS).numpy() + blur_zero * R, scores, rtol=1e-4, atol=1e-5)
    assert (blur_zero == 0) == (settings == {} or "blur_time" not in settings)


def test_bspm_factors_truncate_only_the_linear_part():
    p, ideal = _filters()
    values, vectors = np.linalg.eigh(p)
    top = vectors[:, np.argsort(-values)[:2]]  # the 2 largest eigenvalues of P̃ of 5
    lam = np.sort(values)[::-1][:2]
    gain = lam * (1 - 2.5 * lam + 3.125 * lam ** 2 - 2.6042 * lam ** 3 + 1.6276 * lam ** 4)  # default f(λ), f(0) = 0
    polynomial = np.eye(6) - 2.5 * p + 3.125 * p @ p - 2.6042 * p @ p @ p + 1.6276 * np.linalg.matrix_power(p, 4)
    expected = R @ top @ np.diag(gain) @ top.T + 0.2 * R @ ideal @ polynomial
    factors = BSPMFactors().fit(GRAPH, torch.empty(2, 0, dtype=torch.long),
                                BSPMFactorsConfig(rank=RANK, factor_rank=2), Runtime())
    np.testing.assert_allclose(factors.score(USERS).numpy(), expected, atol=2e-4)
    assert not np.allclose(expected, _scores()[1], atol=1e-3)  # the truncation is a real loss


def test_a_saved_bspm_factors_fit_restores_the_same_scores(tmp_path):
    fitted = _factors()
    torch.save(fitted.tensors(), tmp_path / "fit.pt")
    restored = BSPMFactors().restore(torch.load(tmp_path / "fit.pt", weights_only=True), fitted.config)
    torch.testing.assert_close(restored.score(USERS), fitted.score(USERS))
