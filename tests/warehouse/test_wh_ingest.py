"""Tests of ingest(): idempotency (NULL-safe), item upserts, the ingest log, and all-or-nothing transactions.

Small frames and files written here, the MovieLens slice in tests/fixtures, and the shared ml-latest-small folder
where it is mounted.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl
import pytest

from warehouse.ingest import content_key_for, ingest
from warehouse.sources import read_source, source_files

T = datetime(2026, 1, 5, 12)
NOW = datetime(2026, 2, 1)


def _count(con, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_same_file_twice_adds_nothing(con, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,ts\n1,2,2026-01-05\n1,3,2026-01-06\n2,2,2026-01-06\n")
    key = content_key_for(source_files("files", path))
    interactions, items = read_source("files", path)
    first = ingest(con, interactions, items, "files", key, now=NOW)
    second = ingest(con, *read_source("files", path), "files", key, now=NOW)
    assert (first.rows_read, first.rows_added, first.rows_total) == (3, 3, 3)
    assert (second.rows_read, second.rows_added, second.rows_total) == (3, 0, 3)
    assert con.execute("SELECT source, content_key, rows_read, rows_added, rows_total FROM ingest_log").fetchall() == [
        ("files", key, 3, 3, 3), ("files", key, 3, 0, 3),
    ]


def _ingest_movielens_twice(con, folder, ratings: int, movies: int) -> None:
    """A MovieLens folder ingested twice: all its ratings and movies the first time, nothing the second."""
    interactions, items = read_source("movielens", folder)
    key = content_key_for(source_files("movielens", folder))
    first = ingest(con, interactions, items, "movielens", key, now=NOW)
    second = ingest(con, interactions, items, "movielens", key, now=NOW)
    assert (first.rows_added, first.items_added) == (ratings, movies)
    assert (second.rows_added, second.items_added, second.rows_total) == (0, 0, ratings)
    assert _count(con, "raw_items") == movies


def test_movielens_slice_twice_adds_nothing(con, ml_slice_dir):
    _ingest_movielens_twice(con, ml_slice_dir, 962, 650)


def test_movielens_twice_adds_nothing(con, ml_small_dir):
    _ingest_movielens_twice(con, ml_small_dir, 100_004, 9_125)


def test_null_safe_identity_and_in_batch_duplicates(con):
    frame = pl.DataFrame({
        "user_id": ["a", "a", None, "b"],
        "item_id": ["x", "x", "y", "z"],
        "ts": [T, T, T, None],
        "event": [None, None, "view", "view"],
        "split": [None, None, None, "train"],
    })
    assert ingest(con, frame, None, "s", "k1", now=NOW).rows_added == 4  # in-batch copies stay visible to checks
    assert ingest(con, frame, None, "s", "k1", now=NOW).rows_added == 0  # NULLs compare equal on re-ingest
    changed = frame.with_columns(pl.Series("event", ["click", None, "view", "view"]))
    assert ingest(con, changed, None, "s", "k2", now=NOW).rows_added == 1
    stored = con.execute("SELECT count(*) FILTER (weight IS NULL), count(DISTINCT ingested_at) FROM raw_interactions")
    assert stored.fetchall() == [(5, 1)]


def test_items_upsert_by_id(con):
    frame = pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "ts": [T]})
    items = pl.DataFrame({"item_id": ["x", "y", "y"], "title": ["X", "Y", "Y"], "category": ["c", "c", "c"]})
    assert ingest(con, frame, items, "s", "k1", now=NOW).items_added == 2
    renamed = pl.DataFrame({"item_id": ["y", "z"], "title": ["Y2", "Z"], "category": ["d", "d"]})
    assert ingest(con, frame, renamed, "t", "k2", now=NOW).items_added == 1
    assert con.execute("SELECT item_id, title, category, source FROM raw_items ORDER BY item_id").fetchall() == [
        ("x", "X", "c", "s"), ("y", "Y2", "d", "t"), ("z", "Z", "d", "t"),
    ]


def test_failure_leaves_tables_unchanged(con):
    frame = pl.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "ts": [T, T]})
    items = pl.DataFrame({"item_id": ["x"], "title": ["X"], "category": ["c"]})
    ingest(con, frame.head(1), items, "s", "k1", now=NOW)
    con.execute("DROP TABLE ingest_log")  # the log insert, the last statement, now fails
    with pytest.raises(duckdb.CatalogException):
        ingest(con, frame, pl.DataFrame({"item_id": ["y"]}), "s", "k2", now=NOW)
    assert _count(con, "raw_interactions") == 1
    assert _count(con, "raw_items") == 1


def test_content_key_follows_bytes(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("user_id,item_id,ts\n1,2,2026-01-05\n")
    key = content_key_for([a])
    assert key == content_key_for([str(a)]) and len(key) == 64
    a.write_text("user_id,item_id,ts\n1,2,2026-01-06\n")
    assert content_key_for([a]) != key
