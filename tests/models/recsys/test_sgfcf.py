"""SGFCF's scores equal the authors' dense computation on a small matrix (the user factors U of a numpy SVD, not the
fold-in the family scores with), with and without the popularity prior (plain or recency-weighted); its vectors
equal the filter up to the high part's truncated spectrum; fits survive a save; a user without training items and a
bad config are handled; a choosing fit takes the prior where the validation items are the popular ones, and its
half-life where they are the recently popular ones."""
import numpy as np
import pytest
import torch

from models.graph.bipartite import BipartiteGraph
from models.recsys.contract import Runtime
from models.recsys.sgfcf import PRIOR_GRID, PRIOR_HALF_LIVES, SGFCF, SGFCFConfig, SGFCFFactors
from tests.models.recsys.small_matrix import EDGES, GRAPH, USERS, R

RANK = 3  # of a 7 × 6 matrix of rank 5
NO_VALID = torch.empty(2, 0, dtype=torch.long)
# The small matrix with interaction times: edge e happened 3·e days before the last one.
AGES_DAYS = 3.0 * np.arange(EDGES.size(1))[::-1]
TIMED = BipartiteGraph(EDGES, 7, 6, torch.from_numpy(1.7e9 - AGES_DAYS * 86_400.0))


def _normalized(exponent: float, offset: float) -> np.ndarray:
    def scale(degree):
        return np.where(degree > 0, (np.maximum(degree, 1) + offset) ** -exponent, 0.0)  # item 5 has degree 0

    return scale(R.sum(1))[:, None] * R * scale(R.sum(0))[None, :]


def _dense_scores(rank: int, beta: float, exponent: float, offset: float, gamma: float,
                  high_rank: int | None = None, prior: float = 0.0, half_life: float = 0.0) -> np.ndarray:
    """The authors' ``sgfcf_wo_igf`` in numpy: ``low = U_K σ̂^2β V_Kᵀ`` and ``R̃R̃ᵀR̃``, each row-normalised;
    with ``high_rank``, the high part from that many triplets only; plus ``prior`` times each item's share of the
    interactions, each weighted ``0.5 ** (age / half_life)`` (:data:`AGES_DAYS`) with a half-life."""
    normalized = _normalized(exponent, offset)
    u, s, vt = np.linalg.svd(normalized)
    low = (u[:, :rank] * (s[:rank] / s[0]) ** (2 * beta)) @ vt[:rank]
    high = normalized @ normalized.T @ normalized
    sums = high.sum(1, keepdims=True)
    if high_rank is not None:
        high = (u[:, :high_rank] * s[:high_rank] ** 3) @ vt[:high_rank]
    weights = 0.5 ** (AGES_DAYS / half_life) if half_life > 0 else np.ones(len(AGES_DAYS))
    counts = np.bincount(EDGES[1].numpy(), weights=weights, minlength=R.shape[1])
    return low / low.sum(1, keepdims=True) + gamma * high / sums + prior * counts / counts.sum()


SETTINGS = [{}, {"beta": 1.0, "gamma": 0.5, "offset": 2.0, "exponent": 0.5}, {"beta": 2.0, "gamma": 0.0},
            {"gamma": 0.5, "prior": 0.3}, {"gamma": 0.0, "prior": 2.0},
            {"gamma": 0.5, "prior": 0.3, "prior_half_life_days": 7.0}]


def _fit(family, graph=TIMED, **settings):
    return family.fit(graph, NO_VALID, SGFCFConfig(**{"rank": RANK, **settings}), Runtime())


@pytest.mark.parametrize("settings", SETTINGS)
def test_sgfcf_equals_the_dense_computation(settings):
    config = SGFCFConfig(rank=RANK, **settings)
    expected = _dense_scores(RANK, config.beta, config.exponent, config.offset, config.gamma, prior=config.prior,
                             half_life=config.prior_half_life_days)
    scores = _fit(SGFCF(), **settings).score(USERS).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)


def test_the_prior_half_life_changes_the_scores_and_needs_times():
    # On this matrix the decayed shares differ from the plain ones; without times a half-life has nothing to weigh.
    assert not np.allclose(_dense_scores(RANK, 1.3, 0.34, 0.0, 0.5, prior=0.3, half_life=7.0),
                           _dense_scores(RANK, 1.3, 0.34, 0.0, 0.5, prior=0.3), atol=1e-3)
    untimed = _fit(SGFCF(), GRAPH, gamma=0.5, prior=0.3, prior_half_life_days=7.0).score(USERS)
    torch.testing.assert_close(untimed, _fit(SGFCF(), GRAPH, gamma=0.5, prior=0.3).score(USERS))


def test_the_normalisation_and_the_high_part_change_the_ranking():
    # The settings are not equivalent on this matrix: each field the tests vary moves some user's scores.
    base = _dense_scores(RANK, 1.3, 0.34, 0.0, 1.6)
    for changed in (_dense_scores(RANK, 1.3, 0.5, 0.0, 1.6), _dense_scores(RANK, 1.3, 0.34, 0.0, 0.0),
                    _dense_scores(RANK, 1.3, 0.34, 3.0, 1.6)):
        assert not np.allclose(changed, base, atol=1e-3)


@pytest.mark.parametrize("settings", SETTINGS)
def test_sgfcf_vectors_truncate_only_the_high_part(settings):
    config = SGFCFConfig(rank=RANK, **settings)
    factors = _fit(SGFCFFactors(), **settings)
    dims = RANK + (config.prior != 0)  # the prior is one more dimension
    assert factors.has_vectors and factors.user_emb.shape == (7, dims) and factors.item_emb.shape == (6, dims)
    expected = _dense_scores(RANK, config.beta, config.exponent, config.offset, config.gamma, high_rank=RANK,
                             prior=config.prior, half_life=config.prior_half_life_days)
    np.testing.assert_allclose(factors.score(USERS).numpy(), expected, rtol=1e-4, atol=1e-5)
    full = _fit(SGFCF(), **settings).score(USERS).numpy()
    assert np.allclose(factors.score(USERS).numpy(), full, atol=1e-4) == (config.gamma == 0)


def test_sgfcf_vectors_at_full_rank_equal_the_filter():
    # R̃ has rank 5 (item 5 has no user): 5 triplets carry the whole high part too.
    full = _fit(SGFCF(), rank=5).score(USERS).numpy()
    np.testing.assert_allclose(_fit(SGFCFFactors(), rank=5).score(USERS).numpy(), full, rtol=1e-4, atol=1e-5)


def test_saved_sgfcf_fits_restore_the_same_scores(tmp_path):
    for family in (SGFCF(), SGFCFFactors()):
        fitted = _fit(family, gamma=0.7, offset=1.0, prior=0.2, prior_half_life_days=7.0)
        torch.save(fitted.tensors(), tmp_path / "fit.pt")
        restored = family.restore(torch.load(tmp_path / "fit.pt", weights_only=True), fitted.config)
        torch.testing.assert_close(restored.score(USERS), fitted.score(USERS))
        assert restored.config == fitted.config


def test_a_user_without_training_items_scores_zero_not_nan():
    graph = BipartiteGraph(EDGES, 8, 6)  # user 7 has no training item
    for family in (SGFCF(), SGFCFFactors()):
        scores = _fit(family, graph).score(torch.arange(8))
        assert torch.isfinite(scores).all() and torch.equal(scores[7], torch.zeros(6))


@pytest.mark.parametrize("settings,message", [
    ({"rank": 0}, "rank must be an integer >= 1"),
    ({"exponent": -0.1}, "exponent must be >= 0"),
    ({"offset": float("nan")}, "offset must be >= 0"),
    ({"gamma": -1.0}, "gamma must be >= 0"),
    ({"prior": -0.5}, "prior must be >= 0"),
    ({"prior_half_life_days": -1.0}, "prior_half_life_days must be >= 0"),
])
def test_a_bad_sgfcf_config_says_what_is_wrong(settings, message):
    with pytest.raises(ValueError, match=message):
        SGFCFConfig(**settings)


def _hits_split() -> tuple[BipartiteGraph, torch.Tensor]:
    """Two tastes of 90 items each plus 10 hits that everyone takes: each user trains on 8 items of their taste and
    one hit, and the validation item is another hit, as on a temporal split where the next item is a popular one."""
    rng = np.random.default_rng(0)
    train, valid = [], []
    for user in range(120):
        taste = 10 + 90 * (user % 2) + rng.choice(90, 8, replace=False)
        hits = rng.choice(10, 2, replace=False)
        train += [(user, int(item)) for item in (*taste, hits[0])]
        valid.append((user, int(hits[1])))
    return BipartiteGraph(torch.tensor(train).T, 120, 190), torch.tensor(valid).T


@pytest.mark.parametrize("family", [SGFCF(), SGFCFFactors()])
def test_the_choice_takes_the_popularity_prior_where_the_next_items_are_popular(family):
    graph, valid = _hits_split()
    chosen = family.fit(graph, valid, SGFCFConfig(rank=8, choose_on_validation=True), Runtime())
    weighed = chosen.record.history[-len(PRIOR_GRID):]
    assert [row["prior"] for row in weighed] == list(PRIOR_GRID)
    figures = [row["valid_recall"] for row in weighed]
    # Without the prior the filter ranks the user's own taste first (a third of the users find their hit in its top
    # 20); with it, most do; the choice takes the best weight.
    assert figures[0] < 0.4 and max(figures) > 0.8
    assert chosen.config["prior"] == PRIOR_GRID[int(np.argmax(figures))] > 0


def _recent_hits_split() -> tuple[BipartiteGraph, torch.Tensor]:
    """Two tastes of 60 items each, 30 hits of the past and 30 of the last week: each user trains on 6 items of
    their taste (300 days ago) and one past hit (a year ago), two in five users on a recent hit too (this week),
    and the validation item is another recent hit. Past hits have more interactions, recent ones the recent ones."""
    rng = np.random.default_rng(0)
    train, days, valid = [], [], []
    for user in range(150):
        taste = 60 + 60 * (user % 2) + rng.choice(60, 6, replace=False)
        recent = 30 + rng.choice(30, 2, replace=False)
        pairs = [(item, 300.0) for item in taste] + [(int(rng.integers(30)), 365.0)]
        if user % 5 < 2:
            pairs.append((int(recent[0]), float(rng.integers(7))))
        train += [(user, int(item)) for item, _ in pairs]
        days += [age for _, age in pairs]
        valid.append((user, int(recent[1])))
    times = torch.tensor(1.7e9 - np.array(days) * 86_400.0, dtype=torch.float64)
    return BipartiteGraph(torch.tensor(train).T, 150, 180, times), torch.tensor(valid).T


@pytest.mark.parametrize("family", [SGFCF(), SGFCFFactors()])
def test_the_choice_takes_a_recent_prior_where_the_next_items_are_recently_popular(family):
    graph, valid = _recent_hits_split()
    chosen = family.fit(graph, valid, SGFCFConfig(rank=8, choose_on_validation=True), Runtime())
    weighed = chosen.record.history[-(1 + (len(PRIOR_GRID) - 1) * len(PRIOR_HALF_LIVES)):]
    assert [(row["prior"], row["prior_half_life_days"]) for row in weighed[:len(PRIOR_GRID)]] == [
        (weight, 0.0) for weight in PRIOR_GRID]
    plain = max(row["valid_recall"] for row in weighed[:len(PRIOR_GRID)])
    best = max(weighed, key=lambda row: row["valid_recall"])
    # The plain shares rank the past hits above the recent ones; the decayed shares rank the recent ones first.
    assert plain < 0.3 and best["valid_recall"] > 0.5
    assert chosen.config["prior_half_life_days"] == best["prior_half_life_days"] > 0
    assert chosen.config["prior"] == best["prior"] > 0
