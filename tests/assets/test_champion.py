"""The champion policy on hand-made metrics: best validation Recall@20, or with a bias bound the best of the fair
enough models within the allowed recall drop, a clear error when none qualifies, and the blocking check that no
baseline's lead over the champion on validation is more than the noise of the per-user differences, over every
lead tested."""

import pytest
import torch
from dagster import build_asset_check_context, build_asset_context

from assets.champion import (
    CHAMPION,
    BaselineMarginConfig,
    ChampionConfig,
    NoChampionError,
    champion_beats_baselines,
    champion_model,
    choose_champion,
)
from assets.common import RANKING_REPORT, VALID_PER_USER, read_json, save_tensors, write_json
from orchestration.resources import ArtifactStore

METRICS = {
    "lightgcn": {"recall@20": 0.200, "bias": 0.040},
    "rawls": {"recall@20": 0.192, "bias": 0.010},  # 4% below the best, a quarter of its bias
    "other": {"recall@20": 0.150, "bias": 0.001},  # 25% below the best
}


def test_without_a_bias_bound_the_best_recall_wins():
    champion = choose_champion(METRICS)
    assert champion.model == "lightgcn"
    assert champion.reason == "best recall@20 (0.2000); no bias bound set"


@pytest.mark.parametrize(("max_bias", "max_recall_drop", "expected"), [
    (0.05, 0.05, "lightgcn"),  # the best model is fair enough itself
    (0.02, 0.05, "rawls"),     # the best is too biased; rawls is within 5% of its recall
    (0.02, 0.03, None),        # rawls drops 4%, more than allowed; other drops 25%
    (0.005, 0.30, "other"),    # only other is fair enough, and a 25% drop is allowed
    (0.0005, 1.0, None),       # no model is that fair
])
def test_with_a_bias_bound_the_best_fair_model_within_the_recall_drop_wins(max_bias, max_recall_drop, expected):
    if expected is None:
        with pytest.raises(NoChampionError, match="no model has bias"):
            choose_champion(METRICS, max_bias, max_recall_drop)
    else:
        assert choose_champion(METRICS, max_bias, max_recall_drop).model == expected


def test_ties_go_to_the_lower_bias_then_to_the_first_named():
    tied = {"a": {"recall@20": 0.2, "bias": 0.03}, "b": {"recall@20": 0.2, "bias": 0.02},
            "c": {"recall@20": 0.2, "bias": 0.02}}
    assert choose_champion(tied).model == "b"


# Test figures that disagree with validation: choosing on them would pick lightgcn or other.
TEST_METRICS = {"lightgcn": {"recall@20": 0.300, "bias": 0.001}, "rawls": {"recall@20": 0.100, "bias": 0.001},
                "other": {"recall@20": 0.400, "bias": 0.0001}}


def _report(artifacts: ArtifactStore, valid=METRICS, baselines=(), per_user=None, **more) -> None:
    """The report of ``valid`` figures; per user (for the baseline check) ``per_user``'s tensors, by default every
    user at the model's figure, so that every lead is far above its (zero) noise."""
    valid = {**valid, **more}
    write_json(artifacts.path(*RANKING_REPORT), {"k": 20, "valid": valid, "models": TEST_METRICS,
                                                 "baselines": list(baselines)})
    constant = {f"{model}.{metric}": torch.full((10,), figures[metric])
                for model, figures in valid.items() for metric in ("recall@20", "ndcg@20") if metric in figures}
    save_tensors(artifacts.path(*VALID_PER_USER), users=torch.arange(10), **(per_user or constant))


def test_champion_model_writes_the_choice_made_on_validation(tmp_path):
    artifacts = ArtifactStore(root=str(tmp_path))
    _report(artifacts)
    result = champion_model(build_asset_context(), ChampionConfig(max_bias=0.02), artifacts)
    written = read_json(artifacts.path(*CHAMPION))
    assert written["model"] == result.metadata["model"] == "rawls"
    assert written["metrics"] == METRICS["rawls"] and written["test_metrics"] == TEST_METRICS["rawls"]
    assert written["policy"] == {"models": ["lightgcn", "rawls", "gf_cf_factors", "bspm_factors", "sgfcf_factors", "filter_blend_factors"], "max_bias": 0.02,
                                 "max_recall_drop": 0.05}
    assert "bias ≤ 0.02" in result.metadata["reason"]


def test_only_eligible_models_can_be_champion(tmp_path):
    """"other" has the lowest bias but is not eligible by default; named, it wins the same bound."""
    artifacts = ArtifactStore(root=str(tmp_path))
    _report(artifacts)
    policy = {"max_bias": 0.005, "max_recall_drop": 0.3}
    with pytest.raises(NoChampionError):
        champion_model(build_asset_context(), ChampionConfig(**policy), artifacts)
    result = champion_model(build_asset_context(), ChampionConfig(models=["rawls", "other"], **policy), artifacts)
    assert result.metadata["model"] == "other"
    with pytest.raises(NoChampionError, match=r"none of the eligible models \['student'\] is in the ranking report"):
        champion_model(build_asset_context(), ChampionConfig(models=["student"]), artifacts)


def test_a_family_served_by_a_scorer_cannot_be_champion(tmp_path):
    artifacts = ArtifactStore(root=str(tmp_path))
    _report(artifacts)
    with pytest.raises(NoChampionError, match=r"\['gf_cf'\], which are served by a scorer"):
        champion_model(build_asset_context(), ChampionConfig(models=["lightgcn", "gf_cf"]), artifacts)


@pytest.mark.parametrize(("popularity", "margin", "passed"), [
    ({"recall@20": 0.150, "ndcg@20": 0.100}, 0.0, True),
    ({"recall@20": 0.150, "ndcg@20": 0.100}, 0.35, False),  # lightgcn's recall is 33% ahead, its ndcg 50%
    ({"recall@20": 0.150, "ndcg@20": 0.160}, 0.0, False),   # behind on NDCG alone
    ({"recall@20": 0.250, "ndcg@20": 0.100}, 0.0, False),
])
def test_the_champion_must_beat_every_baseline_on_validation(tmp_path, popularity, margin, passed):
    artifacts = ArtifactStore(root=str(tmp_path))
    valid = {"lightgcn": {"recall@20": 0.200, "ndcg@20": 0.150, "bias": 0.01},
             "item_knn": {"recall@20": 0.100, "ndcg@20": 0.080, "bias": 0.01}}
    _report(artifacts, valid, baselines=["popularity", "item_knn"], popularity={**popularity, "bias": 0.0})
    write_json(artifacts.path(*CHAMPION), {"model": "lightgcn"})
    result = champion_beats_baselines(build_asset_check_context(), BaselineMarginConfig(margin=margin), artifacts)
    assert result.passed is passed
    if passed:
        assert result.description == "lightgcn beats every baseline on validation"
    else:
        assert result.description.startswith("popularity has validation ")
        assert "item_knn" not in result.description  # item_knn is far behind at any of these margins


def test_filter_vectors_are_not_held_to_their_own_full_filter(tmp_path):
    # bspm_factors (the published form of bspm) is behind bspm but ahead of every other baseline: it passes, and the
    # check shows the gap; behind gf_cf it would not.
    artifacts = ArtifactStore(root=str(tmp_path))
    valid = {"bspm_factors": {"recall@20": 0.180, "ndcg@20": 0.150, "bias": 0.01},
             "bspm": {"recall@20": 0.190, "ndcg@20": 0.160, "bias": 0.01},
             "gf_cf": {"recall@20": 0.170, "ndcg@20": 0.140, "bias": 0.01}}
    _report(artifacts, valid, baselines=["popularity", "gf_cf", "bspm", "bspm_factors"],
            popularity={"recall@20": 0.05, "ndcg@20": 0.04, "bias": 0.0})
    write_json(artifacts.path(*CHAMPION), {"model": "bspm_factors"})
    result = champion_beats_baselines(build_asset_check_context(), BaselineMarginConfig(), artifacts)
    assert result.passed and result.description == "bspm_factors beats every baseline on validation"
    assert result.metadata["vectors against their full filter"].value == (
        "bspm_factors 0.1800 against bspm 0.1900 (validation recall@20; not a condition)")
    valid["gf_cf"]["recall@20"] = 0.185
    _report(artifacts, valid, baselines=["popularity", "gf_cf", "bspm", "bspm_factors"],
            popularity={"recall@20": 0.05, "ndcg@20": 0.04, "bias": 0.0})
    result = champion_beats_baselines(build_asset_check_context(), BaselineMarginConfig(), artifacts)
    assert not result.passed and result.description.startswith("gf_cf has validation recall@20 0.1850")


def _noisy(mean: float, seed: int, users: int = 400) -> torch.Tensor:
    """Per-user figures spread as Recall@20 is (0 for many users, up to 1), shifted to average ``mean``."""
    values = torch.rand(users, generator=torch.Generator().manual_seed(seed)) ** 3
    return values - values.mean() + mean


@pytest.mark.parametrize(("lead", "level", "passed"), [
    (0.002, 0.05, True),    # popularity ahead by less than the noise: the champion passes, and the check says so
    (0.002, 0.99, False),   # at a level near 1 almost any lead stops it
    (0.060, 0.05, False),   # far ahead: stopped whatever the noise
])
def test_a_baseline_stops_the_champion_only_by_a_lead_above_the_noise(tmp_path, lead, level, passed):
    artifacts = ArtifactStore(root=str(tmp_path))
    champion = {"recall@20": _noisy(0.20, 0), "ndcg@20": _noisy(0.15, 1)}
    popularity = {"recall@20": _noisy(0.20 + lead, 2), "ndcg@20": _noisy(0.10, 3)}
    valid = {name: {metric: float(values.mean()) for metric, values in figures.items()} | {"bias": 0.0}
             for name, figures in (("lightgcn", champion), ("popularity", popularity))}
    per_user = {f"{name}.{metric}": values for name, figures in (("lightgcn", champion), ("popularity", popularity))
                for metric, values in figures.items()}
    _report(artifacts, valid, baselines=["popularity"], per_user=per_user)
    write_json(artifacts.path(*CHAMPION), {"model": "lightgcn"})
    result = champion_beats_baselines(build_asset_check_context(), BaselineMarginConfig(level=level), artifacts)
    assert result.passed is passed
    leads = result.metadata["leads over the champion"].value
    assert "popularity" in leads and "recall@20 standard error" in leads and "recall@20 lead / error" in leads
    if passed:
        assert result.description.startswith("no baseline leads lightgcn on validation by more than the users' "
                                             "noise (")
        assert "standard errors: the largest of 2 leads reaches that by noise in 5% of 2,000 resamples of the " \
               "users); within noise: popularity (recall@20 +0.0020 ± " in result.description
    else:
        assert result.description.startswith(f"popularity has validation recall@20 {0.20 + lead:.4f} against the "
                                              "champion lightgcn's 0.2000, a lead of ")


def _leading_by(champion: torch.Tensor, lead: float, spread: float, seed: int = 7) -> torch.Tensor:
    """``champion`` plus per-user differences of mean exactly ``lead`` and sample standard deviation ``spread``."""
    shape = torch.randn(champion.numel(), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    shape = (shape - shape.mean()) / shape.std(correction=1)
    return champion.double() + lead + spread * shape


@pytest.mark.parametrize(("copies", "others", "passed"), [(0, 0, False), (6, 0, False), (0, 6, True)])
def test_a_lead_must_be_above_the_largest_that_noise_gives_among_every_lead_tested(tmp_path, copies, others, passed):
    # gf_cf leads on Recall@20 by 2.2 standard errors (its NDCG@20 trails by a constant, a lead without noise).
    # Alone that is above the noise (1.645 standard errors for one normal lead); beside six copies of itself (vectors
    # with its very figures) still, since copies add no chance; beside six other baselines tied with the champion,
    # each with its own noise, not (about 2.6): one lead of 2.2 in thirteen comes by chance more often than one time
    # in twenty.
    artifacts = ArtifactStore(root=str(tmp_path))
    users = 400
    champion = {"recall@20": _noisy(0.20, 0, users).double(), "ndcg@20": _noisy(0.15, 1, users).double()}
    gf_cf = {"recall@20": _leading_by(champion["recall@20"], 0.011, 0.1), "ndcg@20": champion["ndcg@20"] - 0.01}
    models = {"lightgcn": champion, "gf_cf": gf_cf, **{f"copy{index}": gf_cf for index in range(copies)},
              **{f"tied{index}": {metric: _leading_by(values, 0.0, 0.1, seed=10 + 2 * index + offset)
                                  for offset, (metric, values) in enumerate(champion.items())}
                 for index in range(others)}}
    valid = {name: {metric: float(values.mean()) for metric, values in figures.items()} | {"bias": 0.0}
             for name, figures in models.items()}
    per_user = {f"{name}.{metric}": values for name, figures in models.items() for metric, values in figures.items()}
    _report(artifacts, valid, baselines=[name for name in models if name != "lightgcn"], per_user=per_user)
    write_json(artifacts.path(*CHAMPION), {"model": "lightgcn"})
    result = champion_beats_baselines(build_asset_check_context(), BaselineMarginConfig(), artifacts)
    threshold = result.metadata["noise threshold (standard errors)"].value
    assert result.passed is passed
    if passed:
        assert 2.3 < threshold < 3.0
        assert "within noise: gf_cf (recall@20 +0.0110 ± 0.0050)" in result.description
    else:
        assert 1.55 < threshold < 1.8
        assert result.description.startswith("gf_cf has validation recall@20 0.2110 against the champion lightgcn's "
                                             "0.2000, a lead of 0.0110 at a standard error of 0.0050")
