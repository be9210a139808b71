"""The top singular triplets of a degree-normalised interaction matrix, computed once and shared by the filters.

GF-CF, BSPM, SGFCF and their vectors all start from a truncated SVD of ``R̃ = D_U R D_I`` with
``D = (d + offset)^-exponent``. The top ``k`` triplets of an SVD with more than ``k`` are the triplets of an SVD
with ``k`` (up to the solver's tolerance), so one SVD at the largest rank serves every filter of a normalisation:
on Gowalla one SVD with 1,024 triplets takes about two minutes on one core, and six filters used to
compute five of them. A :class:`Spectrum` records what it was computed from (normalisation, seed, the matrix's shape
and stored entries), so that :func:`top_triplets` takes it only for the matrix and normalisation it belongs to.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import svds
from torch import Tensor

from models.recsys.interactions import normalized_interactions


@dataclass(frozen=True)
class Spectrum:
    """The top singular values ``(k,)`` in descending order and right singular vectors ``(num_items, k)`` (float32)
    of one interaction matrix at one normalisation, with what identifies them."""

    exponent: float
    offset: float
    seed: int
    shape: tuple[int, int]
    nnz: int
    values: np.ndarray
    vectors: np.ndarray
    solver: str = ""  # how the triplets were computed (dense, propack or arpack); not saved with them

    def covers(self, matrix: sp.spmatrix, exponent: float, offset: float, seed: int, rank: int) -> bool:
        """Whether the top ``rank`` triplets of ``matrix`` at this normalisation and seed can be taken from here."""
        return (self.shape == matrix.shape and self.nnz == matrix.nnz and (self.exponent, self.offset, self.seed)
                == (exponent, offset, seed) and self.values.size >= _capped(rank, matrix.shape))

    def tensors(self, prefix: str) -> dict[str, Tensor]:
        """Plain tensors (``<prefix>.values``, ``.vectors``, ``.identity``) for a ``weights_only`` file."""
        identity = torch.tensor([self.exponent, self.offset, self.seed, *self.shape, self.nnz], dtype=torch.float64)
        return {f"{prefix}.values": torch.from_numpy(self.values), f"{prefix}.vectors": torch.from_numpy(self.vectors),
                f"{prefix}.identity": identity}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Tensor], prefix: str) -> Spectrum:
        """The spectrum that :meth:`tensors` saved under ``prefix``."""
        exponent, offset, seed, rows, columns, nnz = tensors[f"{prefix}.identity"].tolist()
        return cls(exponent, offset, int(seed), (int(rows), int(columns)), int(nnz),
                   tensors[f"{prefix}.values"].numpy(), tensors[f"{prefix}.vectors"].numpy())


def _capped(rank: int, shape: tuple[int, int]) -> int:
    # One below the matrix's smaller side: ARPACK's limit, which the spectra were first computed with; kept so that a
    # rank names the same triplets in every saved spectrum.
    return min(rank, min(shape) - 1)


# A dense matrix of at most this many entries (128 MiB in float32) is cheap to decompose whole.
DENSE_ENTRIES = 2**25


def svd_solver(shape: tuple[int, int], rank: int, threads: int | None = None) -> str:
    """How the top ``rank`` triplets of a ``shape`` matrix are computed in a process with ``threads`` threads
    (default: torch's): ``dense`` (LAPACK's full SVD) when the rank reaches half the smaller side and the dense
    matrix is small; else scipy's ``svds`` with PROPACK with one thread, ARPACK with more."""
    # A Krylov solver asked for most of the spectrum does more work than a full SVD. Measured with 2 threads on
    # random matrices of density 0.005, seconds min/median/max of 3 runs, dense | PROPACK | ARPACK: 3,000 × 1,500
    # (the demo's shape) with 1,024 triplets 1.1/1.1/1.1 | 1.8/1.8/2.0 | 9.4/10.2/10.2; 1,000 × 30,000 with 999,
    # 6.1/6.2/6.2 | 14.9/14.9/15.0 | 8.0/8.0/8.1; 2,048 × 16,384 with 1,024, 11.1/12.0/12.0 | 33.0/33.8/34.2 |
    # 26.1/27.9/35.1. MovieLens's and the Amazon sets' smaller sides are below the pipeline's 1,024 triplets too.
    if 2 * _capped(rank, shape) >= min(shape) and shape[0] * shape[1] <= DENSE_ENTRIES:
        return "dense"
    # Measured on the Gowalla training matrix (1,024 and 1,000 triplets, three runs each): with one thread, as a
    # pipeline step has with two steps at a time on 2 cores, PROPACK's bidiagonalization of the matrix took 110 and
    # 106 s where ARPACK's Lanczos on the Gram matrix took 149 and 166 s; with two threads ARPACK uses them (108 s)
    # while PROPACK's many small BLAS calls slow down (167 s). Same values (relative difference below 1e-4) and
    # subspaces.
    return "propack" if (threads or torch.get_num_threads()) == 1 else "arpack"


def _truncated_svd(normalized: sp.spmatrix, k: int, seed: int, solver: str) -> tuple[np.ndarray, np.ndarray, str]:
    """The top ``k`` singular values and right vectors (rows) by ``solver``, in no particular order, and the solver
    that computed them."""
    if solver == "dense":
        _, values, vt = scipy.linalg.svd(normalized.toarray(), full_matrices=False)
        return values[:k], vt[:k], solver
    try:
        _, values, vt = svds(normalized, k=k, random_state=seed, solver=solver, return_singular_vectors="vh")
    except np.linalg.LinAlgError:
        if solver != "propack":
            raise
        # PROPACK stops at an invariant subspace when the matrix's rank is below k (items with the very same users,
        # a small catalogue); ARPACK returns the triplets of the rank and zeros for the rest.
        solver = "arpack"
        _, values, vt = svds(normalized, k=k, random_state=seed, solver=solver, return_singular_vectors="vh")
    return values, vt, solver


def compute_spectrum(matrix: sp.spmatrix, rank: int, seed: int, exponent: float = 0.5,
                     offset: float = 0.0, solver: str | None = None) -> Spectrum:
    """The top ``rank`` singular triplets of ``matrix`` normalised at ``(exponent, offset)``, by ``solver``
    (``dense``, ``propack`` or ``arpack``; default: :func:`svd_solver`; PROPACK falls back to ARPACK on a matrix
    whose rank is below ``rank``, and the spectrum's ``solver`` says which ran).

    scipy's ``svds`` replaces the authors' SVDLIBC: the filters depend neither on the vectors' signs nor (once
    sorted) on their order. ``rank`` is capped below the matrix's smaller side.
    """
    k = _capped(rank, matrix.shape)
    values, vt, used = _truncated_svd(normalized_interactions(matrix, exponent, offset), k, seed,
                                      solver or svd_solver(matrix.shape, k))
    order = np.argsort(-values, kind="stable")
    return Spectrum(exponent, offset, seed, matrix.shape, matrix.nnz, values[order].astype(np.float32),
                    np.ascontiguousarray(vt[order].T, dtype=np.float32), used)


def top_triplets(matrix: sp.spmatrix, rank: int, seed: int, exponent: float = 0.5, offset: float = 0.0,
                 shared: Sequence[Spectrum] = ()) -> tuple[np.ndarray, np.ndarray]:
    """The top ``rank`` singular values ``(k,)`` and right singular vectors ``(num_items, k)`` of ``matrix``
    normalised at ``(exponent, offset)``: from the first of ``shared`` that covers them, else computed."""
    for spectrum in shared:
        if spectrum.covers(matrix, exponent, offset, seed, rank):
            k = _capped(rank, matrix.shape)
            return spectrum.values[:k], np.ascontiguousarray(spectrum.vectors[:, :k])
    spectrum = compute_spectrum(matrix, rank, seed, exponent, offset)
    return spectrum.values, spectrum.vectors
