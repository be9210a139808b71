"""shaDow-GNN stage: PPR scopes of every node of the training graph (cached by graph and settings), the shaDow
recommender trained on them (an asset of the recommender factory), PPR audiences per item in the warehouse, and shaDow node classification on the benchmark
graphs next to full-graph GCNs.
"""

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import polars as pl
import torch
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from assets.common import (
    GRAPH_RECORD,
    TRAIN_GRAPH,
    load_tensors,
    markdown_table,
    read_json,
    save_tensors,
    write_json,
)
from assets.cost import step_cost
from assets.factory import TrainingInputs, recommender_asset
from assets.node_classification import GRAPHS_RECORD
from assets.node_classification import GROUP as BENCHMARK_GROUP
from models.graph.audience import VARIANTS, match_audience
from models.graph.bipartite import BipartiteGraph, to_homogeneous_edge_index
from models.graph.ppr import DAMPING, forward_push
from models.graph.scopes import Scopes, receptive_field_sizes
from models.graph.scopes import ppr_scopes as scopes_from_ppr
from models.graph.sparse import binary_adjacency
from models.nodeclf.npz_graphs import load_npz_graph
from models.nodeclf.shadow import ShadowNodeConfig, run_comparison
from models.recsys.contract import Fitted, Runtime
from models.recsys.shadow import ShadowRecConfig, train_shadow_recommender
from orchestration.automation import AFTER_UPSTREAM_PASSES, RETRAIN_WHEN_IT_PAYS
from orchestration.config_classes import config_class, from_config
from orchestration.executor import TRAINING_FIRST
from orchestration.resources import WAREHOUSE_POOL, ArtifactStore, Warehouse
from orchestration.settings import environment
from warehouse.id_maps import load_id_map

CODE_VERSION = "shadow-2"  # 2: subgraphs extracted once, SAGE aggregated on a CSR adjacency
SCOPES = ("shadow", "ppr_scopes.pt")
SCOPES_RECORD = ("shadow", "ppr_scopes.json")
NODECLF_RESULTS = ("benchmarks", "shadow_node_classification.json")
AUDIENCE_TABLE = "ppr_audience"
# Locally (the demo) shaDow trains under a one-minute budget, so that the whole demo stays within minutes on 2 cores.
ShadowModelConfig = config_class(ShadowRecConfig, "ShadowModelConfig",
                              {"max_train_seconds": 60.0} if environment() == "local" else {})


class PPRScopeConfig(Config):
    """Approximate PPR of every user and item (as shaDow-GNN's scopes); the scope is the top-k list cut by threshold."""

    damping: float = Field(default=DAMPING, description="c in r = (1 − c)·e_s + c·A·r.")
    epsilon: float = Field(default=1e-5, description="Residual tolerance per unit of degree.")
    top_k: int = Field(default=32, description="Most nodes per scope (the recommender's subgraph size).")
    threshold: float = Field(default=0.0, description="Keep nodes scoring ≥ threshold × the best non-target score.")


# Only shaDow's training reads the scopes, and every node's PPR is no cheap graph step: they follow its policy.
@asset(group_name="graph", kinds={"numpy"}, code_version=CODE_VERSION, deps=["training_graph"],
       automation_condition=RETRAIN_WHEN_IT_PAYS, op_tags=TRAINING_FIRST)  # shaDow's input
def ppr_scopes(context: AssetExecutionContext, config: PPRScopeConfig, artifacts: ArtifactStore) -> MaterializeResult:
    """Top-k personalized PageRank scope of every user and item; recomputed only when the graph or settings change."""
    key = hashlib.sha256(json.dumps({"graph": read_json(artifacts.path(*GRAPH_RECORD))["fingerprint"],
                                     "settings": config.model_dump()}, sort_keys=True).encode()).hexdigest()
    record_path, scopes_path = artifacts.path(*SCOPES_RECORD), artifacts.path(*SCOPES)
    if record_path.exists() and scopes_path.exists() and read_json(record_path)["key"] == key:
        context.log.info("graph and settings unchanged: keeping the cached scopes")
        return MaterializeResult(metadata={**read_json(record_path), **step_cost(context), "cached": True})
    graph = BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH))
    num_nodes = graph.num_users + graph.num_items
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - started, 1e-9)
        context.log.info(f"ppr: {done}/{total} targets ({100 * done / total:.0f}%), {rate:.0f} targets/s")

    ppr = forward_push(binary_adjacency(to_homogeneous_edge_index(graph), num_nodes), torch.arange(num_nodes),
                       config.damping, config.epsilon, config.top_k, progress=progress)
    scopes = scopes_from_ppr(ppr, config.threshold)
    seconds = time.perf_counter() - started
    save_tensors(scopes_path, **scopes.to_tensors())
    record = {"key": key, **config.model_dump(), "targets": num_nodes, "seconds": seconds,
              "targets_per_second": num_nodes / max(seconds, 1e-9),
              "mean_scope_size": float(scopes.sizes().float().mean()), "max_scope_size": int(scopes.sizes().max())}
    write_json(record_path, record)
    return MaterializeResult(metadata={**record, **step_cost(context), "cached": False})


def _fit_shadow(inputs: TrainingInputs, config: ShadowModelConfig, runtime: Runtime) -> tuple[Fitted, dict[str, Any]]:
    """The shaDow recommender on the cached PPR scopes of every user and item."""
    scopes = Scopes.from_tensors(load_tensors(inputs.artifacts.path(*SCOPES)))
    settings = from_config(config, ShadowRecConfig)
    scope_record = read_json(inputs.artifacts.path(*SCOPES_RECORD))
    # A checkpoint resumes only on the same scopes: their key covers the graph and the PPR settings.
    result = train_shadow_recommender(inputs.graph, scopes, settings, inputs.valid, runtime.log, runtime.device,
                                      runtime.checkpoint, f"{runtime.fingerprint}+{scope_record['key']}",
                                      runtime.code_version, runtime.deployed)
    fitted = Fitted("shadow", dataclasses.asdict(settings), result.record, user_emb=result.user_emb,
                    item_emb=result.item_emb)
    return fitted, {"scopes": scope_record, "layers": settings.num_layers,
                    "mean_scope_size": float(scopes.sizes().float().mean())}


shadow_model = recommender_asset(
    "shadow", ShadowModelConfig, _fit_shadow, code_version=CODE_VERSION, deps=["training_graph", ppr_scopes],
    description="shaDow-GNN embeddings: a deep GNN on each user's and item's own PPR scope, trained with BPR.")


class PPRAudienceConfig(Config):
    """Which items get an audience, how many users each, and the PPR settings."""

    items: list[str] = Field(default=[], description="Raw item ids; empty means the most popular `top_items` items.")
    top_items: int = Field(default=5, description="Items to match when `items` is empty, by training degree.")
    top_n: int = Field(default=100, description="Users kept per item and variant.")
    damping: float = Field(default=DAMPING, description="c in r = (1 − c)·e_s + c·A·r.")
    epsilon: float = Field(default=1e-6, description="Residual tolerance per unit of degree.")


@asset(group_name="audience", kinds={"duckdb"}, code_version=CODE_VERSION, deps=["training_graph", "id_maps"],
       automation_condition=AFTER_UPSTREAM_PASSES, pool=WAREHOUSE_POOL)
def ppr_audience(context: AssetExecutionContext, config: PPRAudienceConfig, artifacts: ArtifactStore,
                 warehouse: Warehouse) -> MaterializeResult:
    """Top users per item by PPR from the item, plain and degree-normalized, in the warehouse table ppr_audience."""
    graph = BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH))
    with warehouse.connection() as con:
        users, items = load_id_map(con, "user")["raw_id"], load_id_map(con, "item")["raw_id"]
    if config.items:
        index = {raw: i for i, raw in enumerate(items.to_list())}
        unknown = [raw for raw in config.items if raw not in index]
        if unknown:
            raise ValueError(f"ppr_audience config lists items unknown to the item id map: {unknown[:5]}; "
                             "use raw item ids as ingested, or leave `items` empty for the most popular ones.")
        chosen = torch.tensor([index[raw] for raw in config.items])
    else:
        chosen = torch.argsort(graph.item_degree(), descending=True, stable=True)[:config.top_items]
    adj = binary_adjacency(to_homogeneous_edge_index(graph), graph.num_users + graph.num_items)
    audience = match_audience(adj, graph.num_users, graph.num_users + chosen, config.top_n, config.damping,
                              config.epsilon)
    frame = pl.DataFrame({
        "item_id": items.gather(pl.Series((audience.seed - graph.num_users).numpy())),
        "variant": pl.Series([VARIANTS[v] for v in audience.variant.tolist()], dtype=pl.Utf8),
        "rank": audience.rank.numpy(), "user_id": users.gather(pl.Series(audience.user.numpy())),
        "score": audience.score.numpy()})
    with warehouse.connection() as con:
        con.register("audience_frame", frame.to_arrow())
        con.execute(f"CREATE OR REPLACE TABLE {AUDIENCE_TABLE} AS SELECT * FROM audience_frame")
        con.unregister("audience_frame")
    degree = graph.user_degree().double()
    mean_degree = {f"mean_user_degree.{name}": float(degree[audience.user[audience.variant == v]].mean())
                   for v, name in enumerate(VARIANTS)}
    return MaterializeResult(metadata={
        **step_cost(context),
        "dagster/row_count": frame.height, "items": int(chosen.numel()), **mean_degree,
        "preview": MetadataValue.md(markdown_table(frame.filter(pl.col("rank") <= 3).to_dicts())),
    })


class ShadowNodeClassificationConfig(Config):
    """Models, seeds and epochs of the shaDow node-classification comparison; other settings: ShadowNodeConfig."""

    models: list[str] = Field(default=["gcn3", "gcn5", "shadow_sage3", "shadow_sage5", "shadow_gat5"],
                              description="gcn<L> (full graph) or shadow_<gcn|sage|gat><L> (on PPR scopes).")
    seeds: list[int] = Field(default=list(ShadowNodeConfig.seeds), description="One run per seed.")
    epochs: int = Field(default=ShadowNodeConfig.epochs, description="Training epochs per run.")


@asset(group_name=BENCHMARK_GROUP, kinds={"pytorch"}, code_version=CODE_VERSION, deps=["node_classification_graphs"])
def shadow_node_classification(context: AssetExecutionContext, config: ShadowNodeClassificationConfig,
                               artifacts: ArtifactStore) -> MaterializeResult:
    """Test accuracy of shaDow-GNN on PPR scopes (≤ 200 nodes) against full-graph GCNs of the same depth, per graph."""
    settings = dataclasses.replace(ShadowNodeConfig(), seeds=tuple(config.seeds), epochs=config.epochs)
    rows, results = [], {}
    for graph in read_json(artifacts.path(*GRAPHS_RECORD))["graphs"]:
        data = load_npz_graph(Path(graph["path"]))
        by_model, scopes = run_comparison(data, config.models, settings, context.log.info)
        receptive = float(receptive_field_sizes(binary_adjacency(data.edge_index, data.num_nodes), 5).float().mean())
        scope = float(scopes.sizes().float().mean())
        results[graph["dataset"]] = {"mean_scope_size": scope, "mean_5hop_receptive_field": receptive,
                                     **{m: {**dataclasses.asdict(r), **r.summary()} for m, r in by_model.items()}}
        for model, result in by_model.items():
            summary = result.summary()
            context.log.info(f"{graph['dataset']} {model}: accuracy {summary['acc_mean']:.2f}%")
            rows.append({"dataset": graph["dataset"], "model": model,
                         "accuracy %": f"{summary['acc_mean']:.2f} ± {summary['acc_std']:.2f}",
                         "nodes read per target": f"{scope:.0f}" if model.startswith("shadow") else f"{receptive:.0f}",
                         "s/run": f"{summary['seconds_per_run']:.1f}"})
    write_json(artifacts.path(*NODECLF_RESULTS), {"config": dataclasses.asdict(settings), "results": results})
    return MaterializeResult(metadata={
        **step_cost(context),
        **{f"{d}.{m}.acc_mean": r[m]["acc_mean"] for d, r in results.items() for m in config.models},
        **{f"{d}.mean_scope_size": r["mean_scope_size"] for d, r in results.items()},
        **{f"{d}.mean_5hop_receptive_field": r["mean_5hop_receptive_field"] for d, r in results.items()},
        "results": MetadataValue.md(markdown_table(rows)),
    })
