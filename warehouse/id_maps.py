"""Stable, append-only maps from raw user/item ids to dense indices (user_index, item_index).

An id keeps its index forever and new ids are appended, which is what makes embedding versions comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

ENTITIES = {"user": "user_id", "item": "item_id"}


class IdMapError(ValueError):
    """An id-map request names an unknown entity."""


@dataclass(frozen=True)
class IdMapStats:
    """Sizes of the id maps after an update, and how many ids the update appended."""

    users_total: int
    items_total: int
    users_added: int
    items_added: int


def _append(con: duckdb.DuckDBPyConnection, entity: str) -> int:
    column = ENTITIES[entity]
    # New ids are numbered in first-seen order; ties (and sources without timestamps) fall back to the id,
    # numerically when it is a number so that LightGCN's 0..n-1 ids keep their own index.
    return con.execute(
        f"""
        INSERT INTO {entity}_index
        SELECT raw_id,
               (SELECT coalesce(max(idx), -1) FROM {entity}_index)
               + row_number() OVER (ORDER BY first_ts NULLS LAST, TRY_CAST(raw_id AS BIGINT) NULLS LAST, raw_id)
        FROM (
            SELECT {column} AS raw_id, min(ts) AS first_ts FROM clean_interactions GROUP BY {column}
        ) seen
        WHERE raw_id NOT IN (SELECT raw_id FROM {entity}_index)
        """
    ).fetchall()[0][0]


def update_id_maps(con: duckdb.DuckDBPyConnection) -> IdMapStats:
    """Append ids from clean_interactions that the maps do not know yet (one transaction)."""
    con.begin()
    try:
        users_added = _append(con, "user")
        items_added = _append(con, "item")
        users_total, items_total = con.execute(
            "SELECT (SELECT count(*) FROM user_index), (SELECT count(*) FROM item_index)"
        ).fetchall()[0]
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return IdMapStats(int(users_total), int(items_total), int(users_added), int(items_added))


def load_id_map(con: duckdb.DuckDBPyConnection, entity: str) -> pl.DataFrame:
    """The id map of "user" or "item" as a frame (raw_id Utf8, idx Int64), ordered by idx."""
    if entity not in ENTITIES:
        raise IdMapError(f"unknown entity {entity!r}; use one of {sorted(ENTITIES)}.")
    return con.sql(f"SELECT raw_id, idx FROM {entity}_index ORDER BY idx").pl()
