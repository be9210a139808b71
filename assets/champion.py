"""Champion stage: the policy that picks the model to publish from the ranking report's validation figures (best
Recall@K, optionally only among models whose degree bias is within a bound), the asset that records the choice,
and the blocking check that no baseline leads the champion on validation, by more than the noise of the users
drawn (over every lead tested at once), before anything is published.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field
from torch import Tensor

from assets.common import RANKING_REPORT, VALID_PER_USER, load_tensors, markdown_table, read_json, write_json
from assets.cost import step_cost
from assets.families import full_filter_of
from models.eval.paired import RESAMPLES, noise_threshold, paired_lead
from models.recsys.registry import FAMILIES
from orchestration.automation import RETRAIN_WHEN_IT_PAYS
from orchestration.resources import ArtifactStore

CODE_VERSION = "champion-3"
CHAMPION = ("reports", "champion.json")


class NoChampionError(ValueError):
    """No model satisfies the champion policy's fairness constraint."""


class ChampionConfig(Config):
    """Best validation Recall@K wins among the eligible models; with ``max_bias``, only among those fair enough
    and close enough to the best."""

    # Eligible by default: the LightGCN family, which trains with a compatibility loss against the promoted
    # version, and the graph filters published as vectors (GF-CF's, BSPM's and SGFCF's factors), which are
    # training-free and reach the promoted space through the learned map (embedding_candidate), and the blend of
    # SGFCF's and BSPM's vectors, which reaches it the same way; the gate refuses
    # either when the criterion fails. The graph-free student and shaDow are compared in the report but not eligible by default.
    # The popularity families, though publishable, are not eligible by default either: they rank the same items for
    # everyone in one dimension, so a version of theirs cannot stay compatible with a promoted model's space, and a
    # service that wants "most popular" rarely needs an embedding store for it. When a baseline wins, the champion
    # check below stops the publish and names it instead. Name "popularity" or "recent_popularity" here to let one
    # be chosen and published (the check then compares it with the other baselines).
    models: list[str] = Field(
        default=["lightgcn", "rawls", "gf_cf_factors", "bspm_factors", "sgfcf_factors", "filter_blend_factors"],
        description="Models of the ranking report that may be champion; each must publish vectors (popularity, "
                    "recent_popularity, the filters' *_factors and filter_blend_factors can; item_knn, gf_cf, bspm and sgfcf cannot).")

    max_bias: float | None = Field(
        default=None, description="Highest degree bias (variance of group Recall@20) a champion may have; "
                                  "None: no fairness constraint.")
    max_recall_drop: float = Field(
        default=0.05, description="With max_bias: how far (relative) below the best Recall@20 a fair enough "
                                  "model may be and still be chosen.")


@dataclass(frozen=True)
class Champion:
    """The chosen model and why, in words a person reads in the UI."""

    model: str
    reason: str


def choose_champion(metrics: Mapping[str, Mapping[str, float]], max_bias: float | None = None,
                    max_recall_drop: float = 0.05, quality: str = "recall@20") -> Champion:
    """The champion among ``metrics`` (model name → its ``quality`` figure, e.g. ``recall@20``, and ``bias``).

    Without ``max_bias``: the model with the best Recall@20. With it: the best Recall@20 among the models whose
    bias is at most ``max_bias`` and whose Recall@20 is at least ``(1 − max_recall_drop)`` × the best model's;
    when no model qualifies, :class:`NoChampionError` (nothing is published, the promoted version stays).
    Ties go to the lower bias, then to the model named first.
    """
    ranked = sorted(metrics, key=lambda m: (-metrics[m][quality], metrics[m]["bias"]))
    best = ranked[0]
    if max_bias is None:
        return Champion(best, f"best {quality} ({metrics[best][quality]:.4f}); no bias bound set")
    floor = (1.0 - max_recall_drop) * metrics[best][quality]
    fair = [m for m in ranked if metrics[m]["bias"] <= max_bias and metrics[m][quality] >= floor]
    if not fair:
        figures = ", ".join(f"{m}: {quality} {metrics[m][quality]:.4f}, bias {metrics[m]['bias']:.3g}" for m in ranked)
        raise NoChampionError(
            f"no model has bias ≤ {max_bias:g} and {quality} ≥ {floor:.4f} ({max_recall_drop:.0%} below the best, "
            f"{best}); measured {figures}. Raise champion_model's max_bias or max_recall_drop, or train a fairer model."
        )
    chosen = fair[0]
    return Champion(chosen, f"best {quality} ({metrics[chosen][quality]:.4f}) among models with bias ≤ {max_bias:g} "
                            f"and {quality} ≥ {floor:.4f} ({max_recall_drop:.0%} below the best, {best})")


def publishes_vectors(model: str) -> bool:
    """Registry families say whether they publish vectors; the other recommender assets all do."""
    return FAMILIES[model].publishable if model in FAMILIES else True


@asset(group_name="evaluation", kinds={"json"}, code_version=CODE_VERSION, deps=["ranking_report"],
       automation_condition=RETRAIN_WHEN_IT_PAYS)
def champion_model(context: AssetExecutionContext, config: ChampionConfig,
                   artifacts: ArtifactStore) -> MaterializeResult:
    """The model to publish: best validation Recall@K, within the policy's optional bias bound."""
    report = read_json(artifacts.path(*RANKING_REPORT))
    quality = f"recall@{report['k']}"
    unpublishable = [model for model in config.models if not publishes_vectors(model)]
    if unpublishable:
        raise NoChampionError(f"champion_model's models include {unpublishable}, which are served by a scorer and "
                              "cannot be published as vectors; remove them from the policy")
    reported = report["valid"]
    metrics = {model: reported[model] for model in config.models if model in reported}
    if not metrics:
        raise NoChampionError(f"none of the eligible models {config.models} is in the ranking report "
                              f"({sorted(reported)}); set champion_model's models to some of those")
    champion = choose_champion(metrics, config.max_bias, config.max_recall_drop, quality)
    chosen = metrics[champion.model]
    write_json(artifacts.path(*CHAMPION), {"model": champion.model, "reason": champion.reason, "k": report["k"],
                                           "metrics": chosen, "test_metrics": report["models"][champion.model],
                                           "policy": config.model_dump()})
    context.log.info(f"champion {champion.model}: {champion.reason}")
    return MaterializeResult(metadata={
        **step_cost(context),
        "model": champion.model, "reason": champion.reason,
        **{f"valid.{key}": value for key, value in chosen.items()},
        **{f"test.{key}": value for key, value in report["models"][champion.model].items()},
        "policy": MetadataValue.json(config.model_dump()),
    })


class BaselineMarginConfig(Config):
    """How far a baseline may lead the champion on validation before the champion is stopped."""

    margin: float = Field(default=0.0, description="Relative lead the champion needs over each baseline on "
                                                   "validation Recall@K and NDCG@K (0.02: 2% ahead); 0: ahead.")
    level: float = Field(
        default=0.05, gt=0, lt=1,
        description="Chance that the validation users drawn alone make some baseline's lead count, over every "
                    "baseline and both metrics together: a lead counts above the standard errors that the largest "
                    "lead reaches by noise in this share of resamples of the users (margin included).")


def baseline_shortfalls(champion: str, valid: Mapping[str, Mapping[str, float]], per_user: Mapping[str, Tensor],
                        baselines: list[str], k: int, margin: float, level: float
                        ) -> tuple[list[str], list[dict[str, Any]], float]:
    """One sentence per (baseline, metric) whose lead over the champion on validation (the baseline's figure times
    ``1 + margin``, minus the champion's, per user: ``per_user`` holds each model's per-user figures under
    ``<model>.<metric>``) is above the noise of the users drawn; one row per baseline compared, with each lead,
    its standard error and their ratio; and the noise threshold in standard errors
    (:func:`models.eval.paired.noise_threshold` at ``level`` over every lead tested).

    A lead within the noise does not stop the champion: the users drawn for validation could reverse it, and a check
    that flips with them would publish, or not, by chance. With up to two dozen leads tested, a threshold for each
    alone would let some chance lead stop a champion that no baseline beats far more often than ``level``.
    """
    tested, leads = [], []
    for baseline in baselines:
        # A publishable baseline the policy named, and chose, is compared with the others, except with its own full
        # filter: the vectors are that filter made publishable, and their loss against it is reported beside.
        if baseline in (champion, full_filter_of(champion)):
            continue
        row: dict[str, Any] = {"baseline": baseline}
        for metric in (f"recall@{k}", f"ndcg@{k}"):
            theirs, ours = per_user[f"{baseline}.{metric}"], per_user[f"{champion}.{metric}"]
            lead, error = paired_lead(theirs, ours, 1.0 + margin)
            row[f"{metric} lead"], row[f"{metric} standard error"] = lead, error
            row[f"{metric} lead / error"] = lead / error if error else "no noise"
            tested.append((baseline, metric, lead, error, (1.0 + margin) * theirs.double() - ours.double()))
        leads.append(row)
    threshold = noise_threshold(torch.stack([column for *_, column in tested], 1), level) if tested else 0.0
    shortfalls = [f"{baseline} has validation {metric} {valid[baseline][metric]:.4f} against the champion "
                  f"{champion}'s {valid[champion][metric]:.4f}" + (f" (needs a {margin:.0%} lead)" if margin else "")
                  + f", a lead of {lead:.4f} at a standard error of {error:.4f}"
                  for baseline, metric, lead, error, _ in tested
                  if lead > 0 and (error == 0 or lead > threshold * error)]
    return shortfalls, leads, threshold


@asset_check(asset=champion_model, blocking=True,
             description="No baseline (popularity, item-kNN, graph filters) may lead the champion on validation "
                         "Recall@K or NDCG@K by more than the noise of the users drawn (per user, by more standard "
                         "errors than the largest of all leads tested reaches by noise in a share `level`, 5% by "
                         "default, of resamples of the users); otherwise nothing is published and the promoted "
                         "version stays live.")
def champion_beats_baselines(context: AssetCheckExecutionContext, config: BaselineMarginConfig,
                             artifacts: ArtifactStore) -> AssetCheckResult:
    """A champion that loses to a baseline on validation never reaches the feature store."""
    report = read_json(artifacts.path(*RANKING_REPORT))
    champion = read_json(artifacts.path(*CHAMPION))["model"]
    per_user_file = artifacts.path(*VALID_PER_USER)
    if not per_user_file.is_file():
        raise FileNotFoundError(f"champion_beats_baselines compares per-user validation figures, and {per_user_file} "
                                "is missing: materialize ranking_report again")
    shortfalls, leads, threshold = baseline_shortfalls(champion, report["valid"], load_tensors(per_user_file),
                                                       report["baselines"], report["k"], config.margin, config.level)
    quality = f"recall@{report['k']}"
    rows = [{"model": model, "baseline": model in report["baselines"],
             **{key: report["valid"][model][key] for key in (quality, f"ndcg@{report['k']}")}}
            for model in [champion, *report["baselines"]]]
    if shortfalls:
        context.log.warning("; ".join(shortfalls))
    full_filter = full_filter_of(champion)
    beside = {} if full_filter not in report["valid"] else {
        "vectors against their full filter": f"{champion} {report['valid'][champion][quality]:.4f} against "
                                             f"{full_filter} {report['valid'][full_filter][quality]:.4f} "
                                             f"(validation {quality}; not a condition)"}
    within_noise = [f"{row['baseline']} ({metric} {row[f'{metric} lead']:+.4f} "
                    f"± {row[f'{metric} standard error']:.4f})"
                    for row in leads for metric in (quality, f"ndcg@{report['k']}") if row[f"{metric} lead"] > 0]
    passing = f"{champion} beats every baseline on validation" if not within_noise else (
        f"no baseline leads {champion} on validation by more than the users' noise ({threshold:.2f} standard "
        f"errors: the largest of {2 * len(leads)} leads reaches that by noise in {config.level:.0%} of "
        f"{RESAMPLES:,} resamples of the users); within noise: "
        + ", ".join(within_noise))
    return AssetCheckResult(passed=not shortfalls, description="; ".join(shortfalls) or passing, metadata={
        **step_cost(context), **beside,
        "champion": champion, "baselines": ", ".join(report["baselines"]), "margin": config.margin,
        "level": config.level, "noise threshold (standard errors)": threshold,
        "validation": MetadataValue.md(markdown_table(rows)),
        "leads over the champion": MetadataValue.md(markdown_table(leads)),
    })
