"""On-disk layout of one embedding version folder: users.parquet, items.parquet, items.usearch and
version.json; durable (fsynced) writing of a staging folder, and lazy read access to a published one."""

from __future__ import annotations

import os
from dataclasses import asdict
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
from usearch.index import Index

from feature_store.ann import build_index, load_index
from feature_store.meta import VersionInfo, to_json
from feature_store.vectors import EntityVectors, write_vectors

USERS_FILE = "users.parquet"
ITEMS_FILE = "items.parquet"
INDEX_FILE = "items.usearch"
META_FILE = "version.json"
STAGING_PREFIX = ".staging-"
FORMAT_VERSION = 1


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (new or renamed files) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    fsync_dir(folder)


def write_version_files(folder: Path, info: VersionInfo, user_ids: pa.Array, users: np.ndarray,
                        item_ids: pa.Array, items: np.ndarray, ann: dict[str, int]) -> None:
    """Write every file of a version into the new `folder` and fsync them.

    `info` is written to version.json without its status (the registry owns statuses);
    `ann` holds the usearch build parameters (connectivity, expansion_add).
    """
    folder.mkdir()
    write_vectors(folder / USERS_FILE, user_ids, users)
    write_vectors(folder / ITEMS_FILE, item_ids, items)
    build_index(items, str(folder / INDEX_FILE), **ann)
    record = {key: value for key, value in asdict(info).items() if key not in ("status", "promoted_at")}
    record.update(created_at=info.created_at.isoformat(), format_version=FORMAT_VERSION,
                  ann={"library": "usearch", "metric": "ip", "dtype": "f32", "keys": "item row", **ann})
    (folder / META_FILE).write_text(to_json(record, META_FILE, indent=2))
    _fsync_tree(folder)


class VersionData:
    """Read access to a published version folder; each file is loaded on first use."""

    def __init__(self, folder: Path, expansion_search: int) -> None:
        self.folder = folder
        self.expansion_search = expansion_search

    @cached_property
    def users(self) -> EntityVectors:
        """User ids and vectors."""
        return EntityVectors(self.folder / USERS_FILE, "user")

    @cached_property
    def items(self) -> EntityVectors:
        """Item ids and vectors."""
        return EntityVectors(self.folder / ITEMS_FILE, "item")

    @cached_property
    def index(self) -> Index:
        """The item ANN index (memory-mapped)."""
        return load_index(str(self.folder / INDEX_FILE), self.expansion_search)

    def entity(self, entity: str) -> EntityVectors:
        """Vectors of "user" or "item"."""
        return self.users if entity == "user" else self.items
