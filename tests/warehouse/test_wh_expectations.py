"""Tests of run_expectations(): every check passes on clean demo data and fails, with a message naming the
problem, on data broken in one way (5% NULL ids, future timestamps, NaN weights, unknown items, duplicates,
a 10x volume spike, a drop to zero, a schema change).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import polars as pl
import pytest

from warehouse.demo import DemoConfig, generate_demo
from warehouse.expectations import run_expectations
from warehouse.ingest import ingest
from warehouse.validation import ValidationConfig

NOW = datetime(2026, 3, 10)
CHECKS = [
    "interactions_have_expected_schema",
    "interactions_have_no_null_ids",
    "interactions_timestamps_in_range",
    "interactions_weights_finite_and_in_range",
    "interactions_duplicate_rate_within_bound",
    "interactions_reference_known_items",
    "interactions_volume_change_within_bound",
]


@pytest.fixture(scope="module")
def demo() -> tuple[pl.DataFrame, pl.DataFrame]:
    interactions, items = generate_demo(DemoConfig(n_users=600, n_items=300))
    return interactions.with_row_index("row"), items


def _every_20th(frame: pl.DataFrame, column: str, value) -> pl.DataFrame:
    """Set `column` to `value` on rows 0, 20, 40, ... (5% of the frame)."""
    return frame.with_columns(
        pl.when(pl.col("row") % 20 == 0).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )


def _run(con, frame: pl.DataFrame, items: pl.DataFrame | None, key: str = "k") -> dict:
    ingest(con, frame.drop("row"), items, "demo", key, now=NOW)
    outcomes = run_expectations(con, ValidationConfig(), NOW)
    assert [o.check_name for o in outcomes] == CHECKS
    json.dumps([o.details for o in outcomes])  # details must be plain JSON (Dagster metadata)
    return {o.check_name: o for o in outcomes}


def _failed(outcomes: dict) -> list[str]:
    return [name for name, o in outcomes.items() if not o.passed]


def test_all_pass_on_clean_demo(con, demo):
    outcomes = _run(con, *demo)
    assert _failed(outcomes) == []
    assert all(o.description and o.details["message"].startswith("ok") for o in outcomes.values())


def test_five_percent_null_user_ids(con, demo):
    frame, items = demo
    n, bad = frame.height, (frame.height + 19) // 20
    o = _run(con, _every_20th(frame, "user_id", None), items)["interactions_have_no_null_ids"]
    assert not o.passed
    assert o.details["unexpected_count"] == bad
    assert o.details["partial_unexpected_list"][:3] == [None, None, None]
    assert o.details["message"] == (
        f"{bad} of {n} rows ({100 * bad / n:.2f}%) have a NULL user_id; at most 1.00% allowed; "
        "quarantine puts them in rejected_interactions with reason null_user_id"
    )


def test_a_few_null_ids_are_tolerated(con, demo):
    frame, items = demo
    sparse = frame.with_columns(pl.when(pl.col("row") % 500 == 0).then(None).otherwise("item_id").alias("item_id"))
    o = _run(con, sparse, items)["interactions_have_no_null_ids"]
    assert o.passed and o.details["unexpected_count"] == (frame.height + 499) // 500


def test_five_percent_future_timestamps(con, demo):
    frame, items = demo
    outcomes = _run(con, _every_20th(frame, "ts", NOW + timedelta(days=30)), items)
    assert _failed(outcomes) == ["interactions_timestamps_in_range"]
    message = outcomes["interactions_timestamps_in_range"].details["message"]
    assert "have a ts in the future (after 2026-03-10 00:00:00)" in message and "ts_in_future" in message


def test_nan_weights(con, demo):
    frame, items = demo
    outcomes = _run(con, _every_20th(frame, "weight", float("nan")), items)
    assert _failed(outcomes) == ["interactions_weights_finite_and_in_range"]
    message = outcomes["interactions_weights_finite_and_in_range"].details["message"]
    assert "have a NaN or infinite weight" in message and "weight_not_finite" in message


def test_unknown_items(con, demo):
    frame, items = demo
    outcomes = _run(con, _every_20th(frame, "item_id", "i99999"), items)
    assert _failed(outcomes) == ["interactions_reference_known_items"]
    o = outcomes["interactions_reference_known_items"]
    assert "reference an item_id missing from raw_items" in o.details["message"]
    assert set(o.details["partial_unexpected_list"]) == {"i99999"}


def test_duplicates(con, demo):
    frame, items = demo
    doubled = pl.concat([frame, frame.filter(pl.col("row") % 20 == 0)])
    outcomes = _run(con, doubled, items)
    assert _failed(outcomes) == ["interactions_duplicate_rate_within_bound"]
    o = outcomes["interactions_duplicate_rate_within_bound"]
    assert o.details["unexpected_count"] == (frame.height + 19) // 20
    assert "are exact duplicates" in o.details["message"]


def test_volume_spike_and_drop_to_zero(con, demo):
    frame, items = demo
    first = _run(con, frame.head(1000), items, key="day1")
    assert first["interactions_volume_change_within_bound"].passed
    spike = _run(con, frame.slice(1000, 10_500), items, key="day2")["interactions_volume_change_within_bound"]
    assert not spike.passed
    assert spike.details["ratio"] == pytest.approx(10.5)
    assert "added 10500 rows, 10.5x the previous 1000; at most 10x allowed" in spike.details["message"]
    replay = _run(con, frame.slice(1000, 10_500), items, key="day2")["interactions_volume_change_within_bound"]
    assert replay.passed  # identical content re-ingested: adding nothing is expected
    stale = _run(con, frame.head(500), items, key="day3")["interactions_volume_change_within_bound"]
    assert not stale.passed and "added 0 rows from new content" in stale.details["message"]


def test_schema_change(con, demo):
    con.execute("ALTER TABLE raw_interactions ADD COLUMN extra INTEGER")
    con.execute("ALTER TABLE raw_interactions ALTER weight TYPE FLOAT")
    outcomes = run_expectations(con, ValidationConfig(), NOW)
    o = outcomes[0]
    assert o.check_name == "interactions_have_expected_schema" and not o.passed
    assert "unexpected columns ['extra']" in o.details["message"]
    assert "column weight is FLOAT, expected DOUBLE" in o.details["message"]
