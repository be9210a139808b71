"""Tests of the schedule replay (benchmarks.schedule): the executor's rule on small plans whose makespans are worked
out by hand, and a run recorded by Dagster read back with its steps' order, dependencies, priorities and seconds."""
from __future__ import annotations

import pytest
from dagster import DagsterInstance

from benchmarks.schedule import (
    Step,
    checkout_priorities,
    latest_run,
    longest_chain,
    makespan,
    measure,
    parse_overrides,
    record_smoke_run,
    recorded_steps,
    replay,
    with_priorities,
)

# b and c are independent; d waits on a. Run first, a's chain overlaps b and c; left to its plan order, it runs last.
PLAN = [Step("b", 10.0, frozenset()), Step("c", 10.0, frozenset()), Step("a", 10.0, frozenset()),
        Step("d", 10.0, frozenset({"a"}))]


def test_a_chain_started_first_ends_sooner():
    assert makespan(PLAN, slots=2) == pytest.approx(33.0)  # b, c at 0; a at 11; d at 22, each with a second's start
    assert replay(PLAN, slots=2, start_seconds=0.0) == {"b": (0.0, 10.0), "c": (0.0, 10.0), "a": (10.0, 20.0),
                                                        "d": (20.0, 30.0)}
    first = with_priorities(PLAN, {"a": 1})
    assert replay(first, slots=2, start_seconds=0.0) == {"a": (0.0, 10.0), "b": (0.0, 10.0), "c": (10.0, 20.0),
                                                         "d": (10.0, 20.0)}
    assert makespan(first, slots=2) == pytest.approx(22.0)


def test_equal_priorities_start_in_the_order_the_steps_became_ready():
    plan = [Step("slow", 5.0, frozenset()), Step("x", 1.0, frozenset()), Step("late", 1.0, frozenset({"slow"})),
            Step("y", 1.0, frozenset({"x"}))]
    times = replay(plan, slots=1, start_seconds=0.0)
    assert [key for key, _ in sorted(times.items(), key=lambda item: item[1])] == ["slow", "x", "late", "y"]


def test_one_slot_takes_every_step_s_seconds_and_the_longest_chain_bounds_any_number():
    assert makespan(PLAN, slots=1) == pytest.approx(44.0)
    assert longest_chain(PLAN) == pytest.approx(20.0)
    assert makespan(PLAN, slots=8) == pytest.approx(22.0)


def test_a_step_waiting_on_a_step_outside_the_run_is_an_error():
    with pytest.raises(ValueError, match=r"not in the run: \['orphan'\]"):
        replay([Step("orphan", 1.0, frozenset({"missing"}))], slots=2)


def test_overrides_are_step_equals_integer_pairs():
    assert parse_overrides("interaction_spectra=2,bspm_model=-1") == {"interaction_spectra": 2, "bspm_model": -1}
    with pytest.raises(ValueError, match="integer N, got 'bspm_model=high'"):
        parse_overrides("bspm_model=high")


def test_a_recorded_run_is_read_back_and_replayed(tmp_path):
    record_smoke_run(tmp_path)
    instance = DagsterInstance.local_temp(str(tmp_path / "dagster"))
    steps = recorded_steps(instance, latest_run(instance))
    assert [(step.key, step.upstream, step.priority) for step in steps] == [
        ("first_step", frozenset(), 1), ("second_step", frozenset({"first_step"}), 0)]
    assert steps[0].seconds >= 0.2 and steps[1].seconds >= 0.1
    results = measure(tmp_path, {})
    # One step at a time, in sequence: the chain is the floor, and the replay adds a second's start to each step.
    assert results["slots"] == 1
    assert results["longest_chain_seconds"] == pytest.approx(results["floor_seconds"])
    assert results["floor_seconds"] == pytest.approx(steps[0].seconds + steps[1].seconds)
    assert results["replayed.run.seconds"] == pytest.approx(results["floor_seconds"] + 2.0)
    assert results["actual_seconds"] > results["floor_seconds"]
    with pytest.raises(ValueError, match=r"steps that the run does not have: \['nowhere'\]"):
        measure(tmp_path, {"nowhere": 2})


def test_a_folder_without_a_successful_run_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no Dagster instance under"):
        measure(tmp_path, {})
    (tmp_path / "dagster").mkdir()
    with pytest.raises(ValueError, match="no successful run recorded under"):
        latest_run(DagsterInstance.local_temp(str(tmp_path / "dagster")))


def test_this_checkout_starts_the_shared_spectra_before_the_trained_models():
    priorities = checkout_priorities()
    trained = ("lightgcn_model", "rawls_model", "shadow_model", "mlp_student")
    assert priorities["interaction_spectra"] > max(priorities[model] for model in trained) > priorities["bspm_model"]
