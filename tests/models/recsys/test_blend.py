"""A blend of two filters: its scores are the weighted sum of the two filters' per-user standardised scores, the ends
of its weight rank as each filter alone, a choosing fit takes the weight with the best validation Recall@20 and
records each weight's figure, a fit restores from what it saves, and a bad config says what is wrong. The blend of
two filters' vectors is vectors whose scores are that sum less a constant per user."""
import numpy as np
import pytest
import torch

from models.eval.ranking import evaluate_scores
from models.recsys.blend import (
    WEIGHT_GRID,
    FactorBlend,
    FactorBlendConfig,
    FilterBlend,
    FilterBlendConfig,
    score_spread,
    standardised,
)
from models.recsys.contract import Runtime
from models.recsys.registry import FAMILIES
from tests.models.recsys.test_selection import NUM_USERS, _split

USERS = torch.arange(NUM_USERS)
SGFCF, BSPM = {"rank": 8, "gamma": 0.5}, {"rank": 8}
BSPM_VECTORS = {**BSPM, "factor_rank": 12}


def _blend(graph, valid, **settings):
    config = FilterBlendConfig(first_settings=SGFCF, second_settings=BSPM, **settings)
    return FilterBlend().fit(graph, valid, config, Runtime())


def _member(name, graph, valid, settings):
    return FAMILIES[name].fit(graph, valid, FAMILIES[name].config_type(**settings), Runtime())


def _dense_z(scores: np.ndarray) -> np.ndarray:
    return (scores - scores.mean(1, keepdims=True)) / scores.std(1, ddof=1, keepdims=True)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_the_blend_mixes_the_two_standardised_filters(weight):
    graph, valid = _split()
    first = _member("sgfcf", graph, valid, SGFCF).score(USERS).double().numpy()
    second = _member("bspm", graph, valid, BSPM).score(USERS).double().numpy()
    expected = weight * _dense_z(first) + (1 - weight) * _dense_z(second)
    np.testing.assert_allclose(_blend(graph, valid, weight=weight).score(USERS).numpy(), expected, atol=2e-5)


def test_a_constant_row_standardises_to_zero_not_nan():
    rows = torch.tensor([[2.0, 2.0, 2.0], [1.0, 2.0, 3.0]])
    assert standardised(rows).tolist() == [[0.0, 0.0, 0.0], [-1.0, 0.0, 1.0]]


def test_the_choice_takes_the_best_validation_weight_and_restores_it():
    graph, valid = _split()
    figures = [evaluate_scores(_blend(graph, valid, weight=weight).score, graph, valid, ks=(20,)).summary()["recall@20"]
               for weight in WEIGHT_GRID]
    assert len(set(figures)) > 1  # the weights rank differently here, so the choice is exercised
    chosen = _blend(graph, valid, choose_on_validation=True)
    assert [row["weight"] for row in chosen.record.history] == list(WEIGHT_GRID)
    assert [row["valid_recall"] for row in chosen.record.history] == pytest.approx(figures, abs=1e-6)
    assert chosen.config["weight"] == WEIGHT_GRID[int(np.argmax(figures))]
    # The members' resolved configs are kept, so the fit restores from its saved tensors alone.
    assert chosen.config["first_settings"]["rank"] == 8 and chosen.config["second_settings"]["beta"] == 0.2
    restored = FilterBlend().restore(chosen.tensors(), chosen.config)
    torch.testing.assert_close(restored.score(USERS), chosen.score(USERS))


@pytest.mark.parametrize(("settings", "message"), [
    ({"weight": 1.5}, "weight must lie in"), ({"first": "lightgcn"}, "first must be one of"),
    ({"second": "sgfcf"}, "two different filters"), ({"choice_users": -1}, "choice_users"),
])
def test_a_bad_blend_config_says_what_is_wrong(settings, message):
    with pytest.raises(ValueError, match=message):
        FilterBlendConfig(**settings)


def _vector_members(graph, valid):
    return [_member("sgfcf_factors", graph, valid, SGFCF), _member("bspm_factors", graph, valid, BSPM_VECTORS)]


def test_the_score_spread_is_the_standard_deviation_of_the_scores():
    generator = torch.Generator().manual_seed(0)
    users, items = torch.randn(7, 5, generator=generator), torch.randn(300, 5, generator=generator) + 3.0
    users[2] = 0.0  # scores all 0: a spread of 1, as standardised divides by
    expected = (users.double() @ items.double().T).std(1)
    expected[2] = 1.0
    torch.testing.assert_close(score_spread(users, items).double(), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_the_blend_of_vectors_scores_as_the_blend_of_their_standardised_scores(weight):
    graph, valid = _split()
    first, second = (member.score(USERS).double().numpy() for member in _vector_members(graph, valid))
    expected = weight * _dense_z(first) + (1 - weight) * _dense_z(second)
    blended = FactorBlend().blend(_vector_members(graph, valid), graph, valid, FactorBlendConfig(weight=weight),
                                  Runtime())
    # SGFCF's K and BSPM's m + k dimensions, only those of a filter with a share.
    assert blended.has_vectors and blended.user_emb.shape[1] == 8 * (weight > 0) + (12 + 8) * (weight < 1)
    scores = blended.score(USERS).double().numpy()
    np.testing.assert_allclose(scores - scores.mean(1, keepdims=True), expected, atol=2e-5)


def test_the_blend_of_vectors_chooses_its_best_validation_weight_and_restores_from_its_vectors():
    graph, valid = _split()
    members = _vector_members(graph, valid)

    def blended(**settings):
        return FactorBlend().blend(members, graph, valid, FactorBlendConfig(**settings), Runtime())

    figures = [evaluate_scores(blended(weight=weight).score, graph, valid, ks=(20,)).summary()["recall@20"]
               for weight in WEIGHT_GRID]
    assert len(set(figures)) > 1
    chosen = blended(choose_on_validation=True)
    assert [row["valid_recall"] for row in chosen.record.history] == pytest.approx(figures, abs=1e-6)
    assert chosen.config["weight"] == WEIGHT_GRID[int(np.argmax(figures))]
    assert chosen.config["second_settings"]["factor_rank"] == 12
    restored = FactorBlend().restore(chosen.tensors(), chosen.config)
    torch.testing.assert_close(restored.score(USERS), chosen.score(USERS))


def test_a_blend_refuses_fits_of_other_filters_and_a_vector_blend_takes_only_vectors():
    graph, valid = _split()
    with pytest.raises(ValueError, match="blends fits of sgfcf_factors and bspm_factors, in that order"):
        FactorBlend().blend(_vector_members(graph, valid)[::-1], graph, valid, FactorBlendConfig(), Runtime())
    with pytest.raises(ValueError, match="first must be one of .*sgfcf_factors"):
        FactorBlendConfig(first="sgfcf")
