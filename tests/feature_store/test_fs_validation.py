"""Invalid publish inputs raise errors that say what is wrong and where, and register nothing.
Covers ids (duplicates, nulls, non-strings, count), vectors (NaN, inf, shape, dims) and metadata."""

import numpy as np
import pytest

from feature_store import (
    InvalidMetadataError,
    InvalidVectorsError,
    VersionExistsError,
    VersionMeta,
)

META = VersionMeta(model="lightgcn", version_id="v1")


def _publish_fails(store, data, error, match, meta=META):
    with pytest.raises(error, match=match):
        store.publish(meta, **data)
    assert store.list_versions() == []
    assert list(store.versions_dir.iterdir()) == []


def test_duplicate_ids_are_rejected_with_examples(store, make_embeddings):
    data = make_embeddings(seed=0)
    data["item_ids"][5] = "i1"
    _publish_fails(store, data, InvalidVectorsError, r"item_ids has 1 duplicated id\(s\), e\.g\. \['i1'\]")


def test_nan_vectors_are_rejected_with_row_and_id(store, make_embeddings):
    data = make_embeddings(seed=0)
    data["user_vectors"][3, 2] = np.nan
    data["user_vectors"][7, 0] = np.inf
    _publish_fails(store, data, InvalidVectorsError,
                   r"user_vectors has NaN or infinite values .* in 2 row\(s\); "
                   r"first rows and ids: \{3: 'u3', 7: 'u7'\}")


def test_values_overflowing_float32_are_rejected(store, make_embeddings):
    data = make_embeddings(seed=0)
    data["item_vectors"] = data["item_vectors"].astype(np.float64)
    data["item_vectors"][0, 0] = 1e300
    _publish_fails(store, data, InvalidVectorsError, r"item_vectors has NaN or infinite values .* \{0: 'i0'\}")


def test_user_and_item_dims_must_match(store, make_embeddings):
    data = make_embeddings(seed=0, dim=8)
    data["item_vectors"] = data["item_vectors"][:, :6]
    _publish_fails(store, data, InvalidVectorsError, "user vectors have dim 8 but item vectors have dim 6")


def test_rows_must_match_ids(store, make_embeddings):
    data = make_embeddings(seed=0, n_users=30)
    data["user_vectors"] = data["user_vectors"][:29]
    _publish_fails(store, data, InvalidVectorsError, "user_vectors has 29 rows but user_ids has 30 ids")


def test_null_and_non_string_ids_are_rejected(store, make_embeddings):
    data = make_embeddings(seed=0)
    data["user_ids"][4] = None
    _publish_fails(store, data, InvalidVectorsError, r"user_ids has 1 null id\(s\), at rows \[4\]")
    data = make_embeddings(seed=0)
    data["item_ids"] = list(range(len(data["item_ids"])))
    _publish_fails(store, data, InvalidVectorsError, r"item_ids must be strings .*convert raw ids with str\(\)")


def test_vectors_must_be_a_real_matrix(store, make_embeddings):
    data = make_embeddings(seed=0)
    data["user_vectors"] = data["user_vectors"][:, 0]
    _publish_fails(store, data, InvalidVectorsError, r"user_vectors must be a 2-D matrix .*got shape \(30,\)")
    data = make_embeddings(seed=0, n_users=0)
    _publish_fails(store, data, InvalidVectorsError, "user_ids is empty")


def test_taken_version_id_is_rejected(store, make_embeddings):
    data = make_embeddings(seed=0)
    store.publish(META, **data)
    with pytest.raises(VersionExistsError, match="version 'v1' is already registered"):
        store.publish(META, **make_embeddings(seed=1))
    np.testing.assert_array_equal(store.read_vectors("user", ["u0"], "v1"), data["user_vectors"][:1])


def test_unknown_parent_and_bad_metadata_are_rejected(store, make_embeddings):
    data = make_embeddings(seed=0)
    _publish_fails(store, data, InvalidMetadataError, "parent_id 'v0' of version 'v1' is not registered",
                   meta=VersionMeta(model="m", version_id="v1", parent_id="v0"))
    with pytest.raises(InvalidMetadataError, match="VersionMeta.config must be JSON-serialisable"):
        VersionMeta(model="m", config={"path": object()})
    with pytest.raises(InvalidMetadataError, match="VersionMeta.metrics must be JSON-serialisable with finite"):
        VersionMeta(model="m", metrics={"ndcg": float("nan")})
    with pytest.raises(InvalidMetadataError, match=r"version_id '\.\./escape' is not allowed"):
        VersionMeta(model="m", version_id="../escape")
    with pytest.raises(InvalidMetadataError, match="VersionMeta.model is empty"):
        VersionMeta(model="")
