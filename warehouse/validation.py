"""Row-level rules that split raw_interactions into clean_interactions and rejected_interactions (quarantine).

Each rejected row keeps its raw columns plus the first rule it failed, so a person can see and fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from warehouse.rules import DEFAULT_WEIGHT, REASONS, active_rules, fails_sql, sql_parameters, suite_parameters
from warehouse.schema import CLEAN_INTERACTIONS, RAW_INTERACTIONS

__all__ = ["DEFAULT_WEIGHT", "REASONS", "QuarantineResult", "ValidationConfig", "checks_known_items", "quarantine"]


@dataclass(frozen=True)
class ValidationConfig:
    """Bounds for the row rules (quarantine) and the blocking expectations."""

    # The Unix epoch: public data sets reach back to the 1990s (MovieLens to 1995-96), whereas a timestamp before
    # 1970 is almost always a wrongly parsed or negative epoch value. Future timestamps are rejected against `now`.
    earliest_ts: datetime = datetime(1970, 1, 1)
    min_weight: float = 0.0
    max_weight: float = 1e6
    max_duplicate_rate: float = 0.01
    max_rejected_fraction: float = 0.01  # per rule: rows it may reject before its check fails
    max_volume_change: float = 10.0  # rows_added vs the previous ingest: this spike, or a drop to zero, fails
    require_known_items: bool = True


@dataclass(frozen=True)
class QuarantineResult:
    """Rows kept and rejected by quarantine(), with the rejected count per reason."""

    clean_rows: int
    rejected_rows: int
    by_reason: dict[str, int] = field(default_factory=dict)


def checks_known_items(con: duckdb.DuckDBPyConnection, cfg: ValidationConfig) -> bool:
    """Referential integrity applies only when asked for and when some source supplied items."""
    return cfg.require_known_items and con.execute("SELECT count(*) FROM raw_items").fetchall()[0][0] > 0


def known_items(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The item ids of raw_items, sorted (so a Data Docs page shows the same sample each run): the value set of the
    known-item rule."""
    rows = con.execute("SELECT DISTINCT item_id FROM raw_items WHERE item_id IS NOT NULL ORDER BY item_id").fetchall()
    return [r[0] for r in rows]


def _labelled_sql(check_items: bool) -> str:
    """SQL giving every raw row its reason (NULL when clean): the first row rule it fails, in rule order."""
    whens = "\n".join(f"WHEN {fails_sql(r)} THEN '{r.reason}'" for r in active_rules(check_items))
    cols = ", ".join(RAW_INTERACTIONS)
    return f"""
        WITH ruled AS (
            SELECT {cols}, CASE {whens} END AS reason
            FROM raw_interactions
        )
        -- Duplicates are counted among rows that passed every other rule, so a bad copy never hides a good one;
        -- the earliest ingested copy is kept. split is part of the identity: a given-split pair listed in both
        -- train and test is a leak that build_split resolves (test wins), not a copy to drop at random.
        SELECT {cols},
            CASE WHEN reason IS NULL AND row_number() OVER (
                PARTITION BY reason IS NULL, user_id, item_id, ts, event, split
                ORDER BY ingested_at, weight, source
            ) > 1 THEN 'duplicate' ELSE reason END AS reason
        FROM ruled
    """


def quarantine(con: duckdb.DuckDBPyConnection, cfg: ValidationConfig, now: datetime) -> QuarantineResult:
    """Rebuild clean_interactions and rejected_interactions from raw_interactions in one transaction."""
    check_items = checks_known_items(con, cfg)
    labelled = _labelled_sql(check_items)
    params = sql_parameters(labelled, suite_parameters(cfg, now, known_items(con) if check_items else None))
    raw_cols = ", ".join(RAW_INTERACTIONS)
    clean_cols = ", ".join(
        f"coalesce(weight, {DEFAULT_WEIGHT})" if c == "weight" else c for c in CLEAN_INTERACTIONS
    )
    con.begin()
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _labelled AS {labelled}", params
        )
        con.execute("DELETE FROM clean_interactions")
        con.execute("DELETE FROM rejected_interactions")
        con.execute(f"INSERT INTO clean_interactions SELECT {clean_cols} FROM _labelled WHERE reason IS NULL")
        con.execute(
            f"INSERT INTO rejected_interactions SELECT {raw_cols}, reason FROM _labelled WHERE reason IS NOT NULL"
        )
        counts = con.execute(
            "SELECT coalesce(reason, ''), count(*) FROM _labelled GROUP BY ALL"
        ).fetchall()
        con.execute("DROP TABLE _labelled")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    by_reason = {reason: int(n) for reason, n in counts if reason}
    clean = sum(int(n) for reason, n in counts if not reason)
    ordered = {r: by_reason[r] for r in REASONS if r in by_reason}
    return QuarantineResult(clean, sum(ordered.values()), ordered)
