"""Filters that choose their setting on validation: the choice is the best validation Recall@20 of the grid (the
first of equals), each recorded figure is that setting's own validation figure, and the chosen fit is the fit at
that setting; without validation edges a choosing fit refuses; a choice on a seeded sample of the validation users
ranks exactly those users."""
import numpy as np
import pytest
import torch

from models.eval.ranking import evaluate_scores
from models.graph.bipartite import BipartiteGraph
from models.recsys import bspm, sgfcf
from models.recsys.contract import Runtime
from models.recsys.graph_filter import ALPHA_GRID
from models.recsys.registry import FAMILIES
from models.recsys.selection import best_on_validation, validation_sample

NUM_USERS, NUM_ITEMS = 80, 50


def _split() -> tuple[BipartiteGraph, torch.Tensor]:
    """Seeded clustered interactions (two tastes, some noise): 9 training items and 2 validation items per user."""
    rng = np.random.default_rng(3)
    train, valid = [], []
    for user in range(NUM_USERS):
        liked = np.arange(25) if user % 2 else np.arange(20, 50)  # overlapping halves of the catalogue
        items = rng.choice(np.concatenate([liked, liked, rng.integers(0, NUM_ITEMS, 6)]), 40)
        items = list(dict.fromkeys(items.tolist()))[:11]
        train += [(user, item) for item in items[:9]]
        valid += [(user, item) for item in items[9:]]
    graph = BipartiteGraph(torch.tensor(train).T, NUM_USERS, NUM_ITEMS)
    return graph, torch.tensor(valid).T


def _valid_recall(fitted, graph, valid) -> float:
    return evaluate_scores(fitted.score, graph, valid, ks=(20,)).summary()["recall@20"]


def _fit(name, graph, valid, **settings):
    family = FAMILIES[name]
    return family.fit(graph, valid, family.config_type(**settings), Runtime())


def test_best_on_validation_keeps_the_first_of_equals_and_refuses_without_validation():
    graph, valid = _split()
    oracle = torch.zeros(NUM_USERS, NUM_ITEMS)
    oracle[valid[0], valid[1]] = 1.0  # ranks each user's validation items first: recall 1
    scorers = {"flat": lambda users: torch.zeros(users.numel(), NUM_ITEMS), "oracle": lambda users: oracle[users],
               "oracle again": lambda users: oracle[users]}
    chosen, history = best_on_validation(list(scorers), scorers.get, graph, valid, "test", lambda n: {"name": n})
    assert chosen == "oracle" and [row["name"] for row in history] == list(scorers)
    assert history[1]["valid_recall"] == history[2]["valid_recall"] == 1.0 > history[0]["valid_recall"]
    with pytest.raises(ValueError, match="test chooses its setting on validation, but there are no validation"):
        best_on_validation(list(scorers), scorers.get, graph, torch.empty(2, 0, dtype=torch.long), "test",
                           lambda n: {"name": n})


def test_a_validation_sample_keeps_every_interaction_of_the_drawn_users_only():
    _, valid = _split()
    sample = validation_sample(valid, 30, seed=7)
    drawn = torch.unique(sample[0])
    assert drawn.numel() == 30
    assert torch.equal(sample, valid[:, torch.isin(valid[0], drawn)])  # all their edges, in the given order
    assert torch.equal(validation_sample(valid, 30, seed=7), sample)
    assert not torch.equal(torch.unique(validation_sample(valid, 30, seed=8)[0]), drawn)
    assert validation_sample(valid, 0, seed=7) is valid and validation_sample(valid, NUM_USERS, seed=7) is valid
    with pytest.raises(ValueError, match="users >= 0"):
        validation_sample(valid, -1, seed=7)


def test_a_choice_on_a_sample_ranks_the_sampled_users_only():
    graph, valid = _split()
    scorers = {"popular": lambda users: graph.item_degree().float().repeat(users.numel(), 1),
               "flat": lambda users: torch.zeros(users.numel(), NUM_ITEMS)}
    _, history = best_on_validation(list(scorers), scorers.get, graph, valid, "test", lambda n: {"name": n},
                                    sample_users=25, seed=3)
    sample = validation_sample(valid, 25, seed=3)
    assert [row["valid_users"] for row in history] == [25, 25]
    assert history[0]["valid_recall"] == pytest.approx(
        evaluate_scores(scorers["popular"], graph, sample, ks=(20,)).summary()["recall@20"], abs=1e-7)
    _, everyone = best_on_validation(list(scorers), scorers.get, graph, valid, "test", lambda n: {"name": n})
    assert everyone[0]["valid_users"] == NUM_USERS and everyone[0]["valid_recall"] != history[0]["valid_recall"]


@pytest.mark.parametrize("name", ["gf_cf", "gf_cf_factors", "bspm", "bspm_factors", "sgfcf", "sgfcf_factors"])
def test_a_negative_choice_sample_is_refused(name):
    with pytest.raises(ValueError, match="choice_users must be an integer >= 0"):
        FAMILIES[name].config_type(choice_users=-5)


# Each choosing family's grid and the fields it chooses; SGFCF's ranks are capped at the 49 triplets ARPACK gives
# of a matrix with 50 items.
GRIDS = {"gf_cf": ([{"alpha": alpha} for alpha in ALPHA_GRID], ("alpha",)),
         "bspm": (list(bspm.SETTING_GRID), bspm.CHOSEN_FIELDS),
         "sgfcf": ([{**setting, "rank": min(setting.get("rank", 8), NUM_ITEMS - 1)} for setting in sgfcf.SETTING_GRID],
                   sgfcf.CHOSEN_FIELDS)}


@pytest.mark.parametrize(("name", "small"), [("gf_cf", {"rank": 8}), ("gf_cf_factors", {"rank": 8, "factor_rank": 20}),
                                             ("bspm", {"rank": 8}), ("bspm_factors", {"rank": 8, "factor_rank": 20}),
                                             ("sgfcf", {"rank": 8}), ("sgfcf_factors", {"rank": 8})])
def test_a_filter_chooses_its_setting_on_validation(name, small):
    graph, valid = _split()
    grid, keys = GRIDS[name.removesuffix("_factors")]
    fixed = [_fit(name, graph, valid, **{**small, **setting}) for setting in grid]
    figures = [_valid_recall(fitted, graph, valid) for fitted in fixed]
    assert len(set(figures)) > 1  # the grid's settings rank differently here, so the choice is exercised

    best = fixed[int(np.argmax(figures))]
    if name.startswith("sgfcf"):
        # Then the popularity prior's weights at the chosen setting, recorded after the settings.
        setting = grid[int(np.argmax(figures))]
        weighed = [_fit(name, graph, valid, **{**small, **setting, "prior": weight}) for weight in sgfcf.PRIOR_GRID]
        weighed_figures = [_valid_recall(fitted, graph, valid) for fitted in weighed]
        assert weighed_figures[0] == max(figures) and len(set(weighed_figures)) > 1
        figures, best = figures + weighed_figures, weighed[int(np.argmax(weighed_figures))]

    chosen = _fit(name, graph, valid, **small, choose_on_validation=True)
    assert [row["valid_recall"] for row in chosen.record.history] == pytest.approx(figures, abs=1e-6)
    assert {key: chosen.config[key] for key in keys} == {key: best.config[key] for key in keys}
    torch.testing.assert_close(chosen.score(torch.arange(NUM_USERS)), best.score(torch.arange(NUM_USERS)))
    # What a choosing fit saves (SGFCF keeps the chosen triplets only) restores the chosen scores.
    restored = FAMILIES[name].restore(chosen.tensors(), chosen.config)
    torch.testing.assert_close(restored.score(torch.arange(NUM_USERS)), chosen.score(torch.arange(NUM_USERS)))
    with pytest.raises(ValueError, match="no validation interactions"):
        _fit(name, graph, torch.empty(2, 0, dtype=torch.long), **small, choose_on_validation=True)
