"""Evaluation stage: every recommender, baselines included, side by side on validation and on test: full-ranking
Recall/NDCG@K (training items masked; at test, validation items too), Recall@K per user-degree group and the bias
figure (variance of the groups' Recall@K). Validation figures are for choosing, test figures for reporting.

Each model's step has already ranked its fit on both sets (assets.held_out); the report reads those results and
scores a model itself only when they are missing or were measured on other data or at another cut-off.
"""

import time

import torch
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from matplotlib.figure import Figure
from pydantic import Field

from assets.common import (
    GRAPH_RECORD,
    RANKING_REPORT,
    TEST_EDGES,
    TRAIN_GRAPH,
    VALID_EDGES,
    VALID_PER_USER,
    load_tensors,
    markdown_image,
    markdown_table,
    read_json,
    save_tensors,
    write_json,
)
from assets.cost import step_cost
from assets.curves import time_to_quality_overview
from assets.families import is_baseline, load_fitted
from assets.held_out import DEFAULT_K, KS, load_evaluation, timed_evaluation
from assets.recommenders import RECOMMENDERS
from assets.runs import ModelArtifacts
from models.eval.ranking import degree_group_metrics, degree_groups, heldout_item_degree
from models.graph.bipartite import BipartiteGraph
from orchestration.automation import RETRAIN_WHEN_IT_PAYS
from orchestration.resources import ArtifactStore, Compute

CODE_VERSION = "ranking-report-6"


class RankingReportConfig(Config):
    """The cut-off of the quality figures (the champion, its baseline check and the publishing gate read it from
    the report) and how finely to split users by training degree."""

    k: int = Field(default=DEFAULT_K, description="Cut-off K of the quality metric (Recall@K, NDCG@K), the degree "
                                           "groups and the bias; one of 10, 20, 50.")
    degree_groups: int = Field(default=5, description="Quantile buckets of user training degree.")


def _group_plot(groups: list[dict], metrics: dict[str, dict[str, float]], k: int) -> str:
    """Grouped bars of Recall@20 per degree group, one bar per model, as a markdown image."""
    figure = Figure(figsize=(7, 3))
    axis = figure.subplots()
    width = 0.8 / len(metrics)
    for offset, (model, values) in enumerate(metrics.items()):
        axis.bar([g["group"] + offset * width for g in groups],
                 [values[f"group{g['group']}.recall@{k}"] for g in groups], width, label=model)
    axis.set_xticks([g["group"] + 0.4 - width / 2 for g in groups], [g["degrees"] for g in groups])
    axis.set(xlabel="user training degree", ylabel=f"Recall@{k}", title="Recall by user-degree group")
    axis.legend()
    return markdown_image(figure, "recall by degree group and model")


@asset(group_name="evaluation", kinds={"pytorch"}, code_version=CODE_VERSION, deps=list(RECOMMENDERS.values()),
       automation_condition=RETRAIN_WHEN_IT_PAYS)
def ranking_report(context: AssetExecutionContext, config: RankingReportConfig, compute: Compute,
                   artifacts: ArtifactStore) -> MaterializeResult:
    """Validation and test Recall/NDCG@10/20/50, degree groups and top-K coverage/popularity of every model."""
    if config.k not in KS:
        raise ValueError(f"ranking_report's k is {config.k}; use one of {KS}")
    started = time.perf_counter()
    device = compute.torch_device()
    graph = BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH))
    test = load_tensors(artifacts.path(*TEST_EDGES))["edge_index"]
    valid = load_tensors(artifacts.path(*VALID_EDGES))["edge_index"]
    data_fingerprint = read_json(artifacts.path(*GRAPH_RECORD))["fingerprint"]
    valid_results, results, runs, eval_seconds, evaluated_here = {}, {}, {}, {}, []
    for model in RECOMMENDERS:
        run = ModelArtifacts(model).latest_run(artifacts)
        runs[model] = read_json(run.record)
        stored = load_evaluation(run.evaluation, data_fingerprint, config.k)
        if stored is None:  # a run fitted on other held-out data, or evaluated at another cut-off
            fitted = load_fitted(artifacts, model)
            stored = timed_evaluation(fitted, graph, valid, test, config.k,
                                      device if fitted.has_vectors else torch.device("cpu"))
            evaluated_here.append(model)
        ranked, eval_seconds[model] = stored
        valid_results[model], results[model] = ranked["valid"], ranked["test"]
    if evaluated_here:
        context.log.info(f"evaluated here (no stored results for this data and k): {', '.join(evaluated_here)}")
    # Every model is evaluated on the same users (those with test items), so the groups are shared.
    users = next(iter(results.values())).users
    degree = graph.user_degree()[users]
    groups = degree_groups(degree, config.degree_groups)
    metrics = {model: degree_group_metrics(result, groups, config.k) for model, result in results.items()}
    valid_users = next(iter(valid_results.values())).users
    if not all(torch.equal(result.users, valid_users) for result in valid_results.values()):
        raise RuntimeError("ranking_report: the models' validation results cover different users; re-materialize "
                           "the recommenders on this training graph")
    # Per user, so that the champion's baseline check can tell a lead from the noise of the users drawn.
    save_tensors(artifacts.path(*VALID_PER_USER), users=valid_users, **{
        f"{model}.{metric}@{config.k}": getattr(result, metric)[config.k]
        for model, result in valid_results.items() for metric in ("recall", "ndcg")})
    valid_groups = degree_groups(graph.user_degree()[valid_users], config.degree_groups)
    validation = {model: degree_group_metrics(result, valid_groups, config.k) for model, result in valid_results.items()}
    group_rows = [{"group": g, "degrees": f"{int(degree[groups == g].min())}-{int(degree[groups == g].max())}",
                   "users": int((groups == g).sum())} for g in torch.unique(groups).tolist()]
    baselines = [model for model in RECOMMENDERS if is_baseline(model)]
    # How popular the held-out items are in training: when test's differ from validation's, the models' order on
    # validation need not be their order on test, and the report should say so beside the figures.
    held_out = {part: heldout_item_degree(graph, edges) for part, edges in (("valid", valid), ("test", test))}
    write_json(artifacts.path(*RANKING_REPORT),
               {"k": config.k, "models": metrics, "valid": validation, "baselines": baselines,
                "degree_groups": group_rows, "test_users": int(users.numel()), "heldout_item_degree": held_out})
    context.log.info(f"validation {validation}; test {metrics}")
    comparison = [{"model": model, "baseline": model in baselines,
                   **{f"valid {key}": validation[model][key] for key in (f"recall@{config.k}", f"ndcg@{config.k}")},
                   **{key: m[key] for key in (*results[model].summary(), "bias")},
                   "fit seconds": runs[model].get("seconds"), "fit peak RSS MiB": runs[model].get("peak_rss_mb"),
                   "eval seconds": eval_seconds[model]}
                  for model, m in metrics.items()]
    by_group = [{**row, **{f"{model} recall@{config.k}": m[f"group{row['group']}.recall@{config.k}"]
                           for model, m in metrics.items()}} for row in group_rows]
    return MaterializeResult(metadata={
        **step_cost(context),
        **{f"{model}.{key}": value for model, m in metrics.items() for key, value in m.items()},
        **{f"{model}.valid.{key}": value for model, m in validation.items() for key, value in m.items()},
        "test_users": int(users.numel()), "report_seconds": time.perf_counter() - started,
        "evaluated_here": ", ".join(evaluated_here),
        **{f"{part}.{key}": value for part, figures in held_out.items() for key, value in figures.items()},
        "comparison": MetadataValue.md(markdown_table(comparison)),
        "time_to_quality": MetadataValue.md(markdown_image(time_to_quality_overview(
            runs, {model: m[f"recall@{config.k}"] for model, m in validation.items()}, config.k),
            "validation recall against fit seconds, every model")),
        "degree_groups": MetadataValue.md(markdown_table(by_group) + "\n\n" + _group_plot(group_rows, metrics,
                                                                                            config.k)),
    })
