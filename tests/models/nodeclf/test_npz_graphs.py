"""The gnn-benchmark .npz loader: counts on the Cora slice in tests/fixtures, on the shared Cora-ML / Citeseer / Cora
files when the shared folder is there, and on a hand-made file.

Counts of the shared files were read from the published gnn-benchmark and Cora-ML .npz files; the slice's are in
tests/fixtures/README.md.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from models.nodeclf.npz_graphs import NPZ_FOLDER, NpzGraphError, load_npz_graph, npz_path
from warehouse.paths import shared_dir

SHARED_NPZ = shared_dir() / NPZ_FOLDER


def _have(name: str) -> bool:
    try:
        npz_path(name, SHARED_NPZ)
    except NpzGraphError:
        return False
    return True


needs_shared = pytest.mark.skipif(not _have("cora_ml"),
                                  reason="full-size graphs' counts: shared gnn_benchmark_npz files not found")


@needs_shared
@pytest.mark.parametrize("name,largest_component,nodes,edges,features,classes,class_counts", [
    ("cora_ml", False, 2995, 16316, 2879, 7, [354, 402, 452, 442, 857, 193, 295]),
    ("citeseer", False, 3312, 9072, 3703, 6, [249, 596, 701, 508, 668, 590]),
    ("cora", False, 2708, 10556, 1433, 7, [298, 418, 818, 426, 217, 180, 351]),
    ("cora_ml", True, 2810, 15962, 2879, 7, None),
    ("citeseer", True, 2110, 7336, 3703, 6, None),
    ("cora", True, 2485, 10138, 1433, 7, None),
])
def test_counts_of_shared_graphs(name, largest_component, nodes, edges, features, classes, class_counts):
    data = load_npz_graph(name, folder=SHARED_NPZ, largest_component=largest_component)
    _assert_counts(data, nodes, edges, features, classes, class_counts)


@pytest.mark.parametrize("largest_component", [False, True])
def test_counts_of_the_cora_slice(cora_slice, largest_component):
    # 3,672 stored directed entries become 3,598 undirected edges; the slice is connected, so its largest
    # component is all of it.
    data = load_npz_graph(cora_slice, largest_component=largest_component)
    _assert_counts(data, 1700, 7196, 1433, 7, [174, 402, 487, 129, 197, 93, 218])


def _assert_counts(data, nodes: int, edges: int, features: int, classes: int, class_counts: list[int] | None) -> None:
    """Sizes and class counts as given; undirected without self-loops; sparse float32 features, rows summing to 1."""
    assert (data.num_nodes, data.edge_index.size(1), data.num_features) == (nodes, edges, features)
    assert int(data.y.max()) + 1 == classes and data.y.dtype == torch.long
    if class_counts is not None:
        assert torch.bincount(data.y).tolist() == class_counts
    assert data.is_undirected() and not data.has_self_loops()
    assert data.x.layout == torch.sparse_csr and data.x.dtype == torch.float32
    row_sums = torch.zeros(nodes).index_add_(0, data.x.to_sparse_coo().indices()[0], data.x.values())
    torch.testing.assert_close(row_sums, torch.ones(nodes))


def _write_npz(path, adjacency: sp.csr_matrix, features: sp.csr_matrix, labels: np.ndarray, dotted: bool) -> None:
    adj_prefix, attr_prefix = ("adj_matrix.", "attr_matrix.") if dotted else ("adj_", "attr_")
    arrays = {"labels": labels}
    for prefix, matrix in ((adj_prefix, adjacency), (attr_prefix, features)):
        arrays.update({prefix + "data": matrix.data, prefix + "indices": matrix.indices,
                       prefix + "indptr": matrix.indptr, prefix + "shape": np.array(matrix.shape)})
    np.savez(path, **arrays)


@pytest.mark.parametrize("dotted", [False, True])
def test_hand_made_file_is_symmetrized_without_self_loops(tmp_path, dotted):
    # Directed 0→1, both directions 1↔2, a self-loop on 3 and an isolated node 4.
    adjacency = sp.csr_matrix(([1.0, 1.0, 1.0, 1.0], ([0, 1, 2, 3], [1, 2, 1, 3])), shape=(5, 5))
    features = sp.csr_matrix(np.array([[1, 1, 0], [0, 2, 0], [0, 0, 0], [3, 0, 1], [0, 0, 5]], dtype=np.float32))
    folder = tmp_path / "datasets" / "gnn_benchmark_npz"
    folder.mkdir(parents=True)
    _write_npz(folder / "tiny.npz", adjacency, features, np.array([0, 1, 1, 0, 2]), dotted)

    data = load_npz_graph("tiny", folder=folder)
    assert data.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert data.num_nodes == 5 and data.y.tolist() == [0, 1, 1, 0, 2]
    expected = torch.tensor([[0.5, 0.5, 0], [0, 1, 0], [0, 0, 0], [0.75, 0, 0.25], [0, 0, 1]])
    torch.testing.assert_close(data.x.to_dense(), expected)

    component = load_npz_graph(folder / "tiny.npz", largest_component=True)
    assert component.num_nodes == 3 and component.y.tolist() == [0, 1, 1]
    torch.testing.assert_close(component.x.to_dense(), expected[:3])


def test_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(NpzGraphError, match="no such .npz graph"):
        load_npz_graph(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(NpzGraphError, match=r"other\.npz: not a gnn-benchmark graph"):
        load_npz_graph(tmp_path / "other.npz")
    _write_npz(tmp_path / "short.npz", sp.csr_matrix(np.eye(3)), sp.csr_matrix(np.eye(3)), np.zeros(2), False)
    with pytest.raises(NpzGraphError, match="inconsistent sizes"):
        load_npz_graph(tmp_path / "short.npz")
