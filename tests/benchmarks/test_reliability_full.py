"""The reliability suite in full, as the README runs it (a few minutes on 2 cores): every bad input and fault is
handled and leaves the promoted version intact."""
from __future__ import annotations

import pytest

from benchmarks.reliability import FAULTS
from tests.benchmarks.test_benchmark_smoke import RUN_IN_FULL, arguments, check_output, module_of, readme_commands


@pytest.mark.benchmark_full
def test_reliability_suite_in_full(run_benchmark):
    (command,) = [command for command in readme_commands() if module_of(command) == "reliability"]
    run = run_benchmark(arguments(command), RUN_IN_FULL["reliability"])
    check_output("reliability", run)
    results = run.results
    assert (results["input_cases"], results["fault_cases"]) == (26, 3)
    # The cases run side by side in worker processes; the entries still come inputs first, in the suite's order.
    assert [e["kind"] for e in results["entries"]] == ["input"] * 26 + ["fault"] * 3
    assert [e["case"] for e in results["entries"][-3:]] == list(FAULTS)
    unhandled = {e["case"]: e["message"] for e in results["entries"] if not (e["caught"] and e["data_intact"])}
    assert not unhandled, f"cases not handled: {unhandled}\n{run.stdout[-4000:]}"
    assert (results["caught"], results["data_intact"]) == (29, 29)
