"""The normalised item graph's product: sparse training rows and their dense copies give ``x R̃ᵀR̃`` alike, whole or
in chunks of rows."""
import numpy as np
import pytest
import torch

from models.recsys import interactions
from models.recsys.interactions import (
    dense_rows,
    interaction_matrix,
    normalized_interactions,
    sparse_rows,
    through_item_graph,
    to_torch_csr,
)
from tests.models.recsys.small_matrix import GRAPH, R, inv_sqrt


def test_sparse_and_dense_rows_go_through_the_item_graph_alike():
    matrix = interaction_matrix(GRAPH)
    normalized = normalized_interactions(matrix)
    forward, backward = to_torch_csr(normalized), to_torch_csr(normalized.T)
    tilde = inv_sqrt(R.sum(1))[:, None] * R * inv_sqrt(R.sum(0))[None, :]
    users = torch.tensor([6, 0, 3, 0])  # a repeated user, out of order
    expected = R[users.numpy()] @ tilde.T @ tilde
    for rows in (sparse_rows(matrix, users), dense_rows(matrix, users)):
        assert through_item_graph(rows, forward, backward).numpy() == pytest.approx(expected, abs=1e-6)
    # Item 5 has no training user: its column is 0, not NaN, and a row of zeros stays zeros.
    assert not np.isnan(expected).any() and (expected[:, 5] == 0).all()
    empty = torch.sparse_csr_tensor(torch.zeros(3, dtype=torch.long), torch.zeros(0, dtype=torch.long),
                                    torch.zeros(0), (2, 6))
    assert torch.equal(through_item_graph(empty, forward, backward), torch.zeros(2, 6))


def test_a_block_longer_than_one_chunk_goes_through_in_chunks_with_the_same_values(monkeypatch):
    matrix = interaction_matrix(GRAPH)
    normalized = normalized_interactions(matrix)
    forward, backward = to_torch_csr(normalized), to_torch_csr(normalized.T)
    users = torch.tensor([6, 0, 3, 0, 5, 1, 2])
    whole = {kind: through_item_graph(rows, forward, backward)
             for kind, rows in (("sparse", sparse_rows(matrix, users)), ("dense", dense_rows(matrix, users)))}
    monkeypatch.setattr(interactions, "CPU_ROWS_PER_PRODUCT", 3)  # chunks of 3, 3 and 1 rows
    for kind, rows in (("sparse", sparse_rows(matrix, users)), ("dense", dense_rows(matrix, users))):
        chunked = through_item_graph(rows, forward, backward)
        assert chunked.is_contiguous() and torch.equal(chunked, whole[kind]), kind
    tilde = inv_sqrt(R.sum(1))[:, None] * R * inv_sqrt(R.sum(0))[None, :]
    assert whole["dense"].numpy() == pytest.approx(R[users.numpy()] @ tilde.T @ tilde, abs=1e-6)
