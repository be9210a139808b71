"""The one Definitions loads, and every asset and check carries what the UI and the automation rely on."""

import pytest
from dagster import AutomationCondition, validate_run_config

from assets.common import AFTER_UPSTREAM_PASSES
from models.training import LightGCNConfig
from orchestration.definitions import defs
from orchestration.settings import LOCAL_TRAINING_DEFAULTS

ASSETS = {
    "raw_interactions": "ingest", "raw_items": "ingest",
    "clean_interactions": "validation", "rejected_interactions": "validation",
    "id_maps": "graph", "interaction_split": "graph", "training_graph": "graph",
    "lightgcn_model": "training", "ranking_report": "evaluation", "published_embeddings": "embeddings",
}


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
        expected = None if ASSETS[name] == "ingest" else AFTER_UPSTREAM_PASSES
        assert spec.automation_condition == expected, name
    labels = {c.get_label() for c in AFTER_UPSTREAM_PASSES.children}
    assert AutomationCondition.all_deps_blocking_checks_passed().get_label() in labels


def test_every_data_check_is_blocking():
    graph = defs.resolve_asset_graph()
    checks = {key: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert len(checks) == 11
    assert {key.asset_key.to_user_string() for key in checks} == {"raw_interactions", "training_graph"}
    assert all(spec.blocking for spec in checks.values())


def test_jobs_schedule_and_sensors_exist():
    repo = defs.get_repository_def()
    assert {"full_retrain", "landing_ingest", "weekly_retrain"} <= set(repo.job_names)
    schedule = defs.resolve_schedule_def("weekly_retrain_schedule")
    assert schedule.cron_schedule == "0 3 * * 1" and schedule.job_name == "weekly_retrain"
    assert defs.resolve_sensor_def("landing_files").job_name == "landing_ingest"
    assert defs.resolve_sensor_def("downstream_automation") is not None


def test_jobs_run_in_process_and_select_their_assets():
    selected = {
        name: {key.to_user_string() for key in defs.resolve_job_def(name).asset_layer.selected_asset_keys}
        for name in ("full_retrain", "landing_ingest", "weekly_retrain")
    }
    assert selected["full_retrain"] == set(ASSETS)
    assert selected["landing_ingest"] == {"raw_interactions", "raw_items"}
    assert selected["weekly_retrain"] == set(ASSETS) - {"raw_interactions", "raw_items"}
    for name in selected:
        assert defs.resolve_job_def(name).executor_def.name == "in_process"


def test_local_runs_default_to_the_demo_training_setting():
    resolved = validate_run_config(defs.resolve_job_def("full_retrain"), None)["ops"]
    assert resolved["ingest_source"]["config"]["source"] == "demo"
    training = resolved["lightgcn_model"]["config"]
    assert {key: training[key] for key in LOCAL_TRAINING_DEFAULTS} == LOCAL_TRAINING_DEFAULTS
    assert training["embedding_dim"] == LightGCNConfig.embedding_dim
