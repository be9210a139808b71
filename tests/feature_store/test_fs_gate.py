"""The promotion gate: a candidate that fails the compatibility criterion is retired with its report while the
promoted version stays live and readable; a passing one is promoted; stale or malformed reports are refused."""

import numpy as np
import pytest

from feature_store import InvalidTransitionError, VersionMeta
from feature_store.gate import InvalidReportError, gate_and_promote, gate_failures


def _report(**new_old_vs_old_old: tuple[float, float]) -> dict:
    """A compatibility report with recall@20 of new users on each ancestor's items and of the ancestor itself."""
    return {
        "metric": "recall@20",
        "new_new": {"recall@20": 0.2},
        "ancestors": {version: {"new_old": {"recall@20": new_old}, "old_old": {"recall@20": old_old}}
                      for version, (new_old, old_old) in new_old_vs_old_old.items()},
    }


@pytest.fixture
def live_v1(store, make_embeddings):
    """A store with v1 promoted and v2 published as a candidate; returns v1's vectors."""
    v1 = make_embeddings(seed=1)
    store.publish(VersionMeta(model="lightgcn", version_id="v1"), **v1)
    store.promote("v1")
    store.publish(VersionMeta(model="lightgcn", version_id="v2", parent_id="v1"), **make_embeddings(seed=2))
    return v1


def test_a_failing_candidate_is_retired_and_the_promoted_version_stays_live_and_readable(store, live_v1):
    decision = gate_and_promote(store, "v2", _report(v1=(0.10, 0.12)))

    assert not decision.passed and decision.status == "retired" and decision.live_version == "v1"
    assert decision.failures[0].startswith("against 'v1': recall@20 of new users on its items is 0.1000, not above "
                                           "its own 0.1200")
    assert store.promoted_version().version_id == "v1"
    np.testing.assert_array_equal(store.read_vectors("user", ["u3"]), live_v1["user_vectors"][[3]])
    np.testing.assert_array_equal(store.read_vectors("item", ["i4"], version_id="v1"), live_v1["item_vectors"][[4]])
    candidate = store.get_version("v2")
    assert candidate.status == "retired"
    assert candidate.compatibility["gate"] == {"passed": False, "failures": list(decision.failures),
                                               "live_version": "v1"}
    assert candidate.compatibility["ancestors"]["v1"]["new_old"] == {"recall@20": 0.10}


def test_a_passing_candidate_is_promoted_with_its_report_and_can_be_rolled_back(store, live_v1, make_embeddings):
    decision = gate_and_promote(store, "v2", _report(v1=(0.13, 0.12)))

    assert decision.passed and decision.status == "promoted" and decision.live_version == "v2"
    assert store.promoted_version().version_id == "v2"
    assert store.get_version("v2").compatibility["gate"]["passed"] is True
    np.testing.assert_array_equal(store.read_vectors("user", ["u3"]), make_embeddings(seed=2)["user_vectors"][[3]])
    assert store.rollback().version_id == "v1"


def test_the_criterion_must_hold_against_every_ancestor_in_the_report(store, live_v1):
    decision = gate_and_promote(store, "v2", _report(v1=(0.13, 0.12), v0=(0.09, 0.11)))
    assert not decision.passed and len(decision.failures) == 1 and "'v0'" in decision.failures[0]
    assert store.promoted_version().version_id == "v1"


def test_a_report_that_misses_the_promoted_version_is_stale(store, live_v1):
    decision = gate_and_promote(store, "v2", _report(v0=(0.2, 0.1)))
    assert not decision.passed
    assert decision.failures[0].startswith("the report does not compare with the promoted version 'v1'")


def test_the_first_version_passes_with_no_ancestor_and_staged_promotion_leaves_it_a_candidate(store, make_embeddings):
    store.publish(VersionMeta(model="lightgcn", version_id="v1"), **make_embeddings(seed=1))
    staged = gate_and_promote(store, "v1", _report(), promote=False)
    assert staged.passed and staged.status == "candidate" and store.promoted_version() is None
    assert store.get_version("v1").status == "candidate"


def test_only_candidates_go_through_the_gate_and_malformed_reports_change_nothing(store, live_v1):
    with pytest.raises(InvalidTransitionError, match="'v1' is promoted, not a candidate"):
        gate_and_promote(store, "v1", _report())
    broken = _report(v1=(0.13, 0.12))
    del broken["ancestors"]["v1"]["old_old"]
    with pytest.raises(InvalidReportError, match="no old_old\\['recall@20'\\] for ancestor 'v1'"):
        gate_and_promote(store, "v2", broken)
    assert store.get_version("v2").status == "candidate" and store.get_version("v2").compatibility == {}
    assert store.promoted_version().version_id == "v1"


def test_gate_failures_can_judge_another_metric_of_the_report():
    report = _report(v1=(0.13, 0.12))
    report["ancestors"]["v1"]["new_old"]["ndcg@20"] = 0.05
    report["ancestors"]["v1"]["old_old"]["ndcg@20"] = 0.06
    assert gate_failures(report, "v1") == []
    assert len(gate_failures(report, "v1", metric="ndcg@20")) == 1
