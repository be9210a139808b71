"""Compatibility losses and the cross-version report: BCT's exact value and its gradient at new = old, ids missing
from the old version contributing nothing, the hyperbolic loss's cone and alignment terms, training through
``train_lightgcn``, and the retrieval matrix on a hand-built example."""
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from models.eval.compat_report import compatibility_report, report_markdown
from models.graph.bipartite import BipartiteGraph
from models.recsys.compat import BCTLoss, HyperbolicCompatibilityLoss, make_compatibility_loss
from models.recsys.hyperbolic import distance, distance_to_origin, expmap0
from models.recsys.training import LightGCNConfig, train_lightgcn


def test_bct_loss_equals_the_hand_computed_value():
    old_users, old_items = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    user_emb, item_emb = torch.tensor([[2.0, 1.0]]), torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    loss = BCTLoss(old_users, old_items, weight=0.5)(torch.tensor([0]), user_emb, torch.tensor([0, 1]), item_emb)
    # new user on old items: softplus([2,1]·([0,1] − [1,0])) = softplus(−1);
    # old user on new items: softplus([1,0]·([0,2] − [1,1])) = softplus(−1); λ = 0.5, B = 1.
    assert math.isclose(float(loss), math.log1p(math.exp(-1.0)), rel_tol=1e-6)


def test_bct_loss_is_positive_at_new_equals_old_and_a_gradient_step_lowers_it():
    generator = torch.Generator().manual_seed(0)
    old_users, old_items = torch.randn(5, 4, generator=generator), torch.randn(7, 4, generator=generator)
    users, items = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3, 4, 5, 6, 0])
    user_emb = old_users[users].clone().requires_grad_(True)
    item_emb = old_items[items].clone().requires_grad_(True)
    loss_fn = BCTLoss(old_users, old_items)
    loss = loss_fn(users, user_emb, items, item_emb)
    loss.backward()
    assert float(loss) > 0 and float(user_emb.grad.abs().sum()) > 0 and float(item_emb.grad.abs().sum()) > 0
    with torch.no_grad():
        stepped = loss_fn(users, user_emb - 0.1 * user_emb.grad, items, item_emb - 0.1 * item_emb.grad)
    assert float(stepped) < float(loss)


@pytest.mark.parametrize("method", ["bct", "hyperbolic"])
def test_ids_missing_from_the_old_version_contribute_nothing(method):
    generator = torch.Generator().manual_seed(1)
    old_users, old_items = torch.randn(3, 4, generator=generator), torch.randn(4, 4, generator=generator)
    loss_fn = make_compatibility_loss(method, old_users, old_items, **({"align_weight": 1.0} if method == "hyperbolic"
                                                                       else {}))
    # user 5 and item 7 were appended after the old version; the second triple involves both
    users, items = torch.tensor([0, 5]), torch.tensor([1, 7, 2, 3])
    user_emb = torch.randn(2, 4, generator=generator, requires_grad=True)
    item_emb = torch.randn(4, 4, generator=generator, requires_grad=True)
    loss = loss_fn(users, user_emb, items, item_emb)
    loss.backward()
    assert float(loss) > 0
    assert float(user_emb.grad[1].abs().sum()) == 0.0 and float(item_emb.grad[1].abs().sum()) == 0.0
    moved_user, moved_item = user_emb.detach().clone(), item_emb.detach().clone()
    moved_user[1], moved_item[1] = 100.0, -100.0
    assert float(loss_fn(users, moved_user, items, moved_item)) == pytest.approx(float(loss), rel=1e-6)


def test_hyperbolic_loss_is_zero_when_every_new_vector_extends_its_old_one():
    generator = torch.Generator().manual_seed(2)
    old_users, old_items = torch.randn(6, 8, generator=generator), torch.randn(10, 8, generator=generator)
    loss_fn = HyperbolicCompatibilityLoss(old_users, old_items, weight=1.0, align_weight=0.0)
    users, items = torch.arange(6), torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
    inside = loss_fn(users, 1.5 * old_users[users], items, 1.5 * old_items[items])
    outside = loss_fn(users, -old_users[users], items, -old_items[items])
    assert float(inside) == 0.0
    assert float(outside) > 1.0  # each vector points away from its cone: ext ≈ π, aperture ≤ π/2


def test_hyperbolic_alignment_is_the_certainty_weighted_infonce_over_hyperbolic_distances():
    old_users = torch.tensor([[1.0, 0.0], [0.0, 3.0], [-2.0, -2.0]], dtype=torch.float64)
    old_items = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    loss_fn = HyperbolicCompatibilityLoss(old_users, old_items, weight=0.0, align_weight=1.0, scale=0.5,
                                          temperature=0.5)
    users = torch.tensor([0, 1, 2])
    user_emb = torch.tensor([[1.0, 0.5], [0.5, 2.0], [-1.0, -2.5]], dtype=torch.float64)
    # every item row is the same item: no negatives, so the item term is exactly zero
    items, item_emb = torch.tensor([0, 0]), old_items[[0, 0]]
    loss = loss_fn(users, user_emb, items, item_emb)

    parent, child = expmap0(0.5 * old_users, 1.0), expmap0(0.5 * user_emb, 1.0)
    nce = F.cross_entropy(-distance(child, parent, 1.0, pairwise=True) / 0.5, torch.arange(3), reduction="none")
    certainty = distance_to_origin(parent, 1.0)  # = 0.5‖ē‖: 0.5, 1.5, √2
    expected = (certainty / certainty.mean() * nce).mean()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(certainty, torch.tensor([0.5, 1.5, math.sqrt(2)], dtype=torch.float64))


def test_default_scale_puts_the_median_old_user_at_radius_one():
    old_users = torch.tensor([[3.0, 4.0], [0.0, 1.0], [10.0, 0.0]])  # norms 5, 1, 10
    assert HyperbolicCompatibilityLoss(old_users, old_users).scale == pytest.approx(1 / 5)
    assert HyperbolicCompatibilityLoss(old_users, old_users, curvature=4.0).scale == pytest.approx(1 / 10)


def test_make_compatibility_loss_returns_none_without_an_old_version_and_rejects_unknown_methods():
    old = torch.randn(3, 2)
    assert make_compatibility_loss("none", old, old) is None
    assert make_compatibility_loss("bct", None, None) is None
    assert make_compatibility_loss("bct", old, old, weight=0.3).weight == 0.3
    with pytest.raises(ValueError, match="unknown compatibility method 'lwf'"):
        make_compatibility_loss("lwf", old, old)


def _two_blocks() -> tuple[BipartiteGraph, torch.Tensor]:
    """Users 0–7 like items 0–5, users 8–15 like items 6–11; every user holds out one item of its block."""
    users = torch.arange(16).repeat_interleave(5)
    items = (users // 8) * 6 + torch.arange(80) % 6
    held_out = torch.arange(80) % 5 == users % 5
    train = torch.stack([users[~held_out], items[~held_out]])
    return BipartiteGraph(train, 16, 12), torch.stack([users[held_out], items[held_out]])


CONFIG = LightGCNConfig(embedding_dim=8, num_layers=2, lr=0.05, batch_size=64, epochs=20, eval_every=20, eval_k=5)


@pytest.fixture(scope="module")
def old_version() -> tuple[BipartiteGraph, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    graph, valid = _two_blocks()
    old = train_lightgcn(graph, valid, CONFIG, log=lambda m: None)
    return graph, valid, (old.user_emb, old.item_emb)


@pytest.mark.parametrize("method, cross_at_least, cross_below", [("none", 0.0, 0.5), ("bct", 0.9, 1.01),
                                                                  ("hyperbolic", 0.9, 1.01)])
def test_training_with_a_compatibility_loss_makes_new_users_rank_the_old_items(old_version, method, cross_at_least,
                                                                                cross_below):
    graph, valid, old = old_version
    new = train_lightgcn(graph, valid, replace(CONFIG, seed=7), log=lambda m: None,
                         auxiliary_loss=make_compatibility_loss(method, *old))
    report = compatibility_report((new.user_emb, new.item_emb), {"old": old}, graph, valid, ks=(5,),
                                  criterion_metric="recall@5")
    entry = report["ancestors"]["old"]
    assert entry["old_old"]["recall@5"] == 1.0 and report["new_new"]["recall@5"] == 1.0  # separable blocks
    # the independent model of seed 7 lands with the blocks swapped: its users rank the old items of the other
    # block; the compatible ones rank them as well as the old users do
    assert cross_at_least <= entry["new_old"]["recall@5"] < cross_below


# Hand example for the report: two users, three items; train u0–i0, u1–i1; both hold out i2 (k = 1).
TRAIN = BipartiteGraph(torch.tensor([[0, 1], [0, 1]]), num_users=2, num_items=3)
HELD_OUT = torch.tensor([[0, 1], [2, 2]])
OLD = (torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
NEW = (torch.tensor([[-1.0, -0.5], [1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]]))
INDEPENDENT = (torch.tensor([[-1.0, -0.5], [-1.0, 0.0]]), NEW[1])


def test_compatibility_report_on_a_hand_example_gives_the_exact_matrix_criterion_and_gain():
    report = compatibility_report(NEW, {"v1": OLD}, TRAIN, HELD_OUT, ks=(1,), criterion_metric="recall@1",
                                  independent=INDEPENDENT)
    entry = report["ancestors"]["v1"]
    # old/old: u0 ranks i1 (0) over i2 (−1), u1 ranks i0 (0) over i2 (−1): no hit.
    assert entry["old_old"] == {"recall@1": 0.0, "ndcg@1": 0.0}
    # new users on old items: u0 scores i1 −0.5, i2 1.5 (hit); u1 scores i0 1, i2 −1 (miss).
    assert entry["new_old"] == {"recall@1": 0.5, "ndcg@1": 0.5}
    # old users on new items: u0 scores i1 0, i2 −1 (miss); u1 scores i0 0, i2 1 (hit).
    assert entry["old_new"] == {"recall@1": 0.5, "ndcg@1": 0.5}
    assert report["new_new"]["recall@1"] == 0.5 and report["independent_new"]["recall@1"] == 1.0
    assert entry["criterion"] and entry["reverse_criterion"] and report["compatible"]
    assert entry["update_gain"]["recall@1"] == pytest.approx(0.5)  # (0.5 − 0) / (1.0 − 0)
    assert (entry["users"], entry["items"]) == (2, 3)


def test_report_against_a_version_without_the_newest_item_ranks_only_the_ids_it_holds():
    held_out = torch.tensor([[0, 1, 0], [2, 2, 1]])  # i2 was appended after v0; only u0–i1 is comparable
    v0 = (OLD[0], OLD[1][:2])
    report = compatibility_report(NEW, {"v0": v0}, TRAIN, held_out, ks=(1,), criterion_metric="recall@1")
    entry = report["ancestors"]["v0"]
    assert (entry["users"], entry["items"]) == (2, 2)
    # u0's only unmasked candidate among i0, i1 is i1: every pair hits
    assert entry["old_old"]["recall@1"] == entry["new_old"]["recall@1"] == 1.0
    assert not entry["criterion"] and not report["compatible"]  # equal is not better


def test_report_markdown_renders_the_cross_version_matrix():
    report = compatibility_report(NEW, {"v1": OLD}, TRAIN, HELD_OUT, ks=(1,), criterion_metric="recall@1")
    assert report_markdown(report, "v2").splitlines() == [
        "| users \\ items (recall@1) | v2 | v1 |",
        "|---|---|---|",
        "| v2 | 0.5000 | 0.5000 |",
        "| v1 | 0.5000 | 0.0000 |",
        "",
        "- v2 vs v1: M(new, old) > M(old, old) (0.5000 vs 0.0000), update gain 1.000",
        "- compatible with every ancestor: yes",
    ]


def test_train_lightgcn_applies_the_configured_loss_against_the_old_version(old_version):
    """``old_version`` with ``config.compatibility`` trains exactly as passing that method's loss by hand."""
    graph, valid, old = old_version
    config = replace(CONFIG, seed=7, compatibility="bct", compatibility_weight=0.5)
    through_config = train_lightgcn(graph, valid, config, log=lambda m: None, old_version=old)
    by_hand = train_lightgcn(graph, valid, config, log=lambda m: None,
                             auxiliary_loss=make_compatibility_loss("bct", *old, weight=0.5))
    torch.testing.assert_close(through_config.user_emb, by_hand.user_emb, rtol=0, atol=0)
    with pytest.raises(ValueError, match="compatibility is 'lwf'"):
        train_lightgcn(graph, valid, replace(CONFIG, compatibility="lwf"), log=lambda m: None, old_version=old)
