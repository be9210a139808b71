"""Tests of quarantine(): each row rule on a hand-made frame with exact counts, first reason wins, rebuilds.

No shared data; everything runs in an in-memory warehouse.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from warehouse.ingest import ingest
from warehouse.validation import ValidationConfig, quarantine

T = datetime(2026, 1, 10)
NOW = datetime(2026, 2, 1)
NAN, INF = float("nan"), float("inf")

# (user_id, item_id, ts, weight, split, expected reason or None)
ROWS = [
    ("a", "x", T, 1.0, None, None),
    ("a", "y", T, None, None, None),  # NULL weight becomes 1.0
    ("b", None, T, 1.0, None, "null_item_id"),
    (None, None, T, 1.0, None, "null_user_id"),  # first failing reason wins
    ("  ", "x", T, 1.0, None, "null_user_id"),  # blank counts as NULL
    ("c", "x", None, 1.0, None, "null_ts"),
    ("c", "y", None, 1.0, "train", None),  # given-split rows may lack ts
    ("d", "x", datetime(2026, 3, 1), 1.0, None, "ts_in_future"),
    ("d", "y", datetime(1969, 12, 31), 1.0, None, "ts_before_start"),
    ("e", "x", T, NAN, None, "weight_not_finite"),
    ("e", "y", T, INF, None, "weight_not_finite"),
    ("f", "x", T, -1.0, None, "weight_out_of_range"),
    ("f", "y", T, 2e6, None, "weight_out_of_range"),
    ("g", "zz", T, 1.0, None, "unknown_item"),
    ("a", "x", T, 3.0, None, "duplicate"),
    ("a", "x", T, 4.0, None, "duplicate"),
    ("e", "x", T, 1.0, None, None),  # a copy of a NaN-weight row: the bad row does not make it a duplicate
]


def _load(con, rows=ROWS, items=("x", "y")) -> None:
    frame = pl.DataFrame(
        [r[:5] for r in rows], schema=["user_id", "item_id", "ts", "weight", "split"], orient="row"
    ).with_columns(pl.lit("view").alias("event"))
    ingest(con, frame, pl.DataFrame({"item_id": list(items)}) if items else None, "hand", "k", now=NOW)


def test_reasons_with_exact_counts(con):
    _load(con)
    result = quarantine(con, ValidationConfig(), NOW)
    assert result.by_reason == {
        "null_user_id": 2, "null_item_id": 1, "null_ts": 1, "ts_in_future": 1, "ts_before_start": 1,
        "weight_not_finite": 2, "weight_out_of_range": 2, "unknown_item": 1, "duplicate": 2,
    }
    assert (result.clean_rows, result.rejected_rows) == (4, 13)
    reasons = con.execute(
        "SELECT coalesce(user_id, '?'), coalesce(item_id, '?'), reason FROM rejected_interactions ORDER BY ALL"
    ).fetchall()
    expected = sorted((r[0] or "?", r[1] or "?", r[5]) for r in ROWS if r[5])
    assert reasons == expected
    clean = con.execute("SELECT user_id, item_id, weight, split FROM clean_interactions ORDER BY ALL").fetchall()
    # The earliest-ingested, lowest-weight copy of (a, x) is the one kept.
    assert clean == [("a", "x", 1.0, None), ("a", "y", 1.0, None), ("c", "y", 1.0, "train"), ("e", "x", 1.0, None)]
    rejected_cols = [r[0] for r in con.execute("DESCRIBE rejected_interactions").fetchall()]
    assert rejected_cols[-3:] == ["source", "ingested_at", "reason"]


def test_unknown_items_only_checked_when_items_exist(con):
    _load(con, items=())
    assert "unknown_item" not in quarantine(con, ValidationConfig(), NOW).by_reason
    con.execute("INSERT INTO raw_items VALUES ('x', NULL, NULL, 's'), ('y', NULL, NULL, 's')")
    assert quarantine(con, ValidationConfig(), NOW).by_reason["unknown_item"] == 1
    relaxed = quarantine(con, ValidationConfig(require_known_items=False), NOW)
    assert "unknown_item" not in relaxed.by_reason and relaxed.clean_rows == 5


def test_rebuild_replaces_previous_result(con):
    _load(con)
    quarantine(con, ValidationConfig(), NOW)
    again = quarantine(con, ValidationConfig(earliest_ts=datetime(1960, 1, 1)), NOW)
    assert "ts_before_start" not in again.by_reason
    assert con.execute("SELECT count(*) FROM clean_interactions").fetchall() == [(again.clean_rows,)]
    assert con.execute("SELECT count(*) FROM rejected_interactions").fetchall() == [(again.rejected_rows,)]
    assert again.clean_rows + again.rejected_rows == len(ROWS)
