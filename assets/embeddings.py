"""Embeddings stage: the champion's vectors published as a candidate version, a blocking compatibility check of
the candidate against the deployed version and all its ancestors, and the promotion of a candidate that passes.

A family that trains without a compatibility loss (a graph filter) is published through a learned map into the
promoted version's space (see assets.candidate_map); the map's kind and fit are recorded with the version, its
tensors kept beside the artifacts, and the check reports the unmapped vectors' own figures beside the candidate's.
A candidate that fails the check is retired with its report and a message naming both models and the map; the
promoted version stays live, so consumers (pinned or not) keep reading the vectors they read before.
"""

from dataclasses import replace
from pathlib import Path

import torch
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    DagsterEventType,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from assets.candidate_map import CandidateConfig, candidate_vectors
from assets.champion import CHAMPION
from assets.common import (
    GRAPH_RECORD,
    RANKING_REPORT,
    TRAIN_GRAPH,
    VALID_EDGES,
    load_tensors,
    read_json,
    save_tensors,
    write_json,
)
from assets.cost import step_cost
from assets.held_out import load_evaluation
from assets.recommenders import RECOMMENDERS
from assets.runs import ModelArtifacts, RunFiles
from assets.versions import dense_raw_ids, version_vectors
from feature_store import VersionMeta
from feature_store.gate import gate_and_promote
from models.eval.compat_report import compatibility_report, report_markdown
from models.graph.bipartite import BipartiteGraph
from orchestration.automation import RETRAIN_WHEN_IT_PAYS
from orchestration.resources import ArtifactStore, FeatureStoreResource, Warehouse
from orchestration.version_table import versions_table

CODE_VERSION = "publish-3"
CANDIDATE = ("reports", "embedding_candidate.json")  # the latest candidate
CANDIDATES = ("reports", "candidates")  # every candidate's record, by version id
MAPS = "embedding_maps"  # artifacts folder of the learned maps, one file per candidate version


class UngatedCandidateError(RuntimeError):
    """A candidate reached promotion without a passing compatibility report."""


def candidate_record(context: AssetExecutionContext | AssetCheckExecutionContext,
                     artifacts: ArtifactStore) -> dict:
    """The candidate that this run's ``embedding_candidate`` published (its materialization's ``version_id``), or,
    in a run that did not materialize it (a check or a promotion run on its own), the latest candidate.

    Reading this run's own candidate rather than the latest one keeps two overlapping runs apart: each gates and
    promotes what it published, and the store's conditional promotion refuses the second to arrive.
    """
    entries = context.instance.all_logs(context.run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    published = [entry.asset_materialization.metadata["version_id"].value for entry in entries
                 if entry.asset_materialization.asset_key == embedding_candidate.key]
    if published:
        return read_json(artifacts.path(*CANDIDATES, f"{published[-1]}.json"))
    return read_json(artifacts.path(*CANDIDATE))


def figures_of_its_model(candidate_info: dict, candidate: tuple[torch.Tensor, torch.Tensor], data_fingerprint: str,
                         k: int) -> dict[str, float] | None:
    """The candidate's validation Recall@k and NDCG@k as its model's step measured them, when the candidate holds
    exactly the vectors that step saved and ranked, on this training data at this cut-off; else None.

    The step ranked the same vectors on the same validation set, so ranking them again would repeat a full
    evaluation (on Gowalla, half a minute) with nothing running beside it. A mapped candidate, a run folder that
    is gone or results for other data are measured by the check itself.
    """
    if candidate_info.get("unmapped") or not candidate_info.get("run_folder"):
        return None
    run = RunFiles(Path(candidate_info["run_folder"]))
    if not run.embeddings.exists():
        return None
    saved = load_tensors(run.embeddings)
    if not all(key in saved and torch.equal(saved[key], vectors)
               for key, vectors in zip(("user_emb", "item_emb"), candidate)):
        return None
    stored = load_evaluation(run.evaluation, data_fingerprint, k)
    figures = stored[0]["valid"].summary() if stored else {}
    keys = (f"recall@{k}", f"ndcg@{k}")
    return {key: figures[key] for key in keys} if all(key in figures for key in keys) else None


@asset(group_name="embeddings", kinds={"duckdb", "parquet"}, code_version=CODE_VERSION,
       deps=["champion_model", *RECOMMENDERS.values(), "id_maps"], automation_condition=RETRAIN_WHEN_IT_PAYS)
def embedding_candidate(context: AssetExecutionContext, config: CandidateConfig, warehouse: Warehouse,
                        artifacts: ArtifactStore, feature_store: FeatureStoreResource) -> MaterializeResult:
    """The champion's vectors as an unserved candidate version, mapped into the promoted space if loss-free."""
    champion = read_json(artifacts.path(*CHAMPION))
    run = ModelArtifacts(champion["model"]).latest_run(artifacts)
    vectors = load_tensors(run.embeddings)
    record = read_json(run.record)
    with warehouse.connection() as con:
        user_ids = dense_raw_ids(con, "user", vectors["user_emb"].size(0))
        item_ids = dense_raw_ids(con, "item", vectors["item_emb"].size(0))
    store = feature_store.store()
    parent = store.promoted_version()

    def parent_vectors():
        with warehouse.connection() as con:
            return version_vectors(store, con, parent.version_id)

    users, items, learned = candidate_vectors(config, record["model"], record["config"], vectors["user_emb"],
                                              vectors["item_emb"], parent, parent_vectors)
    meta = VersionMeta(
        model=record["model"], parent_id=parent.version_id if parent else None, config=record["config"],
        data_fingerprint=record["data_fingerprint"], code_version=record["code_version"],
        metrics={**champion["test_metrics"], **{f"valid.{key}": value for key, value in champion["metrics"].items()}},
    )
    if learned:  # kept by the candidate's id, so vectors added later (fold-in) can go through the same map
        map_file = artifacts.path(MAPS, f"{meta.version_id}.pt")
        save_tensors(map_file, **learned.tensors())
        meta = replace(meta, compatibility={"map": {**learned.summary(parent.version_id), "file": str(map_file)}})
    version_id = store.publish(meta, user_ids, users, item_ids, items)
    candidate = {"version_id": version_id, "model": meta.model, "parent_id": meta.parent_id,
                 "unmapped": str(run.embeddings) if learned else None, "run_folder": str(run.folder)}
    write_json(artifacts.path(*CANDIDATES, f"{version_id}.json"), candidate)
    write_json(artifacts.path(*CANDIDATE), candidate)
    context.log.info(f"published {meta.model} as candidate {version_id} (parent {meta.parent_id})"
                     + (f" through a learned {learned.kind} map (fit residual {learned.residual:.3f})" if learned else ""))
    return MaterializeResult(metadata={
        **step_cost(context),
        "model": meta.model, "version_id": version_id, "parent_version": meta.parent_id or "",
        "compatibility_loss": record["config"].get("compatibility", "none"),
        "compatibility_map": learned.kind if learned else "none",
        **({"map_residual": learned.residual, "unmapped_dim": int(vectors["user_emb"].size(1))} if learned else {}),
        "users": len(user_ids), "items": len(item_ids), "dim": int(users.size(1)),
    })


@asset_check(asset=embedding_candidate, blocking=True,
             description="Cross-version retrieval on the validation interactions against the promoted version and "
                         "every ancestor: M(new users, old items) must beat M(old, old) for each, else the candidate "
                         "is retired and the promoted version stays live.")
def compatibility_report_check(context: AssetCheckExecutionContext, warehouse: Warehouse, artifacts: ArtifactStore,
                               feature_store: FeatureStoreResource) -> AssetCheckResult:
    """BCT's empirical criterion for the candidate on validation (test only reports); the report is recorded on the
    candidate in the registry."""
    candidate_info = candidate_record(context, artifacts)
    candidate_id = candidate_info["version_id"]
    store = feature_store.store()
    live = store.promoted_version()
    ancestors = store.lineage(live.version_id) if live else []
    graph = BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH))
    valid = load_tensors(artifacts.path(*VALID_EDGES))["edge_index"]
    k = read_json(artifacts.path(*RANKING_REPORT))["k"]
    with warehouse.connection() as con:
        candidate = version_vectors(store, con, candidate_id)
        olds = {info.version_id: version_vectors(store, con, info.version_id) for info in ancestors}
    # A mapped candidate is measured beside its unmapped vectors (the report's independent_new): what the map costs.
    unmapped = candidate_info.get("unmapped")
    independent = None
    if unmapped:
        tensors = load_tensors(Path(unmapped))
        independent = (tensors["user_emb"], tensors["item_emb"])
    own = figures_of_its_model(candidate_info, candidate, read_json(artifacts.path(*GRAPH_RECORD))["fingerprint"], k)
    report = compatibility_report(candidate, olds, graph, valid, ks=(k,), criterion_metric=f"recall@{k}",
                                  independent=independent, new_new=own)
    decision = gate_and_promote(store, candidate_id, report, promote=False)
    context.log.info(f"candidate {candidate_id}: {decision.status}; " + (decision.message or "passed"))
    return AssetCheckResult(passed=decision.passed, description=decision.message or None, metadata={
        **step_cost(context),
        "candidate": candidate_id, "ancestors": len(olds), "status": decision.status,
        "candidate_figures_from": "its model's step" if own else "this check",
        "failures": "; ".join(decision.failures) or "none",
        "cross_version_recall": MetadataValue.md(report_markdown(report, new_label="candidate")),
    })


@asset(group_name="embeddings", kinds={"duckdb"}, code_version=CODE_VERSION, deps=[embedding_candidate],
       automation_condition=RETRAIN_WHEN_IT_PAYS)
def published_embeddings(context: AssetExecutionContext, artifacts: ArtifactStore,
                         feature_store: FeatureStoreResource) -> MaterializeResult:
    """The candidate promoted to the served version, once its compatibility check has passed."""
    candidate_id = candidate_record(context, artifacts)["version_id"]
    store = feature_store.store()
    gate = store.get_version(candidate_id).compatibility.get("gate", {})
    if not gate.get("passed"):  # the blocking check stops the run first; this guards runs that skip it
        raise UngatedCandidateError(f"candidate {candidate_id} has no passing compatibility report ({gate or 'none'}); "
                           "materialize embedding_candidate with its compatibility_report_check first")
    # Only over the version the check measured it against: a run that promoted in between makes this a conflict.
    promoted = store.promote(candidate_id, expected_live=gate["live_version"])
    context.log.info(f"promoted {candidate_id} (parent {promoted.parent_id})")
    return MaterializeResult(metadata={
        **step_cost(context),
        "model": promoted.model, "version_id": candidate_id, "promoted_version": promoted.version_id,
        "parent_version": promoted.parent_id or "", "users": promoted.n_users, "items": promoted.n_items,
        "dim": promoted.dim, "versions_total": len(store.list_versions()), "versions": versions_table(store),
    })
