"""Tests of the per-step cost benchmark (benchmarks.pipeline): its run config caps every budgeted model and puts the
resources under the run's folder, the growth slope and JSON keys (runs faked), and the smoke path end to end as a user
runs it (a subprocess through Dagster's multiprocess executor): every step's seconds and peak RSS are positive.
"""
from __future__ import annotations

import pytest
from dagster import validate_run_config

from assets.recommenders import RECOMMENDERS
from benchmarks import pipeline
from benchmarks.pipeline import (
    BUDGETED,
    StepCost,
    benchmark_config,
    data_step_keys,
    full_retrain_in_processes,
    measure,
    overlapping_peak,
    slopes,
)
from benchmarks.reliability_pipeline import files_source

# Steps that every smoke run reaches, whatever the champion check decides.
STEPS = ("ingest_source", "raw_interactions_expectations", "quarantined_interactions", "id_maps", "interaction_split",
         "training_graph", "heuristic_scores", "lightgcn_model", "mlp_student", "ranking_report", "champion_model")
# A smoke run takes about 75 s on 2 busy cores (a forked process per step); this bounds a hung one.
TIMEOUT_S = 240


def test_every_budgeted_model_gets_the_budget_and_the_resources_live_under_the_run_folder(tmp_path):
    config = benchmark_config(files_source(tmp_path / "landing.parquet"), tmp_path, minutes=10, smoke=False)
    assert {"lightgcn_model", "rawls_model", "shadow_model", "mlp_student"} <= set(BUDGETED)
    assert all(config["ops"][name]["config"]["max_train_seconds"] == 600 for name in BUDGETED)
    # A real run trains with the defaults: the reliability suite's short settings are for smoke runs only.
    assert config["ops"]["shadow_model"]["config"] == {"max_train_seconds": 600}
    assert config["resources"]["warehouse"]["config"]["path"] == str(tmp_path / "warehouse.duckdb")
    assert validate_run_config(full_retrain_in_processes(), config)
    assert config["execution"]["config"]["max_concurrent"] == 1


def test_the_data_steps_are_every_step_before_and_beside_the_models_and_configure_no_model(tmp_path):
    steps = {key.to_user_string() for key in data_step_keys()}
    assert {"raw_interactions", "clean_interactions", "id_maps", "interaction_split", "training_graph",
            "heuristic_scores", "ppr_scopes", "ppr_audience"} <= steps
    fitted = {asset.key.to_user_string() for asset in RECOMMENDERS.values()} | {"interaction_spectra", "mlp_student",
                                                                            "ranking_report", "champion_model",
                                                                            "published_embeddings"}
    assert not steps & fitted
    config = benchmark_config(files_source(tmp_path / "landing.parquet"), tmp_path, minutes=10, smoke=True,
                              steps="data", concurrency=2)
    assert not set(config["ops"]) & fitted
    assert config["execution"]["config"]["max_concurrent"] == 2


def test_the_overlapping_peak_adds_the_steps_that_ran_at_the_same_time():
    costs = {"a": StepCost(10.0, 100.0, "SUCCESS", started=0.0), "b": StepCost(10.0, 200.0, "SUCCESS", started=5.0),
             "c": StepCost(10.0, 250.0, "SUCCESS", started=14.0), "failed": StepCost(1.0, float("nan"), "FAILURE",
                                                                                      started=6.0)}
    assert overlapping_peak(costs) == 450.0  # b and c overlap from 14 to 15; a ended at 10
    costs["c"] = StepCost(10.0, 250.0, "SUCCESS", started=15.0)
    assert overlapping_peak(costs) == 300.0  # a and b; c starts as b ends
    one_at_a_time = {name: StepCost(1.0, peak, "SUCCESS", started=float(i)) for i, (name, peak)
                     in enumerate({"a": 100.0, "b": 300.0, "c": 200.0}.items())}
    assert overlapping_peak(one_at_a_time) == 300.0


def test_the_slope_is_the_exponent_of_seconds_against_edges():
    series = {edges: {"linear": StepCost(2e-6 * edges, 100.0, "SUCCESS"),
                      "square_root": StepCost(0.01 * edges**0.5, 100.0, "SUCCESS")} for edges in (10**6, 4 * 10**6)}
    assert slopes(series) == pytest.approx({"linear": 1.0, "square_root": 0.5})


def test_a_growth_series_reports_every_size_the_slopes_and_the_largest_run(tmp_path, monkeypatch):
    def fake_run(ingest, root, minutes, smoke, steps, concurrency):
        edges = int(ingest["path"])
        return {"ingest_source": StepCost(edges / 1000, edges / 10, "SUCCESS"),
                "failed_check": StepCost(1.0, float("nan"), "FAILURE")}, edges / 500

    monkeypatch.setattr(pipeline, "generated_source", lambda root, edges: {"path": str(edges)})
    monkeypatch.setattr(pipeline, "run_once", fake_run)
    results = measure(pipeline.GENERATED, [1000, 4000], True, tmp_path, minutes=1, smoke=True)
    assert results["growth.ingest_source.slope"] == pytest.approx(1.0)
    assert results["growth.failed_check.slope"] == pytest.approx(0.0)
    assert results["growth.1000.ingest_source.seconds"] == 1.0
    assert results["growth.4000.ingest_source.peak_rss_mb"] == 400.0
    assert "growth.4000.failed_check.peak_rss_mb" not in results  # a step that recorded no peak has none
    assert (results["assets.ingest_source.seconds"], results["total_seconds"], results["peak_rss_mb"]) == (4.0, 8.0,
                                                                                                           400.0)


@pytest.fixture(scope="module")
def smoke_results(run_benchmark) -> dict:
    """The README's pipeline command with ``--smoke``: the same arguments as the README smoke test's, so the
    session runs it once for both."""
    run = run_benchmark(("-m", "benchmarks.pipeline", "--smoke"), TIMEOUT_S)
    assert run.returncode == 0, run.failure()
    return run.results


def test_the_smoke_run_gives_every_step_positive_seconds_and_peak_rss(smoke_results):
    for step in STEPS:
        assert smoke_results[f"assets.{step}.seconds"] > 0
        assert smoke_results[f"assets.{step}.peak_rss_mb"] > 0
    assert all(value > 0 for value in smoke_results.values())
    steps = {key.rsplit(".", 1)[0] for key in smoke_results if key.startswith("assets.")}
    # Steps run one at a time, so the run takes at least their sum; its peak is the largest step's.
    assert smoke_results["total_seconds"] > sum(smoke_results[f"{step}.seconds"] for step in steps)
    assert smoke_results["peak_rss_mb"] == max(smoke_results[f"{step}.peak_rss_mb"] for step in steps)
    # Every recommender's step that ran ranked its own fit on the held-out sets, within its seconds.
    ran = [f"assets.{key}" for key in (asset.key.to_user_string() for asset in RECOMMENDERS.values())
           if f"assets.{key}.seconds" in smoke_results]
    assert len(ran) >= 5
    assert all(0 < smoke_results[f"{step}.eval_seconds"] < smoke_results[f"{step}.seconds"] for step in ran)
