"""Graph stage: append-only id maps, the train/valid/test split, and the bipartite training graph as tensors,
guarded by blocking checks (endpoints in range, no held-out edge in training, no duplicates, sane degrees).
"""

import torch
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset_check,
)
from matplotlib.figure import Figure
from pydantic import Field

from assets.common import (
    GRAPH_RECORD,
    TEST_EDGES,
    TRAIN_GRAPH,
    VALID_EDGES,
    fingerprint,
    load_tensors,
    markdown_image,
    replace_atomically,
    save_tensors,
    write_json,
)
from assets.cost import step_cost
from models.graph.bipartite import BipartiteGraph
from orchestration.automation import AFTER_UPSTREAM_PASSES
from orchestration.config_classes import config_class, from_config
from orchestration.resources import WAREHOUSE_POOL, ArtifactStore, Warehouse
from warehouse.id_maps import update_id_maps
from warehouse.split import SplitConfig, build_split, load_pair_times, load_pairs

CODE_VERSION = "graph-1"
InteractionSplitConfig = config_class(SplitConfig, "InteractionSplitConfig")


class GraphBoundsConfig(Config):
    """Bounds on the training graph's size and degrees; a graph outside them blocks training."""

    min_edges: int = Field(default=1, description="Fewest training edges worth training on.")
    min_mean_user_degree: float = Field(default=1.0, description="Lowest mean training degree of active users.")
    max_isolated_user_share: float = Field(default=0.5, description="Most users allowed without training edges.")
    max_isolated_item_share: float = Field(default=0.5, description="Most items allowed without training edges.")


@asset(group_name="graph", kinds={"duckdb"}, code_version=CODE_VERSION, deps=["clean_interactions"],
       automation_condition=AFTER_UPSTREAM_PASSES, pool=WAREHOUSE_POOL)
def id_maps(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Raw user/item id to dense index maps; stable and append-only across runs."""
    with warehouse.connection() as con:
        stats = update_id_maps(con)
    return MaterializeResult(metadata={
        **step_cost(context),
        "users_total": stats.users_total, "items_total": stats.items_total,
        "users_added": stats.users_added, "items_added": stats.items_added,
    })


@asset(group_name="graph", kinds={"duckdb"}, code_version=CODE_VERSION, deps=["id_maps", "clean_interactions"],
       automation_condition=AFTER_UPSTREAM_PASSES, pool=WAREHOUSE_POOL)
def interaction_split(context: AssetExecutionContext, config: InteractionSplitConfig,
                      warehouse: Warehouse) -> MaterializeResult:
    """Train, validation and test (user, item) pairs by the configured split mode."""
    with warehouse.connection() as con:
        stats = build_split(con, from_config(config, SplitConfig))
    return MaterializeResult(metadata={
        **step_cost(context),
        "dagster/row_count": stats.train + stats.valid + stats.test, "train_pairs": stats.train,
        "valid_pairs": stats.valid, "test_pairs": stats.test, "users": stats.users, "items": stats.items,
        "mode": config.mode, "cutoff": stats.cutoff.isoformat() if stats.cutoff else "",
        "valid_cutoff": stats.valid_cutoff.isoformat() if stats.valid_cutoff else "",
    })


def _degree_plot(graph: BipartiteGraph) -> str:
    """Log-log degree histograms of users and items, as a markdown image."""
    figure = Figure(figsize=(8, 3))
    for axis, degree, name in zip(figure.subplots(1, 2), (graph.user_degree(), graph.item_degree()), ("user", "item")):
        counts = torch.bincount(degree)
        present = torch.nonzero(counts[1:]).flatten() + 1
        axis.loglog(present.numpy(), counts[present].numpy(), "o", markersize=3)
        axis.set(xlabel=f"{name} degree (training edges)", ylabel=f"{name}s", title=f"{name} degree distribution")
    return markdown_image(figure, "degree distribution")


@asset(group_name="graph", kinds={"pytorch"}, code_version=CODE_VERSION, deps=["interaction_split", "id_maps"],
       automation_condition=AFTER_UPSTREAM_PASSES, pool=WAREHOUSE_POOL)
def training_graph(context: AssetExecutionContext, warehouse: Warehouse, artifacts: ArtifactStore) -> MaterializeResult:
    """Bipartite training graph and held-out validation/test edges, saved as tensors."""
    with warehouse.connection() as con:
        train, valid, test = (torch.from_numpy(load_pairs(con, part)) for part in ("train", "valid", "test"))
        train_time = load_pair_times(con, "train")
        num_users, num_items = con.execute(
            "SELECT (SELECT count(*) FROM user_index), (SELECT count(*) FROM item_index)").fetchall()[0]
    graph = BipartiteGraph(train, int(num_users), int(num_items),
                           None if train_time is None else torch.from_numpy(train_time))
    replace_atomically(artifacts.path(*TRAIN_GRAPH), graph.save)
    save_tensors(artifacts.path(*VALID_EDGES), edge_index=valid)
    save_tensors(artifacts.path(*TEST_EDGES), edge_index=test)
    user_degree, item_degree = graph.user_degree(), graph.item_degree()
    stats = {
        "fingerprint": fingerprint(train, valid, test), "num_users": graph.num_users, "num_items": graph.num_items,
        "train_edges": graph.num_edges, "valid_edges": valid.size(1), "test_edges": test.size(1),
        "isolated_users": int((user_degree == 0).sum()), "isolated_items": int((item_degree == 0).sum()),
        "mean_user_degree": float(user_degree[user_degree > 0].float().mean()) if graph.num_edges else 0.0,
        "max_item_degree": int(item_degree.max()) if graph.num_items else 0,
    }
    write_json(artifacts.path(*GRAPH_RECORD), stats)
    return MaterializeResult(metadata={**stats, **step_cost(context),
                                       "degree_distribution": MetadataValue.md(_degree_plot(graph))})


GRAPH_CHECKS = {
    "graph_endpoints_in_id_range": "Every train/valid/test endpoint is a known user or item index.",
    "graph_excludes_heldout_edges": "No validation or test pair is an edge of the training graph.",
    "graph_has_no_duplicate_edges": "Each (user, item) pair is one training edge.",
    "graph_degrees_within_bounds": "Edge count, mean degree and isolated shares are within the bounds.",
}


@multi_asset_check(
    specs=[AssetCheckSpec(name, asset="training_graph", description=text, blocking=True)
           for name, text in GRAPH_CHECKS.items()],
)
def training_graph_checks(context: AssetCheckExecutionContext, config: GraphBoundsConfig, artifacts: ArtifactStore):
    """Structural checks on the saved training graph and held-out edges."""
    saved = load_tensors(artifacts.path(*TRAIN_GRAPH))  # raw tensors: BipartiteGraph.load would refuse bad ids
    num_users, num_items = int(saved["num_users"]), int(saved["num_items"])
    train = saved["edge_index"]
    heldout = torch.cat([load_tensors(artifacts.path(*p))["edge_index"] for p in (VALID_EDGES, TEST_EDGES)], 1)
    every = torch.cat([train, heldout], 1)
    out_of_range = int(((every[0] < 0) | (every[0] >= num_users) | (every[1] < 0) | (every[1] >= num_items)).sum())
    keys, heldout_keys = train[0] * num_items + train[1], heldout[0] * num_items + heldout[1]
    leaked = int(torch.isin(heldout_keys, keys).sum())
    duplicates = keys.numel() - torch.unique(keys).numel()
    # Clamped so that bad endpoints (reported above) cannot crash the degree statistics.
    user_degree = torch.bincount(train[0].clamp(0, num_users - 1), minlength=num_users)
    item_degree = torch.bincount(train[1].clamp(0, num_items - 1), minlength=num_items)
    degrees = {
        "train_edges": train.size(1),
        "mean_user_degree": float(user_degree[user_degree > 0].float().mean()) if train.numel() else 0.0,
        "isolated_user_share": float((user_degree == 0).float().mean()),
        "isolated_item_share": float((item_degree == 0).float().mean()),
    }
    results = {
        "graph_endpoints_in_id_range": (out_of_range == 0, {"out_of_range_endpoints": out_of_range}),
        "graph_excludes_heldout_edges": (leaked == 0, {"heldout_pairs_in_training": leaked}),
        "graph_has_no_duplicate_edges": (duplicates == 0, {"duplicate_edges": duplicates}),
        "graph_degrees_within_bounds": (
            degrees["train_edges"] >= config.min_edges
            and degrees["mean_user_degree"] >= config.min_mean_user_degree
            and degrees["isolated_user_share"] <= config.max_isolated_user_share
            and degrees["isolated_item_share"] <= config.max_isolated_item_share,
            {**degrees, **config.model_dump()},
        ),
    }
    for name, (passed, metadata) in results.items():
        yield AssetCheckResult(check_name=name, asset_key="training_graph", passed=bool(passed),
                               severity=AssetCheckSeverity.ERROR, metadata={**metadata, **step_cost(context)})
