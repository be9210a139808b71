"""Table definitions of the warehouse and the canonical Polars schema of interactions and items.

The DDL is idempotent (CREATE ... IF NOT EXISTS); raw tables carry no NOT NULL constraints so that bad rows
stay representable and the checks can see them.
"""

from __future__ import annotations

import polars as pl

# Column name -> DuckDB type, in table order; the schema expectation compares information_schema to this.
RAW_INTERACTIONS: dict[str, str] = {
    "user_id": "VARCHAR",
    "item_id": "VARCHAR",
    "ts": "TIMESTAMP",
    "event": "VARCHAR",
    "weight": "DOUBLE",
    "split": "VARCHAR",
    "source": "VARCHAR",
    "ingested_at": "TIMESTAMP",
}
CLEAN_INTERACTIONS: dict[str, str] = {
    k: v for k, v in RAW_INTERACTIONS.items() if k not in ("source", "ingested_at")
}
REJECTED_INTERACTIONS: dict[str, str] = {**RAW_INTERACTIONS, "reason": "VARCHAR"}
RAW_ITEMS: dict[str, str] = {
    "item_id": "VARCHAR",
    "title": "VARCHAR",
    "category": "VARCHAR",
    "source": "VARCHAR",
}
INGEST_LOG: dict[str, str] = {
    "run_at": "TIMESTAMP",
    "source": "VARCHAR",
    "content_key": "VARCHAR",
    "rows_read": "BIGINT",
    "rows_added": "BIGINT",
    "rows_total": "BIGINT",
}
# user_index and item_index: the dense index of each raw id (append-only).
ID_MAP: dict[str, str] = {"raw_id": "VARCHAR", "idx": "BIGINT"}
INTERACTION_SPLIT: dict[str, str] = {
    "user_idx": "BIGINT",
    "item_idx": "BIGINT",
    "ts": "TIMESTAMP",
    "weight": "DOUBLE",
    "part": "VARCHAR",
}


def _create(table: str, columns: dict[str, str]) -> str:
    cols = ", ".join(f"{name} {typ}" for name, typ in columns.items())
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


DDL: list[str] = [
    _create("raw_interactions", RAW_INTERACTIONS),
    _create("raw_items", RAW_ITEMS),
    _create("ingest_log", INGEST_LOG),
    _create("clean_interactions", CLEAN_INTERACTIONS),
    _create("rejected_interactions", REJECTED_INTERACTIONS),
    *(
        f"CREATE TABLE IF NOT EXISTS {entity}_index "
        f"(raw_id {ID_MAP['raw_id']} PRIMARY KEY, idx {ID_MAP['idx']} NOT NULL UNIQUE)"
        for entity in ("user", "item")
    ),
    _create("interaction_split", INTERACTION_SPLIT),
]

# What every source hands to ingest(); ids are strings whatever the source type.
INTERACTIONS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Utf8(),
    "item_id": pl.Utf8(),
    "ts": pl.Datetime("us"),
    "event": pl.Utf8(),
    "weight": pl.Float64(),
    "split": pl.Utf8(),
}
ITEMS_SCHEMA: dict[str, pl.DataType] = {
    "item_id": pl.Utf8(),
    "title": pl.Utf8(),
    "category": pl.Utf8(),
}


def _conform(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select the schema's columns in order, cast them, and add missing ones as NULL."""
    exprs = []
    for name, dtype in schema.items():
        if name not in df.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        col = pl.col(name)
        current = df.schema[name]
        # Timezone-aware timestamps become naive UTC so that DuckDB stores a plain TIMESTAMP.
        if isinstance(current, pl.Datetime) and current.time_zone is not None:
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        exprs.append(col.cast(dtype).alias(name))
    return df.select(exprs)


def canonical_interactions(df: pl.DataFrame) -> pl.DataFrame:
    """Interactions in the canonical column order and types; event, weight and split may be absent."""
    return _conform(df, INTERACTIONS_SCHEMA)


def canonical_items(df: pl.DataFrame) -> pl.DataFrame:
    """Items in the canonical column order and types; title and category may be absent."""
    return _conform(df, ITEMS_SCHEMA)
