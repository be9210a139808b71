"""Promotion, rollback and retirement: exactly one promoted version, rollback undoing promotions in
order, an audit log of every change, and pinned readers unaffected by the promoted pointer."""

import numpy as np
import pytest

from feature_store import (
    FeatureStore,
    InvalidTransitionError,
    NoPromotedVersionError,
    PromotionConflictError,
    VersionMeta,
    VersionNotFoundError,
)


def _publish(store, make_embeddings, version_id, seed):
    data = make_embeddings(seed=seed)
    store.publish(VersionMeta(model="lightgcn", version_id=version_id), **data)
    return data


def _statuses(store):
    return {v.version_id: v.status for v in store.list_versions()}


def test_rollback_restores_the_previously_promoted_version(store, make_embeddings):
    first = _publish(store, make_embeddings, "v1", seed=1)
    store.promote("v1")
    second = _publish(store, make_embeddings, "v2", seed=2)
    store.promote("v2")
    np.testing.assert_array_equal(store.read_vectors("user", ["u5"]), second["user_vectors"][[5]])

    restored = store.rollback()

    assert restored.version_id == "v1" and store.promoted_version().version_id == "v1"
    assert _statuses(store) == {"v1": "promoted", "v2": "retired"}
    np.testing.assert_array_equal(store.read_vectors("user", ["u5"]), first["user_vectors"][[5]])
    assert [(e.action, e.version_id, e.detail) for e in store.events() if e.action != "publish"] == [
        ("promote", "v1", {"previous": None}),
        ("promote", "v2", {"previous": "v1"}),
        ("rollback", "v1", {"retired": "v2"}),
    ]


def test_a_promotion_expecting_another_live_version_is_refused_and_changes_nothing(store, make_embeddings):
    """Two runs gated candidates v2 and v3 against live v1; v2 is promoted first, so v3's promotion, which expects
    v1, is refused with a message that names the conflict, and v2 stays live."""
    for seed, version_id in enumerate(["v1", "v2", "v3"]):
        _publish(store, make_embeddings, version_id, seed)
    store.promote("v1", expected_live=None)
    store.promote("v2", expected_live="v1")
    with pytest.raises(PromotionConflictError, match="conflicting promotion: 'v3' was gated against live version "
                                                     "'v1', but 'v2' has been promoted since"):
        store.promote("v3", expected_live="v1")
    assert _statuses(store) == {"v1": "retired", "v2": "promoted", "v3": "candidate"}
    assert store.promote("v2", expected_live="v1").status == "promoted"  # already live: nothing to conflict with
    with pytest.raises(PromotionConflictError, match="gated against live version None"):
        store.promote("v3", expected_live=None)


def test_successive_rollbacks_undo_promotions_in_reverse_order(store, make_embeddings):
    for seed, version_id in enumerate(["v1", "v2", "v3"]):
        _publish(store, make_embeddings, version_id, seed)
        store.promote(version_id)

    assert store.rollback().version_id == "v2"
    assert store.rollback().version_id == "v1"
    assert _statuses(store) == {"v1": "promoted", "v2": "retired", "v3": "retired"}
    with pytest.raises(InvalidTransitionError, match="'v1' is the only promotion left in the history"):
        store.rollback()
    assert store.promoted_version().version_id == "v1"


def test_promoting_retires_the_previous_and_keeps_one_promoted(store, make_embeddings):
    for seed, version_id in enumerate(["v1", "v2", "v3"]):
        _publish(store, make_embeddings, version_id, seed)
    store.promote("v1")
    store.promote("v2")

    assert _statuses(store) == {"v1": "retired", "v2": "promoted", "v3": "candidate"}
    assert store.promote("v2").status == "promoted"  # promoting the promoted one changes nothing
    assert [e.action for e in store.events()].count("promote") == 2
    store.promote("v1")  # a retired version can be re-promoted explicitly
    assert _statuses(store) == {"v1": "promoted", "v2": "retired", "v3": "candidate"}
    assert store.rollback().version_id == "v2"
    assert store.get_version("v2").promoted_at > store.get_version("v1").promoted_at


def test_retire_accepts_candidates_and_refuses_the_promoted_version(store, make_embeddings):
    _publish(store, make_embeddings, "v1", seed=1)
    _publish(store, make_embeddings, "v2", seed=2)
    store.promote("v1")

    assert store.retire("v2").status == "retired"
    assert store.retire("v2").status == "retired"
    with pytest.raises(InvalidTransitionError, match="'v1' is the promoted version and cannot be retired"):
        store.retire("v1")
    with pytest.raises(VersionNotFoundError, match="no version 'v9'"):
        store.promote("v9")
    assert [e.action for e in store.events()] == ["publish", "publish", "promote", "retire"]


def test_reads_without_a_promoted_version_raise(store, make_embeddings):
    _publish(store, make_embeddings, "v1", seed=1)

    assert store.promoted_version() is None
    with pytest.raises(NoPromotedVersionError, match="no version of .* is promoted yet"):
        store.read_vectors("item", ["i1"])
    with pytest.raises(InvalidTransitionError, match="no version is promoted"):
        store.rollback()


def test_pinned_version_stays_readable_after_a_new_promotion(store, make_embeddings):
    first = _publish(store, make_embeddings, "v1", seed=1)
    store.promote("v1")
    pinned_top = store.top_k_items("u2", k=5, version_id="v1")
    second = _publish(store, make_embeddings, "v2", seed=2)
    store.promote("v2")

    assert store.get_version("v1").status == "retired"
    np.testing.assert_array_equal(store.read_vectors("item", ["i3", "i0"], "v1"), first["item_vectors"][[3, 0]])
    np.testing.assert_array_equal(store.read_vectors("item", ["i3", "i0"]), second["item_vectors"][[3, 0]])
    assert store.top_k_items("u2", k=5, version_id="v1") == pinned_top


def test_promotion_in_one_store_object_is_seen_by_another(store, make_embeddings):
    _publish(store, make_embeddings, "v1", seed=1)
    second = _publish(store, make_embeddings, "v2", seed=2)
    reader = FeatureStore(store.root)
    store.promote("v1")
    reader.read_vectors("user", ["u1"])  # loads and caches v1 in the reader

    store.promote("v2")

    np.testing.assert_array_equal(reader.read_vectors("user", ["u1"]), second["user_vectors"][[1]])
