"""Distillation: LLP-D/LLP-R values, random-walk contexts stay on the graph, the gate learns pair-dependent weights
with frozen students, a link student trains on a small graph, and the recommendation student embeds any user from
their interactions."""

import math

import pytest
import torch

from models.linkpred.ensemble import GateConfig, GateInputs, PairGate, _validation_loss, gate_probability, train_gate
from models.linkpred.llp_losses import llp_distribution_loss, llp_rank_loss, random_walk_context
from models.linkpred.students import LinkConfig, LinkModel, LinkSplit, hits_at_k, train_link_model
from models.recsys.serving import users_per_second
from models.recsys.student import FeatureStudent, RecStudentConfig, bags_of, student_vectors, train_feature_student


def test_llp_distribution_loss_is_the_kl_of_the_softmaxes():
    teacher = torch.tensor([[0.0, math.log(3.0)]])  # softmax (1/4, 3/4)
    student = torch.zeros(1, 2)  # softmax (1/2, 1/2)
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert llp_distribution_loss(student, teacher).item() == pytest.approx(expected, rel=1e-6)
    assert llp_distribution_loss(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)


def test_llp_rank_loss_counts_only_pairs_the_teacher_separates_by_the_margin():
    teacher = torch.tensor([[1.0, 0.0, 0.95]])  # (0,1) and (2,1) separated; (0,2) within the margin 0.1
    student = torch.tensor([[0.0, 0.5, 0.0]])
    # Ordered pairs with r ≠ 0: (0,1), (1,0), (2,1), (1,2); each max(0, -r (s_i - s_j) + 0.1) = 0.6.
    assert llp_rank_loss(student, teacher, margin=0.1).item() == pytest.approx(0.6)
    assert llp_rank_loss(torch.tensor([[2.0, 0.0, 2.0]]), teacher).item() == pytest.approx(0.0)


def test_random_walk_context_stays_on_the_graph():
    # A path 0-1-2-3: two-step walks from node 0 reach only 0, 1 or 2.
    indptr, indices = torch.tensor([0, 1, 3, 5, 6]), torch.tensor([1, 0, 2, 1, 3, 2])
    context = random_walk_context(indptr, indices, torch.tensor([0, 3]), walks=3, hops=2, num_random=4,
                                  generator=torch.Generator().manual_seed(0))
    assert context.shape == (2, 3 * 2 + 4)
    assert set(context[0, :3].tolist()) == {1}  # the first hop from 0 is always 1
    assert set(context[0, 3:6].tolist()) <= {0, 2} and set(context[1, :3].tolist()) == {2}


def _gate_data(num_pairs: int, seed: int) -> tuple[GateInputs, torch.Tensor]:
    """Student 0 is right where the heuristic is 1, student 1 where it is 0; pair features are noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(2, (num_pairs,), generator=generator).float()
    heuristic = torch.randint(2, (num_pairs, 1), generator=generator).float()
    signed = 4.0 * (2 * labels - 1)
    right = torch.stack([torch.where(heuristic[:, 0] == 1, signed, -signed),
                         torch.where(heuristic[:, 0] == 0, signed, -signed)], dim=1)
    inputs = GateInputs(pair_features=torch.randn(num_pairs, 8, generator=generator), heuristics=heuristic,
                        student_logits=right)
    return inputs, labels


def test_gate_weights_change_in_training_and_differ_across_pairs():
    train, labels = _gate_data(2000, 0)
    valid, valid_labels = _gate_data(400, 1)
    positives, negatives = (GateInputs(*(t[valid_labels == v] for t in (valid.pair_features, valid.heuristics,
                                                                         valid.student_logits))) for v in (1, 0))
    torch.manual_seed(0)
    gate = PairGate(8, 1, 2, hidden=16)
    before = gate(train.pair_features, train.heuristics).detach()
    train_gate(gate, train, labels, positives, negatives, GateConfig(steps=150, lr=0.01, patience=100))
    gate.eval()
    after = gate(train.pair_features, train.heuristics).detach()
    assert (after - before).abs().max() > 0.3
    on_one = train.heuristics[:, 0] == 1
    # Pair-dependent weights: each pair leans on the student that is right for it.
    assert after[on_one, 0].mean() > 0.8 and after[~on_one, 1].mean() > 0.8
    assert after[:, 0].std() > 0.3
    assert hits_at_k(gate_probability(gate, positives), gate_probability(gate, negatives), 20) == 1.0


def test_gate_validation_loss_weighs_positives_and_negatives_equally():
    # Both students agree, so whatever the gate's weights the ensemble probability is 0.75 on positives, 0.5 on
    # negatives; ten times the negatives must not change the criterion.
    def inputs(logit: float, count: int) -> GateInputs:
        return GateInputs(torch.zeros(count, 8), torch.zeros(count, 1), torch.full((count, 2), logit))

    gate = PairGate(8, 1, 2, hidden=16)
    expected = (-math.log(0.75) + math.log(2.0)) / 2
    assert _validation_loss(gate, inputs(math.log(3.0), 20), inputs(0.0, 20)) == pytest.approx(expected, rel=1e-5)
    assert _validation_loss(gate, inputs(math.log(3.0), 20), inputs(0.0, 200)) == pytest.approx(expected, rel=1e-5)


def test_validation_k_covers_the_same_share_of_negatives_as_the_test_k():
    split = _two_community_split()  # 30 validation and 30 test negatives
    assert split.valid_hits_k(5) == 5
    more = LinkSplit(x=split.x, train_edges=split.train_edges, valid_pos=split.valid_pos,
                     valid_neg=split.valid_neg.repeat(1, 10), test_pos=split.test_pos, test_neg=split.test_neg)
    assert more.valid_hits_k(5) == 50 and more.valid_hits_k(20) == 200


def test_hits_at_k_counts_positives_above_the_kth_negative():
    negatives = torch.arange(30, dtype=torch.float)  # the 20th best negative scores 10
    assert hits_at_k(torch.tensor([9.0, 10.0, 10.5, 40.0]), negatives, 20) == 0.5


def _two_community_split() -> LinkSplit:
    """Two cliques of 20 nodes with community features; held-out edges inside the cliques, negatives across."""
    generator = torch.Generator().manual_seed(0)
    community = torch.arange(40) // 20
    x = torch.nn.functional.one_hot(community, 2).float() + 0.1 * torch.randn(40, 2, generator=generator)
    within = torch.tensor([(u, v) for u in range(40) for v in range(u + 1, 40) if community[u] == community[v]]).T
    order = torch.randperm(within.size(1), generator=generator)
    across = torch.stack([torch.randint(20, (60,), generator=generator), 20 + torch.randint(20, (60,),
                                                                                            generator=generator)])
    return LinkSplit(x=x, train_edges=within[:, order[60:]], valid_pos=within[:, order[:30]],
                     valid_neg=across[:, :30], test_pos=within[:, order[30:60]], test_neg=across[:, 30:])


def test_link_student_learns_a_two_community_graph():
    split = _two_community_split()
    model = LinkModel(2, hidden=16)
    record = train_link_model(model, split, LinkConfig(hidden=16, steps=60, hits_k=5))
    assert record["valid_hits@5"] == 1.0


@pytest.mark.parametrize("soft_on_context", [False, True])
def test_glnn_style_student_learns_from_soft_targets_alone(soft_on_context):
    # No label loss: only the teacher's probabilities (0.9 inside a community, 0.1 across) on the label pairs, and
    # on the context pairs too when asked.
    split = _two_community_split()
    community = torch.arange(40) // 20

    scored = []

    def teacher(pairs: torch.Tensor) -> torch.Tensor:
        scored.append(pairs.size(1))
        return torch.where(community[pairs[0]] == community[pairs[1]], 0.9, 0.1)

    model = LinkModel(2, hidden=16)
    config = LinkConfig(hidden=16, steps=60, hits_k=5, label_weight=0.0, soft_weight=1.0, anchors_per_step=40,
                        soft_on_context=soft_on_context)
    assert train_link_model(model, split, config, teacher)["valid_hits@5"] == 1.0
    # Each step scores its label pairs (the 320 training edges and as many negatives); the context pool (8 rounds of
    # 12 context nodes for each of the 40 nodes) is scored once, and only when asked for.
    label_pairs = 2 * split.train_edges.size(1)
    assert scored.count(label_pairs) == 60 and (8 * 40 * 12 in scored) == soft_on_context
    with pytest.raises(ValueError, match="need a teacher"):
        train_link_model(LinkModel(2, hidden=16), split, config)


def test_recommendation_student_embeds_users_from_their_interactions():
    # 6 users, 4 items; user 5 has no training items (its bag is empty).
    indptr, items = torch.tensor([0, 2, 4, 5, 6, 8, 8]), torch.tensor([0, 1, 0, 1, 2, 3, 2, 3])
    sub_indptr, sub_items = bags_of(indptr, items, torch.tensor([4, 0, 5]))
    assert sub_indptr.tolist() == [0, 2, 4, 4] and sub_items.tolist() == [2, 3, 0, 1]
    item_x = torch.eye(4)
    user_x = torch.zeros(6, 5)
    generator = torch.Generator().manual_seed(0)
    teacher_item = torch.randn(4, 8, generator=generator)
    teacher_user = torch.stack([teacher_item[items[indptr[u]:indptr[u + 1]]].mean(0) if indptr[u + 1] > indptr[u]
                                else torch.zeros(8) for u in range(6)])
    result = train_feature_student(item_x, user_x, indptr, items, teacher_user, teacher_item,
                                   RecStudentConfig(epochs=200, batch_size=8, hidden=32, lr=0.01, dropout=0.0))
    users, item_vectors = student_vectors(result.model, indptr, items, user_x)
    assert users.shape == (6, 8) and item_vectors.shape == (4, 8)
    assert torch.nn.functional.cosine_similarity(users[:5], teacher_user[:5]).min() > 0.9
    assert result.record.history[-1]["loss"] < result.record.history[0]["loss"]


def test_user_tower_ignores_items_newer_than_training_in_the_learned_context():
    """The general path (a bag holding an item without a learned vector) equals the all-known fast path."""
    torch.manual_seed(0)
    model = FeatureStudent(torch.rand(6, 3), user_feature_dim=4, dim=8, known_items=5).eval()
    features = torch.rand(2, 4)
    with torch.no_grad():
        known_only = model.users(torch.tensor([0, 2, 3]), torch.tensor([0, 4, 2]), features)
        with_new_item = model.users(torch.tensor([0, 3, 4]), torch.tensor([0, 4, 5, 2]), features)
    assert torch.allclose(known_only, with_new_item, atol=1e-6)


def test_users_per_second_times_distinct_users_in_requests_of_the_given_size():
    requests = []

    def record(users: torch.Tensor) -> torch.Tensor:
        requests.append(users.tolist())
        return users

    rate = users_per_second(record, torch.arange(7), request_size=3, min_seconds=0.01)
    assert requests[:4] == [[0, 1, 2], [0, 1, 2], [3, 4, 5], [0, 1, 2]]  # warm-up, then cycled; user 6 alone is dropped
    assert all(len(request) == 3 for request in requests) and len(requests) > 4
    assert rate > 0


@pytest.mark.parametrize("inputs", ["heuristics", "features"])
def test_feature_only_ehdm_gate_reads_no_graph_at_inference(inputs, monkeypatch):
    from models.linkpred import ehdm

    split = _two_community_split()
    students = {"a": LinkModel(2, hidden=8), "b": LinkModel(2, hidden=8)}
    result = ehdm.train_ehdm_gate(split, students, GateConfig(inputs=inputs, steps=10, hits_k=5))
    assert (result.gate.heuristics is None) == (inputs == "features")
    pairs = split.test_pos
    before = result.scorer(pairs)
    assert before.shape == (pairs.size(1),) and bool(((before > 0) & (before < 1)).all())

    def no_graph(*_args, **_kwargs):
        raise AssertionError("the graph was read")

    monkeypatch.setattr(ehdm, "heuristic_scores", no_graph)
    if inputs == "features":
        torch.testing.assert_close(result.scorer(pairs), before)
    else:
        with pytest.raises(AssertionError, match="graph was read"):
            result.scorer(pairs)


def test_unknown_gate_inputs_are_refused():
    from models.linkpred.ehdm import train_ehdm_gate

    with pytest.raises(ValueError, match="gate inputs"):
        train_ehdm_gate(_two_community_split(), {"a": LinkModel(2, hidden=8)}, GateConfig(inputs="graph"))
