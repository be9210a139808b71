"""GRAPHREC_STEP_PROCESSES: one step at a time runs in process; more run side by side, each step in a process of its
own with its share of the cores."""
from __future__ import annotations

import os
import time

import pytest
import torch
from dagster import DagsterInstance, execute_job, job, op, reconstructable

from orchestration.executor import step_executor
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
