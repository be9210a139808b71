"""The one Definitions loads, and every asset and check carries what the UI and the automation rely on; the jobs
select what they say (the node-classification benchmarks only in their own job)."""

import pytest
from dagster import AutomationCondition, validate_run_config

from assets.runs import ModelArtifacts
from assets.validation import WARN_ONLY
from models.nodeclf.rawls_protocol import NodeClassificationConfig
from models.recsys.registry import FAMILIES
from models.recsys.training import LightGCNConfig
from orchestration.automation import AFTER_UPSTREAM_PASSES, RETRAIN_WHEN_IT_PAYS
from orchestration.definitions import defs
from orchestration.settings import LOCAL_TRAINING_DEFAULTS

ASSETS = {
    "raw_interactions": "ingest", "raw_items": "ingest",
    "clean_interactions": "validation", "rejected_interactions": "validation",
    "id_maps": "graph", "interaction_split": "graph", "training_graph": "graph",
    "interaction_spectra": "training", "lightgcn_model": "training", "rawls_model": "training", "ranking_report": "evaluation",
    "champion_model": "evaluation", "embedding_candidate": "embeddings", "published_embeddings": "embeddings",
    "node_classification_graphs": "benchmark_graphs", "rawls_node_classification": "benchmark_graphs",
    "ppr_scopes": "graph", "shadow_model": "training", "ppr_audience": "audience",
    "heuristic_scores": "distillation", "mlp_student": "distillation",
    "shadow_node_classification": "benchmark_graphs",
    "popularity_model": "training", "recent_popularity_model": "training", "item_knn_model": "training",
    "gf_cf_model": "training",
    "gf_cf_factors_model": "training",
    "bspm_model": "training",
    "bspm_factors_model": "training",
    "sgfcf_model": "training",
    "sgfcf_factors_model": "training",
    "filter_blend_factors_model": "training",
}
# Operator jobs (launched by hand from the UI) and the config fields each takes.
OPERATOR_JOBS = {"retract_ingest": {"content_key"}, "promote_version": {"version_id", "force"},
                 "rollback_embeddings": set(), "retire_version": {"version_id"}, "gc_feature_store": {"min_age_s"}}
RECOMMENDATION = {name for name, group in ASSETS.items() if group != "benchmark_graphs"}
# Roots (ingest) have nothing upstream to wait for; the benchmarks run on demand, in their own job.
ON_DEMAND_GROUPS = {"ingest", "benchmark_graphs"}
# Cheap assets follow landed data eagerly; the rest retrains when it pays (tests/orchestration/test_automation.py).
EAGER = {"clean_interactions", "rejected_interactions", "id_maps", "interaction_split", "training_graph",
         "ppr_audience"}
# Steps that open the DuckDB warehouse for more than a short read take turns through one pool.
WAREHOUSE_WRITERS = {"raw_interactions", "raw_items", "clean_interactions", "rejected_interactions", "id_maps",
                     "interaction_split", "training_graph", "ppr_audience"}


@pytest.fixture(scope="module")
def specs() -> dict:
    return {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}


def test_definitions_hold_every_asset_in_its_group(specs):
    assert {name: spec.group_name for name, spec in specs.items()} == ASSETS


def test_every_asset_has_description_code_version_and_kinds(specs):
    for name, spec in specs.items():
        assert spec.description and "\n" not in spec.description, name
        assert spec.code_version, name
        assert spec.kinds, name


def test_downstream_assets_wait_for_blocking_checks(specs):
    for name, spec in specs.items():
        expected = (None if ASSETS[name] in ON_DEMAND_GROUPS else
                    AFTER_UPSTREAM_PASSES if name in EAGER else RETRAIN_WHEN_IT_PAYS)
        assert spec.automation_condition == expected, name
    for condition in (AFTER_UPSTREAM_PASSES, RETRAIN_WHEN_IT_PAYS):
        labels = {c.get_label() for c in condition.children}
        assert AutomationCondition.all_deps_blocking_checks_passed().get_label() in labels


def test_warehouse_writers_share_one_pool():
    graph = defs.resolve_asset_graph()
    pooled = {key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).pools}
    assert pooled == WAREHOUSE_WRITERS
    assert {pool for key in graph.get_all_asset_keys() for pool in graph.get(key).pools} == {"duckdb_writer"}


def test_every_data_check_is_blocking_but_those_that_warn():
    graph = defs.resolve_asset_graph()
    checks = {key: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert len(checks) == 13
    assert {key.asset_key.to_user_string() for key in checks} == {"raw_interactions", "training_graph",
                                                                 "champion_model", "embedding_candidate"}
    assert {key.name for key, spec in checks.items() if not spec.blocking} == WARN_ONLY == {
        "interactions_duplicate_rate_within_bound"}


def test_jobs_and_sensors_exist_and_no_schedule_competes_with_the_automation():
    repo = defs.get_repository_def()
    assert {"full_retrain", "landing_ingest", "retrain_from_warehouse", "benchmark_graphs", *OPERATOR_JOBS} <= set(
        repo.job_names)
    assert not repo.schedule_defs
    assert defs.resolve_sensor_def("landing_files").job_name == "landing_ingest"
    assert defs.resolve_sensor_def("downstream_automation") is not None


def test_operator_jobs_have_typed_config():
    ops = {name: defs.resolve_job_def(name).graph.node_defs[0] for name in OPERATOR_JOBS}
    # An op without config has the schema Any, which has no fields.
    fields = {name: set(getattr(op.config_schema.config_type, "fields", ())) for name, op in ops.items()}
    assert fields == OPERATOR_JOBS
    for name in OPERATOR_JOBS:
        assert defs.resolve_job_def(name).tags["graphrec/kind"] == "operator"
        assert defs.resolve_job_def(name).executor_def.name == "in_process"


def test_jobs_run_in_process_and_select_their_assets():
    selected = {
        name: {key.to_user_string() for key in defs.resolve_job_def(name).asset_layer.selected_asset_keys}
        for name in ("full_retrain", "landing_ingest", "retrain_from_warehouse", "benchmark_graphs")
    }
    assert selected["full_retrain"] == RECOMMENDATION
    assert selected["landing_ingest"] == {"raw_interactions", "raw_items"}
    assert selected["retrain_from_warehouse"] == RECOMMENDATION - {"raw_interactions", "raw_items"}
    assert selected["benchmark_graphs"] == {"node_classification_graphs", "rawls_node_classification",
                                            "shadow_node_classification"}
    for name in selected:
        assert defs.resolve_job_def(name).executor_def.name == "in_process"


def test_local_runs_default_to_the_demo_training_setting():
    resolved = validate_run_config(defs.resolve_job_def("full_retrain"), None)["ops"]
    assert resolved["ingest_source"]["config"]["source"] == "demo"
    for model, propagation in (("lightgcn_model", "symmetric"), ("rawls_model", "doubly_stochastic")):
        training = resolved[model]["config"]
        assert {key: training[key] for key in LOCAL_TRAINING_DEFAULTS} == LOCAL_TRAINING_DEFAULTS
        assert training["embedding_dim"] == LightGCNConfig.embedding_dim
        assert training["propagation"] == propagation


def test_the_pipelines_filters_choose_their_setting_on_validation():
    resolved = validate_run_config(defs.resolve_job_def("full_retrain"), None)["ops"]
    for model in ("gf_cf_model", "gf_cf_factors_model", "bspm_model", "bspm_factors_model", "sgfcf_model",
                  "sgfcf_factors_model"):
        assert resolved[model]["config"]["choose_on_validation"] is True
    # The dataclass default (the authors' setting) is what benchmarks and tests fit.
    assert FAMILIES["gf_cf"].config_type().choose_on_validation is False
    assert "choose_on_validation" not in resolved["item_knn_model"]["config"]


def test_recommenders_keep_their_own_artifacts_and_code_versions(specs):
    assert specs["lightgcn_model"].code_version != specs["rawls_model"].code_version
    assert ModelArtifacts("lightgcn").checkpoint != ModelArtifacts("rawls").checkpoint
    upstream = {dep.asset_key.to_user_string() for dep in specs["ranking_report"].deps}
    assert upstream == {"lightgcn_model", "rawls_model", "mlp_student", "shadow_model", "popularity_model",
                        "recent_popularity_model", "item_knn_model", "gf_cf_model",
                        "gf_cf_factors_model", "bspm_model", "bspm_factors_model", "sgfcf_model", "sgfcf_factors_model",
                        "filter_blend_factors_model"}
    baselines = ("popularity", "recent_popularity", "item_knn", "gf_cf", "gf_cf_factors", "bspm", "bspm_factors",
                 "sgfcf", "sgfcf_factors")
    assert len({specs[f"{model}_model"].code_version for model in baselines}) == len(baselines)


def test_a_family_asset_code_version_is_its_family_version(specs):
    # A family bumps its own version when its fits change, and only its asset shows a new code version.
    for name, family in FAMILIES.items():
        assert specs[f"{name}_model"].code_version == f"{name}-{family.version}"
    assert specs["sgfcf_model"].code_version == "sgfcf-3"


def test_benchmarks_default_to_the_papers_protocol():
    resolved = validate_run_config(defs.resolve_job_def("benchmark_graphs"), None)["ops"]
    assert resolved["node_classification_graphs"]["config"]["datasets"] == ["cora_ml", "citeseer"]
    protocol = resolved["rawls_node_classification"]["config"]
    assert protocol == {"seeds": [0, 1, 2, 3, 4], "epochs": NodeClassificationConfig.epochs}
