"""GRAPHREC_STEP_PROCESSES: one step at a time runs in process; more run side by side, each step in a process of its
own with its share of the cores; the trained models and what they wait on start first."""
from __future__ import annotations

import os
import time

import pytest
import torch
from dagster import AssetKey, DagsterInstance, execute_job, in_process_executor, job, op, reconstructable

from assets.recommenders import RECOMMENDERS
from orchestration.definitions import defs
from orchestration.executor import TRAINING_FIRST, VECTORS_LAST, step_executor
from orchestration.settings import SettingsError, load_settings, step_processes

# Long enough that two steps started one after the other still overlap when they run side by side.
STEP_SECONDS = 3.0


@op
def report_process() -> dict:
    """The step's process, torch thread count and when it ran."""
    started = time.time()
    time.sleep(STEP_SECONDS)
    return {"pid": os.getpid(), "threads": torch.get_num_threads(), "started": started, "ended": time.time()}


def two_independent_steps():
    """Two steps that do not depend on each other, on the executor of two steps at a time."""
    @job(executor_def=step_executor(2))
    def two_steps():
        report_process.alias("first")()
        report_process.alias("second")()

    return two_steps


def test_step_processes_defaults_to_one_and_refuses_what_is_not_a_count():
    assert step_processes({}) == 1 == load_settings({}).step_processes
    assert load_settings({"GRAPHREC_STEP_PROCESSES": "3"}).step_processes == 3
    for bad in ("0", "-1", "two", "1.5", ""):
        with pytest.raises(SettingsError, match="GRAPHREC_STEP_PROCESSES"):
            step_processes({"GRAPHREC_STEP_PROCESSES": bad})


def test_one_step_at_a_time_runs_in_process():
    assert step_executor(1).name == "in_process"


def test_two_steps_at_a_time_run_side_by_side_in_processes_of_their_own_with_a_share_of_the_cores(tmp_path,
                                                                                               monkeypatch):
    # The executor sets the share in this process's environment for the fork server to inherit; restored after.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    executor = step_executor(2)
    assert executor.name == "multiprocess"
    share = max(1, (os.cpu_count() or 1) // 2)
    assert os.environ["OMP_NUM_THREADS"] == str(share)
    with execute_job(reconstructable(two_independent_steps), DagsterInstance.local_temp(str(tmp_path))) as result:
        assert result.success
        first, second = (result.output_for_node(name) for name in ("first", "second"))
    assert len({first["pid"], second["pid"], os.getpid()}) == 3
    assert first["threads"] == second["threads"] == share
    # Side by side: each started before the other ended.
    assert first["started"] < second["ended"] and second["started"] < first["ended"]


@op
def record_order(context) -> None:
    """Appends the step's name to the run's order file."""
    with open(os.environ["GRAPHREC_TEST_ORDER_FILE"], "a") as order:
        order.write(context.op.name + "\n")


def test_dagster_starts_a_training_first_step_first_and_a_filters_vectors_last(tmp_path, monkeypatch):
    # Four independent steps, one at a time: without the tags Dagster takes them in name order.
    monkeypatch.setenv("GRAPHREC_TEST_ORDER_FILE", str(tmp_path / "order"))

    @job(executor_def=in_process_executor)
    def four_steps():
        record_order.alias("a_vectors").tag(VECTORS_LAST)()
        record_order.alias("b_filter")()
        record_order.alias("c_filter")()
        record_order.alias("z_trained").tag(TRAINING_FIRST)()

    assert four_steps.execute_in_process().success
    assert (tmp_path / "order").read_text().split() == ["z_trained", "b_filter", "c_filter", "a_vectors"]


def _ancestors(graph, key: AssetKey) -> set[AssetKey]:
    parents = set(graph.get(key).parent_keys)
    return parents.union(*(_ancestors(graph, parent) for parent in parents))


def test_every_budgeted_model_and_every_input_it_waits_on_beyond_the_shared_graph_starts_first():
    graph = defs.resolve_asset_graph()

    def tagged(key: AssetKey) -> bool:
        return defs.resolve_assets_def(key).op.tags.get("dagster/priority") == TRAINING_FIRST["dagster/priority"]

    budgeted = {asset.key for asset in RECOMMENDERS.values()
                if "max_train_seconds" in asset.op.config_schema.config_type.fields}
    assert budgeted == {AssetKey(name) for name in ("lightgcn_model", "rawls_model", "shadow_model", "mlp_student")}
    shared = {AssetKey("training_graph")} | _ancestors(graph, AssetKey("training_graph"))  # every model waits on these
    waited_on = set().union(*(_ancestors(graph, key) for key in budgeted)) - shared
    assert waited_on - budgeted == {AssetKey("ppr_scopes"), AssetKey("heuristic_scores")}
    assert all(tagged(key) for key in budgeted | waited_on)
    # The rest fills the cores around them: the filters and their spectra keep the default priority.
    assert not any(tagged(AssetKey(name)) for name in ("interaction_spectra", "bspm_model", "gf_cf_factors_model"))
    # Among those, every filter's vectors and their blend (and nothing else) start after the full filters.
    last = {key for key in graph.get_all_asset_keys()
            if defs.resolve_assets_def(key).op.tags.get("dagster/priority") == VECTORS_LAST["dagster/priority"]}
    assert last == {AssetKey(f"{family}_factors_model") for family in ("gf_cf", "bspm", "sgfcf", "filter_blend")}
