"""Jobs: the full retrain (every recommendation asset, ingest included), the landing ingest that the sensor starts,
a retrain from what the warehouse already holds, and the node-classification benchmarks. No schedule: when the
assets after ingest run by themselves is their automation condition's business (orchestration/automation.py).
"""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

INGEST = AssetSelection.groups("ingest")
# The node-classification benchmark graphs reproduce published tables; no retrain needs them.
BENCHMARKS = AssetSelection.groups("benchmark_graphs")

full_retrain = define_asset_job(
    "full_retrain", selection=AssetSelection.all() - BENCHMARKS,
    description="Ingest, validate, build the graph, train, evaluate and publish: every recommender asset, one run.",
)
landing_ingest = define_asset_job(
    "landing_ingest", selection=INGEST,
    description="Ingest one landed file and run the blocking checks; automation carries passing data downstream.",
)
# Re-reads the warehouse rather than a source: sources arrive through the landing sensor, and re-running the
# ingest's default (demo) source in production would be wrong.
retrain_from_warehouse = define_asset_job(
    "retrain_from_warehouse", selection=AssetSelection.all() - INGEST - BENCHMARKS,
    description="Quarantine, graph, training, evaluation and publishing on everything ingested so far, now.",
)
benchmark_graphs = define_asset_job(
    "benchmark_graphs", selection=BENCHMARKS,
    description="Cora-ML and Citeseer through GCN, RawlsGCN-Graph and RawlsGCN-Grad (the paper's table, per seed) "
                "and through full-graph GCN against shaDow-GNN on PPR scopes.",
)

