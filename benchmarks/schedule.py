"""What a recorded ``full_retrain`` run would have taken under other step priorities: its steps' recorded seconds
replayed on the same number of slots, the way Dagster's executor starts ready steps (highest ``dagster/priority``
first, ties in the order the steps became ready, then the plan's order).

    python -m benchmarks.schedule --workdir DIR [--set interaction_spectra=2,...] [--json FILE]
    python -m benchmarks.schedule --smoke   # records a two-step run in a temporary folder and replays it

``DIR`` is a ``benchmarks.pipeline`` run's folder. The replay runs under the run's own priorities (how close it comes
to the recorded wall clock says how far to trust it), under this checkout's and, with ``--set``, under overrides of
this checkout's. A step's seconds are those it took beside what ran with it then; a different order puts other steps
beside it, so the replay is an estimate, not a measurement. A run takes as long as a chain of steps that wait on each
other (the longest chain) and at least every step's seconds over the slots (the floor).

JSON keys: ``actual_seconds``, ``replayed.<priorities>.seconds`` (``run``, ``checkout``, ``overrides``),
``floor_seconds``, ``longest_chain_seconds``, ``slots``.
"""
from __future__ import annotations

import argparse
import heapq
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    In,
    Nothing,
    RunsFilter,
    in_process_executor,
    job,
    op,
)

from benchmarks.common import add_smoke_argument, print_table, write_json
from benchmarks.pipeline import full_retrain_in_processes
from orchestration.executor import PRIORITY_TAG

# A step's process forks from the executor's server before its recorded start: about a second on 2 busy cores
# (with it the replays of three recorded Gowalla runs came within 1% of their wall clocks).
START_SECONDS = 1.0


@dataclass(frozen=True)
class Step:
    """A step of a run: its key, recorded seconds, the steps it waits on and its priority."""

    key: str
    seconds: float
    upstream: frozenset[str]
    priority: int = 0


def replay(steps: Sequence[Step], slots: int, start_seconds: float = START_SECONDS) -> dict[str, tuple[float, float]]:
    """Each step's start and end when ``steps`` (in the plan's order) run ``slots`` at a time: whenever a slot is
    free, the ready step of highest priority starts, ties going to the step that became ready first."""
    # Written out because no scheduling library replays Dagster's own rule; the rule is ActiveExecution's: steps join
    # the ready list in the plan's order as their upstream steps finish, and a stable sort by priority picks.
    waiting = {step.key: step for step in steps}
    ready: list[Step] = []
    running: list[tuple[float, int, str]] = []
    times: dict[str, tuple[float, float]] = {}
    done: set[str] = set()
    now = 0.0
    while waiting or ready or running:
        for key in [key for key, step in waiting.items() if step.upstream <= done]:
            ready.append(waiting.pop(key))
        for step in sorted(ready, key=lambda step: -step.priority)[:slots - len(running)]:
            ready.remove(step)
            end = now + start_seconds + step.seconds
            times[step.key] = (now, end)
            heapq.heappush(running, (end, len(times), step.key))
        if not running:
            raise ValueError(f"steps wait on steps that are not in the run: {sorted(waiting)}")
        now, _, key = heapq.heappop(running)
        done.add(key)
    return times


def makespan(steps: Sequence[Step], slots: int) -> float:
    """The replayed run's wall clock: when its last step ends."""
    return max(end for _, end in replay(steps, slots).values())


def longest_chain(steps: Sequence[Step]) -> float:
    """The most seconds along a chain of steps that wait on each other (start-ups left out)."""
    by_key = {step.key: step for step in steps}

    @cache
    def finish(key: str) -> float:
        step = by_key[key]
        return step.seconds + max((finish(up) for up in step.upstream), default=0.0)

    return max(finish(key) for key in by_key)


def latest_run(instance: DagsterInstance) -> DagsterRun:
    """The latest successful run in ``instance``."""
    runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]), limit=1)
    if not runs:
        raise ValueError(f"no successful run recorded under {instance.root_directory}")
    return runs[0]


def recorded_steps(instance: DagsterInstance, run: DagsterRun) -> list[Step]:
    """The run's steps that finished, in its plan's order, with their recorded seconds, upstream steps and the
    priorities they ran with."""
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    tags = {step.key: step.tags or {} for step in plan.steps}
    seconds = {stats.step_key: stats.end_time - stats.start_time
               for stats in instance.get_run_step_stats(run.run_id) if stats.start_time and stats.end_time}
    return [Step(key, seconds[key], frozenset(plan.step_deps[key]) & seconds.keys(),
                 int(tags[key].get(PRIORITY_TAG, 0)))
            for key in plan.step_keys_to_execute if key in seconds]


def checkout_priorities() -> dict[str, int]:
    """Each step's priority in this checkout's ``full_retrain``."""
    graph = full_retrain_in_processes().graph
    return {node.name: int(node.definition.tags.get(PRIORITY_TAG, 0)) for node in graph.nodes}


def with_priorities(steps: Sequence[Step], priorities: Mapping[str, int]) -> list[Step]:
    """``steps`` with the priorities that ``priorities`` names (0 for a step it does not)."""
    return [replace(step, priority=priorities.get(step.key, 0)) for step in steps]


def parse_overrides(text: str) -> dict[str, int]:
    """``step=N,step=N`` as a mapping."""
    overrides = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if not value.lstrip("-").isdigit():
            raise ValueError(f"--set takes step=N pairs with an integer N, got {item!r}")
        overrides[key.strip()] = int(value)
    return overrides


def measure(workdir: Path, overrides: Mapping[str, int]) -> dict[str, float]:
    """Replay the latest successful run under ``workdir`` and return the JSON results."""
    if not (workdir / "dagster").is_dir():
        raise ValueError(f"no Dagster instance under {workdir / 'dagster'}: pass a benchmarks.pipeline run's --workdir")
    instance = DagsterInstance.local_temp(str(workdir / "dagster"))
    run = latest_run(instance)
    slots = int(run.run_config.get("execution", {}).get("config", {}).get("max_concurrent", 1))
    stats = instance.get_run_stats(run.run_id)
    steps = recorded_steps(instance, run)
    unknown = set(overrides) - {step.key for step in steps}
    if unknown:
        raise ValueError(f"--set names steps that the run does not have: {sorted(unknown)}")
    checkout = checkout_priorities()
    plans = {"run": steps, "checkout": with_priorities(steps, checkout)}
    if overrides:
        plans["overrides"] = with_priorities(steps, {**checkout, **overrides})
    results = {"actual_seconds": stats.end_time - stats.start_time, "slots": slots,
               "floor_seconds": sum(step.seconds for step in steps) / slots,
               "longest_chain_seconds": longest_chain(steps),
               **{f"replayed.{name}.seconds": makespan(plan, slots) for name, plan in plans.items()}}
    print_table(f"run {run.run_id[:8]} ({len(steps)} steps, {slots} at a time), replayed", ["what", "seconds"],
                [[key, f"{value:.0f}"] for key, value in results.items() if key != "slots"])
    return results


@op(tags={PRIORITY_TAG: "1"})
def first_step() -> None:
    """A smoke run's first step."""
    time.sleep(0.2)


@op(ins={"after": In(Nothing)})
def second_step() -> None:
    """A smoke run's second step, after the first."""
    time.sleep(0.1)


@job(executor_def=in_process_executor)
def two_steps():
    """The smoke run: two steps in sequence, the first with a priority."""
    second_step(first_step())


def record_smoke_run(workdir: Path) -> None:
    """Record a run of :func:`two_steps` under ``workdir``, as ``benchmarks.pipeline`` records its runs."""
    (workdir / "dagster").mkdir(parents=True, exist_ok=True)
    two_steps.execute_in_process(instance=DagsterInstance.local_temp(str(workdir / "dagster")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=None, help="a benchmarks.pipeline run's folder")
    parser.add_argument("--set", default="", help="priority overrides of this checkout's, step=N,step=N")
    parser.add_argument("--json", default=None)
    add_smoke_argument(parser)
    args = parser.parse_args()
    if args.smoke:
        args.workdir = tempfile.mkdtemp(prefix="graphrec-schedule-smoke-")
        record_smoke_run(Path(args.workdir))
    elif args.workdir is None:
        parser.error("--workdir is required: the folder of a benchmarks.pipeline run")
    write_json(args.json, measure(Path(args.workdir), parse_overrides(args.set)))


if __name__ == "__main__":
    main()
