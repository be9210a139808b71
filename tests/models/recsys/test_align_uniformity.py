"""The alignment + uniformity loss (DirectAU, PRISM's default) against hand-computed values, through LightGCN's
batch terms, and a training run on the small matrix with either init."""
import math

import pytest
import torch

from models.graph.propagation import propagation_matrix
from models.recsys.align_uniformity import align_uniformity_loss, alignment, uniformity
from models.recsys.lightgcn import build_lightgcn
from models.recsys.training import LightGCNConfig, align_uniformity_terms, train_lightgcn
from orchestration.config_classes import config_class, from_config
from tests.models.recsys.small_matrix import GRAPH

VALID = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [1, 0, 3, 2, 2, 0, 1]])


def test_alignment_is_the_mean_squared_distance_of_the_normalised_pairs():
    users = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    items = torch.tensor([[0.0, 5.0], [0.0, 0.5]])
    # Pair 0: (1, 0) against (0, 1), squared distance 2; pair 1: the same direction, 0.
    assert alignment(users, items).item() == pytest.approx(1.0, abs=1e-6)


def test_uniformity_of_three_directions_at_120_degrees_and_of_two_orthogonal_ones():
    angles = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3])
    triangle = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1) * torch.tensor([[1.0], [4.0], [0.3]])
    # Every pair of unit vectors at 120° is √3 apart: log mean exp(−2 · 3) = −6, whatever the norms.
    assert uniformity(triangle).item() == pytest.approx(-6.0, abs=1e-5)
    assert uniformity(torch.tensor([[2.0, 0.0], [0.0, 7.0]])).item() == pytest.approx(-4.0, abs=1e-5)
    # One point repeated is the least uniform set: log 1 = 0.
    assert uniformity(torch.ones(4, 3)).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least two vectors"):
        uniformity(torch.ones(1, 3))


def test_the_loss_adds_gamma_times_the_mean_uniformity_and_nothing_for_a_single_row():
    users, items = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # Alignment (0 + 2) / 2 = 1; users orthogonal: −4; items a single distinct row: no pair, 0.
    assert align_uniformity_loss(users, items, users, items[:1], 0.5).item() == pytest.approx(1.0 + 0.5 * (-4 + 0) / 2,
                                                                                  abs=1e-6)
    assert align_uniformity_loss(users, items, users, items[:1], 0.0).item() == pytest.approx(1.0)


def test_lightgcn_batch_terms_use_the_distinct_users_and_items_and_the_batch_l2():
    torch.manual_seed(0)
    model = build_lightgcn(GRAPH.num_users, GRAPH.num_items, embedding_dim=4, num_layers=2, init_std=0.1)
    adj = propagation_matrix(GRAPH, "symmetric", 1.0)
    users, pos = torch.tensor([0, 0, 2, 3]), torch.tensor([0, 2, 0, 0])  # user 0 and item 0 twice or more
    loss, (batch_users, user_e, batch_items, item_e) = align_uniformity_terms(model, adj, 7, users, pos, l2=0.1,
                                                                              uniformity_weight=2.0)
    final = model.get_embedding(adj).detach()
    layer0 = model.embedding.weight.detach()
    expected = (alignment(final[users], final[7 + pos])
                + 2.0 * (uniformity(final[torch.tensor([0, 2, 3])]) + uniformity(final[7 + torch.tensor([0, 2])])) / 2
                + 0.1 / 2 * layer0[torch.cat([users, 7 + pos])].pow(2).sum() / 4)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.equal(batch_users, users) and torch.equal(batch_items, pos)
    assert torch.allclose(user_e.detach(), final[users]) and torch.allclose(item_e.detach(), final[7 + pos])


@pytest.mark.parametrize("init", ["normal", "prism"])
def test_training_with_the_loss_lowers_it_and_records_it_in_the_config(init):
    config = LightGCNConfig(embedding_dim=8, num_layers=2, batch_size=8, epochs=30, eval_k=3, eval_every=0,
                            lr=0.01, init=init, loss="align_uniformity", seed=3)
    result = train_lightgcn(GRAPH, VALID, config, log=lambda _: None)
    losses = [row["loss"] for row in result.history]
    assert result.config["loss"] == "align_uniformity" and result.config["uniformity_weight"] == 1.0
    assert losses[-1] < losses[0] - 0.1  # alignment starts near 1 for random directions


def test_a_bad_loss_setting_is_a_clear_error_and_the_dagster_config_offers_the_loss():
    with pytest.raises(ValueError, match="loss must be one of"):
        LightGCNConfig(loss="softmax")
    with pytest.raises(ValueError, match="uniformity_weight must be"):
        LightGCNConfig(loss="align_uniformity", uniformity_weight=-1.0)
    run_config = config_class(LightGCNConfig, "AlignUniformityTestConfig")
    assert from_config(run_config(loss="align_uniformity"), LightGCNConfig).loss == "align_uniformity"
