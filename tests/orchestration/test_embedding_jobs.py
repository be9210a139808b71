"""The feature-store operator jobs in process on a real store in a temporary folder: promote, roll back, retire and
garbage-collect change the store as the UI operator expects, and each records the versions table on
published_embeddings.
"""

import numpy as np
import pytest

from feature_store import FeatureStore, VersionMeta
from orchestration.embedding_jobs import gc_feature_store, promote_version, retire_version, rollback_embeddings

COLUMNS = ["version_id", "status", "model", "parent_id", "gate", "created_at", "promoted_at", "dim", "n_users",
           "n_items"]


def _publish(store: FeatureStore, version_id: str, seed: int, gate: bool | None) -> None:
    rng = np.random.default_rng(seed)
    store.publish(VersionMeta(model="lightgcn", version_id=version_id), [f"u{i}" for i in range(5)],
                  rng.standard_normal((5, 4)), [f"i{j}" for j in range(7)], rng.standard_normal((7, 4)))
    if gate is not None:
        store.record_compatibility(version_id, {"gate": {"passed": gate, "failures": [] if gate else ["worse"]}})


@pytest.fixture
def setup(tmp_path, make_resources):
    resources = {"feature_store": make_resources(tmp_path)["feature_store"]}
    store = resources["feature_store"].store()
    _publish(store, "v1", 1, True)
    _publish(store, "v2", 2, True)
    _publish(store, "v3", 3, False)
    return store, resources


def _run(job, resources, config=None):
    op = f"{job.name}_op"
    return job.execute_in_process(run_config={"ops": {op: {"config": config}}} if config else None,
                                  resources=resources, raise_on_error=False)


def _statuses(store: FeatureStore) -> dict[str, str]:
    return {info.version_id: info.status for info in store.list_versions()}


def _versions_table(result, op: str) -> dict[str, tuple[str, str]]:
    event = result.asset_materializations_for_node(op) or result.asset_observations_for_node(op)
    table = event[0].metadata["versions"]
    assert [column.name for column in table.schema.columns] == COLUMNS
    return {r.data["version_id"]: (r.data["status"], r.data["gate"]) for r in table.records}


def test_rollback_after_two_promotions_serves_the_earlier_one(setup):
    store, resources = setup
    assert _run(promote_version, resources, {"version_id": "v1"}).success
    promoted = _run(promote_version, resources, {"version_id": "v2"})
    assert promoted.success and store.promoted_version().version_id == "v2"
    assert _versions_table(promoted, "promote_version_op") == {
        "v1": ("retired", "passed"), "v2": ("promoted", "passed"), "v3": ("candidate", "failed")}

    rolled = _run(rollback_embeddings, resources)
    assert rolled.success and store.promoted_version().version_id == "v1"
    assert _statuses(store) == {"v1": "promoted", "v2": "retired", "v3": "candidate"}
    event = rolled.asset_materializations_for_node("rollback_embeddings_op")[0]
    assert event.asset_key.to_user_string() == "published_embeddings"
    assert event.metadata["promoted_version"].value == "v1"
    # Nothing is left to roll back to: the run fails and the store stays as it is.
    assert not _run(rollback_embeddings, resources).success
    assert store.promoted_version().version_id == "v1"


def test_promote_refuses_an_ungated_candidate_unless_forced(setup):
    store, resources = setup
    refused = _run(promote_version, resources, {"version_id": "v3"})
    assert not refused.success and store.promoted_version() is None
    message = refused.failure_data_for_node("promote_version_op").error.cause.message
    assert "'v3' has not passed the compatibility gate (['worse']); set force: true" in message
    assert _run(promote_version, resources, {"version_id": "v3", "force": True}).success
    assert store.promoted_version().version_id == "v3"


def test_retire_a_candidate_but_never_the_served_version(setup):
    store, resources = setup
    assert _run(promote_version, resources, {"version_id": "v1"}).success
    retired = _run(retire_version, resources, {"version_id": "v2"})
    assert retired.success
    assert _versions_table(retired, "retire_version_op")["v2"] == ("retired", "passed")
    assert not _run(retire_version, resources, {"version_id": "v1"}).success
    assert _statuses(store) == {"v1": "promoted", "v2": "retired", "v3": "candidate"}


def test_gc_removes_only_unregistered_folders(setup):
    store, resources = setup
    (store.versions_dir / "orphan").mkdir()
    (store.versions_dir / ".staging-crashed").mkdir()
    result = _run(gc_feature_store, resources, {"min_age_s": 0.0})
    assert result.success
    observation = result.asset_observations_for_node("gc_feature_store_op")[0]
    assert observation.metadata["folders_removed"].value == 2
    assert sorted(path.name for path in store.versions_dir.iterdir()) == ["v1", "v2", "v3"]
