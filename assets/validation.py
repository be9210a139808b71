"""Validation stage: great-expectations checks on raw_interactions (blocking, but for the duplicate rate that only warns), then
the quarantine that splits raw rows into clean_interactions and rejected_interactions (each rejected row with its
reason). Both read their bounds from the one `validation` resource.
"""

import time
from datetime import datetime, timezone

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
    multi_asset_check,
)

from assets.cost import step_cost
from orchestration.automation import AFTER_UPSTREAM_PASSES
from orchestration.resources import WAREHOUSE_POOL, ArtifactStore, ValidationRules, Warehouse
from warehouse.expectations import run_expectations
from warehouse.validation import quarantine

CODE_VERSION = "validation-2"

# One check per expectation that warehouse.expectations.run_expectations reports, in its order.
EXPECTATIONS = {
    "interactions_have_expected_schema": "Columns and DuckDB types are exactly the raw schema.",
    "interactions_have_no_null_ids": "user_id and item_id are present.",
    "interactions_timestamps_in_range": "Timestamps are present, not in the future, not before the start.",
    "interactions_weights_finite_and_in_range": "Weights are finite and within the configured range.",
    "interactions_duplicate_rate_within_bound": "Exact duplicates are rare enough.",
    "interactions_reference_known_items": "Every item_id is in raw_items (when a source supplied items).",
    "interactions_volume_change_within_bound": "The latest ingest's volume is in line with the previous one.",
}


def _utc_now() -> datetime:
    """Now as naive UTC, the convention of every warehouse timestamp."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


# Findings that warn without stopping the pipeline: the quarantine keeps one copy of each duplicate, so extra copies
# cannot reach training. Non-blocking as well as WARN, so that the automation's wait for blocking checks ignores it
# too. The volume change stays blocking: an 11x runaway or an empty re-export would otherwise retrain and promote
# automatically before anyone looked.
WARN_ONLY = {"interactions_duplicate_rate_within_bound"}


@multi_asset_check(
    specs=[AssetCheckSpec(name, asset="raw_interactions", description=text, blocking=name not in WARN_ONLY)
           for name, text in EXPECTATIONS.items()],
    pool=WAREHOUSE_POOL,
)
def raw_interactions_expectations(context: AssetCheckExecutionContext, validation: ValidationRules,
                                  warehouse: Warehouse, artifacts: ArtifactStore):
    """Run the great-expectations suite on raw_interactions once and report each expectation as a check; the row
    rules' results are kept as a Data Docs page of this run, linked from each row check."""
    docs = artifacts.path("data_docs", "raw_interactions", f"{context.run.run_id}.html")
    with warehouse.connection() as con:
        outcomes = run_expectations(con, validation.rules(), _utc_now(), docs_path=docs,
                                    run_name=context.run.run_id)
    for outcome in outcomes:
        metadata = dict(outcome.details)
        if "data_docs" in metadata:
            metadata["data_docs"] = MetadataValue.path(metadata["data_docs"])
        yield AssetCheckResult(
            check_name=outcome.check_name, asset_key="raw_interactions", passed=outcome.passed,
            severity=AssetCheckSeverity.WARN if outcome.check_name in WARN_ONLY else AssetCheckSeverity.ERROR,
            description=outcome.details.get("message", outcome.description),
            metadata={**metadata, **step_cost(context)},
        )


@multi_asset(
    specs=[
        AssetSpec("clean_interactions", description="Raw interactions that pass every row rule.",
                  group_name="validation", kinds={"duckdb"}, code_version=CODE_VERSION,
                  deps=["raw_interactions", "raw_items"], automation_condition=AFTER_UPSTREAM_PASSES),
        AssetSpec("rejected_interactions", description="Quarantined raw rows, each with the rule it broke.",
                  group_name="validation", kinds={"duckdb"}, code_version=CODE_VERSION,
                  deps=["raw_interactions", "raw_items"], automation_condition=AFTER_UPSTREAM_PASSES),
    ],
    pool=WAREHOUSE_POOL,
)
def quarantined_interactions(context: AssetExecutionContext, validation: ValidationRules, warehouse: Warehouse):
    """Rebuild clean_interactions and rejected_interactions from raw_interactions."""
    started = time.perf_counter()
    with warehouse.connection() as con:
        result = quarantine(con, validation.rules(), _utc_now())
    context.log.info(f"kept {result.clean_rows} rows, rejected {result.rejected_rows}: {result.by_reason}")
    yield MaterializeResult(asset_key="clean_interactions", metadata={
        **step_cost(context),
        "dagster/row_count": result.clean_rows, "seconds": time.perf_counter() - started,
    })
    yield MaterializeResult(asset_key="rejected_interactions", metadata={
        **step_cost(context),
        "dagster/row_count": result.rejected_rows,
        **{f"rejected_{reason}": count for reason, count in result.by_reason.items()},
    })
