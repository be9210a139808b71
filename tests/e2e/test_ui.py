"""The UI for real: `dagster dev` on 127.0.0.1 with a temporary DAGSTER_HOME and data folder, a full_retrain run
launched through the GraphQL API, then headless Chromium renders the global asset lineage; every asset name must
be on the rendered page, and the page's screenshot is kept (its path is printed); lightgcn_model's page shows the
links to its run folder and files.
"""

import re

from tests.e2e import ui_harness as ui

pytestmark = ui.needs_chromium


def test_a_run_launched_through_graphql_shows_in_the_rendered_lineage(dagster_ui):
    run_id = ui.launch(dagster_ui.url, "full_retrain", ui.TINY_RUN)
    assert ui.wait_for_run(dagster_ui.url, run_id) == "SUCCESS", dagster_ui.log.read_text()[-3000:]
    nodes = ui.graphql(dagster_ui.url, "{ assetNodes { assetKey { path } groupName "
                                       "assetMaterializations(limit: 1) { runId } } }")["assetNodes"]
    latest_run = {node["assetKey"]["path"][-1]: [m["runId"] for m in node["assetMaterializations"]] for node in nodes}
    for name in ("raw_interactions", "training_graph", "lightgcn_model", "published_embeddings"):
        assert latest_run[name] == [run_id], name

    # The global lineage with every group expanded (the UI keeps expanded group ids in the `expanded` parameter).
    groups = sorted({node["groupName"] for node in nodes})
    lineage = f"{dagster_ui.url}/asset-groups?expanded=" + ",".join(f"global@global:{group}" for group in groups)
    page = ui.chromium(dagster_ui.root, "--dump-dom", lineage, ui.LINEAGE_WINDOW)
    assert "Global asset lineage" in page
    missing = [name for name in latest_run if f">{name}<" not in page]
    assert not missing, f"asset names not rendered on {lineage}: {missing}"
    ui.screenshot(dagster_ui.root, lineage, "asset_lineage.png", ui.LINEAGE_WINDOW)

    # The model's page: its run folder and files linked from the latest materialization, the time-to-quality plot.
    page_url = f"{dagster_ui.url}/assets/lightgcn_model"
    page = ui.chromium(dagster_ui.root, "--dump-dom", page_url)
    for shown in (rf">run_folder<.*/lightgcn/runs/{run_id}<", r">time_to_quality_plot<.*time_to_quality\.png<",
                  r">time_to_quality<"):
        assert re.search(shown, page, re.DOTALL), f"{shown!r} not rendered on {page_url}"
    # Tall enough to show the links and the plot below the config.
    ui.screenshot(dagster_ui.root, page_url, "lightgcn_model_run_links.png", "--window-size=1800,3000")
