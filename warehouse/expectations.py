"""Blocking data-quality checks on raw_interactions, one outcome per property.

The row rules are great-expectations expectations from warehouse.rules (the same definitions the quarantine turns
into SQL), validated by warehouse.row_checks; schema, duplicates and volume are table-level and run as DuckDB SQL.
Each run can write a great-expectations Data Docs page of the row rules' results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from warehouse.data_docs import write_data_docs
from warehouse.row_checks import PARTIAL_LIST_SIZE, validate_row_rules
from warehouse.rules import CHECK_IDS, CHECK_ITEMS, CHECK_TS, CHECK_WEIGHTS, RowRule, suite_parameters
from warehouse.schema import RAW_INTERACTIONS
from warehouse.validation import ValidationConfig


@dataclass(frozen=True)
class ExpectationOutcome:
    """Result of one blocking check: its name, pass/fail, what it checks, and observed values + a message."""

    check_name: str
    passed: bool
    description: str
    details: dict[str, Any] = field(default_factory=dict)


def _jsonable(value: Any) -> Any:
    """GE observed values as plain JSON types (timestamps as ISO strings, NaN as None) for Dagster metadata."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def _rule_entry(rule: RowRule, res) -> dict[str, Any]:
    """One rule's great-expectations result as plain JSON for the check's metadata."""
    observed = _jsonable(dict(res.result))
    entry = {
        "reason": rule.reason,
        "expectation": res.expectation_config.type,
        "column": res.expectation_config.kwargs.get("column"),
        "success": bool(res.success),
        "unexpected_count": observed.get("unexpected_count", 0),
        "unexpected_percent": observed.get("unexpected_percent"),
        "partial_unexpected_list": observed.get("partial_unexpected_list", []),
        "element_count": observed.get("element_count", 0),
    }
    if res.exception_info and res.exception_info.get("raised_exception"):
        entry["exception"] = res.exception_info.get("exception_message")
    return entry


def _problem_message(entry: dict[str, Any], problem: str, reason: str, allowed: float) -> str:
    if "exception" in entry:
        return f"expectation {entry['expectation']} on {entry['column']} raised: {entry['exception']}"
    n, total = entry["unexpected_count"] or 0, entry["element_count"] or 0
    pct = 100.0 * n / total if total else 0.0
    return (
        f"{n} of {total} rows ({pct:.2f}%) {problem}; at most {100 * allowed:.2f}% allowed; "
        f"quarantine puts them in rejected_interactions with reason {reason}"
    )


def _rules_outcome(name: str, description: str, pairs: list, params: dict[str, Any], allowed: float,
                   ) -> ExpectationOutcome:
    """Fold the results of one check's rules into one outcome with a readable message."""
    entries = [_rule_entry(rule, res) for rule, res in pairs]
    problems = [_problem_message(e, rule.problem.format(**params), rule.reason, allowed)
                for e, (rule, res) in zip(entries, pairs) if not res.success]
    # The first rule of a check sees every row its later rules could see.
    total = entries[0]["element_count"] if entries else 0
    unexpected = sum(e["unexpected_count"] or 0 for e in entries)
    details = {
        "message": "; ".join(problems) if problems else f"ok: {total} rows checked",
        "element_count": total,
        "unexpected_count": unexpected,
        "unexpected_percent": 100.0 * unexpected / total if total else 0.0,
        "partial_unexpected_list": [v for e in entries for v in e["partial_unexpected_list"]][:PARTIAL_LIST_SIZE],
        "expectations": entries,
    }
    return ExpectationOutcome(name, not problems, description, details)


def _schema_outcome(con: duckdb.DuckDBPyConnection) -> ExpectationOutcome:
    observed = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'raw_interactions' AND table_schema = current_schema() ORDER BY ordinal_position"
        ).fetchall()
    )
    missing = [c for c in RAW_INTERACTIONS if c not in observed]
    unexpected = [c for c in observed if c not in RAW_INTERACTIONS]
    wrong = {c: observed[c] for c in RAW_INTERACTIONS if c in observed and observed[c] != RAW_INTERACTIONS[c]}
    problems = (
        ([f"missing columns {missing}"] if missing else [])
        + ([f"unexpected columns {unexpected}"] if unexpected else [])
        + [f"column {c} is {t}, expected {RAW_INTERACTIONS[c]}" for c, t in wrong.items()]
    )
    message = (
        "raw_interactions " + "; ".join(problems) + "; recreate the table with warehouse.connection.connect"
        if problems else "ok: raw_interactions has the expected columns and types"
    )
    return ExpectationOutcome(
        "interactions_have_expected_schema", not problems,
        "raw_interactions has exactly the expected column names and DuckDB types",
        {"message": message, "expected": RAW_INTERACTIONS, "observed": observed,
         "missing": missing, "unexpected": unexpected, "wrong_types": wrong},
    )


def _duplicate_outcome(con: duckdb.DuckDBPyConnection, cfg: ValidationConfig) -> ExpectationOutcome:
    # SQL rather than GE's compound-uniqueness expectation: GE counts every member of a duplicated group,
    # whereas the quarantine (and this bound) counts only the copies beyond the first.
    total, dups = con.execute(
        """
        SELECT count(*), coalesce(sum(n - 1), 0) FROM (
            SELECT count(*) AS n FROM raw_interactions GROUP BY user_id, item_id, ts, event, split
        )
        """
    ).fetchall()[0]
    examples = con.sql(
        f"""
        SELECT user_id, item_id, ts, event, split, count(*) AS copies FROM raw_interactions
        GROUP BY ALL HAVING count(*) > 1 ORDER BY copies DESC, user_id, item_id LIMIT {PARTIAL_LIST_SIZE}
        """
    ).pl().to_dicts()
    rate = dups / total if total else 0.0
    passed = rate <= cfg.max_duplicate_rate
    message = (
        f"ok: {dups} duplicate rows of {total} ({100 * rate:.2f}%)" if passed else
        f"{dups} of {total} rows ({100 * rate:.2f}%) are exact duplicates of (user_id, item_id, ts, event, split); "
        f"at most {100 * cfg.max_duplicate_rate:.2f}% allowed; quarantine puts the extra copies in "
        "rejected_interactions with reason duplicate; check the source for double exports"
    )
    return ExpectationOutcome(
        "interactions_duplicate_rate_within_bound", passed,
        "share of exact duplicate (user_id, item_id, ts, event, split) rows beyond the first copy is within bound",
        {"message": message, "element_count": total, "unexpected_count": dups,
         "unexpected_percent": 100 * rate, "partial_unexpected_list": _jsonable(examples)},
    )


def _volume_outcome(con: duckdb.DuckDBPyConnection, cfg: ValidationConfig) -> ExpectationOutcome:
    name = "interactions_volume_change_within_bound"
    description = (
        f"rows added by the latest ingest are at most {cfg.max_volume_change:g}x the previous ingest of the "
        "same source, and not zero for new content"
    )
    log = con.sql(
        # rowid breaks ties between runs logged at the same instant: it follows insertion order.
        "SELECT run_at, source, content_key, rows_added FROM ingest_log ORDER BY run_at DESC, rowid DESC"
    ).pl()
    if log.height == 0:
        return ExpectationOutcome(name, True, description, {"message": "ok: nothing ingested yet"})
    latest = log.row(0, named=True)
    earlier = log.slice(1).filter(log["source"].slice(1) == latest["source"])
    details: dict[str, Any] = {"latest": _jsonable(latest)}
    if latest["content_key"] in earlier["content_key"].to_list():
        # Re-ingesting identical input legitimately adds nothing.
        details["message"] = "ok: the latest ingest replayed content already ingested (nothing new expected)"
        return ExpectationOutcome(name, True, description, details)
    baseline = earlier.filter(earlier["rows_added"] > 0)
    if baseline.height == 0:
        passed = latest["rows_added"] > 0
        details["message"] = (
            f"ok: first ingest of source {latest['source']!r} ({latest['rows_added']} rows)" if passed else
            f"the first ingest of source {latest['source']!r} added 0 rows; check that the source is not empty"
        )
        return ExpectationOutcome(name, passed, description, details)
    previous = baseline.row(0, named=True)
    ratio = latest["rows_added"] / previous["rows_added"]
    details.update(previous=_jsonable(previous), ratio=ratio)
    if latest["rows_added"] == 0:
        details["message"] = (
            f"the latest ingest of {latest['source']!r} added 0 rows from new content (previous added "
            f"{previous['rows_added']}); check that the export is not empty or stale"
        )
        return ExpectationOutcome(name, False, description, details)
    passed = ratio <= cfg.max_volume_change
    details["message"] = (
        f"ok: {latest['rows_added']} rows added vs {previous['rows_added']} before ({ratio:.2f}x)" if passed else
        f"the latest ingest of {latest['source']!r} added {latest['rows_added']} rows, {ratio:.1f}x the previous "
        f"{previous['rows_added']}; at most {cfg.max_volume_change:g}x allowed; check for a duplicated or "
        "runaway export before accepting it"
    )
    return ExpectationOutcome(name, passed, description, details)


def run_expectations(
    con: duckdb.DuckDBPyConnection, cfg: ValidationConfig, now: datetime, docs_path: Path | None = None,
    run_name: str | None = None,
) -> list[ExpectationOutcome]:
    """Run every blocking check on raw_interactions; one ExpectationOutcome per check, in a fixed order. With
    `docs_path`, the row rules' results are also written there as a Data Docs page, named in each row check's
    details under "data_docs" (the page names the run `run_name`)."""
    rules, suite_result = validate_row_rules(con, cfg, now, run_name=run_name)
    params = suite_parameters(cfg, now)
    by_check: dict[str, list] = {}
    for rule, res in zip(rules, suite_result.results):
        by_check.setdefault(rule.check, []).append((rule, res))
    allowed = cfg.max_rejected_fraction
    descriptions = {
        CHECK_IDS: "user_id and item_id are present (NULL or blank ids are rejected)",
        CHECK_TS: f"ts is present and between {cfg.earliest_ts:%Y-%m-%d} and now (given-split rows may lack ts)",
        CHECK_WEIGHTS: f"weight is finite and within [{cfg.min_weight:g}, {cfg.max_weight:g}] (NULL counts as 1.0)",
        CHECK_ITEMS: "every item_id is listed in raw_items (when a source supplied items)",
    }
    row = {name: _rules_outcome(name, text, by_check.get(name, []), params, allowed)
           for name, text in descriptions.items()}
    if CHECK_ITEMS not in by_check:
        why = "require_known_items is off" if not cfg.require_known_items else "no source supplied raw_items"
        row[CHECK_ITEMS] = ExpectationOutcome(CHECK_ITEMS, True, descriptions[CHECK_ITEMS],
                                              {"message": f"ok: skipped, {why}"})
    if docs_path is not None:
        page = str(write_data_docs(suite_result, docs_path))
        for outcome in row.values():
            outcome.details["data_docs"] = page
    return [
        _schema_outcome(con), row[CHECK_IDS], row[CHECK_TS], row[CHECK_WEIGHTS],
        _duplicate_outcome(con, cfg), row[CHECK_ITEMS], _volume_outcome(con, cfg),
    ]
