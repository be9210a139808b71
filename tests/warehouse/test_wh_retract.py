"""Tests of retract_ingest(): exactly the rows a content key added leave raw_interactions, with its ingest_log
entries; unknown or ambiguous keys change nothing and say why.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from warehouse.ingest import ingest
from warehouse.retract import AmbiguousIngestError, UnknownContentKeyError, retract_ingest

T = datetime(2026, 1, 10)


def _frame(pairs: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame({"user_id": [u for u, _ in pairs], "item_id": [i for _, i in pairs], "ts": [T] * len(pairs)})


def _rows(con) -> list[tuple[str, str, str]]:
    return con.execute("SELECT user_id, item_id, source FROM raw_interactions ORDER BY ALL").fetchall()


def _log(con) -> list[tuple[str, int]]:
    return con.execute("SELECT content_key, rows_added FROM ingest_log ORDER BY run_at").fetchall()


def test_retract_removes_exactly_the_rows_of_its_key(con):
    ingest(con, _frame([("a", "x"), ("a", "y"), ("b", "x")]), None, "files", "key-a", now=datetime(2026, 2, 1))
    # B shares (b, x) with A: that row was A's and stays A's.
    ingest(con, _frame([("b", "x"), ("c", "x"), ("c", "z")]), None, "files", "key-b", now=datetime(2026, 2, 2))
    ingest(con, _frame([("d", "x")]), None, "demo", "key-d", now=datetime(2026, 2, 3))
    # B again: adds nothing, but is logged; retracting B removes both entries.
    ingest(con, _frame([("b", "x"), ("c", "x"), ("c", "z")]), None, "files", "key-b", now=datetime(2026, 2, 4))
    result = retract_ingest(con, "key-b")
    assert (result.ingests_removed, result.rows_removed, result.rows_total) == (2, 2, 4)
    assert _rows(con) == [("a", "x", "files"), ("a", "y", "files"), ("b", "x", "files"), ("d", "x", "demo")]
    assert _log(con) == [("key-a", 3), ("key-d", 1)]


def test_unknown_key_fails_clearly_and_changes_nothing(con):
    ingest(con, _frame([("a", "x")]), None, "files", "key-a", now=datetime(2026, 2, 1))
    with pytest.raises(UnknownContentKeyError, match=r"no ingest with content key 'nope' in ingest_log .* "
                                                     r"most recent: \['key-a \(files, 2026-02-01 00:00:00\)'\]"):
        retract_ingest(con, "nope")
    assert _rows(con) == [("a", "x", "files")] and _log(con) == [("key-a", 1)]


def test_keys_ingested_at_the_same_instant_are_not_guessed_apart(con):
    ingest(con, _frame([("a", "x")]), None, "files", "key-a", now=T)
    ingest(con, _frame([("b", "x")]), None, "files", "key-b", now=T)
    with pytest.raises(AmbiguousIngestError, match=r"\['key-b'\]"):
        retract_ingest(con, "key-a")
    assert len(_rows(con)) == 2 and len(_log(con)) == 2
