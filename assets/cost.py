"""What a step cost: the seconds and peak resident memory that every asset and check records in its metadata, so
that the UI shows each one's cost beside its results and a benchmark can read them back from the run."""

from __future__ import annotations

import time

from dagster import AssetCheckExecutionContext, AssetExecutionContext, DagsterError

from models.runtime.machine import peak_rss_mb


def step_cost(context: AssetExecutionContext | AssetCheckExecutionContext) -> dict[str, float]:
    """``step_seconds`` since the running step started (its start event in the run's event log, so the body needs
    no timer of its own) and ``peak_rss_mb`` of this process.

    A directly invoked asset (a unit test) has no step: it records the peak only.
    Under the in-process executor every step shares one process and the peak is the run's so far; under the
    multiprocess executor each step has a process of its own and the peak is the step's.
    """
    try:
        step = context.get_step_execution_context()
    except DagsterError:  # invoked directly (no run, so no step start to time from)
        return {"peak_rss_mb": peak_rss_mb()}
    started = step.instance.get_run_step_stats(step.run_id, step_keys=[step.step.key])[0].start_time
    return {"step_seconds": time.time() - started, "peak_rss_mb": peak_rss_mb()}
