"""GRAPHREC_ENV switches between one local data folder and production locations named by variables."""

import pytest

from orchestration.settings import (
    DEFAULT_RETRAIN,
    LOCAL_TRAINING_DEFAULTS,
    REPO_ROOT,
    RetrainPolicy,
    SettingsError,
    load_settings,
    retrain_policy,
    training_defaults,
)


def test_local_defaults_live_under_one_data_folder(tmp_path):
    settings = load_settings({"GRAPHREC_DATA_DIR": str(tmp_path)})
    assert settings.env == "local" and settings.device == "auto"
    assert (settings.warehouse_path, settings.artifacts_root, settings.feature_store_root, settings.landing_dir) == (
        str(tmp_path / "warehouse.duckdb"), str(tmp_path / "artifacts"), str(tmp_path / "feature_store"),
        str(tmp_path / "landing"))
    assert load_settings({}).warehouse_path == str(REPO_ROOT / "data" / "warehouse.duckdb")


def test_prod_reads_every_location_from_its_variable():
    settings = load_settings({
        "GRAPHREC_ENV": "prod", "GRAPHREC_WAREHOUSE_PATH": "/srv/wh.duckdb", "GRAPHREC_ARTIFACTS_ROOT": "/srv/art",
        "GRAPHREC_FEATURE_STORE_ROOT": "/srv/fs", "GRAPHREC_LANDING_DIR": "/srv/landing", "GRAPHREC_DEVICE": "cuda",
    })
    assert (settings.warehouse_path, settings.artifacts_root, settings.feature_store_root, settings.landing_dir,
            settings.device) == ("/srv/wh.duckdb", "/srv/art", "/srv/fs", "/srv/landing", "cuda")


def test_prod_without_locations_names_the_missing_variables():
    with pytest.raises(SettingsError, match="GRAPHREC_ARTIFACTS_ROOT, GRAPHREC_FEATURE_STORE_ROOT"):
        load_settings({"GRAPHREC_ENV": "prod", "GRAPHREC_WAREHOUSE_PATH": "/srv/wh.duckdb",
                       "GRAPHREC_LANDING_DIR": "/srv/landing"})


def test_unknown_environment_is_refused():
    with pytest.raises(SettingsError, match="GRAPHREC_ENV='staging'"):
        load_settings({"GRAPHREC_ENV": "staging"})


def test_only_local_runs_replace_the_training_defaults():
    assert training_defaults({}) == LOCAL_TRAINING_DEFAULTS
    assert training_defaults({"GRAPHREC_ENV": "prod"}) == {}


def test_retrain_policy_defaults_to_weekly_or_a_tenth_more_and_reads_its_variables():
    assert retrain_policy({}) == DEFAULT_RETRAIN == RetrainPolicy(cron="0 3 * * 1", share=0.1)
    assert retrain_policy({"GRAPHREC_RETRAIN_CRON": "0 4 * * *", "GRAPHREC_RETRAIN_SHARE": "0.25"}) == RetrainPolicy(
        cron="0 4 * * *", share=0.25)
    for bad in ("0", "-0.1", "ten percent", "nan"):
        with pytest.raises(SettingsError, match="GRAPHREC_RETRAIN_SHARE"):
            retrain_policy({"GRAPHREC_RETRAIN_SHARE": bad})
