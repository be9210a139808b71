"""Tests of connect(): folder creation, idempotent DDL, and persistence of the DuckDB file.

Uses a temporary folder; no shared data.
"""

from __future__ import annotations

from warehouse.connection import connect
from warehouse.schema import RAW_INTERACTIONS

TABLES = {
    "raw_interactions", "raw_items", "ingest_log", "clean_interactions", "rejected_interactions",
    "user_index", "item_index", "interaction_split",
}


def test_connect_creates_folder_and_tables(tmp_path):
    path = tmp_path / "a" / "b" / "warehouse.duckdb"
    con = connect(path)
    assert path.parent.is_dir()
    assert {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()} == TABLES
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'raw_interactions' ORDER BY ordinal_position"
    ).fetchall()
    assert dict(columns) == RAW_INTERACTIONS
    con.execute("INSERT INTO raw_items VALUES ('i1', 't', 'c', 's')")
    con.close()
    again = connect(path)  # DDL is idempotent and the data survives reopening
    assert again.execute("SELECT count(*) FROM raw_items").fetchall() == [(1,)]
    again.close()


def test_raw_tables_accept_bad_rows(con):
    con.execute("INSERT INTO raw_interactions VALUES (NULL, NULL, NULL, NULL, 'NaN'::DOUBLE, NULL, NULL, NULL)")
    assert con.execute("SELECT count(*) FROM raw_interactions").fetchall() == [(1,)]
