"""Top-k items by inner product: a usearch HNSW index (keys = item row positions) built at publish
time for large item sets, and exact ranking over every item for small ones; scores are always exact."""

from __future__ import annotations

import numpy as np
from usearch.index import DEFAULT_CONNECTIVITY, DEFAULT_EXPANSION_ADD, Index


def build_index(items: np.ndarray, path: str, connectivity: int = DEFAULT_CONNECTIVITY,
                expansion_add: int = DEFAULT_EXPANSION_ADD) -> None:
    """Build an inner-product HNSW index over the rows of `items` (n x dim, float32) and save it."""
    index = Index(ndim=items.shape[1], metric="ip", dtype="f32",
                  connectivity=connectivity, expansion_add=expansion_add)
    index.add(np.arange(len(items), dtype=np.uint64), items)
    index.save(path)


def load_index(path: str, expansion_search: int) -> Index:
    """Memory-map a saved index (read-only) and set its search breadth (HNSW "ef")."""
    index = Index.restore(path, view=True)
    index.expansion_search = expansion_search
    return index


def top_k(items: np.ndarray, query: np.ndarray, k: int, exclude_rows: np.ndarray,
          index: Index | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The `k` rows of `items` with the largest inner product with `query`, best first.

    With `index` None every row is scored (exact); otherwise the index proposes `k + len(exclude_rows)`
    candidates. Rows in `exclude_rows` are never returned; equal scores are ordered by row position.

    Shapes: items (n, dim) float32, query (dim,) -> rows (<= k,) int64, scores (<= k,) float32.
    """
    if index is None:
        rows = np.arange(len(items))
        scores = items @ query
    else:
        rows = index.search(query, count=k + len(exclude_rows)).keys.astype(np.int64)
        # Rescored with numpy: usearch reports 1 - score, which loses float32 precision.
        scores = items[rows] @ query
    keep = ~np.isin(rows, exclude_rows)
    rows, scores = rows[keep], scores[keep]
    if len(rows) > k:
        shortlist = np.argpartition(-scores, k - 1)[:k]
        rows, scores = rows[shortlist], scores[shortlist]
    order = np.lexsort((rows, -scores))
    return rows[order], scores[order]
