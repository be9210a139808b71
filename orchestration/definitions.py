"""The one Dagster code location of graphrec: every asset and check, the resources of the current environment
(GRAPHREC_ENV), jobs, and the sensors. This module only assembles.
"""

from __future__ import annotations

from dagster import Definitions

from assets.champion import champion_beats_baselines, champion_model
from assets.distillation import heuristic_scores
from assets.embeddings import compatibility_report_check, embedding_candidate, published_embeddings
from assets.evaluation import ranking_report
from assets.graph import id_maps, interaction_split, training_graph, training_graph_checks
from assets.ingest import ingest_source
from assets.node_classification import node_classification_graphs, rawls_node_classification
from assets.recommenders import RECOMMENDERS
from assets.shadow import ppr_audience, ppr_scopes, shadow_node_classification
from assets.spectra import interaction_spectra
from assets.validation import quarantined_interactions, raw_interactions_expectations
from orchestration.catalog import catalogued
from orchestration.embedding_jobs import OPERATOR_JOBS
from orchestration.executor import step_executor
from orchestration.jobs import benchmark_graphs, full_retrain, landing_ingest, retrain_from_warehouse
from orchestration.resources import build_resources
from orchestration.retract import retract_ingest_job
from orchestration.sensors import downstream_automation, landing_sensor
from orchestration.settings import load_settings

settings = load_settings()
ASSETS = [ingest_source, quarantined_interactions, id_maps, interaction_split, training_graph, interaction_spectra,
          heuristic_scores, *RECOMMENDERS.values(), ranking_report, champion_model, embedding_candidate, published_embeddings,
          node_classification_graphs, rawls_node_classification, ppr_scopes, ppr_audience, shadow_node_classification]

defs = Definitions(
    assets=catalogued(ASSETS, settings),
    asset_checks=[raw_interactions_expectations, training_graph_checks, champion_beats_baselines,
                  compatibility_report_check],
    resources=build_resources(settings),
    jobs=[full_retrain, landing_ingest, retrain_from_warehouse, benchmark_graphs, retract_ingest_job, *OPERATOR_JOBS],
    sensors=[landing_sensor(settings.landing_dir, landing_ingest.name), downstream_automation],
    executor=step_executor(settings.step_processes),
)
