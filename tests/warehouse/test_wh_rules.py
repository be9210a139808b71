"""The row rules are written once: on a crafted bad file, great-expectations flags per rule exactly the rows the
quarantine rejects with that rule's reason; the saved suite is the one the rules build.

Every row of the file carries its label in `event`, so rows can be named on both sides.
"""

from __future__ import annotations

import json
from datetime import datetime

import great_expectations as gx
import polars as pl
import pytest

from warehouse.ingest import ingest
from warehouse.row_checks import validate_row_rules
from warehouse.rules import ROW_RULES, SUITE_NAME, SUITE_PATH, active_rules, suite_dict
from warehouse.sources import read_source
from warehouse.validation import ValidationConfig, quarantine

NOW = datetime(2026, 2, 1)
T = datetime(2026, 1, 10)
NAN, INF = float("nan"), float("inf")
EARLIEST = datetime(2000, 1, 1)  # a configured lower bound, so rows from 1999 break it

# (label, user_id, item_id, ts, weight, reason with known items checked)
ROWS = [
    ("ok1", "a", "x", T, 1.0, None),
    ("ok2", "a", "y", T, None, None),  # NULL weight counts as 1.0
    ("ok3", "b", "x", datetime(2000, 1, 1), 1e6, None),  # both bounds are inclusive
    ("null_user", None, "x", T, 1.0, "null_user_id"),
    ("blank_user", "  ", "x", T, 1.0, "null_user_id"),
    ("null_user_and_future", None, "x", datetime(2027, 1, 1), 1.0, "null_user_id"),  # the first rule wins
    ("null_item", "c", None, T, 1.0, "null_item_id"),
    ("blank_item", "c", "", T, 1.0, "null_item_id"),
    ("null_ts", "d", "x", None, 1.0, "null_ts"),
    ("future", "d", "y", datetime(2026, 3, 1), 1.0, "ts_in_future"),
    ("future_and_nan", "d", "y", datetime(2026, 4, 1), NAN, "ts_in_future"),
    ("before_start", "e", "x", datetime(1999, 12, 31), 1.0, "ts_before_start"),
    ("nan_weight", "f", "x", T, NAN, "weight_not_finite"),
    ("inf_weight", "f", "y", T, INF, "weight_not_finite"),
    ("minus_inf_weight", "f", "x", T, -INF, "weight_not_finite"),
    ("negative_weight", "g", "x", T, -1.0, "weight_out_of_range"),
    ("huge_weight", "g", "y", T, 2e6, "weight_out_of_range"),
    ("unknown_item", "h", "zz", T, 1.0, "unknown_item"),
    ("unknown_and_negative", "h", "zz", T, -2.0, "weight_out_of_range"),
]
# A given-split row without a timestamp (as LightGCN files have): exempt from null_ts.
GIVEN_SPLIT = ("given_split_no_ts", "i", "x", None, 1.0, None)


@pytest.fixture
def bad_file(tmp_path):
    """The crafted rows as a Parquet file (NaN, infinities and NULLs survive it)."""
    path = tmp_path / "bad.parquet"
    pl.DataFrame(
        [(r[1], r[2], r[3], r[4], r[0]) for r in ROWS],
        schema={"user_id": pl.Utf8, "item_id": pl.Utf8, "ts": pl.Datetime("us"), "weight": pl.Float64,
                "event": pl.Utf8}, orient="row",
    ).write_parquet(path)
    return path


def _load(con, bad_file) -> None:
    interactions, _ = read_source("files", bad_file)
    ingest(con, interactions, None, "files", "bad", now=NOW)
    label, user, item, ts, weight, _ = GIVEN_SPLIT
    given = pl.DataFrame({"user_id": [user], "item_id": [item], "ts": [ts], "weight": [weight], "event": [label],
                          "split": ["train"]}, schema_overrides={"ts": pl.Datetime("us")})
    ingest(con, given, pl.DataFrame({"item_id": ["x", "y"]}), "lightgcn", "given", now=NOW)


def _gx_flags(con, cfg) -> dict[str, set[str]]:
    """Per rule, the labels of the rows great-expectations reports as unexpected."""
    labels = dict(con.execute("SELECT rowid, event FROM raw_interactions").fetchall())
    rules, result = validate_row_rules(con, cfg, NOW, complete=True)
    flags = {}
    for rule, res in zip(rules, result.results):
        assert not (res.exception_info or {}).get("raised_exception"), res.exception_info
        flags[rule.reason] = {labels[int(row["row_id"])] for row in res.result["unexpected_index_list"]}
    return flags


def _quarantined(con, cfg) -> dict[str, set[str]]:
    """Per rule, the labels of the rows the quarantine rejects with its reason."""
    quarantine(con, cfg, NOW)
    found: dict[str, set[str]] = {}
    for label, reason in con.execute("SELECT event, reason FROM rejected_interactions").fetchall():
        found.setdefault(reason, set()).add(label)
    return found


@pytest.mark.parametrize("known_items", [True, False], ids=["items-checked", "items-not-checked"])
def test_check_and_quarantine_flag_the_same_rows(con, bad_file, known_items):
    cfg = ValidationConfig(earliest_ts=EARLIEST, require_known_items=known_items)
    _load(con, bad_file)
    expected: dict[str, set[str]] = {r.reason: set() for r in active_rules(known_items)}
    for label, *_, reason in ROWS:
        if reason == "unknown_item" and not known_items:
            continue  # without the rule, the row is clean
        if reason:
            expected[reason].add(label)
    # Every rule in force has rows that break it, so the comparison below covers each one.
    assert all(expected.values()), expected

    gx_flags = _gx_flags(con, cfg)
    assert gx_flags == expected
    assert _quarantined(con, cfg) == expected


def test_saved_suite_is_the_one_the_rules_build():
    saved = json.loads(SUITE_PATH.read_text())
    assert saved == suite_dict(), "regenerate it: python -m warehouse.rules"
    built = gx.ExpectationSuite(name=SUITE_NAME, expectations=[r.config() for r in ROW_RULES])
    # great-expectations reads the saved file back into the same expectations.
    assert gx.ExpectationSuite(**saved).expectations == built.expectations
    assert [e["meta"]["reason"] for e in saved["expectations"]] == [r.reason for r in ROW_RULES]
