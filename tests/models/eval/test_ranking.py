"""Ranking metrics on hand-made rankings, cross-checked with PyG's public metric classes."""
import math

import pytest
import torch
from torch_geometric.metrics import LinkPredNDCG, LinkPredRecall

from models.eval.ranking import (
    HeldOut,
    block_users,
    degree_groups,
    evaluate_candidates,
    evaluate_full_ranking,
    evaluate_held_out,
    evaluate_scores,
    group_means,
    group_variance,
    heldout_item_degree,
    rawls_bias,
    recall_ndcg_from_topk,
)
from models.graph.bipartite import BipartiteGraph
from models.recsys.selection import per_block


def test_recall_and_ndcg_on_a_hand_made_ranking():
    topk = torch.tensor([[3, 1, 4, 0], [2, 0, 1, 3]])
    labels = torch.tensor([[0, 0, 1], [1, 0, 4]])  # row 0 relevant {1, 0}; row 1 relevant {4}
    recall, ndcg = recall_ndcg_from_topk(topk, labels, ks=(2, 4))
    assert recall[2].tolist() == [0.5, 0.0]
    assert recall[4].tolist() == [1.0, 0.0]
    # Row 0: hits at ranks 2 and 4; IDCG@4 with 2 relevant = 1 + 1/log2(3).
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert math.isclose(float(ndcg[4][0]), expected, rel_tol=1e-6)
    assert math.isclose(float(ndcg[2][0]), (1 / math.log2(3)) / (1 + 1 / math.log2(3)), rel_tol=1e-6)
    assert float(ndcg[4][1]) == 0.0


def test_matches_pyg_link_pred_metrics_on_random_rankings():
    gen = torch.Generator().manual_seed(0)
    topk = torch.stack([torch.randperm(30, generator=gen)[:10] for _ in range(50)])
    labels = torch.stack([torch.randint(50, (200,), generator=gen), torch.randint(30, (200,), generator=gen)])
    labels = torch.unique(labels, dim=1)
    recall, ndcg = recall_ndcg_from_topk(topk, labels, ks=(10,))
    pyg_recall, pyg_ndcg = LinkPredRecall(10), LinkPredNDCG(10)
    pyg_recall.update(topk, labels)
    pyg_ndcg.update(topk, labels)
    has_label = torch.bincount(labels[0], minlength=50) > 0
    assert math.isclose(float(recall[10][has_label].mean()), float(pyg_recall.compute()), rel_tol=1e-5)
    assert math.isclose(float(ndcg[10][has_label].mean()), float(pyg_ndcg.compute()), rel_tol=1e-5)


def test_full_ranking_masks_training_items_and_skips_users_without_test_items():
    # 3 users, 4 items. Scores rank items 0 > 1 > 2 > 3 for everyone.
    item_emb = torch.tensor([[4.0], [3.0], [2.0], [1.0]])
    user_emb = torch.ones(3, 1)
    train = BipartiteGraph(torch.tensor([[0, 0, 1], [0, 1, 3]]), 3, 4)
    test = torch.tensor([[0, 1], [2, 0]])  # user 0 → item 2, user 1 → item 0; user 2 has none
    result = evaluate_full_ranking(user_emb, item_emb, train, test, ks=(1, 2), batch_size=1)
    assert result.users.tolist() == [0, 1]
    # User 0: items 0 and 1 are masked, so item 2 ranks first.
    assert result.recall[1].tolist() == [1.0, 1.0]
    assert result.summary()["recall@1"] == 1.0


def test_full_ranking_also_masks_validation_interactions():
    item_emb = torch.tensor([[4.0], [3.0], [2.0], [1.0]])
    train = BipartiteGraph(torch.tensor([[0], [0]]), 1, 4)
    test = torch.tensor([[0], [2]])
    # Unmasked, item 1 takes rank 1; as a known validation interaction it is masked and item 2 ranks first.
    assert evaluate_full_ranking(torch.ones(1, 1), item_emb, train, test, ks=(1,)).summary()["recall@1"] == 0.0
    validation = torch.tensor([[0], [1]])
    masked = evaluate_full_ranking(torch.ones(1, 1), item_emb, train, test, ks=(1,), also_masked=validation)
    assert masked.summary()["recall@1"] == 1.0


def test_degree_groups_bias_and_rawls_bias():
    degree = torch.tensor([1, 1, 2, 2, 3, 10])
    groups = degree_groups(degree, num_groups=3)
    assert groups.tolist() == [0, 0, 1, 1, 2, 2]
    values = torch.tensor([0.0, 0.2, 0.4, 0.4, 1.0, 0.6])
    assert group_means(values, groups) == pytest.approx({0: 0.1, 1: 0.4, 2: 0.8})
    assert math.isclose(group_variance(values, groups), 0.1233333333, rel_tol=1e-6)  # var([.1, .4, .8])
    # RawlsGCN Bias: one group per distinct raw degree: means {1: .1, 2: .4, 3: 1.0, 10: .6}.
    assert math.isclose(rawls_bias(values, degree), 0.1425, rel_tol=1e-6)


def test_degree_groups_keep_a_shared_lowest_degree_apart():
    # Most users of a temporal test set are new (no training interaction): every quantile below the top is 0, and
    # those users make the lowest group while the others make the next (not one group with a bias of 0).
    # Quantiles 0, 0, 0, 0.6: buckets (−∞, 0], (0, 0.6], (0.6, ∞); the middle one is empty.
    degree = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 3, 7])
    assert degree_groups(degree, num_groups=5).tolist() == [0] * 8 + [2, 2]
    assert group_variance(torch.tensor([0.0] * 8 + [0.5, 0.3]), degree_groups(degree, 5)) == pytest.approx(0.08)
    assert degree_groups(torch.tensor([2, 2, 5, 5]), num_groups=2).tolist() == [0, 0, 1, 1]  # median 3.5
    assert degree_groups(torch.tensor([1, 2, 2, 2, 9]), num_groups=2).tolist() == [0, 0, 0, 0, 1]  # median 2


def test_beyond_accuracy_figures_of_hand_made_top_lists():
    """Three users, four items; each user's top-2 is fixed by the scores: u0 → [0, 1], u1 → [0, 1], u2 → [2, 3]."""
    train = BipartiteGraph(torch.empty(2, 0, dtype=torch.long), 3, 4)
    scores = torch.tensor([[4.0, 3, 2, 1], [4, 3, 2, 1], [1, 2, 4, 3]])
    test = torch.tensor([[0, 1, 2], [0, 3, 2]])
    popularity = torch.tensor([10.0, 6, 2, 0])
    result = evaluate_scores(lambda users: scores[users], train, test, ks=(2,), item_popularity=popularity)
    summary = result.summary()
    assert summary["coverage@2"] == 1.0  # all four items are recommended to someone
    # mean over users of the mean popularity of their two items: (8 + 8 + 1) / 3
    assert summary["avg_popularity@2"] == pytest.approx(17 / 3)
    # pairwise list dissimilarity: (u0, u1) identical (0), (u0, u2) and (u1, u2) disjoint (1): mean 2/3
    assert summary["personalization@2"] == pytest.approx(2 / 3)
    assert summary["recall@2"] == pytest.approx((1 + 0 + 1) / 3)


def test_one_pass_over_validation_and_test_equals_two_passes_and_scores_each_user_once():
    """Random scores for 40 users × 30 items; validation and test sets that overlap in users but not entirely.
    One pass gives exactly the two separate evaluations (per user, and the beyond-accuracy figures), whatever the
    block size, and asks the scorer for each user with labels in either set exactly once."""
    gen = torch.Generator().manual_seed(3)
    scores = torch.rand(40, 30, generator=gen)
    train = BipartiteGraph(torch.unique(torch.stack([torch.randint(40, (200,), generator=gen),
                                                     torch.randint(30, (200,), generator=gen)]), dim=1), 40, 30)
    valid = torch.stack([torch.randint(30, (60,), generator=gen), torch.randint(30, (60,), generator=gen)])
    test = torch.stack([torch.randint(10, 40, (60,), generator=gen), torch.randint(30, (60,), generator=gen)])
    popularity = train.item_degree()
    separate = {"valid": evaluate_scores(lambda users: scores[users].clone(), train, valid, ks=(5, 10)),
                "test": evaluate_scores(lambda users: scores[users].clone(), train, test, ks=(5, 10),
                                        also_masked=valid, item_popularity=popularity)}
    for batch_size in (1, 7, None):
        asked = []

        def score(users, asked=asked):
            asked.append(users)
            return scores[users].clone()

        together = evaluate_held_out(score, train, {
            "valid": HeldOut(valid), "test": HeldOut(test, also_masked=valid, item_popularity=popularity)},
            ks=(5, 10), batch_size=batch_size)
        expected_users = torch.unique(torch.cat([valid[0], test[0]]))
        assert torch.equal(torch.cat(asked), expected_users)  # each user once, in order
        for name, result in together.items():
            assert torch.equal(result.users, separate[name].users)
            for k in (5, 10):
                assert torch.equal(result.recall[k], separate[name].recall[k])
                assert torch.equal(result.ndcg[k], separate[name].ndcg[k])
            assert result.beyond_accuracy == pytest.approx(separate[name].beyond_accuracy)
    assert set(together["test"].beyond_accuracy) == {"coverage@10", "avg_popularity@10", "personalization@10"}


def _weighted(parts, weight):
    """A candidate's scorer: the block's first part plus ``weight`` times its second."""
    def score(users):
        part, other = parts(users)
        return part + weight * other

    return score


def test_candidates_ranked_in_one_pass_equal_each_ranked_alone_and_share_each_block():
    """Three candidates built from one shared part per block (random scores plus a weighted second part, as the
    filters' settings are): one pass gives exactly each candidate's own evaluation, for any block size, and the
    shared part is computed once per block, not once per candidate."""
    gen = torch.Generator().manual_seed(5)
    first, second = torch.rand(40, 30, generator=gen), torch.rand(40, 30, generator=gen)
    train = BipartiteGraph(torch.unique(torch.stack([torch.randint(40, (200,), generator=gen),
                                                     torch.randint(30, (200,), generator=gen)]), dim=1), 40, 30)
    valid = torch.stack([torch.randint(3, 40, (80,), generator=gen), torch.randint(30, (80,), generator=gen)])
    weights = (0.0, 0.5, 2.0)
    alone = [evaluate_scores(lambda users, w=w: first[users] + w * second[users], train, valid, ks=(5, 10))
             for w in weights]
    for batch_size in (1, 7, None):
        blocks = []

        def shared(users, blocks=blocks):
            blocks.append(users)
            return first[users], second[users]

        parts = per_block(shared)
        scorers = [_weighted(parts, w) for w in weights]
        together = evaluate_candidates(scorers, train, HeldOut(valid), ks=(5, 10), batch_size=batch_size)
        assert torch.equal(torch.cat(blocks), torch.unique(valid[0]))  # each user's block computed once
        for result, expected in zip(together, alone, strict=True):
            assert torch.equal(result.users, expected.users)
            for k in (5, 10):
                assert torch.equal(result.recall[k], expected.recall[k])
                assert torch.equal(result.ndcg[k], expected.ndcg[k])
    assert len({round(result.summary()["recall@10"], 6) for result in together}) > 1  # the weights do differ


def test_score_blocks_are_sized_by_the_item_count():
    assert block_users(100) == 4096  # small catalogues: the cap
    assert block_users(40_981) == 818  # Gowalla: about 128 MiB of float32 scores per block
    assert block_users(533_333) == 62
    assert block_users(10**9) == 1


def test_heldout_item_degree_reads_each_pairs_item_in_the_training_graph():
    graph = BipartiteGraph(torch.tensor([[0, 1, 2, 0, 1], [0, 0, 0, 1, 1]]), 3, 4)  # item degrees 3, 2, 0, 0
    figures = heldout_item_degree(graph, torch.tensor([[0, 1, 2, 2], [0, 0, 1, 3]]))
    assert figures == {"mean_item_degree": 2.0, "median_item_degree": 2.0}  # degrees 3, 3, 2, 0
