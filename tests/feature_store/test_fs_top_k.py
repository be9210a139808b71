"""top_k_items against brute-force numpy ranking: identical in exact mode (small item sets), and
recall@10 of at least 0.95 through the usearch index on 20k random items."""

import numpy as np
import pytest

from feature_store import UnknownIdsError, VersionMeta


def _brute_force(data, user, k, exclude=()):
    scores = data["item_vectors"] @ data["user_vectors"][int(user[1:])]
    ranked = np.argsort(-scores, kind="stable")[: k + len(exclude)]
    order = [j for j in ranked if f"i{j}" not in exclude][:k]
    return [f"i{j}" for j in order], scores[order]


def test_exact_mode_equals_brute_force_ranking(store, make_embeddings):
    data = make_embeddings(seed=3, n_users=20, n_items=500, dim=16)
    store.publish(VersionMeta(model="m", version_id="v1"), **data)
    store.promote("v1")

    for user in ["u0", "u7", "u19"]:
        top = store.top_k_items(user, k=20)
        ids, scores = _brute_force(data, user, 20)
        assert [item for item, _ in top] == ids
        np.testing.assert_allclose([score for _, score in top], scores, rtol=1e-6)


def test_excluded_items_are_skipped_and_unknown_ones_ignored(store, make_embeddings):
    data = make_embeddings(seed=4, n_users=5, n_items=200, dim=8)
    store.publish(VersionMeta(model="m", version_id="v1"), **data)
    best = [item for item, _ in store.top_k_items("u1", k=3, version_id="v1")]

    top = store.top_k_items("u1", k=10, version_id="v1", exclude=[*best, "not-an-item"])

    assert [item for item, _ in top] == _brute_force(data, "u1", 10, exclude=best)[0]
    assert len(store.top_k_items("u1", k=500, version_id="v1", exclude=best)) == 197


def test_unknown_user_and_bad_k_raise(store, make_embeddings):
    store.publish(VersionMeta(model="m", version_id="v1"), **make_embeddings(seed=0))

    with pytest.raises(UnknownIdsError, match=r"1 of 1 user id\(s\) are not in this version \(e\.g\. \['ghost'\]\)"):
        store.top_k_items("ghost", version_id="v1")
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        store.top_k_items("u0", k=0, version_id="v1")


def test_ann_mode_recall_at_10_is_at_least_095_on_20k_items(store, make_embeddings):
    data = make_embeddings(seed=5, n_users=100, n_items=20_000, dim=32)
    store.publish(VersionMeta(model="m", version_id="v1"), **data)
    assert store.exact_threshold <= 20_000  # so the queries below go through the usearch index

    hits = 0
    for user in data["user_ids"]:
        approx = {item for item, _ in store.top_k_items(user, k=10, version_id="v1")}
        hits += len(approx.intersection(_brute_force(data, user, 10)[0]))

    assert hits / (10 * len(data["user_ids"])) >= 0.95
