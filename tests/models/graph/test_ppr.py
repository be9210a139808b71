"""Forward push against the closed form (I − cA)⁻¹, top-k order, determinism and argument checks."""

import numpy as np
import pytest
import torch

from models.graph.ppr import PPRError, forward_push, pair_scores, power_iteration
from models.graph.sparse import binary_adjacency

# A triangle 0-1-2 with a tail 2-3-4, and node 5 alone.
EDGES = torch.tensor([[0, 1], [0, 2], [1, 2], [2, 3], [3, 4]]).T
NUM_NODES = 6
DAMPING = 0.85


def _graph():
    return binary_adjacency(torch.cat([EDGES, EDGES.flip(0)], 1), NUM_NODES)


def _closed_form(adj) -> np.ndarray:
    """Column s is (1 − c)(I − c·A·D⁻¹)⁻¹ e_s (isolated nodes keep only their restart mass)."""
    a = adj.toarray().astype(np.float64)
    walk = a / np.maximum(a.sum(0, keepdims=True), 1.0)
    return (1 - DAMPING) * np.linalg.inv(np.eye(NUM_NODES) - DAMPING * walk)


def test_power_iteration_equals_the_closed_form():
    adj = _graph()
    exact = _closed_form(adj)
    np.testing.assert_allclose(power_iteration(adj, np.arange(NUM_NODES), DAMPING), exact.T, atol=1e-11)


@pytest.mark.parametrize("epsilon", [1e-4, 1e-6])
def test_push_is_within_epsilon_degree_below_the_closed_form(epsilon):
    adj = _graph()
    exact = _closed_form(adj).T  # row s = PPR vector of s
    degree = np.diff(adj.indptr)
    result = forward_push(adj, torch.arange(NUM_NODES), DAMPING, epsilon, top_k=None)
    for s in range(NUM_NODES):
        nodes, scores = result.row(s)
        approx = np.zeros(NUM_NODES)
        approx[nodes.numpy()] = scores.numpy()
        error = exact[s] - approx
        assert (error > -1e-6).all()  # p ≤ π (float32 rounding aside)
        assert (error < epsilon * np.maximum(degree, 1) + 1e-6).all()
    # The isolated node keeps exactly its restart mass.
    assert result.row(5)[0].tolist() == [5] and result.row(5)[1].item() == pytest.approx(1 - DAMPING)


@pytest.mark.parametrize("epsilon", [1e-3, 1e-7])
def test_pair_scores_are_within_epsilon_degree_below_the_closed_form_in_any_pair_order(epsilon):
    adj = _graph()
    exact = _closed_form(adj).T
    degree = np.diff(adj.indptr)
    sources = np.array([4, 0, 2, 0, 5, 4, 1, 0])  # repeated and unsorted sources, one isolated
    nodes = np.array([0, 3, 2, 4, 5, 4, 1, 1])
    scores = pair_scores(adj, sources, nodes, DAMPING, epsilon, block_size=2)
    assert scores.dtype == np.float32
    below = exact[sources, nodes] - scores
    assert (below >= -1e-6).all() and (below < epsilon * np.maximum(degree[nodes], 1) + 1e-6).all()
    assert scores[4] == pytest.approx(1 - DAMPING)  # an isolated node keeps its restart mass
    if epsilon == 1e-7:
        np.testing.assert_allclose(scores, exact[sources, nodes], atol=1e-6)
    np.testing.assert_array_equal(scores, pair_scores(adj, sources, nodes, DAMPING, epsilon, workers=1))


def test_top_k_is_sorted_best_first():
    adj = _graph()
    result = forward_push(adj, torch.tensor([4, 0]), DAMPING, 1e-6, top_k=3)
    assert result.targets.tolist() == [4, 0] and result.indptr.tolist() == [0, 3, 6]
    exact = _closed_form(adj).T
    for i, target in enumerate([4, 0]):
        nodes, scores = result.row(i)
        assert (scores[:-1] >= scores[1:]).all()
        assert nodes.tolist() == list(np.argsort(-exact[target], kind="stable")[:3])
    # A leaf's only neighbour outranks the leaf itself (0.85 of its mass goes there): the target is not always first.
    assert result.row(0)[0][0] == 3 and result.row(1)[0][0] == 0


def test_blocks_and_threads_do_not_change_the_result():
    adj = _graph()
    targets = torch.arange(NUM_NODES)
    one = forward_push(adj, targets, DAMPING, 1e-5, top_k=4, block_size=1, workers=1)
    many = forward_push(adj, targets, DAMPING, 1e-5, top_k=4, block_size=4, workers=2)
    for key, value in one.to_tensors().items():
        assert torch.equal(value, many.to_tensors()[key]), key


def test_a_thread_reusing_its_buffers_block_after_block_gets_what_fresh_buffers_give():
    adj = _graph()
    targets = torch.arange(NUM_NODES)
    reused = forward_push(adj, targets, DAMPING, 1e-5, top_k=None, block_size=1, workers=1)
    for target in range(NUM_NODES):
        fresh = forward_push(adj, torch.tensor([target]), DAMPING, 1e-5, top_k=None)
        assert torch.equal(reused.row(target)[0], fresh.row(0)[0])
        assert torch.equal(reused.row(target)[1], fresh.row(0)[1])
    sources, nodes = torch.tensor([0, 0, 2, 3, 4, 4]), torch.tensor([1, 4, 0, 3, 0, 2])
    one_by_one = [pair_scores(adj, sources[[i]], nodes[[i]], DAMPING, 1e-5) for i in range(sources.numel())]
    assert np.array_equal(pair_scores(adj, sources, nodes, DAMPING, 1e-5, block_size=1, workers=1),
                          np.concatenate(one_by_one))


def test_work_counts_each_push_and_the_neighbours_it_visits():
    # Tail 3-4 with ε 0.5: 4 holds 1 ≥ 0.5·1 and pushes once to 3 (0.85 < 0.5·2); the isolated 5 pushes once to nobody.
    work = [0, 0]
    result = forward_push(_graph(), torch.tensor([4, 5]), DAMPING, 0.5, top_k=None, work=work)
    assert work == [2, 1]
    assert result.row(0)[0].tolist() == [4] and result.row(0)[1].item() == pytest.approx(1 - DAMPING)


def test_progress_reports_every_block():
    calls = []
    forward_push(_graph(), torch.arange(NUM_NODES), block_size=4, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 6), (6, 6)]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"damping": 1.0}, "damping"), ({"epsilon": 0.0}, "epsilon"), ({"targets": torch.tensor([6])}, "target ids"),
    ({"adj": _graph() * 2.0}, "binary"),
])
def test_bad_arguments_say_what_to_change(kwargs, message):
    arguments = {"adj": _graph(), "targets": torch.tensor([0]), **kwargs}
    with pytest.raises(PPRError, match=message):
        forward_push(**arguments)
