"""Evaluation stage: every trained recommender side by side on the test split: full-ranking Recall/NDCG@K with
training items masked, Recall@20 per user-degree group, and the bias figure (variance of the groups' Recall@20).
"""

import time

import torch
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from matplotlib.figure import Figure
from pydantic import Field

from assets.common import (
    AFTER_UPSTREAM_PASSES,
    RANKING_REPORT,
    TEST_EDGES,
    TRAIN_GRAPH,
    VALID_EDGES,
    load_tensors,
    markdown_image,
    markdown_table,
    write_json,
)
from assets.recommenders import RECOMMENDERS
from assets.training import ModelArtifacts
from models.eval.ranking import degree_group_metrics, degree_groups, evaluate_full_ranking
from models.graph.bipartite import BipartiteGraph
from orchestration.resources import ArtifactStore, Compute

CODE_VERSION = "ranking-report-2"
KS = (10, 20, 50)
GROUP_K = 20  # the cut-off that the per-group figures and the bias use


class RankingReportConfig(Config):
    """How finely to split users by training degree."""

    degree_groups: int = Field(default=5, description="Quantile buckets of user training degree.")


def _group_plot(groups: list[dict], metrics: dict[str, dict[str, float]]) -> str:
    """Grouped bars of Recall@20 per degree group, one bar per model, as a markdown image."""
    figure = Figure(figsize=(7, 3))
    axis = figure.subplots()
    width = 0.8 / len(metrics)
    for offset, (model, values) in enumerate(metrics.items()):
        axis.bar([g["group"] + offset * width for g in groups],
                 [values[f"group{g['group']}.recall@{GROUP_K}"] for g in groups], width, label=model)
    axis.set_xticks([g["group"] + 0.4 - width / 2 for g in groups], [g["degrees"] for g in groups])
    axis.set(xlabel="user training degree", ylabel=f"Recall@{GROUP_K}", title="Recall by user-degree group")
    axis.legend()
    return markdown_image(figure, "recall by degree group and model")


@asset(group_name="evaluation", kinds={"pytorch"}, code_version=CODE_VERSION, deps=list(RECOMMENDERS.values()),
       automation_condition=AFTER_UPSTREAM_PASSES)
def ranking_report(context: AssetExecutionContext, config: RankingReportConfig, compute: Compute,
                   artifacts: ArtifactStore) -> MaterializeResult:
    """Test Recall/NDCG@10/20/50 of every trained model (full ranking), per user-degree group, and its degree bias."""
    started = time.perf_counter()
    device = compute.torch_device()
    graph = BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH))
    test = load_tensors(artifacts.path(*TEST_EDGES))["edge_index"]
    # Validation interactions happened before the test period: rank only items the user has not seen.
    valid = load_tensors(artifacts.path(*VALID_EDGES))["edge_index"]
    results = {}
    for model in RECOMMENDERS:
        vectors = load_tensors(artifacts.path(*ModelArtifacts(model).embeddings))
        results[model] = evaluate_full_ranking(vectors["user_emb"].to(device), vectors["item_emb"].to(device),
                                               graph, test, ks=KS,
                                               also_masked=valid)
    # Every model is evaluated on the same users (those with test items), so the groups are shared.
    users = next(iter(results.values())).users
    degree = graph.user_degree()[users]
    groups = degree_groups(degree, config.degree_groups)
    metrics = {model: degree_group_metrics(result, groups, GROUP_K) for model, result in results.items()}
    group_rows = [{"group": g, "degrees": f"{int(degree[groups == g].min())}-{int(degree[groups == g].max())}",
                   "users": int((groups == g).sum())} for g in torch.unique(groups).tolist()]
    write_json(artifacts.path(*RANKING_REPORT),
               {"models": metrics, "degree_groups": group_rows, "test_users": int(users.numel())})
    context.log.info(f"test {metrics}")
    comparison = [{"model": model, **{key: m[key] for key in (*results[model].summary(), "bias")}}
                  for model, m in metrics.items()]
    by_group = [{**row, **{f"{model} recall@{GROUP_K}": m[f"group{row['group']}.recall@{GROUP_K}"]
                           for model, m in metrics.items()}} for row in group_rows]
    return MaterializeResult(metadata={
        **{f"{model}.{key}": value for model, m in metrics.items() for key, value in m.items()},
        "test_users": int(users.numel()), "eval_seconds": time.perf_counter() - started,
        "comparison": MetadataValue.md(markdown_table(comparison)),
        "degree_groups": MetadataValue.md(markdown_table(by_group) + "\n\n" + _group_plot(group_rows, metrics)),
    })
