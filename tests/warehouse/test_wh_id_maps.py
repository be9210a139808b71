"""Tests of the id maps: first-seen order, stability across ingests (existing ids keep their index), numeric ids.

Uses the demo generator split into two ingests by time.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from warehouse.demo import DemoConfig, generate_demo
from warehouse.id_maps import IdMapError, load_id_map, update_id_maps
from warehouse.ingest import ingest
from warehouse.validation import ValidationConfig, quarantine

NOW = datetime(2026, 3, 10)
CUT = datetime(2026, 2, 1)


def _ingest_and_map(con, frame, items, key):
    ingest(con, frame, items, "demo", key, now=NOW)
    quarantine(con, ValidationConfig(), NOW)
    return update_id_maps(con)


def _first_seen_order(frame: pl.DataFrame, column: str) -> list[str]:
    first = frame.group_by(column).agg(pl.col("ts").min()).sort("ts", column)
    return first[column].to_list()


def test_ids_stable_across_two_ingests(con):
    interactions, items = generate_demo(DemoConfig(n_users=500, n_items=250))
    early = interactions.filter(pl.col("ts") < CUT)
    late = interactions.filter(pl.col("ts") >= CUT)

    stats1 = _ingest_and_map(con, early, items, "early")
    users1, items1 = load_id_map(con, "user"), load_id_map(con, "item")
    assert (stats1.users_added, stats1.items_added) == (early["user_id"].n_unique(), early["item_id"].n_unique())
    assert users1["raw_id"].to_list() == _first_seen_order(early, "user_id")
    assert users1["idx"].to_list() == list(range(users1.height))

    stats2 = _ingest_and_map(con, late, items, "late")
    users2, items2 = load_id_map(con, "user"), load_id_map(con, "item")
    assert stats2.users_total == interactions["user_id"].n_unique() == 500
    assert stats2.users_added == 500 - users1.height > 0
    assert stats2.items_total == interactions["item_id"].n_unique()
    assert_frame_equal(users2.head(users1.height), users1)  # existing ids keep their index
    assert_frame_equal(items2.head(items1.height), items1)
    new_users = users2.slice(users1.height)
    assert new_users["idx"].to_list() == list(range(users1.height, 500))
    new_first = late.filter(~pl.col("user_id").is_in(users1["raw_id"].implode()))
    assert new_users["raw_id"].to_list() == _first_seen_order(new_first, "user_id")

    again = update_id_maps(con)
    assert (again.users_added, again.items_added) == (0, 0)


def test_ids_without_timestamps_keep_numeric_order(con):
    frame = pl.DataFrame({
        "user_id": ["10", "2", "1", "b", "a"], "item_id": ["3", "20", "1", "1", "3"], "split": ["train"] * 5,
    })
    ingest(con, frame, None, "given", "k", now=NOW)
    quarantine(con, ValidationConfig(), NOW)
    update_id_maps(con)
    assert load_id_map(con, "user")["raw_id"].to_list() == ["1", "2", "10", "a", "b"]
    assert load_id_map(con, "item").rows() == [("1", 0), ("3", 1), ("20", 2)]
    with pytest.raises(IdMapError, match="unknown entity 'movie'"):
        load_id_map(con, "movie")
