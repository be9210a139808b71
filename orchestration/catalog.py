"""Catalog metadata, applied to every asset in one place rather than in each decorator: owners and tags by group,
the column schemas of the warehouse tables (from warehouse.schema, the DDL's own source), references to the code
that defines each asset, and the freshness expected of the served embeddings.
"""

import warnings
from collections.abc import Sequence
from datetime import timedelta

from dagster import (
    AnchorBasedFilePathMapping,
    AssetsDefinition,
    AssetSpec,
    BetaWarning,
    FreshnessPolicy,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    link_code_references_to_git,
    map_asset_specs,
    with_source_code_references,
)

from orchestration.settings import REPO_ROOT, Settings
from warehouse.schema import (
    CLEAN_INTERACTIONS,
    ID_MAP,
    INTERACTION_SPLIT,
    RAW_INTERACTIONS,
    RAW_ITEMS,
    REJECTED_INTERACTIONS,
)

DATA_TEAM, RECSYS_TEAM, RESEARCH_TEAM = "team:data", "team:recsys", "team:research"
# group -> (owners, layer): the data team owns what enters and leaves the warehouse, the recsys team the models.
GROUPS = {
    "ingest": ([DATA_TEAM], "raw"),
    "validation": ([DATA_TEAM], "clean"),
    "graph": ([RECSYS_TEAM, DATA_TEAM], "features"),
    "training": ([RECSYS_TEAM], "model"),
    "distillation": ([RECSYS_TEAM], "model"),
    "evaluation": ([RECSYS_TEAM], "report"),
    "embeddings": ([RECSYS_TEAM], "serving"),
    "audience": ([RECSYS_TEAM], "serving"),
    "benchmark_graphs": ([RESEARCH_TEAM], "benchmark"),
}
# asset -> (DuckDB table, columns): the assets that are warehouse tables; id_maps is two tables of one layout
# (user_index and item_index), so it has no single table name.
TABLES = {
    "raw_interactions": ("raw_interactions", RAW_INTERACTIONS),
    "raw_items": ("raw_items", RAW_ITEMS),
    "clean_interactions": ("clean_interactions", CLEAN_INTERACTIONS),
    "rejected_interactions": ("rejected_interactions", REJECTED_INTERACTIONS),
    "id_maps": (None, ID_MAP),
    "interaction_split": ("interaction_split", INTERACTION_SPLIT),
}
# The id maps' key columns (PRIMARY KEY, NOT NULL UNIQUE in the DDL); raw tables have no constraints on purpose.
KEYS = {"id_maps": {"raw_id", "idx"}}
# The weekly retrain publishes every Monday: warn after a missed week, fail after a day more.
EMBEDDINGS_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(days=8), warn_window=timedelta(days=7))


def column_schema(asset: str) -> TableSchema:
    """The columns of the warehouse table(s) behind `asset`, in table order, with their DuckDB types."""
    _, columns = TABLES[asset]
    keys = KEYS.get(asset, set())
    return TableSchema(columns=[
        TableColumn(name, kind, constraints=TableColumnConstraints(nullable=False, unique=True) if name in keys
                    else None)
        for name, kind in columns.items()
    ])


def _catalogued(spec: AssetSpec) -> AssetSpec:
    owners, layer = GROUPS[spec.group_name]
    name = spec.key.to_user_string()
    metadata = {}
    if name in TABLES:
        table, _ = TABLES[name]
        metadata = {"dagster/column_schema": column_schema(name), **({"dagster/table_name": table} if table else {})}
    spec = spec.merge_attributes(owners=owners, tags={"graphrec/layer": layer}, metadata=metadata)
    if name == "published_embeddings":
        spec = spec.replace_attributes(freshness_policy=EMBEDDINGS_FRESHNESS)
    return spec


def catalogued(assets: Sequence[AssetsDefinition], settings: Settings) -> Sequence[AssetsDefinition]:
    """`assets` with owners, tags, column schemas and code references (to the repository's web address when
    settings.code_url is set, else to the local files)."""
    # Code references are a beta API of Dagster, used knowingly; its warning would repeat at every load of the code.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        assets = with_source_code_references(map_asset_specs(_catalogued, assets))
        if settings.code_url:
            assets = link_code_references_to_git(
                assets, git_url=settings.code_url, git_branch=settings.code_branch,
                file_path_mapping=AnchorBasedFilePathMapping(local_file_anchor=REPO_ROOT,
                                                             file_anchor_path_in_repository=""),
            )
    return assets
