"""The one factory of recommender assets: every family, trained or not, gets the same inputs, device, deployed
version to stay compatible with, resumable checkpoint, per-run artifact folder, training record and UI metadata
(links to the run's files and its time-to-quality plot).

A family's asset supplies only its ``fit`` (and the figures that are its own); the factory does the rest, evaluation
on the held-out sets included (kept with the run's files for the ranking report; validation figures in the UI).
"""

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from dagster import AssetExecutionContext, AssetsDefinition, Config, MaterializeResult, MetadataValue, asset

from assets.common import (
    GRAPH_RECORD,
    TEST_EDGES,
    TRAIN_GRAPH,
    VALID_EDGES,
    load_tensors,
    markdown_image,
    markdown_table,
    peak_rss_mb,
    read_json,
    save_tensors,
    write_json,
)
from assets.cost import step_cost
from assets.curves import curve_rows, time_to_quality_png
from assets.held_out import DEFAULT_K, save_evaluation, timed_evaluation
from assets.runs import ModelArtifacts, RunFiles, new_run, prune_runs
from assets.versions import version_vectors
from models.graph.bipartite import BipartiteGraph
from models.recsys.contract import Fitted, Runtime
from orchestration.automation import RETRAIN_WHEN_IT_PAYS
from orchestration.executor import TRAINING_FIRST
from orchestration.resources import ArtifactStore, Compute, FeatureStoreResource, Warehouse


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


def _keep_checkpoint(checkpoint: Path, run: RunFiles) -> None:
    """Keep the running checkpoint as the run's final one: a hard link (no copy of a large file), a copy where the
    file system has none. The running checkpoint stays until the run is published, so a failure while writing the
    run's files leaves it for the next run to resume."""
    # A link is safe because checkpoints are replaced (a new file renamed over the old), never rewritten in place:
    # a resumed run cannot change the finished run's copy.
    if not checkpoint.exists():
        return
    try:
        os.link(checkpoint, run.final)
    except OSError:
        shutil.copy2(checkpoint, run.final)


def _promoted_run(feature_store: FeatureStoreResource, model: str) -> Callable[[dict[str, Any]], bool]:
    """Whether a run's training record is the one the promoted embedding version came from. A version records the
    model, config, data fingerprint and code version of its run (not the run's id), so runs that match all four are
    kept: every run that could have produced it, usually one."""
    promoted = feature_store.store().promoted_version()
    if promoted is None or promoted.model != model:
        return lambda record: False
    lineage = (promoted.config, promoted.data_fingerprint, promoted.code_version)
    return lambda record: (record.get("config"), record.get("data_fingerprint"), record.get("code_version")) == lineage


def _run_links(run_id: str, run: RunFiles) -> dict[str, Any]:
    """The run's folder and main files as path metadata (the final checkpoint only for fits that checkpoint)."""
    files = {"run_folder": run.folder, "embeddings_file": run.embeddings, "training_record": run.record,
             "time_to_quality_plot": run.curve, "final_checkpoint": run.final}
    return {"run_id": run_id, **{key: MetadataValue.path(str(path)) for key, path in files.items() if path.exists()}}


def recommender_asset(name: str, run_config: type[Config], fit: Fit, *, description: str, code_version: str,
                      deps: Sequence[Any] = ("training_graph",), group_name: str = "training",
                      launch: Fit | None = None, key: str | None = None,
                      op_tags: Mapping[str, str] | None = None) -> AssetsDefinition:
    """The asset ``key`` (default ``<name>_model``): ``fit`` on the training graph, each finished run's files in a
    run folder of ``ModelArtifacts(name)`` (see assets.runs), linked from the materialization with its
    time-to-quality plot; older runs beyond the artifact store's ``keep_runs`` are deleted after a successful run.

    ``launch`` trains in processes of their own when the ``Compute`` resource asks for that (torchrun, Kubernetes);
    a family without one trains in this process and says so. A checkpoint resumes only against the same data and
    deployed version (the compatibility loss shaped the weights); the finished run's checkpoint is kept in its run
    folder as ``final`` so that the next run starts fresh. ``op_tags`` order a step without a training budget among
    the others (see orchestration.executor); one with a budget starts first.
    """
    files = ModelArtifacts(name)

    trained = "max_train_seconds" in run_config.model_fields  # a model trained under a wall-clock budget

    @asset(name=key or f"{name}_model", description=description, group_name=group_name, kinds={"pytorch"},
           code_version=code_version, deps=list(deps), automation_condition=RETRAIN_WHEN_IT_PAYS,
           op_tags=TRAINING_FIRST if trained else op_tags)
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
        # A step retried within one Dagster run gets a folder of its own: the first try's may already be published.
        run_id = f"{context.run_id}-retry{context.retry_number}" if context.retry_number else context.run_id
        tensors = fitted.tensors()
        record = fitted.record
        # Evaluated here, where it was fitted: the ranking report reads the results instead of scoring it again.
        held_out, eval_seconds = timed_evaluation(fitted, inputs.graph, inputs.valid,
                                                  load_tensors(artifacts.path(*TEST_EDGES))["edge_index"], DEFAULT_K,
                                                  runtime.device)
        best = {record.metric: record.best_score} if record.metric and record.best_epoch else {}
        # The loop's peak, or this process's when it is higher (loading and saving after training count too).
        peak_mb = max(record.peak_memory_mb, peak_rss_mb())
        curve_png = time_to_quality_png(record.history, record.metric if best else "", name)
        with new_run(artifacts, files, run_id) as run:
            save_tensors(run.embeddings, **tensors)
            save_evaluation(run.evaluation, held_out, data_fingerprint, DEFAULT_K, eval_seconds)
            write_json(run.record, {
                "model": name, "run_id": run_id, "config": fitted.config, "data_fingerprint": data_fingerprint,
                "code_version": code_version, "compatible_with": deployed, "best_epoch": record.best_epoch, **best,
                "history": record.history, "seconds": record.seconds, "eval_seconds": eval_seconds,
                "peak_rss_mb": peak_mb, **figures})
            run.curve.write_bytes(curve_png)
            _keep_checkpoint(runtime.checkpoint, run)
        # Only now that the run is published does the next run start fresh rather than resume.
        runtime.checkpoint.unlink(missing_ok=True)
        run = files.run(artifacts, run_id)
        deleted = prune_runs(artifacts, files, artifacts.keep_runs, _promoted_run(feature_store, name))
        if deleted:
            context.log.info(f"retention (keep_runs={artifacts.keep_runs}) deleted runs {', '.join(deleted)}")
        curve = curve_rows(record.history, record.metric if best else "")
        return MaterializeResult(metadata={
            **step_cost(context),
            "device": str(runtime.device), "epochs": record.epochs_run, "steps": record.steps,
            "best_epoch": record.best_epoch, **best, "train_seconds": record.seconds, "eval_seconds": eval_seconds,
            **{f"valid.{key}": value for key, value in held_out["valid"].summary().items()},
            "seconds_per_epoch": record.seconds / max(record.epochs_run, 1),
            "resumed_from_epoch": record.resumed_from_epoch, "peak_rss_mb": peak_mb,
            "compatible_with": deployed or "", "compatibility_loss": getattr(config, "compatibility", "none"),
            "stored_mb": sum(t.numel() * t.element_size() for t in tensors.values()) / 2**20,
            "config": MetadataValue.json(fitted.config), **figures, **_run_links(run_id, run),
            "time_to_quality": MetadataValue.md(
                markdown_image(curve_png, f"{name} time to quality") + "\n\n" + markdown_table(curve)),
        })

    return recommender
