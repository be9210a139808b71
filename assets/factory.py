"""The one factory of recommender assets: every family, trained or not, gets the same inputs, device, deployed
version to stay compatible with, resumable checkpoint, artifact layout, training record and UI metadata.

A family's asset supplies only its ``fit`` (and the figures that are its own); the factory does the rest.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from dagster import AssetExecutionContext, AssetsDefinition, Config, MaterializeResult, MetadataValue, asset

from assets.common import (
    AFTER_UPSTREAM_PASSES,
    GRAPH_RECORD,
    TRAIN_GRAPH,
    VALID_EDGES,
    load_tensors,
    markdown_table,
    peak_rss_mb,
    read_json,
    save_tensors,
    write_json,
)
from assets.versions import version_vectors
from models.graph.bipartite import BipartiteGraph
from models.recsys.contract import Fitted, Runtime
from orchestration.resources import ArtifactStore, Compute, FeatureStoreResource, Warehouse


def _file(name: str) -> property:
    """A ``(model folder, name)`` path of :class:`ModelArtifacts`."""
    return property(lambda self: (self.model, name))


@dataclass(frozen=True)
class ModelArtifacts:
    """Where one recommender's files live in the artifact store, as ``(folder, file)`` relative to its root.

    ``checkpoint``: the running checkpoint that a crashed run resumes from; ``final``: the finished run's checkpoint,
    kept as its record; ``embeddings``: the fit's tensors (``user_emb`` and ``item_emb``, or a scorer's state);
    ``deployed``: the deployed version's vectors that a launched training process trains compatible with;
    ``record``: the training record (JSON: model, config, data fingerprint, code version, history).
    """

    model: str
    checkpoint = _file("checkpoint.pt")
    final = _file("final_checkpoint.pt")
    embeddings = _file("embeddings.pt")
    deployed = _file("deployed_version.pt")
    record = _file("training.json")


@dataclass
class TrainingInputs:
    """What a family's fit may read besides its config: the training graph, the validation edges and the stores."""

    context: AssetExecutionContext
    graph: BipartiteGraph
    valid: torch.Tensor
    artifacts: ArtifactStore
    warehouse: Warehouse
    compute: Compute


# A family's fit: the fitted model and its own figures (plain values, for the record and the UI).
Fit = Callable[[TrainingInputs, Config, Runtime], tuple[Fitted, dict[str, Any]]]


def _deployed(context: AssetExecutionContext, config: Config, warehouse: Warehouse,
              feature_store: FeatureStoreResource) -> tuple[Config, str | None, tuple[torch.Tensor, torch.Tensor] | None]:
    """The run config as it will run, the deployed version id and its vectors, for a config with a
    ``compatibility`` setting other than none."""
    if getattr(config, "compatibility", "none") == "none":
        return config, None, None
    deployed = feature_store.store().promoted_version()
    if deployed is None:  # nothing to be compatible with: the resolved config says what really ran
        return config.model_copy(update={"compatibility": "none"}), None, None
    with warehouse.connection() as con:
        vectors = version_vectors(feature_store.store(), con, deployed.version_id)
    context.log.info(f"training compatible with {deployed.version_id} ({config.compatibility} loss)")
    return config, deployed.version_id, vectors


def recommender_asset(name: str, run_config: type[Config], fit: Fit, *, description: str, code_version: str,
                      deps: Sequence[Any] = ("training_graph",), group_name: str = "training",
                      launch: Fit | None = None, key: str | None = None) -> AssetsDefinition:
    """The asset ``key`` (default ``<name>_model``): ``fit`` on the training graph, its files under
    ``ModelArtifacts(name)``.

    ``launch`` trains in processes of their own when the ``Compute`` resource asks for that (torchrun, Kubernetes);
    a family without one trains in this process and says so. A checkpoint resumes only against the same data and
    deployed version (the compatibility loss shaped the weights); the finished run's checkpoint is kept as
    ``final`` so that the next run starts fresh.
    """
    files = ModelArtifacts(name)

    @asset(name=key or f"{name}_model", description=description, group_name=group_name, kinds={"pytorch"},
           code_version=code_version, deps=list(deps), automation_condition=AFTER_UPSTREAM_PASSES)
    def recommender(context: AssetExecutionContext, config: run_config, compute: Compute, artifacts: ArtifactStore,
                    warehouse: Warehouse, feature_store: FeatureStoreResource) -> MaterializeResult:
        inputs = TrainingInputs(context, BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH)),
                                load_tensors(artifacts.path(*VALID_EDGES))["edge_index"], artifacts, warehouse, compute)
        data_fingerprint = read_json(artifacts.path(*GRAPH_RECORD))["fingerprint"]
        config, deployed, vectors = _deployed(context, config, warehouse, feature_store)
        runtime = Runtime(device=compute.torch_device(), checkpoint=artifacts.path(*files.checkpoint),
                          log=context.log.info, code_version=code_version, deployed=vectors,
                          fingerprint=f"{data_fingerprint}+{deployed}" if deployed else data_fingerprint)
        if compute.launches_processes() and launch is None:
            context.log.warning(f"{name} has no launcher: it trains in this process on {runtime.device}")
        fitted, figures = (launch if compute.launches_processes() and launch else fit)(inputs, config, runtime)
        if runtime.checkpoint.exists():
            runtime.checkpoint.replace(artifacts.path(*files.final))
        tensors = fitted.tensors()
        save_tensors(artifacts.path(*files.embeddings), **tensors)
        record = fitted.record
        best = {record.metric: record.best_score} if record.metric and record.best_epoch else {}
        # The loop's peak, or this process's when it is higher (loading and saving after training count too).
        peak_mb = max(record.peak_memory_mb, peak_rss_mb())
        write_json(artifacts.path(*files.record), {
            "model": name, "config": fitted.config, "data_fingerprint": data_fingerprint,
            "code_version": code_version, "compatible_with": deployed, "best_epoch": record.best_epoch, **best,
            "history": record.history, "seconds": record.seconds, "peak_rss_mb": peak_mb, **figures})
        curve = [row for row in record.history if record.metric in row] if best else record.history
        return MaterializeResult(metadata={
            "device": str(runtime.device), "epochs": record.epochs_run, "steps": record.steps,
            "best_epoch": record.best_epoch, **best, "train_seconds": record.seconds,
            "seconds_per_epoch": record.seconds / max(record.epochs_run, 1),
            "resumed_from_epoch": record.resumed_from_epoch, "peak_rss_mb": peak_mb,
            "compatible_with": deployed or "", "compatibility_loss": getattr(config, "compatibility", "none"),
            "stored_mb": sum(t.numel() * t.element_size() for t in tensors.values()) / 2**20,
            "config": MetadataValue.json(fitted.config), **figures,
            "time_to_quality": MetadataValue.md(markdown_table(curve)),
        })

    return recommender
