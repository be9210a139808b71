"""End to end: every recommendation asset materialized in-process on a small demo set (both models, their comparison,
the champion, its published version); a retrain trains compatible with the promoted version and passes the
compatibility gate, an incompatible one is retired; bad input stops at the blocking checks, nothing downstream runs,
and the promoted embedding version stays as it was.
"""

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import torch
from dagster import DagsterInstance, materialize

from assets.champion import CHAMPION, ChampionConfig, choose_champion
from assets.common import RANKING_REPORT, TEST_EDGES, TRAIN_GRAPH, VALID_EDGES, load_tensors, read_json, write_json
from assets.families import load_fitted
from assets.held_out import timed_evaluation
from assets.runs import ModelArtifacts
from assets.versions import version_vectors
from feature_store import FeatureStore
from models.eval.compat_report import compatibility_report
from models.graph.bipartite import BipartiteGraph
from models.recsys.registry import FAMILIES
from orchestration.definitions import defs
from orchestration.jobs import full_retrain
from orchestration.resources import Warehouse
from orchestration.version_table import VERSIONS_SCHEMA
from warehouse.connection import connect
from warehouse.demo import DemoConfig, generate_demo
from warehouse.id_maps import load_id_map

ALL = [*defs.assets, *defs.asset_checks]
ASSET_KEYS = {"raw_interactions", "raw_items", "clean_interactions", "rejected_interactions", "id_maps",
              "interaction_split", "training_graph", "interaction_spectra", "lightgcn_model", "rawls_model",
              "ranking_report", "champion_model", "embedding_candidate", "published_embeddings", "ppr_scopes", "shadow_model",
              "ppr_audience", "heuristic_scores", "mlp_student", "popularity_model", "recent_popularity_model",
              "item_knn_model", "gf_cf_model", "gf_cf_factors_model", "bspm_model",
              "bspm_factors_model", "sgfcf_model", "sgfcf_factors_model", "filter_blend_factors_model"}
LIGHTGCN_FAMILY = ("lightgcn", "rawls")
BASELINES = ("popularity", "recent_popularity", "item_knn", "gf_cf", "gf_cf_factors", "bspm", "bspm_factors", "sgfcf",
             "sgfcf_factors")
MODELS = (*LIGHTGCN_FAMILY, "student", "shadow", *BASELINES, "filter_blend_factors")
EPOCHS = 30
TRAINING = {"config": {"epochs": EPOCHS, "eval_every": 3, "lr": 0.01, "batch_size": 1024}}
RUN_CONFIG = {"ops": {
    "ingest_source": {"config": {"demo_users": 400, "demo_items": 200}},
    "lightgcn_model": TRAINING, "rawls_model": TRAINING,
}}


def _run(resources: dict, run_config: dict, assets=ALL, selection=full_retrain.selection):
    return materialize(assets, resources=resources, run_config=run_config, selection=selection,
                       instance=DagsterInstance.ephemeral(), raise_on_error=False)


def _materialized(result) -> dict:
    return {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory, make_resources) -> SimpleNamespace:
    """One materialization of every asset of the full retrain, shared by the tests of this module."""
    root = tmp_path_factory.mktemp("e2e")
    resources = make_resources(root)
    result = _run(resources, RUN_CONFIG)
    return SimpleNamespace(root=root, resources=resources, result=result, metadata=_materialized(result))


def test_every_asset_materializes(demo):
    assert demo.result.success
    assert set(demo.metadata) == ASSET_KEYS


def test_every_blocking_check_passes(demo):
    checks = {e.check_name: e.passed for e in demo.result.get_asset_check_evaluations()}
    assert len(checks) == 13 and all(checks.values()), checks
    assert checks["champion_beats_baselines"]


def test_metadata_holds_counts_and_metrics(demo):
    meta = {asset: {k: v.value for k, v in m.items()} for asset, m in demo.metadata.items()}
    assert meta["raw_interactions"]["dagster/row_count"] == (
        meta["clean_interactions"]["dagster/row_count"] + meta["rejected_interactions"]["dagster/row_count"])
    assert (meta["training_graph"]["num_users"], meta["training_graph"]["num_items"]) == (400, 200)
    for model in LIGHTGCN_FAMILY:
        training = meta[f"{model}_model"]
        assert training["epochs"] == EPOCHS and training["device"] == "cpu"
        assert "| epoch |" in training["time_to_quality"]
    for model in set(MODELS) - {"popularity"}:
        # Community-structured demo data: a trained model ranks far above chance (20 of 200 items: 0.1).
        assert 0.3 < meta["ranking_report"][f"{model}.recall@20"] <= 1.0, model
        assert meta["ranking_report"][f"{model}.bias"] >= 0.0
    assert (meta["lightgcn_model"]["propagation"], meta["rawls_model"]["propagation"]) == (
        "symmetric", "doubly_stochastic")
    assert meta["rawls_model"]["sinkhorn_max_error"] <= 1e-3 and meta["rawls_model"]["sinkhorn_iterations"] >= 1
    assert "sinkhorn_iterations" not in meta["lightgcn_model"]
    assert "data:image/png;base64," in meta["training_graph"]["degree_distribution"]
    # Every graph filter took its triplets from the run's shared spectra (one SVD per normalisation).
    assert meta["interaction_spectra"]["data_fingerprint"] == meta["training_graph"]["fingerprint"]
    spectral = [name for name, family in FAMILIES.items() if getattr(family, "spectral", False)]
    assert len(spectral) == 6 and all(meta[f"{name}_model"]["shared_spectra"] == 2 for name in spectral)
    assert meta["published_embeddings"]["promoted_version"] == meta["published_embeddings"]["version_id"]


def test_published_embeddings_lists_the_versions(demo):
    table = demo.metadata["published_embeddings"]["versions"]
    assert table.schema == VERSIONS_SCHEMA
    served = demo.metadata["published_embeddings"]["version_id"].value
    assert [(r.data["version_id"], r.data["status"], r.data["gate"], r.data["n_users"]) for r in table.records] == [
        (served, "promoted", "passed", 400)]


def test_ranking_report_compares_both_models_per_degree_group(demo):
    meta = {k: v.value for k, v in demo.metadata["ranking_report"].items()}
    report = read_json(demo.root / "artifacts" / Path(*RANKING_REPORT))
    groups = report["degree_groups"]
    assert set(report["models"]) == set(MODELS) and len(groups) == 5
    assert sum(g["users"] for g in groups) == report["test_users"] == meta["test_users"]
    assert report["k"] == 20 and report["baselines"] == list(BASELINES)
    # The held-out items' training popularity, beside the figures (demo items have training degrees of tens).
    for part in ("valid", "test"):
        assert meta[f"{part}.mean_item_degree"] == pytest.approx(report["heldout_item_degree"][part]["mean_item_degree"])
        assert 1.0 < meta[f"{part}.mean_item_degree"] < 1000.0
    for model in MODELS:
        # Validation is measured like test, on the users with validation items.
        assert 0.0 < report["valid"][model]["recall@20"] <= 1.0
        assert meta[f"{model}.valid.recall@20"] == pytest.approx(report["valid"][model]["recall@20"])
        metrics = report["models"][model]
        per_group = [metrics[f"group{g['group']}.recall@20"] for g in groups]
        # The overall recall is the users-weighted mean of the groups' recall; the bias is their sample variance.
        assert metrics["recall@20"] == pytest.approx(
            sum(r * g["users"] for r, g in zip(per_group, groups)) / report["test_users"])
        assert metrics["bias"] == pytest.approx(np.var(per_group, ddof=1))
        assert {key: meta[f"{model}.{key}"] for key in metrics} == pytest.approx(metrics)
        assert f"| {model} |" in meta["comparison"]
        assert f"{model} recall@20" in meta["degree_groups"]
    assert "data:image/png;base64," in meta["degree_groups"]
    assert meta["time_to_quality"].startswith("![validation recall against fit seconds, every model](data:image/png")
    lightgcn_row = next(line for line in meta["comparison"].splitlines() if line.startswith("| lightgcn |"))
    seconds = read_json(ModelArtifacts("lightgcn").latest_run(demo.resources["artifacts"]).record)["seconds"]
    assert f"| {seconds:.4f} |" in lightgcn_row  # the fit's own seconds, from its training record


def test_the_report_reads_each_models_own_evaluation_and_it_equals_a_fresh_one(demo):
    # Every model step ranked its fit on validation and test; the report scored nothing again.
    meta = {k: v.value for k, v in demo.metadata["ranking_report"].items()}
    assert meta["evaluated_here"] == ""
    artifacts = demo.resources["artifacts"]
    graph = BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH))
    valid, test = (load_tensors(artifacts.path(*edges))["edge_index"] for edges in (VALID_EDGES, TEST_EDGES))
    for model in ("lightgcn", "gf_cf", "bspm_factors", "filter_blend_factors"):  # trained, scorer, vectors, a blend
        stored = read_json(ModelArtifacts(model).latest_run(artifacts).record)
        fresh, _ = timed_evaluation(load_fitted(artifacts, model), graph, valid, test, 20, torch.device("cpu"))
        assert demo.metadata[f"{model}_model"]["valid.recall@20"].value == pytest.approx(
            fresh["valid"].summary()["recall@20"], abs=1e-6)
        assert meta[f"{model}.recall@20"] == pytest.approx(fresh["test"].summary()["recall@20"], abs=1e-6)
        assert stored["eval_seconds"] > 0


def test_the_check_takes_the_candidates_own_figures_from_its_model_and_they_equal_a_fresh_ranking(demo):
    # Published unmapped, the candidate holds the vectors its model's step ranked: the check does not rank them
    # again, and what it records is what ranking the stored version gives.
    check = {e.check_name: e for e in demo.result.get_asset_check_evaluations()}["compatibility_report_check"]
    assert check.metadata["candidate_figures_from"].value == "its model's step"
    store = FeatureStore(demo.root / "feature_store")
    version = store.get_version(check.metadata["candidate"].value)
    artifacts = demo.resources["artifacts"]
    graph = BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH))
    valid = load_tensors(artifacts.path(*VALID_EDGES))["edge_index"]
    with connect(demo.root / "warehouse.duckdb") as con:
        vectors = version_vectors(store, con, version.version_id)
    fresh = compatibility_report(vectors, {}, graph, valid, ks=(20,))["new_new"]
    assert set(version.compatibility["new_new"]) == {"recall@20", "ndcg@20"}
    assert version.compatibility["new_new"] == pytest.approx(fresh, abs=1e-6)
    assert fresh["recall@20"] > 0.1


def test_champion_follows_the_policy_and_is_published(demo):
    report = read_json(demo.root / "artifacts" / Path(*RANKING_REPORT))
    champion = read_json(demo.root / "artifacts" / Path(*CHAMPION))
    eligible = {model: report["valid"][model] for model in ChampionConfig().models}
    assert champion["model"] == choose_champion(eligible).model
    assert champion["metrics"] == report["valid"][champion["model"]]
    assert champion["test_metrics"] == report["models"][champion["model"]]
    assert champion["policy"] == {"models": ["lightgcn", "rawls", "gf_cf_factors", "bspm_factors", "sgfcf_factors", "filter_blend_factors"], "max_bias": None,
                                  "max_recall_drop": 0.05}
    meta = demo.metadata["champion_model"]
    assert meta["model"].value == champion["model"] and meta["reason"].value == champion["reason"]
    assert demo.metadata["published_embeddings"]["model"].value == champion["model"]


def test_promoted_version_has_a_vector_for_every_mapped_id(demo):
    store = FeatureStore(demo.root / "feature_store")
    promoted = store.promoted_version()
    assert promoted.version_id == demo.metadata["published_embeddings"]["version_id"].value
    champion = demo.metadata["champion_model"]["model"].value
    assert promoted.parent_id is None and promoted.model == champion
    assert promoted.data_fingerprint == demo.metadata["training_graph"]["fingerprint"].value
    assert promoted.metrics["recall@20"] == pytest.approx(
        demo.metadata["ranking_report"][f"{champion}.recall@20"].value)
    with connect(demo.root / "warehouse.duckdb") as con:
        users, items = load_id_map(con, "user"), load_id_map(con, "item")
    trained = torch.load(ModelArtifacts(champion).latest_run(demo.resources["artifacts"]).embeddings,
                         weights_only=True)
    user_vectors = store.read_vectors("user", users["raw_id"].to_list())
    item_vectors = store.read_vectors("item", items["raw_id"].to_list())
    np.testing.assert_array_equal(user_vectors, trained["user_emb"].numpy())
    np.testing.assert_array_equal(item_vectors, trained["item_emb"].numpy())
    assert len(store.top_k_items(users["raw_id"][0], k=10)) == 10


def test_each_model_materialization_links_its_run_folder_and_time_to_quality_plot(demo):
    """The first run's folder is named by its Dagster run, holds the files its metadata links, and is the latest."""
    metadata = demo.metadata["lightgcn_model"]
    folder = Path(metadata["run_folder"].value)
    assert folder == demo.root / "artifacts" / "lightgcn" / "runs" / demo.result.run_id
    for key in ("embeddings_file", "training_record", "final_checkpoint", "time_to_quality_plot"):
        assert Path(metadata[key].value).parent == folder and Path(metadata[key].value).exists()
    assert Path(metadata["time_to_quality_plot"].value).read_bytes()[:4] == b"\x89PNG"
    assert ModelArtifacts("lightgcn").latest_run(demo.resources["artifacts"]).folder == folder


def test_retrain_resumes_a_crashed_runs_checkpoint(demo):
    """A checkpoint left by a crash is resumed when config, data and deployed version are those it was written for."""
    artifacts, files = demo.resources["artifacts"], ModelArtifacts("lightgcn")
    shutil.copy(files.latest_run(artifacts).final, artifacts.path(*files.checkpoint))
    # The first run had no deployed version to train against; without a compatibility loss, neither has this one.
    run_config = {"ops": {"lightgcn_model": {"config": {**TRAINING["config"], "compatibility": "none"}}}}
    result = _run(demo.resources, run_config, selection=["lightgcn_model"])
    assert result.success
    assert _materialized(result)["lightgcn_model"]["resumed_from_epoch"].value == EPOCHS


RETRAIN = ["lightgcn_model", "rawls_model", "ranking_report", "champion_model", "embedding_candidate",
           "published_embeddings"]


def _retrain(demo, compatibility: str, seed: int):
    # Twice the epochs at twice the rate: the retrain is a better model, as a scheduled retrain should be.
    training = {"config": {**TRAINING["config"], "epochs": 2 * EPOCHS, "lr": 0.01, "compatibility": compatibility,
                           "seed": seed}}
    return _run(demo.resources, {"ops": {"lightgcn_model": training, "rawls_model": training}}, selection=RETRAIN)


def test_a_bct_retrain_passes_the_compatibility_gate_and_is_promoted_as_a_child(demo):
    store = FeatureStore(demo.root / "feature_store")
    before = store.promoted_version()
    result = _retrain(demo, "bct", seed=7)

    assert result.success
    meta = _materialized(result)
    assert meta["lightgcn_model"]["compatible_with"].value == before.version_id
    assert meta["lightgcn_model"]["compatibility_loss"].value == "bct"
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["champion_beats_baselines"].passed
    check = checks["compatibility_report_check"]
    assert check.passed and check.metadata["ancestors"].value == 1
    assert check.metadata["candidate_figures_from"].value == "its model's step"
    after = FeatureStore(demo.root / "feature_store").promoted_version()
    assert after.version_id == meta["published_embeddings"]["version_id"].value != before.version_id
    assert after.parent_id == before.version_id and after.config["compatibility"] == "bct"
    ancestor = after.compatibility["ancestors"][before.version_id]
    # The criterion the gate applied, recorded with the version: new users on the old items beat the old model.
    assert ancestor["new_old"]["recall@20"] > ancestor["old_old"]["recall@20"] > 0.3
    assert after.compatibility["gate"] == {"passed": True, "failures": [], "live_version": before.version_id}
    assert store.get_version(before.version_id).status == "retired"


def test_an_incompatible_retrain_is_retired_and_the_promoted_version_stays(demo):
    """Trained without a compatibility loss, a new model's users cannot rank the deployed items: the blocking
    check fails against the promoted version and its ancestor, nothing is promoted, and readers see no change."""
    store = FeatureStore(demo.root / "feature_store")
    live = store.promoted_version()
    with connect(demo.root / "warehouse.duckdb") as con:
        some_users = load_id_map(con, "user")["raw_id"].head(5).to_list()
    served_before = store.read_vectors("user", some_users)
    result = _retrain(demo, "none", seed=11)

    assert not result.success
    assert set(_materialized(result)) == set(RETRAIN) - {"published_embeddings"}
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}["compatibility_report_check"]
    assert not check.passed and check.metadata["ancestors"].value == 2
    assert "M(new, old) > M(old, old) fails" in check.metadata["failures"].value
    candidate = store.get_version(check.metadata["candidate"].value)
    assert candidate.status == "retired" and candidate.compatibility["gate"]["passed"] is False
    assert store.promoted_version().version_id == live.version_id
    np.testing.assert_array_equal(store.read_vectors("user", some_users), served_before)



def test_a_champion_switch_to_a_filter_goes_through_the_learned_map(demo):
    """LightGCN → GF-CF's vectors: the filter has no compatibility loss, so its vectors go through a map
    learned into the promoted space, and the gate measures the mapped version against the promoted one."""
    store = FeatureStore(demo.root / "feature_store")
    live = store.promoted_version()
    # The champion file as champion_model writes it when the policy picks GF-CF's vectors (on this small set
    # item-kNN is ahead of them, so the baseline check would stop the publish before the gate).
    champion_file = demo.root / "artifacts" / Path(*CHAMPION)
    write_json(champion_file, {**read_json(champion_file), "model": "gf_cf_factors"})
    result = _run(demo.resources, {}, selection=["embedding_candidate", "published_embeddings"])

    candidate = _materialized(result)["embedding_candidate"]
    assert candidate["model"].value == "gf_cf_factors" and candidate["compatibility_map"].value == "least_squares"
    assert candidate["dim"].value == live.dim == 64 and candidate["unmapped_dim"].value > live.dim
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}["compatibility_report_check"]
    assert check.metadata["candidate_figures_from"].value == "this check"  # mapped: not what its model ranked
    version = store.get_version(check.metadata["candidate"].value)
    reports = version.compatibility["ancestors"]  # the live version and each of its ancestors
    assert live.version_id in reports
    holds = all(report["new_old"]["recall@20"] > report["old_old"]["recall@20"] for report in reports.values())
    assert check.passed is holds is result.success
    assert version.model == "gf_cf_factors" and version.compatibility["map"]["kind"] == "least_squares"
    assert version.compatibility["map"]["fitted_to"] == live.version_id
    if holds:
        assert store.promoted_version().version_id == version.version_id and version.parent_id == live.version_id
    else:  # on this small set the map's GF-CF ranks the live version's items a little below LightGCN's own users
        assert check.description.startswith(f"refused: champion switch from {live.model} ('{live.version_id}') to "
                                             f"gf_cf_factors ('{version.version_id}'), with the learned "
                                             "least_squares map")
        assert "M(new, old) > M(old, old) fails" in check.description
        assert version.status == "retired" and store.promoted_version().version_id == live.version_id

def _null_user_ids(path: Path, frame: pl.DataFrame) -> Path:
    path = path / "null_user_ids.csv"
    every_20th = pl.int_range(pl.len()) % 20 == 0  # 5% of the rows
    frame.with_columns(pl.when(every_20th).then(None).otherwise(pl.col("user_id")).alias("user_id")).write_csv(path)
    return path


def _future_timestamps(path: Path, frame: pl.DataFrame) -> Path:
    path = path / "future_ts.parquet"
    future = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=30)
    every_20th = pl.int_range(pl.len()) % 20 == 0
    frame.with_columns(pl.when(every_20th).then(pl.lit(future)).otherwise(pl.col("ts")).alias("ts")).write_parquet(path)
    return path


@pytest.mark.parametrize(("make_file", "failing_check"), [
    (_null_user_ids, "interactions_have_no_null_ids"),
    (_future_timestamps, "interactions_timestamps_in_range"),
])
def test_bad_input_fails_its_blocking_check_and_keeps_the_promoted_version(demo, tmp_path, make_file, failing_check):
    interactions, _ = generate_demo(DemoConfig(seed=3, n_users=200, n_items=100))
    bad_file = make_file(tmp_path, interactions.select("user_id", "item_id", "ts", "event", "weight"))
    store = FeatureStore(demo.root / "feature_store")
    before = (store.promoted_version().version_id, len(store.list_versions()))
    # A fresh warehouse holding only the bad file, beside the demo's feature store and its promoted version.
    resources = {**demo.resources, "warehouse": Warehouse(path=str(tmp_path / "wh.duckdb"))}
    result = _run(resources, {"ops": {"ingest_source": {"config": {"source": "files", "path": str(bad_file)}}}})

    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed == {failing_check}
    assert set(_materialized(result)) == {"raw_interactions", "raw_items"}
    assert (store.promoted_version().version_id, len(store.list_versions())) == before


def _popularity_only(path: Path) -> Path:
    """Interactions where every user picks a few items by a steep item popularity alone: there is no
    collaborative signal to learn, so ranking by popularity is the best any model can do."""
    rng = np.random.default_rng(5)
    items = np.arange(150)
    weights = 1.0 / (items + 1) ** 1.2
    rows = [(f"u{user}", f"i{item}", datetime(2024, 1, 1) + timedelta(hours=int(rng.integers(0, 24 * 300))))
            for user in range(500)
            for item in rng.choice(items, size=int(rng.integers(3, 7)), replace=False, p=weights / weights.sum())]
    path = path / "popularity_only.parquet"
    pl.DataFrame(rows, schema=["user_id", "item_id", "ts"], orient="row").write_parquet(path)
    return path


def test_a_champion_that_loses_to_popularity_is_not_published(make_resources, tmp_path):
    resources = make_resources(tmp_path)
    source = {"source": "files", "path": str(_popularity_only(tmp_path))}
    # The trained models only: the filters' vectors, with their popularity prior, come within noise of popularity
    # here (0.7673 against 0.7771, 1.4 standard errors); LightGCN, which learns popularity from scratch, does not.
    policy = {"models": ["lightgcn", "rawls"]}
    result = _run(resources, {"ops": {**RUN_CONFIG["ops"], "ingest_source": {"config": source},
                                      "champion_model": {"config": policy}}})

    assert not result.success
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}["champion_beats_baselines"]
    assert not check.passed
    assert "popularity has validation recall@20" in check.description
    materialized = _materialized(result)
    assert "champion_model" in materialized and "embedding_candidate" not in materialized
    assert "published_embeddings" not in materialized
    store = FeatureStore(tmp_path / "feature_store")
    assert store.promoted_version() is None and store.list_versions() == []


def test_a_popularity_baseline_named_by_the_policy_is_chosen_and_published(make_resources, tmp_path):
    resources = make_resources(tmp_path)
    source = {"source": "files", "path": str(_popularity_only(tmp_path))}
    policy = {"models": ["lightgcn", "rawls", "popularity", "recent_popularity"]}
    result = _run(resources, {"ops": {**RUN_CONFIG["ops"], "ingest_source": {"config": source},
                                      "champion_model": {"config": policy}}})

    assert result.success
    champion = read_json(Path(resources["artifacts"].root) / Path(*CHAMPION))["model"]
    assert champion in ("popularity", "recent_popularity")
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}["champion_beats_baselines"]
    assert check.passed and check.description == f"{champion} beats every baseline on validation"
    promoted = FeatureStore(tmp_path / "feature_store").promoted_version()
    assert promoted is not None and promoted.model == champion and promoted.dim == 1
