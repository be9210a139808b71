"""Serving-time features: hashed TF-IDF is stable and normalized, categories are multi-hot, popularity is scaled, a
user is the mean of their items' features plus log degree, and users appended later get their interactions."""

import math

import numpy as np
import polars as pl
import pytest

from warehouse.connection import connect
from warehouse.features import (
    category_multi_hot,
    hashed_tfidf,
    interaction_matrix,
    item_features,
    item_table,
    later_user_interactions,
    serving_features,
    user_features,
)


def test_hashed_tfidf_rows_are_unit_length_and_stable():
    texts = ["Toy Story (1995)", "toy story 2 (1999)", None, "Heat (1995)"]
    first, second = hashed_tfidf(texts, dim=4096), hashed_tfidf(list(texts), dim=4096)
    assert first.shape == (4, 4096) and np.array_equal(first, second)
    assert np.linalg.norm(first, axis=1) == pytest.approx([1.0, 1.0, 0.0, 1.0], abs=1e-6)
    # Shared tokens ("toy", "story") make the two Toy Story titles the closest pair.
    similarity = first @ first.T
    assert similarity[0, 1] > similarity[0, 3] > -1.0 and similarity[0, 1] > 0.5


def test_category_multi_hot_and_item_features():
    matrix, vocabulary = category_multi_hot(["Comedy|Drama", None, "Drama"])
    assert vocabulary == ["Comedy", "Drama"]
    assert matrix.tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 1.0]]
    items = pl.DataFrame({"idx": [0, 1, 2], "title": ["A b", "b c", None], "category": ["Comedy|Drama", None, "Drama"]})
    features = item_features(items, np.array([0, 1, math.e - 1]), text_dim=8)
    assert features.shape == (3, 8 + 2 + 1)
    assert features[:, -1].tolist() == pytest.approx([0.0, math.log(2), 1.0])
    # Gowalla-like items without metadata: popularity alone.
    bare = item_features(pl.DataFrame({"idx": [0, 1], "title": [None, None], "category": [None, None]}),
                         np.array([3, 0]))
    assert bare.shape == (2, 1) and bare[:, 0].tolist() == [1.0, 0.0]


def test_user_features_average_their_items():
    features = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    interactions = interaction_matrix(np.array([0, 0, 1, 0]), np.array([0, 1, 2, 0]), 3, 3)  # a duplicate
    users = user_features(features, interactions)
    np.testing.assert_allclose(users, [[0.5, 0.5, math.log(3)], [1.0, 1.0, math.log(2)], [0.0, 0.0, 0.0]], rtol=1e-6)


def test_serving_features_take_popularity_from_training_only():
    items = pl.DataFrame({"idx": [0, 1], "title": [None, None], "category": [None, None]})
    train = interaction_matrix(np.array([0]), np.array([0]), 2, 2)
    later = interaction_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2, 2)
    item_x, user_x = serving_features(items, train, later)
    # log1p(popularity), divided by its maximum only when that exceeds 1; item 1's later interaction does not count.
    np.testing.assert_allclose(item_x[:, 0], [math.log(2), 0.0], rtol=1e-6)
    np.testing.assert_allclose(user_x, [[math.log(2), math.log(2)], [math.log(2) / 2, math.log(3)]], rtol=1e-6)


def test_item_table_and_later_users_come_from_the_warehouse(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    con.execute("INSERT INTO item_index VALUES ('m1', 0), ('m2', 1), ('m3', 2)")
    con.execute("INSERT INTO raw_items VALUES ('m2', 'Heat', 'Crime', 'test')")
    con.execute("INSERT INTO user_index VALUES ('a', 0), ('b', 1)")
    con.execute("INSERT INTO clean_interactions VALUES ('a', 'm1', NULL, NULL, 1, NULL), ('b', 'm2', NULL, NULL, 1, "
                "NULL), ('b', 'm3', NULL, NULL, 1, NULL), ('b', 'm2', NULL, NULL, 1, NULL)")
    table = item_table(con)
    assert table.to_dicts() == [{"idx": 0, "title": None, "category": None},
                                {"idx": 1, "title": "Heat", "category": "Crime"},
                                {"idx": 2, "title": None, "category": None}]
    # User b arrived after a graph of 1 user and 2 items: only their interactions with known items, once each.
    assert later_user_interactions(con, num_users=1, num_items=2).tolist() == [[1], [1]]
    assert later_user_interactions(con, num_users=2, num_items=2).shape == (2, 0)
