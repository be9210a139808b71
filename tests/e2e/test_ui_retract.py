"""An operator undoes a bad file from the UI: good demo rows are ingested, a crafted file with timestamps in the
future is dropped into the landing folder (the landing sensor ingests it and its blocking check fails, but its rows
are in raw_interactions), then `retract_ingest` is launched with the content key that the ingest's materialization
shows. The warehouse file must hold the good rows and none of the bad ones. Headless Chromium renders the failed
check with its Data Docs link, then the asset page of raw_interactions (owners, column schema, the retraction);
both screenshots are kept and their paths printed.
"""

import re
import time

import duckdb
import polars as pl

from tests.e2e import ui_harness as ui

pytestmark = ui.needs_chromium

GOOD_INGEST = {"ops": {"ingest_source": {"config": {"demo_users": 200, "demo_items": 100}}}}
BAD_FILE = "bad_export.csv"
# A check tolerates 1% of rows breaking its rule (the quarantine drops those); 300 against about 3,000 good rows
# is well past that, so the file's ingest fails its check as a truly bad export would.
BAD_ROWS = 300


def _stop_automation(url: str) -> None:
    """Stop the downstream_automation sensor as the UI's toggle does: good rows would otherwise start a retrain,
    which would take the instance's only run slot (runs are queued one at a time) for the rest of the test."""
    selector = {**ui.repository_selector(url), "sensorName": "downstream_automation"}
    state = ui.graphql(url, "query S($s: SensorSelector!) { sensorOrError(sensorSelector: $s) "
                            "{ ... on Sensor { sensorState { id } } } }", {"s": selector})
    stopped = ui.graphql(url, "mutation StopRunningSensor($id: String!) { stopSensor(id: $id) { "
                              "... on StopSensorMutationResult { instigationState { status } } } }",
                         {"id": state["sensorOrError"]["sensorState"]["id"]})
    assert stopped["stopSensor"]["instigationState"]["status"] == "STOPPED", stopped


def _drop_bad_file(landing) -> None:
    """A file whose rows all lie in the future, written under a hidden name and renamed, so the sensor sees it
    whole (as an export job is asked to do)."""
    frame = pl.DataFrame({"user_id": [f"bad_user_{n}" for n in range(BAD_ROWS)],
                          "item_id": [f"i{n % 100:05d}" for n in range(BAD_ROWS)],  # known items of GOOD_INGEST
                          "ts": ["2100-01-01 00:00:00"] * BAD_ROWS})
    frame.write_csv(landing / f".{BAD_FILE}")
    (landing / f".{BAD_FILE}").rename(landing / BAD_FILE)


def _landing_run(url: str, timeout_s: float = 180) -> tuple[str, str]:
    """The run the landing sensor started for the bad file, once it has finished: (run id, status)."""
    query = """query Runs($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
               runId status } } } }"""
    tag = {"tags": [{"key": "graphrec/landing_file", "value": BAD_FILE}]}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = ui.graphql(url, query, {"filter": tag})["runsOrError"]["results"]
        if runs and runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            assert len(runs) == 1, runs
            return runs[0]["runId"], runs[0]["status"]
        time.sleep(3)
    raise TimeoutError(f"the landing sensor did not finish a run for {BAD_FILE} within {timeout_s} s")


def _counts(warehouse) -> tuple[int, int]:
    """(good rows, bad rows) in raw_interactions, read from the DuckDB file itself."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("SELECT count(*) FILTER (NOT user_id LIKE 'bad_user_%'), "
                           "count(*) FILTER (user_id LIKE 'bad_user_%') FROM raw_interactions").fetchone()


def _failed_checks(url: str, run_id: str) -> set[str]:
    """The checks of raw_interactions that did not pass in run `run_id`."""
    checks = ui.graphql(url, """query Checks($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) {
        ... on AssetNode { assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization {
        runId status } } } } } } }""", {"key": {"path": ["raw_interactions"]}})
    return {check["name"] for check in checks["assetNodeOrError"]["assetChecksOrError"]["checks"]
            if (check["executionForLatestMaterialization"] or {}).get("runId") == run_id
            and check["executionForLatestMaterialization"]["status"] == "FAILED"}


def test_retract_ingest_launched_from_the_ui_removes_a_bad_files_rows(dagster_ui):
    _stop_automation(dagster_ui.url)
    ui.run_and_wait(dagster_ui, "landing_ingest", GOOD_INGEST)
    warehouse = dagster_ui.data / "warehouse.duckdb"
    good, bad = _counts(warehouse)
    assert good > 1000 and bad == 0, (good, bad)

    _drop_bad_file(dagster_ui.data / "landing")
    bad_run, status = _landing_run(dagster_ui.url)
    # The rows go in before the checks run; the failing timestamp check stops only what is downstream.
    assert status == "FAILURE" and "interactions_timestamps_in_range" in _failed_checks(dagster_ui.url, bad_run)
    assert _counts(warehouse) == (good, BAD_ROWS)

    # The failed check as the operator finds it, with the link to this run's Data Docs page.
    check_url = f"{dagster_ui.url}/assets/raw_interactions?view=checks&checkDetail=interactions_timestamps_in_range"
    page = ui.chromium(dagster_ui.root, "--dump-dom", check_url)
    docs = dagster_ui.data / "artifacts" / "data_docs" / "raw_interactions" / f"{bad_run}.html"
    assert docs.is_file(), docs
    shown = re.search(rf">Failed<.*>data_docs<.*>{docs}<", page, re.DOTALL)
    assert shown, f"no failed check linking {docs} on {check_url}"
    ui.screenshot(dagster_ui.root, check_url, "raw_interactions_failed_check.png")

    content_key = ui.materialization_metadata(dagster_ui.url, "raw_interactions", bad_run)["content_key"]
    retract_run = ui.run_and_wait(dagster_ui, "retract_ingest",
                                  {"ops": {"retract_ingest_op": {"config": {"content_key": content_key}}}})
    assert _counts(warehouse) == (good, 0)
    recorded = ui.materialization_metadata(dagster_ui.url, "raw_interactions", retract_run)
    assert recorded["retracted_content_key"] == content_key
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ingest_log WHERE content_key = ?", [content_key]).fetchone() == (0,)

    page_url = f"{dagster_ui.url}/assets/raw_interactions"
    page = ui.chromium(dagster_ui.root, "--dump-dom", page_url)
    # The definition's owners and column schema, and the retraction as the latest materialization's metadata.
    for shown in (r">Owners<(?:(?!>Kinds<).)*>data<", r">Columns<.*>user_id<.*>VARCHAR<.*>item_id<",
                  rf">retracted_content_key<.*>{content_key}<"):
        assert re.search(shown, page, re.DOTALL), f"{shown!r} not rendered on {page_url}"
    ui.screenshot(dagster_ui.root, page_url, "raw_interactions_overview.png")
