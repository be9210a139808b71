"""Training stage: one recommender asset per propagation (LightGCN's symmetric one, RawlsGCN's doubly stochastic one),
each with its own resumable checkpoint and embeddings in the artifact store, trained on the Compute resource's device.
"""

import dataclasses
import time
from dataclasses import dataclass

from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, MetadataValue, asset

from assets.common import (
    AFTER_UPSTREAM_PASSES,
    GRAPH_RECORD,
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
from assets.launchers import train_in_processes
from assets.versions import version_vectors
from models.graph.bipartite import BipartiteGraph, normalized_adjacency
from models.graph.sinkhorn import sinkhorn_knopp
from models.recsys.training import LightGCNConfig, train_lightgcn
from orchestration.resources import ArtifactStore, Compute, FeatureStoreResource, Warehouse
from orchestration.settings import training_defaults

CODE_VERSION = "1"  # shared by every recommender asset: they run the same code
SINKHORN_TOL = 1e-3  # the tolerance models.graph.propagation.propagation_matrix balances to


@dataclass(frozen=True)
class ModelArtifacts:
    """Where one recommender's files live in the artifact store (paths relative to its root)."""

    model: str

    @property
    def checkpoint(self) -> tuple[str, str]:
        """The running checkpoint that a crashed run resumes from."""
        return self.model, "checkpoint.pt"

    @property
    def final(self) -> tuple[str, str]:
        """The finished run's checkpoint, kept as its record."""
        return self.model, "final_checkpoint.pt"

    @property
    def embeddings(self) -> tuple[str, str]:
        """Final user and item embeddings (tensors ``user_emb``, ``item_emb``)."""
        return self.model, "embeddings.pt"

    @property
    def deployed(self) -> tuple[str, str]:
        """The deployed version's vectors that a launched training process trains compatible with."""
        return self.model, "deployed_version.pt"

    @property
    def record(self) -> tuple[str, str]:
        """Training record (JSON): model, config, data fingerprint, code version, history."""
        return self.model, "training.json"


def _sinkhorn_figures(graph: BipartiteGraph) -> dict[str, float]:
    """Iterations, final error and seconds of the Sinkhorn–Knopp balancing behind the doubly stochastic propagation.

    Balanced once more here because train_lightgcn keeps the result to itself; on Gowalla that costs seconds,
    next to the training's minutes.
    """
    started = time.perf_counter()
    balanced = sinkhorn_knopp(normalized_adjacency(graph, self_loops=True), tol=SINKHORN_TOL)
    return {"sinkhorn_iterations": balanced.iterations, "sinkhorn_max_error": balanced.max_error,
            "sinkhorn_seconds": time.perf_counter() - started}


def _recommender_asset(name: str, propagation: str, description: str) -> AssetsDefinition:
    """The asset ``<name>_model``: LightGCN with ``propagation`` (see models.graph.propagation), files under ``<name>/``."""
    files, code_version = ModelArtifacts(name), f"{name}-{CODE_VERSION}"
    # Retrains stay compatible with the deployed version through BCT's influence loss unless configured otherwise.
    run_config = config_class(LightGCNConfig, f"{name.capitalize()}ModelConfig",
                              {"compatibility": "bct", **training_defaults(), "propagation": propagation})

    @asset(name=f"{name}_model", description=description, group_name="training", kinds={"pytorch"},
           code_version=code_version, deps=["training_graph"], automation_condition=AFTER_UPSTREAM_PASSES)
    def recommender(context: AssetExecutionContext, config: run_config, compute: Compute, artifacts: ArtifactStore,
                    warehouse: Warehouse, feature_store: FeatureStoreResource) -> MaterializeResult:
        graph = BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH))
        valid = load_tensors(artifacts.path(*VALID_EDGES))["edge_index"]
        data_fingerprint = read_json(artifacts.path(*GRAPH_RECORD))["fingerprint"]
        checkpoint = artifacts.path(*files.checkpoint)
        training = from_config(config, LightGCNConfig)
        deployed = feature_store.store().promoted_version() if training.compatibility != "none" else None
        old_version = None
        if deployed is None:  # nothing to be compatible with: the resolved config says what really ran
            training = dataclasses.replace(training, compatibility="none")
        else:
            with warehouse.connection() as con:
                old_version = version_vectors(feature_store.store(), con, deployed.version_id)
            context.log.info(f"training compatible with {deployed.version_id} ({training.compatibility} loss)")
        # A checkpoint resumes only against the same deployed version: its loss shaped the weights.
        run_fingerprint = f"{data_fingerprint}+{deployed.version_id}" if deployed else data_fingerprint
        if compute.launches_processes():  # torchrun (DDP) or a Kubernetes pod, reporting back through Dagster Pipes
            old_file = None
            if old_version is not None:
                old_file = artifacts.path(*files.deployed)
                save_tensors(old_file, user_emb=old_version[0], item_emb=old_version[1])
            result, launched = train_in_processes(context, compute, artifacts, training, checkpoint,
                                                  run_fingerprint, code_version, old_file)
        else:
            device = compute.torch_device()
            result = train_lightgcn(graph, valid, training, device, checkpoint, context.log.info, run_fingerprint,
                                    code_version, old_version=old_version)
            launched = {"device": str(device)}
        # The finished run's checkpoint stays as its record, moved so that the next run starts fresh, not resumes.
        if checkpoint.exists():
            checkpoint.replace(artifacts.path(*files.final))
        save_tensors(artifacts.path(*files.embeddings), user_emb=result.user_emb, item_emb=result.item_emb)
        recall_key = f"valid_recall@{config.eval_k}"
        write_json(artifacts.path(*files.record), {
            "model": name, "config": result.config, "data_fingerprint": data_fingerprint,
            "code_version": code_version, "compatible_with": deployed.version_id if deployed else None,
            "best_epoch": result.best_epoch, recall_key: result.best_valid_recall,
            "history": result.history,
        })
        curve = [{"epoch": h["epoch"], "elapsed_seconds": h["elapsed_seconds"], recall_key: h[recall_key],
                  "loss": h["loss"]} for h in result.history if recall_key in h]
        balancing = ({"balance_strength": config.balance_strength, **_sinkhorn_figures(graph)}
                     if config.propagation == "doubly_stochastic" else {})
        return MaterializeResult(metadata={
            **launched,
            "epochs": result.epochs_run, "best_epoch": result.best_epoch, recall_key: result.best_valid_recall,
            "train_seconds": result.train_seconds,
            "seconds_per_epoch": result.train_seconds / max(result.epochs_run, 1),
            "resumed_from_epoch": result.resumed_from_epoch, "peak_rss_mb": peak_rss_mb(),
            "propagation": config.propagation, **balancing,
            "compatible_with": deployed.version_id if deployed else "",
            "compatibility_loss": training.compatibility,
            "time_to_quality": MetadataValue.md(markdown_table(curve)),
        })

    return recommender


lightgcn_model = _recommender_asset(
    "lightgcn", "symmetric",
    "LightGCN user and item embeddings, trained with BPR and early-stopped on validation Recall@K.")
rawls_model = _recommender_asset(
    "rawls", "doubly_stochastic",
    "RawlsGCN embeddings: LightGCN over the doubly stochastic (Sinkhorn–Knopp balanced) adjacency, trained alike.")
