"""Promotion through ``published_embeddings`` when another run got there first: a candidate gated against one live
version is not promoted over a version that was promoted since; the run fails with a message that names the
conflict, and the store keeps the version that is live."""

import numpy as np
from dagster import materialize

from assets.common import write_json
from assets.embeddings import CANDIDATE, published_embeddings
from feature_store import VersionMeta


def _publish(store, version_id: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    store.publish(VersionMeta(model="lightgcn", version_id=version_id), [f"u{i}" for i in range(5)],
                  rng.standard_normal((5, 4)), [f"i{j}" for j in range(7)], rng.standard_normal((7, 4)))


def test_a_candidate_gated_against_a_version_that_is_no_longer_live_is_not_promoted(tmp_path, make_resources):
    resources = make_resources(tmp_path)
    store = resources["feature_store"].store()
    for seed, version_id in enumerate(["v1", "v2", "v3"]):
        _publish(store, version_id, seed)
    store.promote("v1")
    # Two runs gated v2 and v3 against live v1; the run of v2 promoted it first.
    for version_id in ("v2", "v3"):
        store.record_compatibility(version_id, {"gate": {"passed": True, "failures": [], "live_version": "v1"}})
    store.promote("v2", expected_live="v1")
    artifacts = resources["artifacts"]
    write_json(artifacts.path(*CANDIDATE), {"version_id": "v3", "model": "lightgcn", "parent_id": "v1",
                                            "unmapped": None})

    result = materialize([published_embeddings], resources=resources, raise_on_error=False)

    assert not result.success
    message = result.failure_data_for_node("published_embeddings").error.cause.message
    assert "conflicting promotion: 'v3' was gated against live version 'v1', but 'v2' has been promoted since" in message
    assert {v.version_id: v.status for v in store.list_versions()} == {
        "v1": "retired", "v2": "promoted", "v3": "candidate"}

    # Gated again against v2 (what the check records when it runs now), v3 is promoted.
    store.record_compatibility("v3", {"gate": {"passed": True, "failures": [], "live_version": "v2"}})
    assert materialize([published_embeddings], resources=resources).success
    assert store.promoted_version().version_id == "v3"
