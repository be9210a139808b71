"""Training stage: LightGCN on the training graph, on the Compute resource's device, with a checkpoint in the
artifact store that a crashed run resumes from; the final embeddings are saved as tensors.
"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.common import (
    AFTER_UPSTREAM_PASSES,
    GRAPH_RECORD,
    LIGHTGCN_CHECKPOINT,
    LIGHTGCN_EMBEDDINGS,
    LIGHTGCN_FINAL,
    LIGHTGCN_RECORD,
    TRAIN_GRAPH,
    VALID_EDGES,
    config_class,
    from_config,
    load_tensors,
    markdown_table,
    peak_rss_mb,
    read_json,
    save_tensors,
    write_json,
)
from models.graph import BipartiteGraph
from models.training import LightGCNConfig, train_lightgcn
from orchestration.resources import ArtifactStore, Compute
from orchestration.settings import training_defaults

CODE_VERSION = "lightgcn-1"
LightGCNSettings = config_class(LightGCNConfig, "LightGCNSettings", training_defaults())


@asset(group_name="training", kinds={"pytorch"}, code_version=CODE_VERSION, deps=["training_graph"],
       automation_condition=AFTER_UPSTREAM_PASSES)
def lightgcn_model(context: AssetExecutionContext, config: LightGCNSettings, compute: Compute,
                   artifacts: ArtifactStore) -> MaterializeResult:
    """LightGCN user and item embeddings, trained with BPR and early-stopped on validation Recall@K."""
    compute.check_inprocess()
    device = compute.torch_device()
    graph = BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH))
    valid = load_tensors(artifacts.path(*VALID_EDGES))["edge_index"]
    data_fingerprint = read_json(artifacts.path(*GRAPH_RECORD))["fingerprint"]
    checkpoint = artifacts.path(*LIGHTGCN_CHECKPOINT)
    result = train_lightgcn(graph, valid, from_config(config, LightGCNConfig), device, checkpoint,
                            context.log.info, data_fingerprint, CODE_VERSION)
    # The finished run's checkpoint stays as its record, moved so that the next run starts fresh, not resumes.
    if checkpoint.exists():
        checkpoint.replace(artifacts.path(*LIGHTGCN_FINAL))
    save_tensors(artifacts.path(*LIGHTGCN_EMBEDDINGS), user_emb=result.user_emb, item_emb=result.item_emb)
    recall_key = f"valid_recall@{config.eval_k}"
    write_json(artifacts.path(*LIGHTGCN_RECORD), {
        "model": "lightgcn", "config": result.config, "data_fingerprint": data_fingerprint,
        "code_version": CODE_VERSION, "best_epoch": result.best_epoch, recall_key: result.best_valid_recall,
        "history": result.history,
    })
    curve = [{"epoch": h["epoch"], "elapsed_seconds": h["elapsed_seconds"], recall_key: h[recall_key],
              "loss": h["loss"]} for h in result.history if recall_key in h]
    return MaterializeResult(metadata={
        "epochs": result.epochs_run, "best_epoch": result.best_epoch, recall_key: result.best_valid_recall,
        "train_seconds": result.train_seconds, "seconds_per_epoch": result.train_seconds / max(result.epochs_run, 1),
        "resumed_from_epoch": result.resumed_from_epoch, "peak_rss_mb": peak_rss_mb(), "device": str(device),
        "time_to_quality": MetadataValue.md(markdown_table(curve)),
    })
