"""What the real-browser UI tests share: `dagster dev` on 127.0.0.1 with a temporary DAGSTER_HOME and data folder,
the GraphQL calls the UI itself makes (launch a job, follow a run, read an asset's materializations), and headless
Chromium to render a page's DOM or screenshot.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")
# Flags found to let Debian's Chromium package render the UI headless in a container without a network.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Wide enough that the asset graph renders full nodes (names untruncated) rather than its zoomed-out labels.
LINEAGE_WINDOW = "--window-size=12800,7200"
# An asset page is a long column: tall enough to show the definition's owners and columns beside the metadata.
PAGE_WINDOW = "--window-size=1800,1800"
# A background job starts with SIGINT ignored and Dagster copies that onto SIGTERM, so `dagster dev` would ignore
# SIGTERM: reset SIGINT before exec.
RESET_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                "os.execv(sys.argv[1], sys.argv[1:])")
# Small, but trained long enough for LightGCN to beat the baselines: the champion check blocks publication otherwise.
# shaDow trains one epoch (its default five take longer than the rest of the run together here).
TINY_RUN = {"ops": {
    "ingest_source": {"config": {"demo_users": 400, "demo_items": 200}},
    **{f"{model}_model": {"config": {"epochs": 30, "eval_every": 3, "lr": 0.01, "batch_size": 1024}}
       for model in ("lightgcn", "rawls")},
    "shadow_model": {"config": {"epochs": 1}},
}}
# The mutation the UI's launchpad sends (its Launch button), word for word in what it selects.
UI_LAUNCH = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id runId pipelineName } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
  }
}"""

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed: apt-get install chromium (.ci/run installs it)")


def screenshot_dir() -> Path:
    """Where the UI tests keep their screenshots: $GRAPHREC_UI_SCREENSHOTS, else a fixed folder in the temp dir, so
    the paths a run prints stay valid after pytest's own temporary folders are rotated away."""
    folder = Path(os.environ.get("GRAPHREC_UI_SCREENSHOTS") or Path(tempfile.gettempdir()) / "graphrec-ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    """POST one GraphQL document to the webserver at `url`; its data (any GraphQL error fails the test)."""
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
            repositories = graphql(url, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")
            if repositories["repositoriesOrError"].get("nodes"):
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(1)
    raise TimeoutError(f"dagster dev did not serve {url} within {timeout_s} s:\n{log.read_text()[-3000:]}")


@contextmanager
def dagster_dev(root: Path) -> Iterator[SimpleNamespace]:
    """`dagster dev` (webserver, daemon, code server) on a free port with everything under `root`, stopped with
    SIGTERM on exit. Yields url, root, log and data (the GRAPHREC_DATA_DIR: warehouse, feature store, landing)."""
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    (data / "landing").mkdir(parents=True)
    shutil.copy(REPO / "infra" / "dagster.yaml", home / "dagster.yaml")
    url = f"http://127.0.0.1:{_free_port()}"
    env = {**os.environ, "DAGSTER_HOME": str(home), "GRAPHREC_ENV": "local", "GRAPHREC_DATA_DIR": str(data),
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
        yield SimpleNamespace(url=url, root=root, log=log, data=data)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what this helper started
            process.wait()


def repository_selector(url: str) -> dict:
    """The one code location's repository, as GraphQL selectors name it."""
    repositories = graphql(url, "{ repositoriesOrError { ... on RepositoryConnection "
                                "{ nodes { name location { name } } } } }")
    repository = repositories["repositoriesOrError"]["nodes"][0]
    return {"repositoryLocationName": repository["location"]["name"], "repositoryName": repository["name"]}


def launch_like_the_ui(url: str, job: str, run_config: dict | None = None) -> str:
    """Launch `job` as the launchpad's Launch button does (its mutation and execution params); its run id."""
    params = {"selector": {**repository_selector(url), "pipelineName": job}, "mode": "default",
              "runConfigData": run_config or {}, "executionMetadata": {"tags": []}}
    launched = graphql(url, UI_LAUNCH, {"executionParams": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    assert launched["run"]["pipelineName"] == job
    return launched["run"]["runId"]


def wait_for_run(url: str, run_id: str, timeout_s: float = 400) -> str:
    """The final status of run `run_id` (SUCCESS, FAILURE or CANCELED), polled until it has one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = graphql(url, "query Status($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }",
                         {"runId": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    raise TimeoutError(f"run {run_id} did not finish within {timeout_s} s")


def run_and_wait(ui: SimpleNamespace, job: str, run_config: dict | None = None, expect: str = "SUCCESS") -> str:
    """Launch `job` from the UI's mutation, wait for it and check its final status; its run id."""
    run_id = launch_like_the_ui(ui.url, job, run_config)
    status = wait_for_run(ui.url, run_id)
    assert status == expect, f"{job} run {run_id} ended {status}:\n{ui.log.read_text()[-3000:]}"
    return run_id


def materialization_metadata(url: str, asset: str, run_id: str) -> dict[str, str]:
    """The text and path metadata of `asset`'s materialization in run `run_id`, as the asset page lists it."""
    nodes = graphql(url, """
        query Events($key: AssetKeyInput!) {
          assetOrError(assetKey: $key) { ... on Asset { assetMaterializations(limit: 20) { runId metadataEntries {
            label ... on TextMetadataEntry { text } ... on PathMetadataEntry { path } } } } }
        }""", {"key": {"path": [asset]}})["assetOrError"]["assetMaterializations"]
    events = [node for node in nodes if node["runId"] == run_id]
    assert events, f"no materialization of {asset} in run {run_id}"
    return {entry["label"]: entry.get("text") or entry.get("path") for entry in events[0]["metadataEntries"]}


def chromium(root: Path, output: str, url: str, window: str = PAGE_WINDOW) -> str:
    """Run headless Chromium once on `url` with `output` (--dump-dom or --screenshot=PATH); its stdout."""
    profile = root / f"chromium-{output.strip('-').split('=')[0]}"
    done = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", window,
                           "--virtual-time-budget=20000", output, url], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def rendered_dom(root: Path, url: str, wanted: list[str], window: str = PAGE_WINDOW, attempts: int = 3) -> str:
    """The DOM of `url` once every string in `wanted` is in it, or the last of `attempts` dumps.

    The lineage graph is laid out in a web worker, which runs on real time rather than Chromium's virtual time, so
    on a loaded machine one dump can end before the nodes are drawn; a fresh load gets the same page another chance.
    """
    for _ in range(attempts):
        page = chromium(root, "--dump-dom", url, window)
        if all(text in page for text in wanted):
            break
    return page


def screenshot(root: Path, url: str, name: str, window: str = PAGE_WINDOW, min_bytes: int = 50_000) -> Path:
    """A PNG of `url` in the screenshot folder, checked to be an image with content; its path is printed."""
    path = screenshot_dir() / name
    path.unlink(missing_ok=True)
    chromium(root, f"--screenshot={path}", url, window)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > min_bytes, path
    print(f"\n{name}: {path}")
    return path
