"""The `retract_ingest` job: an operator removes a bad file's rows from raw_interactions from the UI, by the content
key that the ingest's materialization shows (see warehouse.retract for what is removed and what stays).
"""

from dagster import AssetMaterialization, Config, OpExecutionContext, job, op
from pydantic import Field

from orchestration.resources import WAREHOUSE_POOL, Warehouse
from warehouse.retract import retract_ingest as retract


class RetractIngestConfig(Config):
    """Which ingest to retract."""

    content_key: str = Field(description="The content_key metadata of the raw_interactions materialization to undo.")


@op(pool=WAREHOUSE_POOL, description="Removes the rows one ingest added to raw_interactions, and its ingest_log entries, in one DuckDB "
                "transaction; an unknown content key fails the run and changes nothing.")
def retract_ingest_op(context: OpExecutionContext, config: RetractIngestConfig, warehouse: Warehouse) -> None:
    """Retract the ingest of `config.content_key` and record the new raw_interactions as a materialization."""
    with warehouse.connection() as con:
        result = retract(con, config.content_key.strip())
    context.log.info(f"retracted {result.content_key}: {result.rows_removed} rows removed, {result.rows_total} left")
    # A materialization, so the asset page shows the change and downstream assets show as stale; the automation
    # carries it on once raw_interactions' blocking checks have been executed again on what is left.
    context.log_event(AssetMaterialization("raw_interactions", description="ingest retracted", metadata={
        "dagster/row_count": result.rows_total, "retracted_content_key": result.content_key,
        "rows_removed": result.rows_removed, "ingests_removed": result.ingests_removed,
    }))


@job(name="retract_ingest", tags={"graphrec/kind": "operator"},
     description="Undo one ingest by its content key: its rows leave raw_interactions (then execute raw_interactions' "
                 "checks so the quarantine and everything downstream are rebuilt without them).")
def retract_ingest_job() -> None:
    """One op: the retraction."""
    retract_ingest_op()
