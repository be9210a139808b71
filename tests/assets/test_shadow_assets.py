"""The shaDow assets on the demo data: PPR scopes (cached when nothing changed), the shaDow recommender's embeddings,
and PPR audiences in the warehouse keyed by raw ids."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from dagster import DagsterInstance, materialize

from assets.common import load_tensors
from assets.runs import ModelArtifacts
from assets.shadow import AUDIENCE_TABLE, SCOPES
from orchestration.definitions import defs
from warehouse.connection import connect
from warehouse.id_maps import load_id_map

ALL = [*defs.assets, *defs.asset_checks]
UPSTREAM = ["raw_interactions", "raw_items", "clean_interactions", "rejected_interactions", "id_maps",
            "interaction_split", "training_graph"]
SHADOW = ["ppr_scopes", "shadow_model", "ppr_audience"]
RUN_CONFIG = {"ops": {
    "ingest_source": {"config": {"demo_users": 400, "demo_items": 200}},
    "shadow_model": {"config": {"epochs": 1, "batch_size": 512, "embedding_dim": 32, "num_layers": 2}},
    "ppr_audience": {"config": {"top_items": 3, "top_n": 10}},
}}


def _run(resources: dict, selection: list[str]):
    run_config = {"ops": {op: c for op, c in RUN_CONFIG["ops"].items() if op in selection or op == "ingest_source"
                          and "raw_interactions" in selection}}
    return materialize(ALL, resources=resources, run_config=run_config, selection=selection,
                       instance=DagsterInstance.ephemeral(), raise_on_error=False)


def _metadata(result) -> dict:
    return {e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory, make_resources) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("shadow")
    resources = make_resources(root)
    result = _run(resources, UPSTREAM + SHADOW)
    return SimpleNamespace(root=root, resources=resources, result=result, metadata=_metadata(result))


def test_scopes_cover_every_node_and_are_reused_when_nothing_changed(demo):
    assert demo.result.success
    meta = demo.metadata["ppr_scopes"]
    graph = demo.metadata["training_graph"]
    assert meta["targets"] == graph["num_users"] + graph["num_items"] == 600 and meta["cached"] is False
    assert 1 < meta["mean_scope_size"] <= meta["max_scope_size"] <= 32
    scopes = load_tensors(demo.root / "artifacts" / Path(*SCOPES))
    assert torch.equal(scopes["targets"], torch.arange(600))
    assert torch.equal(scopes["nodes"][scopes["indptr"][:-1]], scopes["targets"])  # each scope leads with its target
    again = _metadata(_run(demo.resources, ["ppr_scopes"]))["ppr_scopes"]
    assert again["cached"] is True and again["key"] == meta["key"]


def test_shadow_model_writes_embeddings_for_every_user_and_item(demo):
    vectors = load_tensors(ModelArtifacts("shadow").latest_run(demo.resources["artifacts"]).embeddings)
    assert vectors["user_emb"].shape == (400, 32) and vectors["item_emb"].shape == (200, 32)
    assert torch.isfinite(vectors["user_emb"]).all()
    meta = demo.metadata["shadow_model"]
    assert meta["steps"] > 0 and 0.0 <= meta["valid_recall@20"] <= 1.0


def test_audiences_are_stored_by_raw_id_with_both_variants(demo):
    with connect(demo.root / "warehouse.duckdb") as con:
        rows = con.execute(f"SELECT item_id, variant, rank, user_id, score FROM {AUDIENCE_TABLE} "
                           "ORDER BY item_id, variant, rank").fetchall()
        users = set(load_id_map(con, "user")["raw_id"].to_list())
        items = set(load_id_map(con, "item")["raw_id"].to_list())
    assert len(rows) == demo.metadata["ppr_audience"]["dagster/row_count"] == 3 * 2 * 10
    assert {r[1] for r in rows} == {"ppr", "ppr_per_degree"}
    assert {r[0] for r in rows} <= items and {r[3] for r in rows} <= users
    for item in {r[0] for r in rows}:
        for variant in ("ppr", "ppr_per_degree"):
            scores = [r[4] for r in rows if r[0] == item and r[1] == variant]
            assert scores == sorted(scores, reverse=True) and len(scores) == 10
    meta = demo.metadata["ppr_audience"]
    assert meta["mean_user_degree.ppr_per_degree"] < meta["mean_user_degree.ppr"]
