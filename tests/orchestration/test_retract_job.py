"""The retract_ingest job in process: two files ingested through the ingest asset, one retracted by the content key
its materialization shows; its rows leave the warehouse file and nothing else does. An unknown key fails the run.
"""

import duckdb
import polars as pl
from dagster import DagsterInstance, materialize

from assets.ingest import ingest_source
from orchestration.retract import retract_ingest_job


def _ingest(resources, path) -> str:
    result = materialize([ingest_source], resources=resources, instance=DagsterInstance.ephemeral(),
                         run_config={"ops": {"ingest_source": {"config": {"source": "files", "path": str(path)}}}})
    return result.asset_materializations_for_node("ingest_source")[0].metadata["content_key"].value


def _retract(resources, key: str):
    return retract_ingest_job.execute_in_process(
        run_config={"ops": {"retract_ingest_op": {"config": {"content_key": key}}}},
        resources={"warehouse": resources["warehouse"]}, raise_on_error=False)


def _users(warehouse: str) -> list[str]:
    with duckdb.connect(warehouse) as con:
        return [u for (u,) in con.execute("SELECT user_id FROM raw_interactions ORDER BY ALL").fetchall()]


def test_retract_ingest_removes_one_files_rows(tmp_path, make_resources):
    resources = make_resources(tmp_path)
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    pl.DataFrame({"user_id": ["g1", "g2"], "item_id": ["x", "y"], "ts": ["2026-01-01"] * 2}).write_csv(good)
    pl.DataFrame({"user_id": ["b1", "b2", "b3"], "item_id": ["x"] * 3, "ts": ["2026-01-02"] * 3}).write_csv(bad)
    _ingest(resources, good)
    bad_key = _ingest(resources, bad)
    result = _retract(resources, bad_key)
    assert result.success
    assert _users(resources["warehouse"].path) == ["g1", "g2"]
    event = result.asset_materializations_for_node("retract_ingest_op")[0]
    assert event.asset_key.to_user_string() == "raw_interactions"
    assert {k: event.metadata[k].value for k in ("dagster/row_count", "rows_removed", "retracted_content_key")} == {
        "dagster/row_count": 2, "rows_removed": 3, "retracted_content_key": bad_key}
    with duckdb.connect(resources["warehouse"].path) as con:
        assert con.execute("SELECT count(*) FROM ingest_log WHERE content_key = ?", [bad_key]).fetchall() == [(0,)]


def test_an_unknown_content_key_fails_the_run_and_changes_nothing(tmp_path, make_resources):
    resources = make_resources(tmp_path)
    path = tmp_path / "good.csv"
    pl.DataFrame({"user_id": ["g1"], "item_id": ["x"], "ts": ["2026-01-01"]}).write_csv(path)
    _ingest(resources, path)
    result = _retract(resources, "0" * 64)
    assert not result.success
    failure = result.failure_data_for_node("retract_ingest_op")
    assert "UnknownContentKeyError" in failure.error.cause.cls_name
    assert f"no ingest with content key {'0' * 64!r} in ingest_log" in failure.error.cause.message
    assert _users(resources["warehouse"].path) == ["g1"]
