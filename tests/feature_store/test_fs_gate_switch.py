"""A champion switch through the gate: a refused candidate's message names both models, says that a learned map was
applied (with its fit) and gives the gate's figures; the map recorded at publish stays beside the report."""

from feature_store import VersionMeta
from feature_store.gate import gate_and_promote, refusal_message

MAP = {"kind": "least_squares", "fitted_to": "v1", "residual": 0.4213, "dims": [298, 8]}


def _report(new_old: float, old_old: float) -> dict:
    return {"metric": "recall@20", "new_new": {"recall@20": 0.3},
            "ancestors": {"v1": {"new_old": {"recall@20": new_old}, "old_old": {"recall@20": old_old}}}}


def _switch(store, make_embeddings) -> None:
    store.publish(VersionMeta(model="lightgcn", version_id="v1"), **make_embeddings(seed=1))
    store.promote("v1")
    store.publish(VersionMeta(model="gf_cf_factors", version_id="v2", parent_id="v1", compatibility={"map": MAP}),
                  **make_embeddings(seed=2))


def test_a_refused_switch_names_both_models_the_map_and_the_figures(store, make_embeddings):
    _switch(store, make_embeddings)
    decision = gate_and_promote(store, "v2", _report(0.101, 0.120))

    assert not decision.passed and store.promoted_version().version_id == "v1"
    message = decision.message
    assert "champion switch from lightgcn ('v1') to gf_cf_factors ('v2')" in message
    assert "learned least_squares map into 'v1''s space applied (fit residual 0.421)" in message
    assert "0.1010" in message and "0.1200" in message and "'v1' stays live" in message
    recorded = store.get_version("v2").compatibility
    assert recorded["refusal"] == message and recorded["map"] == MAP and recorded["gate"]["passed"] is False


def test_a_passing_switch_keeps_the_map_beside_the_report(store, make_embeddings):
    _switch(store, make_embeddings)
    decision = gate_and_promote(store, "v2", _report(0.130, 0.120))

    assert decision.passed and decision.message == "" and store.promoted_version().version_id == "v2"
    recorded = store.get_version("v2").compatibility
    assert recorded["map"] == MAP and "refusal" not in recorded


def test_an_unmapped_refusal_says_so():
    message = refusal_message("lightgcn", "v2", "lightgcn", "v1", ["against 'v1': ..."], None)
    assert message.startswith("refused: lightgcn retrain 'v2' over 'v1', without a learned map")
