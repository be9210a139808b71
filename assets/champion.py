"""Champion stage: the policy that picks the model to publish from the ranking report (best Recall@20, optionally
only among models whose degree bias is within a bound), and the asset that records the choice as JSON.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from assets.common import AFTER_UPSTREAM_PASSES, RANKING_REPORT, read_json, write_json
from orchestration.resources import ArtifactStore

CODE_VERSION = "champion-1"
CHAMPION = ("reports", "champion.json")
QUALITY = "recall@20"


class NoChampionError(ValueError):
    """No model satisfies the champion policy's fairness constraint."""


class ChampionPolicy(Config):
    """Best Recall@20 wins among the eligible models; with ``max_bias``, only among those fair enough and close
    enough to the best."""

    # Only models that train with a compatibility loss against the promoted version can pass the publishing gate
    # retrain after retrain; the graph-free student and shaDow are compared in the report but not eligible by default.
    models: list[str] = Field(
        default=["lightgcn", "rawls"], description="Models of the ranking report that may be champion.")

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
                    max_recall_drop: float = 0.05) -> Champion:
    """The champion among ``metrics`` (model name → its ``recall@20`` and ``bias``).

    Without ``max_bias``: the model with the best Recall@20. With it: the best Recall@20 among the models whose
    bias is at most ``max_bias`` and whose Recall@20 is at least ``(1 − max_recall_drop)`` × the best model's;
    when no model qualifies, :class:`NoChampionError` (nothing is published, the promoted version stays).
    Ties go to the lower bias, then to the model named first.
    """
    ranked = sorted(metrics, key=lambda m: (-metrics[m][QUALITY], metrics[m]["bias"]))
    best = ranked[0]
    if max_bias is None:
        return Champion(best, f"best {QUALITY} ({metrics[best][QUALITY]:.4f}); no bias bound set")
    floor = (1.0 - max_recall_drop) * metrics[best][QUALITY]
    fair = [m for m in ranked if metrics[m]["bias"] <= max_bias and metrics[m][QUALITY] >= floor]
    if not fair:
        figures = ", ".join(f"{m}: {QUALITY} {metrics[m][QUALITY]:.4f}, bias {metrics[m]['bias']:.3g}" for m in ranked)
        raise NoChampionError(
            f"no model has bias ≤ {max_bias:g} and {QUALITY} ≥ {floor:.4f} ({max_recall_drop:.0%} below the best, "
            f"{best}); measured {figures}. Raise champion_model's max_bias or max_recall_drop, or train a fairer model."
        )
    chosen = fair[0]
    return Champion(chosen, f"best {QUALITY} ({metrics[chosen][QUALITY]:.4f}) among models with bias ≤ {max_bias:g} "
                            f"and {QUALITY} ≥ {floor:.4f} ({max_recall_drop:.0%} below the best, {best})")


@asset(group_name="evaluation", kinds={"json"}, code_version=CODE_VERSION, deps=["ranking_report"],
       automation_condition=AFTER_UPSTREAM_PASSES)
def champion_model(context: AssetExecutionContext, config: ChampionPolicy,
                   artifacts: ArtifactStore) -> MaterializeResult:
    """The model to publish: best test Recall@20, within the policy's optional bias bound."""
    reported = read_json(artifacts.path(*RANKING_REPORT))["models"]
    metrics = {model: reported[model] for model in config.models if model in reported}
    if not metrics:
        raise NoChampionError(f"none of the eligible models {config.models} is in the ranking report "
                              f"({sorted(reported)}); set champion_model's models to some of those")
    champion = choose_champion(metrics, config.max_bias, config.max_recall_drop)
    chosen = metrics[champion.model]
    write_json(artifacts.path(*CHAMPION), {"model": champion.model, "reason": champion.reason, "metrics": chosen,
                                           "policy": config.model_dump()})
    context.log.info(f"champion {champion.model}: {champion.reason}")
    return MaterializeResult(metadata={
        "model": champion.model, "reason": champion.reason, **chosen, "policy": MetadataValue.json(config.model_dump()),
    })
