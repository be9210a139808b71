"""Recommender assets built from the family registry: one factory, so that every family fitted through the
contract gets the same inputs, device, artifact layout, record and UI metadata. Adding a family to
``models.recsys.registry.FAMILIES`` adds its ``<name>_model`` asset here, its row in the ranking report and,
when it is publishable, a way to the feature store.
"""

import torch
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
from assets.training import ModelArtifacts
from models.graph.bipartite import BipartiteGraph
from models.recsys.contract import Family, Fitted, Runtime, restore_vectors
from models.recsys.registry import FAMILIES
from orchestration.resources import ArtifactStore, Compute

CODE_VERSION = "family-1"


def load_fitted(artifacts: ArtifactStore, model: str) -> Fitted:
    """A recommender's saved fit: a registry family restores its own (vectors or scorer); the other recommender
    assets save dot-product vectors."""
    files = ModelArtifacts(model)
    tensors = load_tensors(artifacts.path(*files.embeddings))
    if model in FAMILIES:
        return FAMILIES[model].restore(tensors, read_json(artifacts.path(*files.record))["config"])
    return restore_vectors(model, tensors, {})


def is_baseline(model: str) -> bool:
    """True for the reference families that a champion has to beat."""
    return model in FAMILIES and FAMILIES[model].baseline


def family_asset(family: Family) -> AssetsDefinition:
    """The asset ``<family>_model``: ``family.fit`` on the training graph, its fit and record under ``<family>/``."""
    files = ModelArtifacts(family.name)
    run_config = config_class(family.config_type, f"{family.name.title().replace('_', '')}ModelConfig")
    kind = "publishable as vectors" if family.publishable else "served by a scorer"

    @asset(name=f"{family.name}_model", group_name="training", kinds={"pytorch"},
           code_version=f"{family.name}-{CODE_VERSION}", deps=["training_graph"],
           automation_condition=AFTER_UPSTREAM_PASSES,
           description=f"{family.name} ({'baseline' if family.baseline else 'recommender'}, {kind}) fitted "
                       "through the recommender contract.")
    def fitted_family(context: AssetExecutionContext, config: run_config, compute: Compute,
                      artifacts: ArtifactStore) -> MaterializeResult:
        graph = BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH))
        valid = load_tensors(artifacts.path(*VALID_EDGES))["edge_index"]
        data_fingerprint = read_json(artifacts.path(*GRAPH_RECORD))["fingerprint"]
        device = compute.torch_device()
        runtime = Runtime(device=device, log=context.log.info, fingerprint=data_fingerprint,
                          code_version=f"{family.name}-{CODE_VERSION}")
        fitted = family.fit(graph, valid, from_config(config, family.config_type), runtime)
        save_tensors(artifacts.path(*files.embeddings), **fitted.tensors())
        write_json(artifacts.path(*files.record), {
            "model": family.name, "config": fitted.config, "data_fingerprint": data_fingerprint,
            "code_version": runtime.code_version, "compatible_with": None, "history": fitted.record.history,
            "seconds": fitted.record.seconds,
        })
        stored = sum(t.numel() * t.element_size() for t in fitted.tensors().values() if isinstance(t, torch.Tensor))
        return MaterializeResult(metadata={
            "device": str(device), "train_seconds": fitted.record.seconds, "peak_rss_mb": peak_rss_mb(),
            "publishable": family.publishable, "baseline": family.baseline, "stored_mb": stored / 2**20,
            "config": MetadataValue.json(fitted.config),
            "time_to_quality": MetadataValue.md(markdown_table(fitted.record.history)),
        })

    return fitted_family


FAMILY_ASSETS: dict[str, AssetsDefinition] = {name: family_asset(family) for name, family in FAMILIES.items()}
