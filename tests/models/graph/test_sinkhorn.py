"""Sinkhorn–Knopp balancing: unit row and column sums on random graphs, the paper's dense loop as a reference.

Also covers empty rows/columns, the iteration cap and the input errors.
"""

import numpy as np
import pytest
import torch

from models.graph.sinkhorn import SinkhornInputError, sinkhorn_knopp

# Many small ops: one intra-op thread for every test here (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("single_thread")


def random_graph(num_nodes: int, density: float, seed: int, symmetric: bool) -> torch.Tensor:
    """Dense non-negative matrix with self-loops (total support) and random weights."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.rand(num_nodes, num_nodes, generator=generator) < density
    weights = torch.rand(num_nodes, num_nodes, generator=generator, dtype=torch.float64) * mask
    if symmetric:
        weights = weights + weights.t()
    return weights + torch.eye(num_nodes, dtype=torch.float64)


def paper_loop(matrix: np.ndarray, tol: float, max_iter: int = 100_000) -> np.ndarray:
    """The authors' loop on a dense matrix: rescale M in place until all sums are within tol."""
    right = 1 / matrix.sum(0)
    left = 1 / (matrix @ right)
    for _ in range(max_iter):
        if np.abs(matrix.sum(1) - 1).max() <= tol and np.abs(matrix.sum(0) - 1).max() <= tol:
            break
        right = 1 / (left @ matrix)
        left = 1 / (matrix @ right)
        matrix = left[:, None] * matrix * right[None, :]
    return matrix


@pytest.mark.parametrize("layout", ["coo", "csr"])
@pytest.mark.parametrize("seed,num_nodes,density,symmetric", [
    (0, 50, 0.05, True), (1, 300, 0.01, True), (2, 200, 0.03, False), (3, 1000, 0.004, True),
])
def test_row_and_column_sums_within_tolerance(layout, seed, num_nodes, density, symmetric):
    dense = random_graph(num_nodes, density, seed, symmetric)
    if not symmetric:  # a cycle makes the random digraph fully indecomposable, so SK converges fast
        dense = dense + torch.eye(num_nodes, dtype=torch.float64).roll(1, 0)
    matrix = dense.to_sparse() if layout == "coo" else dense.to_sparse_csr()
    for tol in (1e-2, 1e-3, 1e-6):
        result = sinkhorn_knopp(matrix, tol=tol)
        balanced = result.matrix.to_dense()
        deviation = max((balanced.sum(1) - 1).abs().max(), (balanced.sum(0) - 1).abs().max())
        assert result.converged and 0 < result.iterations < 1000
        assert deviation <= tol
        assert result.max_error == pytest.approx(float(deviation), abs=1e-12)
        assert result.matrix.layout == matrix.layout
        # Balancing only rescales entries: the sparsity pattern stays the same.
        assert torch.equal(balanced != 0, dense != 0)


def test_tighter_tolerance_needs_more_iterations():
    matrix = random_graph(300, 0.01, 4, symmetric=True).to_sparse_csr()
    iterations = [sinkhorn_knopp(matrix, tol=tol).iterations for tol in (1e-1, 1e-3, 1e-6)]
    assert iterations == sorted(iterations) and iterations[0] < iterations[-1]


def test_matches_the_papers_dense_loop():
    # The doubly stochastic scaling is unique, so both loops run to a tight tolerance give the same matrix.
    dense = random_graph(120, 0.04, 5, symmetric=False) + torch.eye(120, dtype=torch.float64).roll(1, 0)
    ours = sinkhorn_knopp(dense.to_sparse_csr(), tol=1e-10, max_iter=100_000).matrix.to_dense().numpy()
    np.testing.assert_allclose(ours, paper_loop(dense.numpy(), tol=1e-10), atol=1e-8)


def test_symmetric_input_gives_symmetric_balancing():
    result = sinkhorn_knopp(random_graph(200, 0.02, 6, symmetric=True).to_sparse(), tol=1e-9)
    balanced = result.matrix.to_dense()
    torch.testing.assert_close(balanced, balanced.t(), atol=1e-8, rtol=0)


def test_doubly_stochastic_input_is_returned_unchanged():
    permutation = torch.eye(6, dtype=torch.float64)[[3, 0, 5, 1, 2, 4]]
    result = sinkhorn_knopp(permutation.to_sparse_csr(), tol=1e-12)
    assert result.iterations == 0 and result.max_error == 0.0
    assert torch.equal(result.matrix.to_dense(), permutation)


def test_empty_rows_and_columns_stay_zero():
    dense = random_graph(40, 0.1, 7, symmetric=True)
    dense[9], dense[:, 9] = 0, 0  # an isolated node without a self-loop
    result = sinkhorn_knopp(dense.to_sparse_csr(), tol=1e-6)
    balanced = result.matrix.to_dense()
    assert result.converged and not balanced.isnan().any()
    assert balanced[9].abs().sum() == 0 and balanced[:, 9].abs().sum() == 0
    others = torch.arange(40) != 9
    assert (balanced.sum(1)[others] - 1).abs().max() <= 1e-6
    assert (balanced.sum(0)[others] - 1).abs().max() <= 1e-6


def test_iteration_cap_reports_not_converged():
    matrix = random_graph(300, 0.01, 8, symmetric=True).to_sparse_csr()
    result = sinkhorn_knopp(matrix, tol=1e-9, max_iter=2)
    assert result.iterations == 2 and not result.converged and result.max_error > 1e-9


def test_float32_input_stays_float32():
    result = sinkhorn_knopp(random_graph(100, 0.05, 9, symmetric=True).float().to_sparse_csr(), tol=1e-4)
    assert result.matrix.dtype == torch.float32 and result.max_error <= 1e-4


@pytest.mark.parametrize("matrix,message", [
    (torch.eye(3), "sparse COO or CSR"),
    (torch.ones(2, 3).to_sparse(), "square"),
    (torch.tensor([[1.0, -0.5], [0.0, 1.0]]).to_sparse(), "non-negative"),
    (torch.eye(3, dtype=torch.long).to_sparse(), "floating-point"),
])
def test_rejects_matrices_it_cannot_balance(matrix, message):
    with pytest.raises(SinkhornInputError, match=message):
        sinkhorn_knopp(matrix)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    matrix = random_graph(500, 0.01, 10, symmetric=True).to_sparse_csr()
    on_gpu = sinkhorn_knopp(matrix.cuda(), tol=1e-6)
    on_cpu = sinkhorn_knopp(matrix, tol=1e-6)
    assert on_gpu.matrix.device.type == "cuda" and on_gpu.iterations == on_cpu.iterations
    torch.testing.assert_close(on_gpu.matrix.to_dense().cpu(), on_cpu.matrix.to_dense(), atol=1e-9, rtol=0)
