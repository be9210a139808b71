"""The bad inputs of the reliability suite: each writes one landing file from a fresh batch of valid demo
interactions, spoiled in one way, and names where the pipeline must stop it (a blocking check, or the ingest).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from warehouse.demo import DemoConfig, generate_demo

SOURCE_ERROR = "SourceError"  # stopped at ingest, before anything is written
# Valid input: it must be carried through to a candidate version, intact. Whether that version is then promoted is
# the compatibility gate's verdict on the retrained model, not on the input (see _hostile_ids).
SUCCESS = "success"
# The pipeline's warning-only check: the run goes on, so the case is handled when the warning is raised and the
# quarantine keeps every extra copy out of clean_interactions.
WARNS = "interactions_duplicate_rate_within_bound"
SHARE = 20  # every 20th row is spoiled: 5 %, above the checks' 1 % allowance
# Valid ids that are hostile to string-built SQL, shells and CSV: they must round-trip byte for byte.
HOSTILE_USER_IDS = ("u1'; DROP TABLE raw_interactions; --", 'u2" OR "1"="1', "u3\\'); DELETE FROM user_index; --",
                    "u4%_*?[]", "u5,with;commas|and\ttabs")


@dataclass(frozen=True)
class BatchShape:
    """Size of the demo batches: the baseline's users and items, so that every batch's items are known."""

    users: int
    items: int


def valid_batch(shape: BatchShape, seed: int) -> pl.DataFrame:
    """Fresh valid interactions (user_id, item_id, ts, event, weight) over the baseline's ids: a later batch of the
    baseline's demo world (same communities and popularity), new content per seed."""
    interactions, _ = generate_demo(DemoConfig(batch=seed, n_users=shape.users, n_items=shape.items))
    return interactions


def _spoil(frame: pl.DataFrame, column: str, value: pl.Expr) -> pl.DataFrame:
    every_nth = pl.int_range(pl.len()) % SHARE == 0
    return frame.with_columns(pl.when(every_nth).then(value).otherwise(pl.col(column)).alias(column))


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _parquet(path: Path, frame: pl.DataFrame) -> Path:
    frame.write_parquet(path)
    return path


def _csv(path: Path, frame: pl.DataFrame) -> Path:
    frame.write_csv(path)
    return path


def _truncated_parquet(path: Path, frame: pl.DataFrame) -> Path:
    frame.write_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a copy cut off half-way, as by a full disk or a killed upload
    return path


def _latin1_csv(path: Path, frame: pl.DataFrame) -> Path:
    text = _spoil(frame, "user_id", pl.lit("usér_ñ")).write_csv()
    path.write_bytes(text.encode("latin-1"))
    return path


def _semicolon_csv(path: Path, frame: pl.DataFrame) -> Path:
    frame.write_csv(path, separator=";")
    return path


def _json(path: Path, frame: pl.DataFrame) -> Path:
    frame.write_json(path)
    return path


def _hostile_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """The first users' rows re-keyed to SQL-hostile ids (each keeps its own history).

    The case once also demanded that the retrain on this batch be promoted; that expectation was wrong. Promotion
    is the compatibility gate's verdict: the candidate's users must rank the promoted items better than the
    promoted version's own users (recall@K on validation). On the suite's 400 users and 30 epochs the retrain beats
    the promoted version by about 0.01 to 0.03 recall, within reach of one batch's noise, and the suite's batch for
    this case (seed 125) falls short with or without the hostile ids: recall 0.648 against the promoted 0.669 with
    them, 0.666 against 0.670 with the ordinary ids. Over seeds 101 to 107 the verdict follows the batch, not the
    ids (seed 102 was promoted with them and retired without). The ids keep their identity across versions (the
    candidate's first rows are the promoted version's ids, in order), so the gate compares like with like. The
    case therefore checks the ids through to the candidate version and accepts either verdict of the gate, but
    nothing else: a step error or another failed check is not handled.
    """
    first = frame["user_id"].unique().sort().head(len(HOSTILE_USER_IDS)).to_list()
    mapping = dict(zip(first, HOSTILE_USER_IDS))
    return frame.with_columns(pl.col("user_id").replace(mapping))


@dataclass(frozen=True)
class InputCase:
    """One spoiled landing file and where the pipeline must stop it (a check name, SOURCE_ERROR or SUCCESS)."""

    name: str
    expected: str
    write: Callable[[Path, BatchShape, int], Path]


def _case(name: str, expected: str, suffix: str, spoil: Callable[[pl.DataFrame], pl.DataFrame],
          writer: Callable[[Path, pl.DataFrame], Path] | None = None) -> InputCase:
    """A case whose file is `writer(spoil(valid batch))` (Parquet or CSV by `suffix` unless `writer` is given)."""
    def write(folder: Path, shape: BatchShape, seed: int) -> Path:
        path = folder / f"{name}{suffix}"
        frame = spoil(valid_batch(shape, seed))
        return (writer or (_parquet if suffix == ".parquet" else _csv))(path, frame)

    return InputCase(name, expected, write)


def _raw_file(name: str, content: bytes, suffix: str) -> InputCase:
    def write(folder: Path, shape: BatchShape, seed: int) -> Path:
        path = folder / f"{name}{suffix}"
        path.write_bytes(content)
        return path

    return InputCase(name, SOURCE_ERROR, write)


def _volume_spike(folder: Path, shape: BatchShape, seed: int) -> Path:
    # Eleven fresh batches at once: more than the 10x bound on the previous ingest of the source.
    path = folder / "volume_spike_11x.parquet"
    pl.concat([valid_batch(shape, seed * 100 + k) for k in range(11)]).write_parquet(path)
    return path


def _stale_reexport(baseline_file: Path) -> Callable[[Path, BatchShape, int], Path]:
    def write(folder: Path, shape: BatchShape, seed: int) -> Path:
        # The previous export again, rows reversed: new bytes (a new content key) but not one new row.
        path = folder / "stale_reexport.parquet"
        pl.read_parquet(baseline_file).reverse().write_parquet(path)
        return path

    return write


def _missing_file(folder: Path, shape: BatchShape, seed: int) -> Path:
    return folder / "never_written.parquet"


def input_cases(baseline_file: Path) -> list[InputCase]:
    """Every bad input, given the landing file that the baseline ingested (the stale re-export repeats it)."""
    null = pl.lit(None, dtype=pl.Utf8)
    return [
        _case("null_user_ids", "interactions_have_no_null_ids", ".parquet", lambda f: _spoil(f, "user_id", null)),
        _case("null_item_ids", "interactions_have_no_null_ids", ".parquet", lambda f: _spoil(f, "item_id", null)),
        _case("blank_user_ids", "interactions_have_no_null_ids", ".csv", lambda f: _spoil(f, "user_id", pl.lit("  "))),
        _case("weight_not_a_number", SOURCE_ERROR, ".csv",
              lambda f: f.cast({"weight": pl.Utf8}).pipe(_spoil, "weight", pl.lit("heavy"))),
        _case("ts_not_a_timestamp", SOURCE_ERROR, ".csv",
              lambda f: f.cast({"ts": pl.Utf8}).pipe(_spoil, "ts", pl.lit("yesterday"))),
        _case("ts_as_booleans", SOURCE_ERROR, ".parquet",
              lambda f: f.with_columns((pl.col("weight") > 1.5).alias("ts"))),
        _case("negative_weights", "interactions_weights_finite_and_in_range", ".parquet",
              lambda f: _spoil(f, "weight", pl.lit(-1.0))),
        _case("nan_weights", "interactions_weights_finite_and_in_range", ".parquet",
              lambda f: _spoil(f, "weight", pl.lit(float("nan")))),
        _case("infinite_weights", "interactions_weights_finite_and_in_range", ".parquet",
              lambda f: _spoil(f, "weight", pl.lit(float("inf")))),
        _case("huge_weights", "interactions_weights_finite_and_in_range", ".parquet",
              lambda f: _spoil(f, "weight", pl.lit(1e12))),
        _case("future_timestamps", "interactions_timestamps_in_range", ".parquet",
              lambda f: _spoil(f, "ts", pl.lit(_now() + timedelta(days=30)))),
        # Before the default lower bound, 1970-01-01 (a signed-overflow or sentinel date).
        _case("ancient_timestamps", "interactions_timestamps_in_range", ".parquet",
              lambda f: _spoil(f, "ts", pl.lit(datetime(1969, 12, 31)))),
        _case("null_timestamps", "interactions_timestamps_in_range", ".parquet",
              lambda f: _spoil(f, "ts", pl.lit(None, dtype=pl.Datetime("us")))),
        _case("duplicate_flood", "interactions_duplicate_rate_within_bound", ".parquet",
              lambda f: pl.concat([f, f.head(f.height // 10)])),
        _case("unknown_item_ids", "interactions_reference_known_items", ".parquet",
              lambda f: _spoil(f, "item_id", pl.lit("i_not_in_catalogue"))),
        _raw_file("empty_file", b"", ".csv"),
        _raw_file("header_only_csv", b"user_id,item_id,ts,event,weight\n", ".csv"),
        _case("truncated_parquet", SOURCE_ERROR, ".parquet", lambda f: f, _truncated_parquet),
        _case("non_utf8_csv", SOURCE_ERROR, ".csv", lambda f: f, _latin1_csv),
        _case("renamed_columns", SOURCE_ERROR, ".parquet",
              lambda f: f.rename({"user_id": "userId", "item_id": "itemId", "ts": "timestamp"})),
        _case("semicolon_separated_csv", SOURCE_ERROR, ".csv", lambda f: f, _semicolon_csv),
        _case("json_not_parquet", SOURCE_ERROR, ".json", lambda f: f, _json),
        InputCase("missing_file", SOURCE_ERROR, _missing_file),
        InputCase("volume_spike_11x", "interactions_volume_change_within_bound", _volume_spike),
        InputCase("stale_reexport", "interactions_volume_change_within_bound", _stale_reexport(baseline_file)),
        _case("sql_metacharacter_ids", SUCCESS, ".csv", _hostile_ids),
    ]
