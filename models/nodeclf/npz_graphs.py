"""Loader for node-classification graphs in the gnn-benchmark ``.npz`` format (Cora-ML, Citeseer, Cora).

Returns a PyG ``Data`` with an undirected, self-loop-free ``edge_index``, row-normalized sparse features and labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import LargestConnectedComponents
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

NPZ_FOLDER = Path("datasets") / "gnn_benchmark_npz"  # inside the shared folder

# The two layouts of the format: shchur/gnn-benchmark writes flat keys (``adj_data``), the newer
# SparseGraph files (cora_ml.npz) write dotted keys (``adj_matrix.data``).
_LAYOUTS = {"adj_data": ("adj_", "attr_"), "adj_matrix.data": ("adj_matrix.", "attr_matrix.")}


class NpzGraphError(ValueError):
    """An ``.npz`` file is missing or is not a gnn-benchmark graph."""


def npz_path(name_or_path: str | Path, folder: Path | None = None) -> Path:
    """A file path as given, or a bare name (``"cora_ml"``) resolved in ``folder`` (the data sets' folder, e.g.
    ``<shared>/datasets/gnn_benchmark_npz``)."""
    path = Path(name_or_path).expanduser()
    if path.suffix != ".npz":
        if folder is None:
            raise NpzGraphError(f"{name_or_path!r} is a bare name; pass a .npz file path, or the folder to find it in")
        path = Path(folder) / f"{name_or_path}.npz"
    if not path.is_file():
        raise NpzGraphError(
            f"{path}: no such .npz graph; pass a file path or a name of a file in {folder} "
            "(set GRAPHREC_SHARED_DIR if the shared folder lives elsewhere)."
        )
    return path


def _csr(archive: np.lib.npyio.NpzFile, prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    data, indices, indptr, shape = (archive[prefix + key] for key in ("data", "indices", "indptr", "shape"))
    return data, indices.astype(np.int64), indptr.astype(np.int64), (int(shape[0]), int(shape[1]))


def _row_normalized_csr(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]) -> Tensor:
    """Features as a float32 sparse CSR tensor with rows summing to 1 (empty rows stay 0), as the paper's code."""
    values = torch.from_numpy(data.astype(np.float32))
    crow = torch.from_numpy(indptr)
    row_sums = torch.zeros(shape[0]).index_add_(0, torch.repeat_interleave(torch.arange(shape[0]), crow.diff()), values)
    inverse = torch.where(row_sums > 0, 1.0 / row_sums, torch.zeros_like(row_sums))
    values = values * torch.repeat_interleave(inverse, crow.diff())
    return torch.sparse_csr_tensor(crow, torch.from_numpy(indices), values, shape)


def load_npz_graph(name_or_path: str | Path, largest_component: bool = False, folder: Path | None = None) -> Data:
    """Reads a gnn-benchmark ``.npz`` graph (either key layout) into a PyG ``Data``.

    The stored adjacency is directed in some files (citeseer also stores 124 self-loops), so it is
    symmetrized and self-loops are dropped; edge weights are ignored (every edge counts once). The
    whole graph is kept by default: the RawlsGCN authors' loader takes the stored graph as it is (no
    component extraction), and with the whole graph our GCN reproduces their code's numbers on these
    files. ``largest_component=True`` keeps only the largest connected component.

    Args:
        name_or_path: a path to an ``.npz`` file, or a bare name such as ``"cora_ml"`` or ``"citeseer"``.
        largest_component: keep only the largest connected component (default: ``False``).
        folder: where bare names are found (default: ``None``, paths only).

    Returns:
        ``Data`` with ``x`` (float32 sparse CSR ``(N, F)``, rows summing to 1), ``y`` (int64 ``(N,)``),
        ``edge_index`` (int64 ``(2, 2E)``, both directions, sorted, no self-loops) and ``num_nodes``.
    """
    path = npz_path(name_or_path, folder)
    # allow_pickle stays off: the SparseGraph files also hold object arrays (metadata = None) that are never read.
    with np.load(path) as archive:
        layout = next((_LAYOUTS[key] for key in _LAYOUTS if key in archive.files), None)
        if layout is None or "labels" not in archive.files:
            raise NpzGraphError(
                f"{path}: not a gnn-benchmark graph; expected keys adj_data/adj_indices/adj_indptr/adj_shape "
                f"(or adj_matrix.*), attr_* and labels, found {sorted(archive.files)}."
            )
        adj_prefix, attr_prefix = layout
        _, adj_indices, adj_indptr, adj_shape = _csr(archive, adj_prefix)
        x = _row_normalized_csr(*_csr(archive, attr_prefix))
        y = torch.from_numpy(archive["labels"].astype(np.int64))
    num_nodes = adj_shape[0]
    if adj_shape != (num_nodes, num_nodes) or x.size(0) != num_nodes or y.numel() != num_nodes:
        raise NpzGraphError(
            f"{path}: inconsistent sizes: adjacency {adj_shape}, features {tuple(x.shape)}, labels {y.numel()}; "
            "each must have one row per node."
        )
    row = torch.repeat_interleave(torch.arange(num_nodes), torch.from_numpy(adj_indptr).diff())
    edge_index, _ = remove_self_loops(torch.stack([row, torch.from_numpy(adj_indices)]))
    edge_index = coalesce(to_undirected(edge_index, num_nodes=num_nodes), num_nodes=num_nodes)
    if not largest_component:
        return Data(x=x, y=y, edge_index=edge_index, num_nodes=num_nodes)
    # The transform's boolean indexing does not support sparse x, so it subsets a node-id column instead.
    kept = LargestConnectedComponents()(Data(edge_index=edge_index, y=y, node_id=torch.arange(num_nodes)))
    x = x.to_sparse_coo().index_select(0, kept.node_id).coalesce().to_sparse_csr()
    return Data(x=x, y=kept.y, edge_index=kept.edge_index, num_nodes=kept.num_nodes)
