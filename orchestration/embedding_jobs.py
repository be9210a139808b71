"""Operator jobs on the feature store, launched from the UI with typed config: `promote_version`,
`rollback_embeddings`, `retire_version` and `gc_feature_store`. Each is one thin op over a FeatureStore call.

A change of the served version is recorded as a materialization of published_embeddings, any other change as an
observation, each with the versions table, so the asset page always shows the store as it is now.
"""

from dagster import (
    AssetMaterialization,
    AssetObservation,
    Config,
    GraphDefinition,
    JobDefinition,
    OpDefinition,
    OpExecutionContext,
    op,
)
from pydantic import Field

from feature_store import FeatureStore, VersionInfo
from orchestration.resources import FeatureStoreResource
from orchestration.version_table import versions_table

ASSET = "published_embeddings"
OPERATOR_TAGS = {"graphrec/kind": "operator"}


class UngatedPromotionError(RuntimeError):
    """A version that never passed the compatibility gate and was never served was asked to be promoted."""


class PromoteVersionConfig(Config):
    """Which version to serve."""

    version_id: str = Field(description="Version to promote (see the versions table of published_embeddings).")
    force: bool = Field(default=False, description="Promote even a version whose compatibility gate did not pass.")


class RetireVersionConfig(Config):
    """Which candidate to retire."""

    version_id: str = Field(description="Candidate version to retire (the served one cannot be).")


class GcFeatureStoreConfig(Config):
    """How old an unfinished publish must be before its folder is removed."""

    min_age_s: float = Field(default=3600.0, description="Staging folders younger than this are left (a publish "
                                                         "may still be writing them); 0 when none can be running.")


def _served_changed(context: OpExecutionContext, store: FeatureStore, served: VersionInfo, action: str) -> None:
    context.log.info(f"{action}: {served.version_id} ({served.model}) is served")
    context.log_event(AssetMaterialization(ASSET, description=action, metadata={
        "promoted_version": served.version_id, "model": served.model, "action": action,
        "versions": versions_table(store),
    }))


@op(description="Serves one version; the previously served one is retired.")
def promote_version_op(context: OpExecutionContext, config: PromoteVersionConfig,
                       feature_store: FeatureStoreResource) -> None:
    """Promote `config.version_id`; a version never served needs a passing compatibility gate unless `force`."""
    store = feature_store.store()
    info = store.get_version(config.version_id)
    gate = info.compatibility.get("gate", {})
    # A version that was served before was gated then (or was the first); only new candidates are checked here.
    if not (config.force or gate.get("passed") or info.promoted_at is not None):
        raise UngatedPromotionError(
            f"{config.version_id!r} has not passed the compatibility gate ({gate.get('failures') or 'never run'}); "
            "set force: true to serve it anyway"
        )
    _served_changed(context, store, store.promote(config.version_id), "promote")


@op(description="Undoes the last promotion: the served version is retired and the one before it served again.")
def rollback_embeddings_op(context: OpExecutionContext, feature_store: FeatureStoreResource) -> None:
    """Roll the feature store back by one promotion."""
    store = feature_store.store()
    _served_changed(context, store, store.rollback(), "rollback")


@op(description="Retires a candidate so it can never be served by mistake.")
def retire_version_op(context: OpExecutionContext, config: RetireVersionConfig,
                      feature_store: FeatureStoreResource) -> None:
    """Retire the candidate `config.version_id`."""
    store = feature_store.store()
    info = store.retire(config.version_id)
    context.log.info(f"{info.version_id} is {info.status}")
    context.log_event(AssetObservation(ASSET, description="retire", metadata={
        "retired_version": info.version_id, "versions": versions_table(store)}))


@op(description="Removes folders left by crashed publishes (unregistered versions, old staging folders).")
def gc_feature_store_op(context: OpExecutionContext, config: GcFeatureStoreConfig,
                        feature_store: FeatureStoreResource) -> None:
    """Garbage-collect the feature store's folder."""
    store = feature_store.store()
    removed = store.gc(min_age_s=config.min_age_s)
    context.log.info(f"removed {len(removed)} folders: {[path.name for path in removed]}")
    context.log_event(AssetObservation(ASSET, description="gc", metadata={
        "folders_removed": len(removed), "removed": ", ".join(path.name for path in removed) or "none",
        "versions": versions_table(store)}))


def _one_op_job(name: str, node: OpDefinition, description: str) -> JobDefinition:
    """A job of the one operator op ``node``, named for the UI's job list."""
    return GraphDefinition(name=name, node_defs=[node]).to_job(tags=OPERATOR_TAGS, description=description)


promote_version = _one_op_job("promote_version", promote_version_op,
                              "Serve one embedding version (typed: version_id).")
rollback_embeddings = _one_op_job("rollback_embeddings", rollback_embeddings_op,
                                  "Undo the last promotion: serve the previously served embedding version again.")
retire_version = _one_op_job("retire_version", retire_version_op, "Retire a candidate embedding version.")
gc_feature_store = _one_op_job("gc_feature_store", gc_feature_store_op,
                               "Remove the feature store folders that crashed publishes left behind.")


OPERATOR_JOBS = [promote_version, rollback_embeddings, retire_version, gc_feature_store]
