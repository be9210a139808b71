"""Train/valid/test split of the clean interactions, as dense (user_idx, item_idx) pairs in interaction_split.

Modes: "given" (the source's own split), "temporal" (a cut-off time), "leave_last_out" (per user). Each (user, item)
pair lands in exactly one part, and valid is always carved out of train. In temporal mode valid is the last time
slice before the test cut-off, for every user at once (the same protocol as test, one step earlier), so that what
validation chooses predicts what test reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import duckdb
import numpy as np

PARTS = ("train", "valid", "test")
MODES = ("given", "temporal", "leave_last_out")


class SplitError(ValueError):
    """The requested split cannot be built from the data as it is; the message says why and what to do."""


@dataclass(frozen=True)
class SplitConfig:
    """How to split: mode, cut-off (temporal; else the (1 - test_fraction) quantile of ts), valid share, seed.

    ``valid_fraction`` is a share of each user's training pairs in the given mode (rounded up, so every user with
    two or more training pairs has one in validation), and in temporal mode the share of the interactions before
    the cut-off that lie in the validation slice. Leave-last-out holds one pair per user out for each part.
    """

    mode: Literal["given", "temporal", "leave_last_out"] = "temporal"
    cutoff: datetime | None = None
    test_fraction: float = 0.2
    valid_fraction: float = 0.1
    seed: int = 2020


@dataclass(frozen=True)
class SplitStats:
    """Pairs per part, distinct users and items in the split, and the temporal cut-off used (if any)."""

    train: int
    valid: int
    test: int
    users: int
    items: int
    cutoff: datetime | None = None
    valid_cutoff: datetime | None = None


def _check_inputs(con: duckdb.DuckDBPyConnection, cfg: SplitConfig) -> None:
    if cfg.mode not in MODES:
        raise SplitError(f"unknown split mode {cfg.mode!r}; use one of {MODES}.")
    n_clean, no_ts, no_split, bad_split, unmapped = con.execute(
        """
        SELECT count(*), count(*) FILTER (ts IS NULL), count(*) FILTER (split IS NULL),
               count(*) FILTER (split NOT IN ('train', 'test')),
               count(*) FILTER (u.idx IS NULL OR i.idx IS NULL)
        FROM clean_interactions c
        LEFT JOIN user_index u ON u.raw_id = c.user_id
        LEFT JOIN item_index i ON i.raw_id = c.item_id
        """
    ).fetchall()[0]
    if n_clean == 0:
        raise SplitError("clean_interactions is empty; ingest a source and run quarantine() first.")
    if unmapped:
        raise SplitError(
            f"{unmapped} clean interactions have ids missing from user_index/item_index; run update_id_maps() first."
        )
    if cfg.mode in ("temporal", "leave_last_out") and no_ts:
        raise SplitError(
            f"mode={cfg.mode!r} orders interactions by time, but {no_ts} of {n_clean} clean interactions have no ts "
            "(a given-split source such as LightGCN files); use mode='given'."
        )
    if cfg.mode == "given" and no_split:
        raise SplitError(
            f"mode='given' needs the source's split, but {no_split} of {n_clean} clean interactions have no split "
            "column value; use mode='temporal' or 'leave_last_out', or ingest a source with train/test files."
        )
    if cfg.mode == "given" and bad_split:
        raise SplitError(f"mode='given': {bad_split} clean interactions have a split other than 'train'/'test'.")


def _cutoffs(con: duckdb.DuckDBPyConnection, cfg: SplitConfig) -> tuple[datetime | None, datetime | None]:
    """Temporal mode's (valid, test) cut-offs: pairs last seen after the test cut-off are test, those between the
    two are valid. The valid cut-off is the (1 - valid_fraction) quantile of the timestamps up to the test one."""
    if cfg.mode != "temporal":
        return None, None
    cutoff = cfg.cutoff
    if cutoff is None:
        cutoff = con.execute(
            "SELECT quantile_disc(ts, $q) FROM clean_interactions", {"q": 1.0 - cfg.test_fraction}
        ).fetchall()[0][0]
    valid_cutoff = con.execute(
        "SELECT quantile_disc(ts, $q) FROM clean_interactions WHERE ts <= $cutoff",
        {"q": 1.0 - cfg.valid_fraction, "cutoff": cutoff},
    ).fetchall()[0][0]
    return valid_cutoff, cutoff


def _split_sql(mode: str) -> str:
    """Pairs (collapsed) with a first part, then ranked per user and part to carve valid (and LLO test)."""
    first_part = {
        "given": "CASE WHEN bool_or(split = 'test') THEN 'test' ELSE 'train' END",
        "temporal": "CASE WHEN max(ts) > $cutoff THEN 'test' WHEN max(ts) > $valid_cutoff THEN 'valid' ELSE 'train' END",
        "leave_last_out": "'train'",
    }[mode]
    # Given splits have no usable time order, so valid is a seeded pseudo-random share per user; md5 (not
    # hash()) keeps the choice identical across DuckDB versions.
    order = (
        "md5(concat_ws(':', $seed, user_idx, item_idx))" if mode == "given" else "ts DESC, item_idx DESC"
    )
    final_part = {
        "leave_last_out": "CASE WHEN n >= 3 AND rk = 1 THEN 'test' WHEN n >= 3 AND rk = 2 THEN 'valid' ELSE 'train' END",
        # ceil, not floor: every user with two or more training pairs gets a validation pair, as every user gets a
        # test pair. With floor, a 5% share held out nobody with fewer than 20 training pairs (59% of Gowalla's
        # users), so validation chose models for heavy users only while test reported on everyone.
        "given": "CASE WHEN part = 'train' AND n >= 2 AND rk <= ceil($valid_fraction * n) THEN 'valid' ELSE part END",
        "temporal": "part",
    }[mode]
    # Repeated (user, item) rows are one edge: keep the latest ts and the max weight (the strongest signal seen,
    # e.g. a purchase after views); a sum would grow with repeat views and let heavy repeaters dominate degrees.
    return f"""
        WITH pairs AS (
            SELECT u.idx AS user_idx, i.idx AS item_idx, max(c.ts) AS ts, max(c.weight) AS weight,
                   {first_part} AS part
            FROM clean_interactions c
            JOIN user_index u ON u.raw_id = c.user_id
            JOIN item_index i ON i.raw_id = c.item_id
            GROUP BY ALL
        ), ranked AS (
            SELECT *, row_number() OVER (PARTITION BY user_idx, part ORDER BY {order}) AS rk,
                      count(*) OVER (PARTITION BY user_idx, part) AS n
            FROM pairs
        )
        SELECT user_idx, item_idx, ts, weight, {final_part} AS part FROM ranked
    """


def build_split(con: duckdb.DuckDBPyConnection, cfg: SplitConfig) -> SplitStats:
    """Rebuild interaction_split from clean_interactions and the id maps (one transaction)."""
    _check_inputs(con, cfg)
    valid_cutoff, cutoff = _cutoffs(con, cfg)
    params = {"cutoff": cutoff, "valid_cutoff": valid_cutoff, "seed": cfg.seed, "valid_fraction": cfg.valid_fraction}
    sql = _split_sql(cfg.mode)
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    con.begin()
    try:
        con.execute("DELETE FROM interaction_split")
        con.execute(f"INSERT INTO interaction_split {sql}", used)
        train, valid, test, users, items = con.execute(
            """
            SELECT count(*) FILTER (part = 'train'), count(*) FILTER (part = 'valid'),
                   count(*) FILTER (part = 'test'), count(DISTINCT user_idx), count(DISTINCT item_idx)
            FROM interaction_split
            """
        ).fetchall()[0]
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return SplitStats(int(train), int(valid), int(test), int(users), int(items), cutoff, valid_cutoff)


def load_pair_times(con: duckdb.DuckDBPyConnection, part: str) -> np.ndarray | None:
    """Seconds since the Unix epoch (float64) of each pair of one part, in :func:`load_pairs`' order; None when
    any pair has no ts (a given split without times)."""
    if part not in PARTS:
        raise SplitError(f"unknown part {part!r}; use one of {PARTS}.")
    seconds = con.execute(
        "SELECT epoch(ts) AS s FROM interaction_split WHERE part = $part ORDER BY user_idx, item_idx",
        {"part": part},
    ).fetchnumpy()["s"]
    if np.ma.isMaskedArray(seconds) and seconds.mask.any():
        return None
    return np.asarray(seconds, dtype=np.float64)


def load_pairs(con: duckdb.DuckDBPyConnection, part: str) -> np.ndarray:
    """The (user_idx, item_idx) pairs of one part as an int64 array of shape (2, n), sorted by user then item."""
    if part not in PARTS:
        raise SplitError(f"unknown part {part!r}; use one of {PARTS}.")
    cols = con.execute(
        "SELECT user_idx, item_idx FROM interaction_split WHERE part = $part ORDER BY user_idx, item_idx",
        {"part": part},
    ).fetchnumpy()
    return np.stack([np.asarray(cols["user_idx"], dtype=np.int64), np.asarray(cols["item_idx"], dtype=np.int64)])
