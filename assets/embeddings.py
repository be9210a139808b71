"""Embeddings stage: publish the champion model's user and item vectors to the feature store, keyed by raw ids, with
lineage (parent = the version promoted so far), model name, data fingerprint, code version and metrics; then promote it.
"""

import duckdb
from dagster import AssetExecutionContext, MaterializeResult, asset

from assets.champion import CHAMPION
from assets.common import AFTER_UPSTREAM_PASSES, load_tensors, read_json
from assets.recommenders import RECOMMENDERS
from assets.training import ModelArtifacts
from feature_store import VersionMeta
from orchestration.resources import ArtifactStore, FeatureStoreResource, Warehouse
from warehouse.id_maps import load_id_map

CODE_VERSION = "publish-2"


class EmbeddingIdMismatchError(ValueError):
    """The id maps do not cover the embedding rows (the maps must be append-only and dense)."""


def _raw_ids(con: duckdb.DuckDBPyConnection, entity: str, rows: int) -> list[str]:
    """Raw ids of dense indices 0..rows-1; ids appended after training (higher indices) have no vector yet."""
    id_map = load_id_map(con, entity).head(rows)
    if id_map.height != rows or id_map["idx"].to_list() != list(range(rows)):
        raise EmbeddingIdMismatchError(
            f"{entity}_index has no dense indices 0..{rows - 1} for the {rows} trained {entity} vectors; the id map "
            "was rebuilt since training: rematerialize training_graph and everything downstream."
        )
    return id_map["raw_id"].to_list()


@asset(group_name="embeddings", kinds={"duckdb", "parquet"}, code_version=CODE_VERSION,
       deps=["champion_model", *RECOMMENDERS.values(), "id_maps"], automation_condition=AFTER_UPSTREAM_PASSES)
def published_embeddings(context: AssetExecutionContext, warehouse: Warehouse, artifacts: ArtifactStore,
                         feature_store: FeatureStoreResource) -> MaterializeResult:
    """The champion model's vectors published as a feature-store version keyed by raw id, and promoted."""
    champion = read_json(artifacts.path(*CHAMPION))
    files = ModelArtifacts(champion["model"])
    vectors = load_tensors(artifacts.path(*files.embeddings))
    record = read_json(artifacts.path(*files.record))
    with warehouse.connection() as con:
        user_ids = _raw_ids(con, "user", vectors["user_emb"].size(0))
        item_ids = _raw_ids(con, "item", vectors["item_emb"].size(0))
    store = feature_store.store()
    parent = store.promoted_version()
    meta = VersionMeta(
        model=record["model"], parent_id=parent.version_id if parent else None, config=record["config"],
        data_fingerprint=record["data_fingerprint"], code_version=record["code_version"], metrics=champion["metrics"],
    )
    version_id = store.publish(meta, user_ids, vectors["user_emb"], item_ids, vectors["item_emb"])
    promoted = store.promote(version_id)
    context.log.info(f"published and promoted {meta.model} as {version_id} (parent {meta.parent_id})")
    return MaterializeResult(metadata={
        "model": meta.model, "version_id": version_id, "promoted_version": promoted.version_id,
        "parent_version": meta.parent_id or "",
        "users": len(user_ids), "items": len(item_ids), "dim": int(vectors["user_emb"].size(1)),
        "versions_total": len(store.list_versions()),
    })
