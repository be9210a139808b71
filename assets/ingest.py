"""Ingest stage: raw_interactions and raw_items from the demo generator, Parquet/CSV files, LightGCN folders
or MovieLens folders, appended idempotently to the warehouse (the same input twice adds nothing).
"""

import time

from dagster import AssetExecutionContext, AssetSpec, Config, MaterializeResult, multi_asset
from pydantic import Field

from assets.cost import step_cost
from orchestration.resources import WAREHOUSE_POOL, Warehouse
from warehouse.demo import DemoConfig, demo_content_key
from warehouse.ingest import content_key_for, ingest
from warehouse.sources import read_source, source_files

CODE_VERSION = "ingest-1"


class IngestConfig(Config):
    """Which source to ingest; the demo generator needs no path."""

    source: str = Field(default="demo", description="demo | files | lightgcn | movielens")
    path: str | None = Field(default=None, description="File, glob or folder (files); folder (lightgcn, movielens).")
    demo_seed: int = Field(default=DemoConfig.seed, description="Seed of the demo generator.")
    demo_users: int = Field(default=DemoConfig.n_users, description="Users in the demo data set.")
    demo_items: int = Field(default=DemoConfig.n_items, description="Items in the demo data set.")


@multi_asset(
    specs=[
        AssetSpec("raw_interactions", description="Every interaction ever ingested, as given by its source.",
                  group_name="ingest", kinds={"duckdb", "polars"}, code_version=CODE_VERSION),
        AssetSpec("raw_items", description="Item catalogue (titles, categories) from sources that have one.",
                  group_name="ingest", kinds={"duckdb", "polars"}, code_version=CODE_VERSION),
    ],
    pool=WAREHOUSE_POOL,
)
def ingest_source(context: AssetExecutionContext, config: IngestConfig, warehouse: Warehouse):
    """Read one source and append what is new to raw_interactions and raw_items."""
    started = time.perf_counter()
    if config.source == "demo":
        demo = DemoConfig(seed=config.demo_seed, n_users=config.demo_users, n_items=config.demo_items)
        interactions, items = read_source("demo", demo_config=demo)
        content_key = demo_content_key(demo)
    else:
        interactions, items = read_source(config.source, config.path)
        content_key = content_key_for(source_files(config.source, config.path))
    with warehouse.connection() as con:
        result = ingest(con, interactions, items, config.source, content_key)
        items_total = con.execute("SELECT count(*) FROM raw_items").fetchall()[0][0]
    context.log.info(f"{config.source} {config.path or ''}: {result.rows_added} of {result.rows_read} rows are new")
    yield MaterializeResult(asset_key="raw_interactions", metadata={
        **step_cost(context),
        "dagster/row_count": result.rows_total, "rows_read": result.rows_read, "rows_added": result.rows_added,
        "source": config.source, "path": config.path or "", "content_key": content_key,
        "seconds": time.perf_counter() - started,
    })
    yield MaterializeResult(asset_key="raw_items", metadata={
        **step_cost(context),
        "dagster/row_count": int(items_total), "items_added": result.items_added,
    })
