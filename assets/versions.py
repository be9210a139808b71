"""Feature-store versions as tensors aligned to the warehouse's dense ids: what training needs to stay compatible
with the deployed version, and what the compatibility check compares a candidate with.

The id maps are append-only, so a version published when there were ``n`` users holds the raw ids of dense
indices ``0 .. n − 1``: its row ``k`` is the entity of dense index ``k`` today.
"""

import duckdb
import torch

from feature_store import FeatureStore
from warehouse.id_maps import load_id_map


class EmbeddingIdMismatchError(ValueError):
    """The id maps do not cover the embedding rows (the maps must be append-only and dense)."""


def dense_raw_ids(con: duckdb.DuckDBPyConnection, entity: str, rows: int) -> list[str]:
    """Raw ids of dense indices ``0 .. rows − 1``; ids appended after training (higher indices) have no vector."""
    id_map = load_id_map(con, entity).head(rows)
    if id_map.height != rows or id_map["idx"].to_list() != list(range(rows)):
        raise EmbeddingIdMismatchError(
            f"{entity}_index has no dense indices 0..{rows - 1} for the {rows} trained {entity} vectors; the id map "
            "was rebuilt since training: rematerialize training_graph and everything downstream."
        )
    return id_map["raw_id"].to_list()


def version_vectors(store: FeatureStore, con: duckdb.DuckDBPyConnection,
                    version_id: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A version's ``(user_emb, item_emb)`` with row ``k`` = dense index ``k`` (rows beyond the version's ids are
    absent: the compatibility losses and report treat them as entities it never saw)."""
    info = store.get_version(version_id)
    users = store.read_vectors("user", dense_raw_ids(con, "user", info.n_users), version_id)
    items = store.read_vectors("item", dense_raw_ids(con, "item", info.n_items), version_id)
    return torch.from_numpy(users), torch.from_numpy(items)
