"""Publishing a version: exact vector round trip, stored metadata and files, lineage, generated ids.
Runs against a real store in a temporary folder (DuckDB registry, Parquet, usearch)."""

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from feature_store import FeatureStore, VersionMeta

META = VersionMeta(model="lightgcn", version_id="v1", config={"dim": 8, "layers": 3, "lr": 0.001},
                   data_fingerprint="sha256:abc", code_version="1.2.0", metrics={"recall@20": 0.125})


def test_read_vectors_returns_published_vectors_exactly(store, make_embeddings):
    data = make_embeddings(seed=0)
    version_id = store.publish(META, **data)

    users = store.read_vectors("user", ["u7", "u0", "u29"], version_id=version_id)
    items = store.read_vectors("item", data["item_ids"][::-1], version_id=version_id)

    assert version_id == "v1"
    assert users.dtype == np.float32 and users.shape == (3, 8)
    np.testing.assert_array_equal(users, data["user_vectors"][[7, 0, 29]])
    np.testing.assert_array_equal(items, data["item_vectors"][::-1])


def test_torch_and_float64_inputs_are_stored_as_float32(store, make_embeddings):
    data = make_embeddings(seed=1)
    users64 = data["user_vectors"].astype(np.float64) + 1e-12  # below float32 resolution
    store.publish(META, data["user_ids"], users64, data["item_ids"], torch.from_numpy(data["item_vectors"]))

    np.testing.assert_array_equal(store.read_vectors("user", data["user_ids"], "v1"), data["user_vectors"])
    np.testing.assert_array_equal(store.read_vectors("item", data["item_ids"], "v1"), data["item_vectors"])


def test_version_metadata_is_registered_and_written_to_version_json(store, make_embeddings):
    store.publish(META, **make_embeddings(seed=0, n_users=30, n_items=40, dim=8))

    info = store.get_version("v1")
    on_disk = json.loads((store.version_dir("v1") / "version.json").read_text())

    assert (info.status, info.model, info.config, info.metrics) == (
        "candidate", "lightgcn", {"dim": 8, "layers": 3, "lr": 0.001}, {"recall@20": 0.125})
    assert (info.data_fingerprint, info.code_version, info.parent_id, info.promoted_at) == (
        "sha256:abc", "1.2.0", None, None)
    assert (info.dim, info.n_users, info.n_items) == (8, 30, 40)
    assert on_disk["config"] == info.config and on_disk["metrics"] == info.metrics
    assert on_disk["n_items"] == 40 and on_disk["ann"]["metric"] == "ip"
    assert "status" not in on_disk  # the registry owns the status


def test_parquet_files_have_utf8_ids_and_fixed_size_float32_vectors(store, make_embeddings):
    store.publish(META, **make_embeddings(seed=0, dim=8))

    folder = store.version_dir("v1")
    schema = pq.read_schema(folder / "users.parquet")

    assert sorted(p.name for p in folder.iterdir()) == [
        "items.parquet", "items.usearch", "users.parquet", "version.json"]
    assert schema.field("id").type == pa.string()
    assert schema.field("vector").type == pa.list_(pa.float32(), 8)


def test_generated_version_ids_sort_by_creation_and_hash_the_content(store, make_embeddings):
    data = make_embeddings(seed=0)
    first = store.publish(VersionMeta(model="lightgcn", config={"lr": 0.1}), **data)
    second = store.publish(VersionMeta(model="lightgcn", config={"lr": 0.1}), **data)
    third = store.publish(VersionMeta(model="lightgcn", config={"lr": 0.2}), **data)

    assert re.fullmatch(r"\d{8}T\d{12}Z-[0-9a-f]{8}", first)
    assert first < second < third
    assert first.split("-")[1] == second.split("-")[1] != third.split("-")[1]
    assert [v.version_id for v in store.list_versions()] == [first, second, third]


def test_lineage_follows_parents_from_the_version_to_the_root(store, make_embeddings):
    data = make_embeddings(seed=0)
    store.publish(VersionMeta(model="m", version_id="a"), **data)
    store.publish(VersionMeta(model="m", version_id="b", parent_id="a"), **data)
    store.publish(VersionMeta(model="m", version_id="c", parent_id="b"), **data)
    store.publish(VersionMeta(model="m", version_id="d", parent_id="a"), **data)

    assert [v.version_id for v in store.lineage("c")] == ["c", "b", "a"]
    assert [v.version_id for v in store.lineage("d")] == ["d", "a"]
    assert [v.version_id for v in store.lineage("a")] == ["a"]


def test_compatibility_report_is_recorded_and_logged(store, make_embeddings):
    store.publish(META, **make_embeddings(seed=0))

    report = {"new_vs_old_recall@20": np.float32(0.375), "old_vs_old_recall@20": 0.25}  # numpy scalars welcome

    info = store.record_compatibility("v1", report)

    assert info.compatibility == {"new_vs_old_recall@20": 0.375, "old_vs_old_recall@20": 0.25}
    assert [(e.action, e.version_id) for e in store.events()] == [("publish", "v1"), ("compatibility", "v1")]


def test_a_second_store_object_on_the_same_folder_sees_the_versions(store, make_embeddings):
    data = make_embeddings(seed=0)
    store.publish(META, **data)

    other = FeatureStore(store.root)

    assert [v.version_id for v in other.list_versions()] == ["v1"]
    np.testing.assert_array_equal(other.read_vectors("user", ["u3"], "v1"), data["user_vectors"][[3]])


def test_unknown_ids_raise_and_name_them(store, make_embeddings):
    store.publish(META, **make_embeddings(seed=0, n_users=30))

    unknown = r"2 of 3 user id\(s\) are not in this version \(e\.g\. \['nobody', 'u30'\]\)"
    with pytest.raises(LookupError, match=unknown):
        store.read_vectors("user", ["u1", "nobody", "u30"], version_id="v1")
    with pytest.raises(LookupError, match="no version 'v9'.*most recent versions: \\['v1'\\]"):
        store.read_vectors("user", ["u1"], version_id="v9")
    with pytest.raises(ValueError, match="entity must be 'user' or 'item', got 'users'"):
        store.read_vectors("users", ["u1"], version_id="v1")
