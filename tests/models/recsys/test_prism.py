"""PRISM initialization of LightGCN (and its Rawls variant): norms from the training degrees, Xavier directions,
no weight decay, config checks and a short training run on the small matrix."""
import math

import pytest
import torch
import torch.nn.functional as F

from models.recsys.prism import MAX_STRENGTH, prism_init_, prism_magnitudes
from models.recsys.training import LightGCNConfig, train_lightgcn, without_weight_decay_under_prism
from orchestration.config_classes import config_class, from_config
from tests.models.recsys.small_matrix import GRAPH, R

# Degrees of the small matrix, users then items (item 5 has no training user).
USER_DEGREE = [4, 2, 3, 2, 2, 2, 3]
ITEM_DEGREE = [5, 3, 3, 2, 5, 0]
# Held-out pairs the users have not seen in training.
VALID = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [1, 0, 3, 2, 2, 0, 1]])


def _initial_table(**settings) -> torch.Tensor:
    """The layer-0 table a run starts from: zero epochs keep the initialization."""
    config = LightGCNConfig(embedding_dim=8, num_layers=2, epochs=0, seed=5, **settings)
    return train_lightgcn(GRAPH, VALID, config, log=lambda _: None).layer0


def test_small_matrix_degrees_are_the_ones_written_here():
    assert R.sum(1).tolist() == USER_DEGREE and R.sum(0).tolist() == ITEM_DEGREE


@pytest.mark.parametrize("strength", [1.0, 0.5, 2.0])
def test_initial_norms_are_strength_log_degree_plus_two_plus_one_minus_strength(strength):
    norms = _initial_table(init="prism", prism_strength=strength).norm(dim=1)
    expected = [strength * math.log(d + 2) + 1 - strength for d in USER_DEGREE + ITEM_DEGREE]
    assert norms.tolist() == pytest.approx(expected, rel=1e-6)
    if strength == 1.0:  # by hand: user 0 has 4 items, item 5 none
        assert norms[0].item() == pytest.approx(math.log(6), rel=1e-6)
        assert norms[-1].item() == pytest.approx(math.log(2), rel=1e-6)


def test_strength_zero_gives_every_node_the_norm_one():
    norms = _initial_table(init="prism", prism_strength=0.0).norm(dim=1)
    assert torch.allclose(norms, torch.ones(len(USER_DEGREE + ITEM_DEGREE)), atol=1e-6)


def test_directions_are_the_rows_of_a_xavier_uniform_draw_over_the_whole_table():
    torch.manual_seed(0)
    reference = torch.nn.init.xavier_uniform_(torch.empty(13, 8))
    torch.manual_seed(0)
    table = prism_init_(torch.empty(13, 8), prism_magnitudes(torch.arange(13), 1.0))
    assert torch.allclose(F.normalize(table, dim=1), F.normalize(reference, dim=1), atol=1e-6)


def test_the_normal_init_stays_the_default_and_ignores_degrees():
    assert LightGCNConfig().init == "normal"
    table = _initial_table()
    assert abs(table.std().item() - 0.1) < 0.03  # Normal(0, 0.1), with 104 draws


def test_weight_decay_is_off_under_prism_and_the_saved_config_says_so(tmp_path):
    messages = []
    config = LightGCNConfig(embedding_dim=8, num_layers=2, batch_size=8, epochs=1, eval_k=3, init="prism",
                            l2=1e-4)
    result = train_lightgcn(GRAPH, VALID, config, checkpoint_path=tmp_path / "ckpt.pt", log=messages.append)
    assert result.config["l2"] == 0.0 and result.config["init"] == "prism"
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["config"]["l2"] == 0.0
    assert any("without weight decay" in m for m in messages)
    # The normal init keeps the configured decay.
    assert without_weight_decay_under_prism(LightGCNConfig(), messages.append).l2 == 1e-4


@pytest.mark.parametrize("settings, message", [
    ({"init": "xavier"}, "init must be one of"),
    ({"init": "prism", "prism_strength": -0.1}, "prism_strength must lie in"),
    ({"init": "prism", "prism_strength": MAX_STRENGTH}, "prism_strength must lie in"),
])
def test_a_bad_setting_is_a_clear_error(settings, message):
    with pytest.raises(ValueError, match=message):
        LightGCNConfig(**settings)


def test_the_dagster_config_carries_the_init_settings():
    run_config = config_class(LightGCNConfig, "PrismTestConfig")
    assert run_config().init == "normal" and run_config().prism_strength == 1.0
    config = from_config(run_config(init="prism", prism_strength=0.5), LightGCNConfig)
    assert (config.init, config.prism_strength) == ("prism", 0.5)
    with pytest.raises(ValueError, match="init must be one of"):
        from_config(run_config(init="uniform"), LightGCNConfig)


@pytest.mark.parametrize("propagation", ["symmetric", "doubly_stochastic"])
def test_a_short_prism_run_trains_end_to_end(propagation):
    config = LightGCNConfig(embedding_dim=8, num_layers=2, lr=0.05, batch_size=8, epochs=15, eval_every=5, eval_k=3,
                            patience=10, seed=1, init="prism", propagation=propagation)
    result = train_lightgcn(GRAPH, VALID, config, log=lambda _: None)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 15 and losses[-1] < 0.5 * losses[0]
    assert result.best_epoch > 0 and torch.isfinite(result.user_emb).all()
