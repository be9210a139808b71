"""The reliability suite tells a candidate retired by the compatibility gate (a verdict on the retrained model)
from every other failure of a run."""
from benchmarks.reliability_pipeline import GATE, RunOutcome, stopped_by_gate

GATE_STEP = {"step": f"embedding_candidate_{GATE}", "error": "DagsterAssetCheckFailedError", "message": "retired"}


def test_a_run_stopped_only_by_the_gate_is_recognised():
    assert stopped_by_gate(RunOutcome(success=False, failed_checks={GATE: "M(new, old) > M(old, old) fails"},
                                      step_errors=[GATE_STEP]))


def test_success_and_every_other_failure_are_not_the_gate():
    lock = {"step": "ingest_source", "error": "IOException", "message": "Could not set lock on file"}
    assert not stopped_by_gate(RunOutcome(success=True))
    assert not stopped_by_gate(RunOutcome(success=False, step_errors=[lock]))
    assert not stopped_by_gate(RunOutcome(success=False, failed_checks={GATE: "fails"},
                                          step_errors=[GATE_STEP, lock]))
    assert not stopped_by_gate(RunOutcome(success=False, failed_checks={GATE: "fails", "graph_has_no_duplicate_edges":
                                                                         "3 duplicates"}, step_errors=[GATE_STEP]))
    assert not stopped_by_gate(RunOutcome(success=False, failed_checks={"interactions_have_no_null_ids": "nulls"},
                                          step_errors=[{**GATE_STEP, "step": "raw_interactions_checks"}]))
