"""Evaluation stage: full-ranking Recall/NDCG@K on the test split with training items masked, per user-degree
group, and the bias figure (variance of Recall@20 across the groups).
"""

import time

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from matplotlib.figure import Figure
from pydantic import Field

from assets.common import (
    AFTER_UPSTREAM_PASSES,
    LIGHTGCN_EMBEDDINGS,
    RANKING_REPORT,
    TEST_EDGES,
    TRAIN_GRAPH,
    load_tensors,
    markdown_image,
    markdown_table,
    write_json,
)
from models.graph import BipartiteGraph
from models.metrics import degree_groups, evaluate_full_ranking, group_means, group_variance
from orchestration.resources import ArtifactStore, Compute

CODE_VERSION = "ranking-report-1"
KS = (10, 20, 50)
GROUP_K = 20  # the cut-off that the per-group table and the bias figure use


class RankingReportConfig(Config):
    """How finely to split users by training degree."""

    degree_groups: int = Field(default=5, description="Quantile buckets of user training degree.")


def _group_plot(rows: list[dict]) -> str:
    """Bar chart of Recall@20 per degree group, as a markdown image."""
    figure = Figure(figsize=(6, 3))
    axis = figure.subplots()
    axis.bar([r["degrees"] for r in rows], [r[f"recall@{GROUP_K}"] for r in rows])
    axis.set(xlabel="user training degree", ylabel=f"Recall@{GROUP_K}", title="Recall by user-degree group")
    return markdown_image(figure, "recall by degree group")


@asset(group_name="evaluation", kinds={"pytorch"}, code_version=CODE_VERSION, deps=["lightgcn_model"],
       automation_condition=AFTER_UPSTREAM_PASSES)
def ranking_report(context: AssetExecutionContext, config: RankingReportConfig, compute: Compute,
                   artifacts: ArtifactStore) -> MaterializeResult:
    """Test Recall/NDCG@10/20/50 (full ranking), per user-degree group, and the degree bias."""
    started = time.perf_counter()
    device = compute.torch_device()
    graph = BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH))
    test = load_tensors(artifacts.path(*TEST_EDGES))["edge_index"]
    embeddings = load_tensors(artifacts.path(*LIGHTGCN_EMBEDDINGS))
    result = evaluate_full_ranking(embeddings["user_emb"].to(device), embeddings["item_emb"].to(device),
                                   graph, test, ks=KS)
    degree = graph.user_degree()[result.users]
    groups = degree_groups(degree, config.degree_groups)
    recall = group_means(result.recall[GROUP_K], groups)
    ndcg = group_means(result.ndcg[GROUP_K], groups)
    rows = [{"group": g, "degrees": f"{int(degree[groups == g].min())}-{int(degree[groups == g].max())}",
             "users": int((groups == g).sum()), f"recall@{GROUP_K}": recall[g], f"ndcg@{GROUP_K}": ndcg[g]}
            for g in recall]
    summary = {**result.summary(), "bias": group_variance(result.recall[GROUP_K], groups),
               "test_users": int(result.users.numel())}
    write_json(artifacts.path(*RANKING_REPORT), {**summary, "degree_groups": rows})
    context.log.info(f"test {summary}")
    return MaterializeResult(metadata={
        **summary, "eval_seconds": time.perf_counter() - started,
        "degree_groups": MetadataValue.md(markdown_table(rows) + "\n\n" + _group_plot(rows)),
    })
