"""The real pipeline in a folder, for the reliability suite: resources under one root, in-process
materializations with tiny training, what a run did (checks failed, step errors), and snapshots of the promoted
embedding version that tell whether it stayed intact.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult, materialize

from feature_store import FeatureStore
from feature_store.layout import ITEMS_FILE, USERS_FILE
from orchestration.definitions import defs
from orchestration.resources import ArtifactStore, Compute, FeatureStoreResource, ValidationRules, Warehouse

ALL = [*defs.assets, *defs.asset_checks]
# A full retrain in seconds on 2 cores, yet long enough that LightGCN beats the baselines on validation: the
# blocking champion check would otherwise (rightly) stop every baseline run before anything is published.
TRAINING = {"epochs": 30, "eval_every": 3, "lr": 0.01, "batch_size": 1024}
# Per model on top of TRAINING: a shaDow epoch costs about ten of LightGCN's here (a subgraph per node of a triple).
MODEL_TRAINING = {"shadow_model": {"epochs": 1}}
# The suite reports every failure itself; Dagster's console log would bury the table under expected tracebacks.
QUIET = {"console": {"config": {"log_level": "CRITICAL"}}}
# The blocking check that promotes or retires a candidate version.
GATE = "compatibility_report_check"
TRAINING_ASSETS = sorted(spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()
                         if spec.group_name == "training")


def resources(root: Path) -> dict:
    """graphrec's resources with everything under `root`."""
    return {
        "warehouse": Warehouse(path=str(root / "warehouse.duckdb")),
        "artifacts": ArtifactStore(root=str(root / "artifacts")),
        "compute": Compute(device="cpu"),
        "feature_store": FeatureStoreResource(root=str(root / "feature_store")),
        "validation": ValidationRules(),
    }


def config_fields(asset: str) -> set[str]:
    """The run-config fields that one asset of the Definitions accepts."""
    return set(defs.resolve_assets_def(asset).op.config_schema.config_type.fields)


def run_config(ingest: dict[str, Any] | None = None, training: dict[str, Any] | None = TRAINING) -> dict:
    """Run config: the ingest's source (default: the demo) and the same training settings for every model (None
    when the selection trains nothing).

    Each model gets only the settings its config has: Dagster rejects unknown keys, and the models differ (shaDow
    has no evaluation schedule, for one).
    """
    ops = {} if training is None else {
        name: {"config": {k: v for k, v in {**training, **MODEL_TRAINING.get(name, {})}.items()
                          if k in config_fields(name)}}
        for name in TRAINING_ASSETS}
    if ingest is not None:
        ops["ingest_source"] = {"config": ingest}
    return {"ops": ops, "loggers": QUIET}


def files_source(path: Path) -> dict[str, str]:
    """Ingest config that reads one landing file."""
    return {"source": "files", "path": str(path)}


@dataclass
class RunOutcome:
    """What a materialization did: success, the blocking checks that failed (with their messages), every check's
    description (passed or not), the steps that raised (innermost error class and message) and the assets it
    materialized."""

    success: bool
    failed_checks: dict[str, str] = field(default_factory=dict)
    check_descriptions: dict[str, str] = field(default_factory=dict)
    step_errors: list[dict[str, str]] = field(default_factory=list)
    materialized: list[str] = field(default_factory=list)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)


def stopped_by_gate(outcome: RunOutcome) -> bool:
    """The run failed only because the compatibility gate retired its candidate: a verdict on the retrained model
    (its users do not rank the promoted items better than the promoted version's own users), not an error."""
    return (not outcome.success and set(outcome.failed_checks) == {GATE}
            and all(error["step"].endswith(GATE) for error in outcome.step_errors))


def outcome_of(result: ExecuteInProcessResult) -> RunOutcome:
    """The RunOutcome of an in-process result."""
    errors = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        error = event.step_failure_data.error
        # Dagster wraps the exception that the asset raised; that one (not its own causes) says what happened.
        while error.cause is not None and error.cls_name.startswith("Dagster"):
            error = error.cause
        qualified, _, message = error.message.strip().partition(": ")  # "package.module.Class: message"
        message = message if qualified.endswith(error.cls_name) else error.message.strip()
        errors.append({"step": event.step_key, "error": error.cls_name, "message": message})
    # Checks say why they failed under "message", or, for the compatibility gate, "failures".
    failed = {e.check_name: str(next((e.metadata[key].value for key in ("message", "failures") if key in e.metadata),
                                     e.description))
              for e in result.get_asset_check_evaluations() if not e.passed}
    materializations = result.get_asset_materialization_events()
    return RunOutcome(
        success=result.success, failed_checks=failed, step_errors=errors,
        check_descriptions={e.check_name: e.description or "" for e in result.get_asset_check_evaluations()},
        materialized=sorted({e.asset_key.to_user_string() for e in materializations}),
        metadata={e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()
                                                 if isinstance(v.value, (int, float, str))}
                  for e in materializations},
    )


def run(root: Path, selection: AssetSelection | list[str], config: dict,
        instance: DagsterInstance | None = None) -> RunOutcome:
    """Materialize `selection` of every graphrec asset and check in-process, with resources under `root`, recorded
    in `instance` (default: an ephemeral one)."""
    result = materialize(ALL, selection=selection, resources=resources(root), run_config=config,
                         instance=instance or DagsterInstance.ephemeral(), raise_on_error=False)
    return outcome_of(result)


def copy_root(source: Path, target: Path) -> Path:
    """A private copy of a pipeline folder (warehouse file, artifacts, feature store), for one case."""
    shutil.copytree(source, target)
    return target


@dataclass
class VersionSnapshot:
    """The promoted version as read back: its id, how many versions exist, and every id's vector."""

    version_id: str | None
    versions: int
    user_ids: list[str]
    item_ids: list[str]
    users: np.ndarray
    items: np.ndarray

    def same_vectors(self, other: VersionSnapshot) -> bool:
        """Same ids in the same order with bit-identical vectors."""
        return (self.user_ids == other.user_ids and self.item_ids == other.item_ids
                and np.array_equal(self.users, other.users) and np.array_equal(self.items, other.items))


def snapshot(root: Path, version_id: str | None = None) -> VersionSnapshot:
    """Read a version (default: the promoted one) back through the store, every id of it.

    The ids come from the version's Parquet files directly, the vectors through FeatureStore.read_vectors, so a
    version whose files and registry disagree fails here.
    """
    store = FeatureStore(root / "feature_store")
    version_id = version_id or store.promoted_version().version_id
    folder = store.version_dir(version_id)
    user_ids = pq.read_table(folder / USERS_FILE, columns=["id"]).column("id").to_pylist()
    item_ids = pq.read_table(folder / ITEMS_FILE, columns=["id"]).column("id").to_pylist()
    return VersionSnapshot(version_id, len(store.list_versions()), user_ids, item_ids,
                           store.read_vectors("user", user_ids, version_id),
                           store.read_vectors("item", item_ids, version_id))
