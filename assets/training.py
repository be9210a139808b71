"""Training stage: one recommender asset per propagation (LightGCN's symmetric one, RawlsGCN's doubly stochastic one),
built by the recommender asset factory, trained in this process or launched under torchrun.
"""

import time
from typing import Any

from dagster import AssetsDefinition, Config

from assets.common import save_tensors
from assets.factory import TrainingInputs, recommender_asset
from assets.launchers import train_in_processes
from assets.runs import ModelArtifacts
from models.graph.bipartite import BipartiteGraph, normalized_adjacency
from models.graph.sinkhorn import sinkhorn_knopp
from models.recsys.contract import Fitted, Runtime
from models.recsys.training import LightGCNConfig, TrainResult, train_lightgcn
from models.runtime.loop import TrainingRecord
from orchestration.config_classes import config_class, from_config
from orchestration.settings import training_defaults

CODE_VERSION = "1"  # shared by every recommender asset: they run the same code
SINKHORN_TOL = 1e-3  # the tolerance models.graph.propagation.propagation_matrix balances to


def _sinkhorn_figures(graph: BipartiteGraph) -> dict[str, float]:
    """Iterations, final error and seconds of the Sinkhorn–Knopp balancing behind the doubly stochastic propagation.

    Balanced once more here because train_lightgcn keeps the result to itself; on Gowalla that costs seconds,
    next to the training's minutes.
    """
    started = time.perf_counter()
    balanced = sinkhorn_knopp(normalized_adjacency(graph, self_loops=True), tol=SINKHORN_TOL)
    return {"sinkhorn_iterations": balanced.iterations, "sinkhorn_max_error": balanced.max_error,
            "sinkhorn_seconds": time.perf_counter() - started}


def _fitted(name: str, result: TrainResult, config: LightGCNConfig, graph: BipartiteGraph
            ) -> tuple[Fitted, dict[str, Any]]:
    record = TrainingRecord(result.history, f"valid_recall@{config.eval_k}", result.best_epoch,
                            result.best_valid_recall, result.epochs_run, 0, result.train_seconds,
                            result.resumed_from_epoch)
    balancing = ({"balance_strength": config.balance_strength, **_sinkhorn_figures(graph)}
                 if config.propagation == "doubly_stochastic" else {})
    fitted = Fitted(name, result.config, record, user_emb=result.user_emb, item_emb=result.item_emb)
    return fitted, {"propagation": config.propagation, **balancing}


def _recommender_asset(name: str, propagation: str, description: str) -> AssetsDefinition:
    """The asset ``<name>_model``: LightGCN with ``propagation`` (see models.graph.propagation), files under ``<name>/``."""
    # Retrains stay compatible with the deployed version through BCT's influence loss unless configured otherwise.
    run_config = config_class(LightGCNConfig, f"{name.capitalize()}ModelConfig",
                              {"compatibility": "bct", **training_defaults(), "propagation": propagation})

    def fit(inputs: TrainingInputs, config: Config, runtime: Runtime) -> tuple[Fitted, dict[str, Any]]:
        training = from_config(config, LightGCNConfig)
        result = train_lightgcn(inputs.graph, inputs.valid, training, runtime.device, runtime.checkpoint, runtime.log,
                                runtime.fingerprint, runtime.code_version, old_version=runtime.deployed)
        return _fitted(name, result, training, inputs.graph)

    def launch(inputs: TrainingInputs, config: Config, runtime: Runtime) -> tuple[Fitted, dict[str, Any]]:
        training, old_file = from_config(config, LightGCNConfig), None
        if runtime.deployed is not None:
            old_file = inputs.artifacts.path(*ModelArtifacts(name).deployed)
            save_tensors(old_file, user_emb=runtime.deployed[0], item_emb=runtime.deployed[1])
        result, launched = train_in_processes(inputs.context, inputs.compute, inputs.artifacts, training,
                                              runtime.checkpoint, runtime.fingerprint, runtime.code_version, old_file)
        fitted, figures = _fitted(name, result, training, inputs.graph)
        return fitted, {**figures, **launched}

    return recommender_asset(name, run_config, fit, launch=launch, description=description,
                             code_version=f"{name}-{CODE_VERSION}")


lightgcn_model = _recommender_asset(
    "lightgcn", "symmetric",
    "LightGCN user and item embeddings, trained with BPR and early-stopped on validation Recall@K.")
rawls_model = _recommender_asset(
    "rawls", "doubly_stochastic",
    "RawlsGCN embeddings: LightGCN over the doubly stochastic (Sinkhorn–Knopp balanced) adjacency, trained alike.")
