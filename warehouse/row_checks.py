"""The row rules (warehouse.rules) validated with great-expectations, one pandas frame per rule pulled from DuckDB.

Why pandas and not great-expectations on DuckDB itself: with great-expectations 1.24 and duckdb-engine 0.17 every
SQL metric fails (great-expectations reads each result after closing its connection, and duckdb-engine's results are
gone by then: IndexError on an empty fetch). Patched to buffer results, it was faster (measured on 100k rows,
3 expectations: about 0.06-0.08 s against 0.53-0.57 s here), but it would need a patch of great-expectations'
internals, a new dependency, and a database file (the ':memory:' warehouse cannot be opened by a second engine).
Each frame holds only the rule's value and the DuckDB rowid, so the cost stays small.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from warehouse.rules import SUITE_NAME, RowRule, active_rules, fails_sql, sql_parameters, suite_parameters
from warehouse.validation import ValidationConfig, checks_known_items, known_items

PARTIAL_LIST_SIZE = 20
ROW_ID = "row_id"  # DuckDB's rowid of raw_interactions, reported for each unexpected row


def summary_format(complete: bool = False) -> dict[str, Any]:
    """Result format naming unexpected rows by rowid: a sample of them, or every one when `complete`."""
    return {"result_format": "COMPLETE" if complete else "SUMMARY",
            "partial_unexpected_count": PARTIAL_LIST_SIZE, "unexpected_index_column_names": [ROW_ID]}


def _context():
    """An ephemeral great-expectations context with one pandas dataframe asset."""
    # great_expectations takes ~7 s to import: only pay for it when checks actually run.
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    return gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            analytics_enabled=False,  # no network calls from a data check
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        ),
    )


def rule_frame_sql(rules: tuple[RowRule, ...], index: int) -> str:
    """The rows rule `index` sees: those it applies to that passed every earlier rule (as the quarantine's CASE
    reaches them), with the value it tests."""
    rule = rules[index]
    earlier = "".join(f" AND NOT {fails_sql(r)}" for r in rules[:index])
    return (f"SELECT rowid AS {ROW_ID}, {rule.expression} AS {rule.column} FROM raw_interactions "
            f"WHERE coalesce({rule.where}, FALSE){earlier}")


def validate_row_rules(
    con: duckdb.DuckDBPyConnection, cfg: ValidationConfig, now: datetime, complete: bool = False,
    run_name: str | None = None,
):
    """Validate every active row rule; returns (rules, great-expectations ExpectationSuiteValidationResult), the
    results in rule order, each unexpected row named by its rowid; `run_name` names the run on its Data Docs page."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

    check_items = checks_known_items(con, cfg)
    rules = active_rules(check_items)
    params = suite_parameters(cfg, now, known_items(con) if check_items else None)
    suite = gx.ExpectationSuite(name=SUITE_NAME, expectations=[r.config() for r in rules])
    batches = _context().data_sources.add_pandas("warehouse").add_dataframe_asset("raw_interactions")
    whole = batches.add_batch_definition_whole_dataframe("whole")
    results = []
    for i, expectation in enumerate(suite.expectations):
        sql = rule_frame_sql(rules, i)
        # DuckDB -> Polars -> pandas is cheap (about 0.1 s for 5 M rows to Polars, 0.03 s for 1 M rows to pandas).
        frame: pd.DataFrame = con.sql(sql, params=sql_parameters(sql, params)).pl().to_pandas()
        batch = whole.get_batch(batch_parameters={"dataframe": frame})
        results.append(batch.validate(expectation, expectation_parameters=params,
                                      result_format=summary_format(complete)))
    evaluated = len(results)
    passed = sum(bool(r.success) for r in results)
    suite_result = ExpectationSuiteValidationResult(
        success=passed == evaluated, results=results, suite_name=SUITE_NAME,
        suite_parameters={k: v for k, v in params.items() if k != "known_items"},
        statistics={"evaluated_expectations": evaluated, "successful_expectations": passed,
                    "unsuccessful_expectations": evaluated - passed,
                    "success_percent": 100.0 * passed / evaluated if evaluated else 100.0},
        meta={"great_expectations_version": gx.__version__,
              "run_id": {"run_name": run_name or "row_rules", "run_time": now.isoformat()},
              "active_batch_definition": {"datasource_name": "warehouse", "data_asset_name": "raw_interactions"}},
    )
    return rules, suite_result
