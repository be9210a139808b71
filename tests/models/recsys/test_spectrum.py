"""The shared spectrum: the triplets equal a dense SVD; a filter that takes its top triplets from a larger shared
SVD scores as one that runs its own, without running one; a spectrum of another normalisation, seed or matrix is
not taken; it survives a save."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

import models.recsys.spectrum as spectrum_module
from models.recsys.bspm import BSPM, BSPMConfig, BSPMFactors, BSPMFactorsConfig
from models.recsys.contract import Runtime
from models.recsys.graph_filter import GFCF, GFCFConfig, GFCFFactors, GFCFFactorsConfig
from models.recsys.interactions import interaction_matrix
from models.recsys.sgfcf import SGFCF, SGFCFConfig, SGFCFFactors
from models.recsys.spectrum import Spectrum, compute_spectrum, svd_solver, top_triplets
from tests.models.recsys.small_matrix import GRAPH, USERS

MATRIX = interaction_matrix(GRAPH)  # 7 × 6: at most 5 triplets
NO_VALID = torch.empty(2, 0, dtype=torch.long)


def _random_matrix(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((40, 30)) < 0.2).astype(np.float32))


def _dense_normalized(matrix: sp.csr_matrix, exponent: float) -> np.ndarray:
    dense = matrix.toarray().astype(np.float64)
    scale = [np.where(d > 0, np.maximum(d, 1) ** -exponent, 0.0) for d in (dense.sum(1), dense.sum(0))]
    return scale[0][:, None] * dense * scale[1][None, :]


def _projector(vectors: np.ndarray) -> np.ndarray:
    return vectors @ vectors.T


@pytest.mark.parametrize("solver", ["propack", "arpack", "dense"])
@pytest.mark.parametrize("exponent", [0.5, 0.34])
def test_the_spectrum_equals_a_dense_svd(exponent, solver):
    matrix = _random_matrix()
    spectrum = compute_spectrum(matrix, rank=6, seed=1, exponent=exponent, solver=solver)
    _, values, vt = np.linalg.svd(_dense_normalized(matrix, exponent))
    np.testing.assert_allclose(spectrum.values, values[:6], rtol=1e-4)
    # Signs (and order within ties) are free: compare the projector on the top triplets.
    np.testing.assert_allclose(_projector(spectrum.vectors), _projector(vt[:6].T), atol=1e-4)
    assert spectrum.vectors.shape == (30, 6) and spectrum.vectors.dtype == np.float32


def test_one_thread_takes_propack_and_more_take_arpack():
    assert [svd_solver((29_858, 40_981), 1024, threads) for threads in (1, 2, 16)] == ["propack", "arpack", "arpack"]


def test_most_of_a_small_matrix_s_spectrum_is_computed_dense():
    assert svd_solver((400, 200), 1024, threads=1) == "dense"  # capped at 199 triplets of 200
    assert svd_solver((610, 9_724), 1024, threads=2) == "dense"
    assert svd_solver((400, 200), 99, threads=1) == "propack"  # below half the smaller side
    assert svd_solver((8_000, 8_000), 4_000, threads=1) == "propack"  # too large to hold dense


@pytest.mark.parametrize("solver", ["propack", "arpack", "dense"])
def test_a_matrix_of_lower_rank_than_asked_gets_its_triplets_and_zeros(solver):
    # Eight distinct columns repeated: rank 8, where PROPACK alone would stop at the invariant subspace.
    rng = np.random.default_rng(4)
    distinct = (rng.random((60, 8)) < 0.3).astype(np.float32)
    matrix = sp.csr_matrix(distinct[:, rng.permutation(np.arange(40) % 8)])
    spectrum = compute_spectrum(matrix, rank=12, seed=1, exponent=0.5, solver=solver)
    values = np.linalg.svd(_dense_normalized(matrix, 0.5), compute_uv=False)
    assert np.linalg.matrix_rank(matrix.toarray()) == 8 and spectrum.values.size == 12
    assert spectrum.solver == ("arpack" if solver == "propack" else solver)  # the fallback is named
    np.testing.assert_allclose(spectrum.values[:8], values[:8], rtol=1e-4)
    np.testing.assert_allclose(spectrum.values[8:], 0.0, atol=1e-4)


def test_top_triplets_of_a_larger_shared_svd_equal_their_own_svd(monkeypatch):
    matrix = _random_matrix()
    own_values, own_vectors = top_triplets(matrix, 5, seed=1)
    shared = compute_spectrum(matrix, 12, seed=1)
    monkeypatch.setattr(spectrum_module, "compute_spectrum", _no_svd)
    values, vectors = top_triplets(matrix, 5, seed=1, shared=[shared])
    np.testing.assert_allclose(values, own_values, rtol=1e-5)
    np.testing.assert_allclose(_projector(vectors), _projector(own_vectors), atol=1e-4)


def _no_svd(*args, **kwargs):
    raise AssertionError("an SVD ran although a shared spectrum covers it")


@pytest.mark.parametrize("change", [{"exponent": 0.34}, {"offset": 1.0}, {"seed": 2}, {"rank": 13}])
def test_a_spectrum_of_another_setting_is_not_taken(change):
    matrix = _random_matrix()
    shared = compute_spectrum(matrix, 12, seed=1)
    asked = {"rank": 5, "seed": 1, "exponent": 0.5, "offset": 0.0, **change}
    assert not shared.covers(matrix, asked["exponent"], asked["offset"], asked["seed"], asked["rank"])
    values, _ = top_triplets(matrix, shared=[shared], **asked)
    expected, _ = top_triplets(matrix, **asked)
    np.testing.assert_allclose(values, expected, rtol=1e-5)


def test_a_spectrum_of_another_matrix_is_not_taken():
    # Shape and stored entries only: the pipeline also compares the training data's fingerprint (assets.spectra).
    matrix = _random_matrix()
    shared = compute_spectrum(matrix, 12, seed=1)
    one_less = matrix.tolil()
    one_less[matrix.nonzero()[0][0], matrix.nonzero()[1][0]] = 0
    assert shared.covers(matrix, 0.5, 0.0, 1, 5)
    assert not shared.covers(one_less.tocsr(), 0.5, 0.0, 1, 5)
    assert not shared.covers(matrix[:, :29], 0.5, 0.0, 1, 5)


def test_a_rank_above_the_matrix_is_capped_and_covered():
    shared = compute_spectrum(MATRIX, 100, seed=2020)
    assert shared.values.size == 5  # one below the smaller side, as ARPACK requires
    assert shared.covers(MATRIX, 0.5, 0.0, 2020, 1024)


def test_a_spectrum_survives_a_weights_only_save(tmp_path):
    spectrum = compute_spectrum(_random_matrix(), 7, seed=3, exponent=0.34, offset=1.5)
    torch.save(spectrum.tensors("s"), tmp_path / "spectra.pt")
    restored = Spectrum.from_tensors(torch.load(tmp_path / "spectra.pt", weights_only=True), "s")
    assert (restored.exponent, restored.offset, restored.seed, restored.shape, restored.nnz) == \
        (0.34, 1.5, 3, (40, 30), spectrum.nnz)
    np.testing.assert_array_equal(restored.values, spectrum.values)
    np.testing.assert_array_equal(restored.vectors, spectrum.vectors)


FITS = [(GFCF(), GFCFConfig(rank=3)), (GFCFFactors(), GFCFFactorsConfig(rank=2, factor_rank=4)),
        (BSPM(), BSPMConfig(rank=3)), (BSPMFactors(), BSPMFactorsConfig(rank=2, factor_rank=4)),
        (SGFCF(), SGFCFConfig(rank=3)), (SGFCFFactors(), SGFCFConfig(rank=3))]


@pytest.mark.parametrize("family, config", FITS, ids=lambda value: getattr(value, "name", ""))
def test_a_filter_on_the_shared_spectra_scores_as_on_its_own_svd(monkeypatch, family, config):
    own = family.fit(GRAPH, NO_VALID, config, Runtime()).score(USERS)
    spectra = tuple(compute_spectrum(MATRIX, 1024, 2020, exponent) for exponent in (0.5, 0.34))  # as the pipeline's
    monkeypatch.setattr(spectrum_module, "compute_spectrum", _no_svd)
    shared = family.fit(GRAPH, NO_VALID, config, Runtime(spectra=spectra)).score(USERS)
    torch.testing.assert_close(shared, own, rtol=1e-4, atol=1e-5)
