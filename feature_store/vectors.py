"""Id-keyed embedding matrices: input validation, and Parquet storage with columns `id` (Utf8) and
`vector` (fixed-size list of float32), one file per entity (users, items)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from feature_store.errors import InvalidVectorsError, UnknownIdsError

_SHOW = 5  # how many offending ids or rows an error message lists


def as_matrix(vectors: Any, name: str) -> np.ndarray:
    """Convert a numpy array or torch tensor (rows x dim) to a C-contiguous float32 matrix."""
    # Duck-typed torch support: importing torch here would cost every reader a 2 s import.
    if hasattr(vectors, "detach"):
        vectors = vectors.detach().cpu().numpy()
    matrix = np.asarray(vectors)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise InvalidVectorsError(f"{name} must be a 2-D matrix (rows x dim, dim > 0), got shape {matrix.shape}")
    if not (np.issubdtype(matrix.dtype, np.floating) or np.issubdtype(matrix.dtype, np.integer)):
        raise InvalidVectorsError(f"{name} must hold real numbers, got dtype {matrix.dtype}")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, which validate() reports by row
        return np.ascontiguousarray(matrix, dtype=np.float32)


def validate(entity: str, ids: Sequence[str] | np.ndarray | pa.Array, matrix: np.ndarray) -> pa.Array:
    """Check one entity's ids and float32 matrix for publishing; return the ids as an Arrow string array.

    Raises `InvalidVectorsError` for: ids that are not strings, null or duplicate ids, no rows,
    a row count different from the number of ids, and NaN or infinite values (after float32 casting).
    """
    try:
        id_array = pa.array(ids, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid) as error:
        raise InvalidVectorsError(
            f"{entity}_ids must be strings ({error}); convert raw ids with str() before publishing"
        ) from error
    if len(id_array) == 0:
        raise InvalidVectorsError(f"{entity}_ids is empty: a version needs at least one {entity} vector")
    if id_array.null_count:
        rows = pc.indices_nonzero(id_array.is_null()).to_pylist()[:_SHOW]
        raise InvalidVectorsError(f"{entity}_ids has {id_array.null_count} null id(s), at rows {rows}")
    if len(id_array) != matrix.shape[0]:
        raise InvalidVectorsError(
            f"{entity}_vectors has {matrix.shape[0]} rows but {entity}_ids has {len(id_array)} ids: "
            "pass one vector row per id, in the same order"
        )
    counts = pc.value_counts(id_array)
    duplicated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    if len(duplicated):
        raise InvalidVectorsError(
            f"{entity}_ids has {len(duplicated)} duplicated id(s), e.g. {duplicated.to_pylist()[:_SHOW]}: "
            "each id must appear once"
        )
    bad_rows = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(bad_rows):
        shown = {int(row): id_array[int(row)].as_py() for row in bad_rows[:_SHOW]}
        raise InvalidVectorsError(
            f"{entity}_vectors has NaN or infinite values (or values beyond float32 range) in "
            f"{len(bad_rows)} row(s); first rows and ids: {shown}"
        )
    return id_array


def write_vectors(path: Path, ids: pa.Array, matrix: np.ndarray) -> None:
    """Write ids and their float32 vectors to a Parquet file."""
    vector = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])
    pq.write_table(pa.table({"id": ids, "vector": vector}), path)


class EntityVectors:
    """The ids and vectors of one entity in one version, read from Parquet, with id -> row lookup."""

    def __init__(self, path: Path, entity: str) -> None:
        table = pq.read_table(path)
        vector = table.column("vector").combine_chunks()
        self.entity = entity
        self.ids: list[str] = table.column("id").to_pylist()
        self.matrix: np.ndarray = vector.flatten().to_numpy().reshape(len(vector), vector.type.list_size)

    @cached_property
    def _row_of(self) -> dict[str, int]:
        # Built once per loaded version; a per-call Arrow `index_in` would rehash every id each time.
        return {id_: row for row, id_ in enumerate(self.ids)}

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """Row positions of `ids`; raises `UnknownIdsError` naming a few unknown ones."""
        unknown = [id_ for id_ in ids if id_ not in self._row_of]
        if unknown:
            raise UnknownIdsError(
                f"{len(unknown)} of {len(ids)} {self.entity} id(s) are not in this version "
                f"(e.g. {unknown[:_SHOW]}); it holds {len(self.ids)} {self.entity}s"
            )
        return np.fromiter((self._row_of[id_] for id_ in ids), dtype=np.int64, count=len(ids))

    def known_rows(self, ids: Sequence[str]) -> np.ndarray:
        """Row positions of those `ids` that this version holds (unknown ones are skipped)."""
        return np.array([self._row_of[id_] for id_ in ids if id_ in self._row_of], dtype=np.int64)
