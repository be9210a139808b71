"""Retracting one ingest by its content key: the interactions it added leave raw_interactions and its entries leave
ingest_log, in one transaction.

raw_interactions does not store the content key; each row carries the `source` and `ingested_at` of the ingest
that added it, and ingest_log maps (source, run_at) to the content key, so the rows of a key are found through the
log. Rows that a file shared with an earlier ingest belong to that earlier ingest (ingests append only what is new)
and stay. raw_items is left alone: it is a catalogue upserted by item_id that other ingests' rows may reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


class UnknownContentKeyError(LookupError):
    """No ingest with this content key is recorded in ingest_log."""


class AmbiguousIngestError(ValueError):
    """Another content key was ingested from the same source at the same instant, so their rows cannot be told
    apart."""


@dataclass(frozen=True)
class RetractResult:
    """What one retraction removed: ingest_log entries and raw rows, and the raw rows left."""

    content_key: str
    ingests_removed: int
    rows_removed: int
    rows_total: int


def _recent_keys(con: duckdb.DuckDBPyConnection, limit: int = 5) -> list[str]:
    rows = con.execute(
        "SELECT content_key, source, run_at FROM ingest_log ORDER BY run_at DESC LIMIT $limit", {"limit": limit}
    ).fetchall()
    return [f"{key} ({source}, {run_at:%Y-%m-%d %H:%M:%S})" for key, source, run_at in rows]


def retract_ingest(con: duckdb.DuckDBPyConnection, content_key: str) -> RetractResult:
    """Remove the rows that the ingests of `content_key` added to raw_interactions, and their ingest_log entries.

    All or nothing: one DuckDB transaction. Raises UnknownContentKeyError when no ingest has that key, and
    AmbiguousIngestError when another key shares one of its (source, run_at).
    """
    con.begin()
    try:
        ingests = con.execute(
            "SELECT count(*) FROM ingest_log WHERE content_key = $key", {"key": content_key}
        ).fetchall()[0][0]
        if ingests == 0:
            recent = _recent_keys(con)
            raise UnknownContentKeyError(
                f"no ingest with content key {content_key!r} in ingest_log (copy the key from the content_key "
                f"metadata of a raw_interactions materialization); most recent: {recent or 'nothing ingested yet'}"
            )
        others = con.execute(
            """
            SELECT DISTINCT o.content_key FROM ingest_log l JOIN ingest_log o USING (source, run_at)
            WHERE l.content_key = $key AND o.content_key <> $key
            """,
            {"key": content_key},
        ).fetchall()
        if others:
            raise AmbiguousIngestError(
                f"content key {content_key!r} was ingested at the same instant and from the same source as "
                f"{sorted(k for (k,) in others)}; their rows cannot be told apart, so nothing was retracted"
            )
        removed = con.execute(
            """
            DELETE FROM raw_interactions r USING ingest_log l
            WHERE l.content_key = $key AND r.source = l.source AND r.ingested_at = l.run_at
            """,
            {"key": content_key},
        ).fetchall()[0][0]
        con.execute("DELETE FROM ingest_log WHERE content_key = $key", {"key": content_key})
        total = con.execute("SELECT count(*) FROM raw_interactions").fetchall()[0][0]
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return RetractResult(content_key, int(ingests), int(removed), int(total))
