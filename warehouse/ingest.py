"""Appending a source's interactions and items to the raw tables, idempotently and in one transaction.

Re-ingesting the same data adds nothing: new rows are anti-joined (NULL-safe) against what is already there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from warehouse.schema import canonical_interactions, canonical_items

# Two rows are the same interaction when these agree (NULL equals NULL); weight is a value, not identity.
IDENTITY_COLUMNS = ("user_id", "item_id", "ts", "event", "split")


@dataclass(frozen=True)
class IngestResult:
    """Row counts of one ingest: read from the source, newly added, and in raw_interactions afterwards."""

    rows_read: int
    rows_added: int
    rows_total: int
    items_added: int


def content_key_for(paths: Iterable[str | Path]) -> str:
    """sha256 over the files' bytes in sorted path order (a fingerprint of the input, whatever the file names)."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        # Each file's size goes first, so that the same bytes cut differently across files hash differently.
        digest.update(path.stat().st_size.to_bytes(8, "little"))
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def ingest(
    con: duckdb.DuckDBPyConnection,
    interactions: pl.DataFrame,
    items: pl.DataFrame | None,
    source: str,
    content_key: str,
    now: datetime | None = None,
) -> IngestResult:
    """Append new interactions (and upsert items by item_id) from `source`; log the run in ingest_log."""
    run_at = now or datetime.now()
    incoming = canonical_interactions(interactions)
    incoming_items = canonical_items(items) if items is not None else None
    match = " AND ".join(f"r.{c} IS NOT DISTINCT FROM i.{c}" for c in IDENTITY_COLUMNS)
    con.register("_ingest_interactions", incoming)
    if incoming_items is not None:
        con.register("_ingest_items", incoming_items)
    con.begin()
    try:
        rows_added = con.execute(
            f"""
            INSERT INTO raw_interactions
            SELECT i.user_id, i.item_id, i.ts, i.event, i.weight, i.split, $source, $run_at
            FROM _ingest_interactions i
            WHERE NOT EXISTS (SELECT 1 FROM raw_interactions r WHERE {match})
            """,
            {"source": source, "run_at": run_at},
        ).fetchall()[0][0]
        items_added = _upsert_items(con, source) if incoming_items is not None else 0
        rows_total = con.execute("SELECT count(*) FROM raw_interactions").fetchall()[0][0]
        con.execute(
            "INSERT INTO ingest_log VALUES ($run_at, $source, $key, $read, $added, $total)",
            {"run_at": run_at, "source": source, "key": content_key,
             "read": incoming.height, "added": rows_added, "total": rows_total},
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.unregister("_ingest_interactions")
        if incoming_items is not None:
            con.unregister("_ingest_items")
    return IngestResult(incoming.height, int(rows_added), int(rows_total), int(items_added))


def _upsert_items(con: duckdb.DuckDBPyConnection, source: str) -> int:
    """Replace items whose id is already known, insert the rest; returns how many ids are new."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _items_dedup AS
        SELECT DISTINCT ON (item_id) item_id, title, category
        FROM _ingest_items WHERE item_id IS NOT NULL ORDER BY item_id
        """
    )
    added = con.execute(
        "SELECT count(*) FROM _items_dedup d "
        "WHERE d.item_id NOT IN (SELECT item_id FROM raw_items WHERE item_id IS NOT NULL)"
    ).fetchall()[0][0]
    con.execute("DELETE FROM raw_items WHERE item_id IN (SELECT item_id FROM _items_dedup)")
    con.execute("INSERT INTO raw_items SELECT item_id, title, category, $source FROM _items_dedup", {"source": source})
    con.execute("DROP TABLE _items_dedup")
    return int(added)
