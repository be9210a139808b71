"""The UI for real: `dagster dev` on 127.0.0.1 with a temporary DAGSTER_HOME and data folder, a full_retrain run
launched through the GraphQL API, then headless Chromium renders the global asset lineage; every asset name must
be on the rendered page, and the page's screenshot is kept (its path is printed).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")
# Flags found to let Debian's Chromium package render the UI headless in a container without a network.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Wide enough that the asset graph renders full nodes (names untruncated) rather than its zoomed-out labels.
WINDOW = "--window-size=9600,5400"  # large enough that the lineage renders every label
# A background job starts with SIGINT ignored and Dagster copies that onto SIGTERM, so `dagster dev` would ignore
# SIGTERM: reset SIGINT before exec.
RESET_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                "os.execv(sys.argv[1], sys.argv[1:])")
# Small, but trained long enough for LightGCN to beat the baselines: the champion check blocks publication otherwise.
TINY_RUN = {"ops": {
    "ingest_source": {"config": {"demo_users": 400, "demo_items": 200}},
    **{f"{model}_model": {"config": {"epochs": 30, "eval_every": 3, "lr": 0.01, "batch_size": 1024}}
       for model in ("lightgcn", "rawls")},
}}

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed: apt-get install chromium (.ci/run installs it)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query, "variables": variables or {}})
                                     .encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def _wait_until_served(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    """Until the webserver answers and the code location has loaded its repository."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"dagster dev exited early:\n{log.read_text()[-3000:]}"
        try:
            repositories = _graphql(url, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")
            if repositories["repositoriesOrError"].get("nodes"):
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(1)
    raise TimeoutError(f"dagster dev did not serve {url} within {timeout_s} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """`dagster dev` (webserver, daemon, code server) on a free port, stopped with SIGTERM afterwards."""
    root = tmp_path_factory.mktemp("ui")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "infra" / "dagster.yaml", home / "dagster.yaml")
    url = f"http://127.0.0.1:{_free_port()}"
    env = {**os.environ, "DAGSTER_HOME": str(home), "GRAPHREC_ENV": "local", "GRAPHREC_DATA_DIR": str(root / "data"),
           "GRAPHREC_DEVICE": "cpu"}
    dagster = str(Path(sys.executable).parent / "dagster")
    log = root / "dagster_dev.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", RESET_SIGINT, dagster, "dev", "-h", "127.0.0.1", "-p", url.rsplit(":", 1)[1],
             "-w", str(REPO / "infra" / "workspace.yaml")],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_served(url, process, log)
        yield SimpleNamespace(url=url, root=root, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what this fixture started
            process.wait()


def _launch(url: str, job: str, run_config: dict) -> str:
    repositories = _graphql(url, "{ repositoriesOrError { ... on RepositoryConnection "
                                 "{ nodes { name location { name } } } } }")
    repository = repositories["repositoriesOrError"]["nodes"][0]
    launched = _graphql(url, """
        mutation Launch($params: ExecutionParams!) {
          launchRun(executionParams: $params) {
            __typename
            ... on LaunchRunSuccess { run { runId } }
            ... on PythonError { message }
            ... on RunConfigValidationInvalid { errors { message } }
          }
        }""", {"params": {"selector": {"repositoryLocationName": repository["location"]["name"],
                                       "repositoryName": repository["name"], "jobName": job},
                          "runConfigData": run_config}})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def _wait_for_run(url: str, run_id: str, timeout_s: float = 400) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = _graphql(url, "query Status($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }",
                          {"runId": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    raise TimeoutError(f"run {run_id} did not finish within {timeout_s} s")


def _chromium(root: Path, output: str, url: str) -> str:
    profile = root / f"chromium-{output.strip('-').split('=')[0]}"
    done = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", WINDOW,
                           "--virtual-time-budget=20000", output, url], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_run_launched_through_graphql_shows_in_the_rendered_lineage(dagster_ui):
    run_id = _launch(dagster_ui.url, "full_retrain", TINY_RUN)
    assert _wait_for_run(dagster_ui.url, run_id) == "SUCCESS", dagster_ui.log.read_text()[-3000:]
    nodes = _graphql(dagster_ui.url, "{ assetNodes { assetKey { path } groupName "
                                     "assetMaterializations(limit: 1) { runId } } }")["assetNodes"]
    latest_run = {node["assetKey"]["path"][-1]: [m["runId"] for m in node["assetMaterializations"]] for node in nodes}
    for name in ("raw_interactions", "training_graph", "lightgcn_model", "published_embeddings"):
        assert latest_run[name] == [run_id], name

    # A new instance covers the page with a "join the community" dialog until this mutation is sent.
    assert _graphql(dagster_ui.url, "mutation { setNuxSeen }")["setNuxSeen"] is True
    # The global lineage with every group expanded (the UI keeps expanded group ids in the `expanded` parameter).
    groups = sorted({node["groupName"] for node in nodes})
    lineage = f"{dagster_ui.url}/asset-groups?expanded=" + ",".join(f"global@global:{group}" for group in groups)
    page = _chromium(dagster_ui.root, "--dump-dom", lineage)
    assert "Global asset lineage" in page
    missing = [name for name in latest_run if f">{name}<" not in page]
    assert not missing, f"asset names not rendered on {lineage}: {missing}"

    screenshot = dagster_ui.root / "asset_lineage.png"
    _chromium(dagster_ui.root, f"--screenshot={screenshot}", lineage)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 50_000
    print(f"\nasset lineage screenshot: {screenshot}")
