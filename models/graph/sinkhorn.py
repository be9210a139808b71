"""Sinkhorn–Knopp balancing of a sparse non-negative square matrix into a doubly stochastic one.

Used by RawlsGCN (Kang et al., WWW 2022) to make every node weigh the same in the GCN gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class SinkhornInputError(ValueError):
    """The matrix handed to Sinkhorn–Knopp cannot be balanced as given."""


class SinkhornResult(NamedTuple):
    """Output of :func:`sinkhorn_knopp`.

    ``matrix`` is diag(r)·M·diag(c) in the input's sparse layout, ``iterations`` the number of
    scaling updates run, ``max_error`` the largest |row or column sum − 1| over the non-empty rows
    and columns of ``matrix``, and ``converged`` whether that error is within the tolerance.
    """

    matrix: Tensor
    iterations: int
    max_error: float
    converged: bool


def _inverse(sums: Tensor) -> Tensor:
    # Empty rows/columns cannot be balanced; the paper's code maps 1/0 to 0 instead of inf.
    return torch.where(sums > 0, 1.0 / sums, torch.zeros_like(sums))


def _matvec(csr: Tensor, vector: Tensor) -> Tensor:
    return (csr @ vector.unsqueeze(1)).squeeze(1)


def _check(matrix: Tensor) -> None:
    if matrix.layout not in (torch.sparse_coo, torch.sparse_csr):
        raise SinkhornInputError(
            f"sinkhorn_knopp expects a torch sparse COO or CSR matrix, got layout {matrix.layout}; "
            "convert with .to_sparse_csr()."
        )
    if matrix.dim() != 2 or matrix.size(0) != matrix.size(1):
        raise SinkhornInputError(f"sinkhorn_knopp expects a square matrix, got shape {tuple(matrix.shape)}.")
    if not matrix.dtype.is_floating_point:
        raise SinkhornInputError(f"sinkhorn_knopp expects a floating-point matrix, got {matrix.dtype}; cast with .float().")
    values = matrix.values()
    if values.numel() and bool((values < 0).any()):
        raise SinkhornInputError(
            f"sinkhorn_knopp expects non-negative entries, found {int((values < 0).sum())} negative values "
            f"(smallest {float(values.min()):.4g})."
        )


def sinkhorn_knopp(matrix: Tensor, tol: float = 1e-2, max_iter: int = 1000) -> SinkhornResult:
    r"""Balances a sparse non-negative square matrix M into P = diag(r) M diag(c) with unit row and
    column sums (Sinkhorn & Knopp, 1967), as RawlsGCN does in its pre-processing.

    Alternates c ← 1 / (Mᵀ r) and r ← 1 / (M c), starting from c = 1 / colsum(M), and stops as soon
    as every non-empty row and column of P sums to a value in [1 − tol, 1 + tol]. Only the two scaling
    vectors are iterated (two sparse mat-vecs per step); P is formed once at the end. The doubly
    stochastic scaling of a matrix with total support is unique, so this reaches the same P as the
    paper's variant that rescales M in place every step. Rows or columns that sum to zero stay zero.

    Args:
        matrix (torch.Tensor): sparse COO or CSR, non-negative, square; CPU or CUDA.
        tol (float, optional): tolerance on |row or column sum − 1|. (default: :obj:`1e-2`, the
            value the paper's data loader uses)
        max_iter (int, optional): most scaling updates to run. (default: :obj:`1000`)

    Shapes:
        - **input:** sparse :math:`(N, N)`
        - **output:** ``SinkhornResult.matrix`` sparse :math:`(N, N)`, same layout, device and
          sparsity pattern as the input
    """
    _check(matrix)
    layout = matrix.layout
    csr = matrix.coalesce().to_sparse_csr() if layout == torch.sparse_coo else matrix
    # Mᵀ as CSR too: CSR mat-vec is several times faster than CSC or scatter-based column sums.
    csr_t = csr.to_sparse_coo().t().coalesce().to_sparse_csr()
    ones = torch.ones(csr.size(0), dtype=csr.dtype, device=csr.device)
    col_sums = _matvec(csr_t, ones)
    row_used, col_used = _matvec(csr, ones) > 0, col_sums > 0

    c = _inverse(col_sums)
    r = _inverse(_matvec(csr, c))
    iterations = 0
    while True:
        mt_r = _matvec(csr_t, r)
        # Right after the r-update every non-empty row of P sums to 1 up to rounding, so only the
        # columns can be off; their sums c * (Mᵀ r) reuse the product the next c-update needs.
        if _max_deviation(c * mt_r, col_used) <= tol or iterations >= max_iter:
            break
        c = _inverse(mt_r)
        r = _inverse(_matvec(csr, c))
        iterations += 1

    max_error = max(_max_deviation(r * _matvec(csr, c), row_used), _max_deviation(c * mt_r, col_used))
    crow, col = csr.crow_indices(), csr.col_indices()
    row = torch.repeat_interleave(torch.arange(csr.size(0), device=csr.device), crow.diff())
    balanced = torch.sparse_csr_tensor(crow, col, csr.values() * r[row] * c[col], csr.shape)
    if layout == torch.sparse_coo:
        balanced = balanced.to_sparse_coo().coalesce()
    return SinkhornResult(balanced, iterations, max_error, max_error <= tol)


def _max_deviation(sums: Tensor, used: Tensor) -> float:
    """Largest |sum − 1| over the rows (or columns) flagged in ``used``; 0 when none is."""
    deviation = (sums - 1).abs()[used]
    return float(deviation.max()) if deviation.numel() else 0.0
