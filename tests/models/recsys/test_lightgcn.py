"""LightGCN pieces: normalized adjacency, the symmetric product's gradient, BPR loss, sampling, training resume."""
import math

import pytest
import torch
import torch.nn.functional as F

from models.graph.bipartite import BipartiteGraph, normalized_adjacency
from models.graph.sparse import symmetric_spmm
from models.recsys.lightgcn import build_lightgcn
from models.recsys.sampling import BPRSampler
from models.recsys.training import LightGCNConfig, batch_for_edges, bpr_loss, train_lightgcn

TINY = BipartiteGraph(torch.tensor([[0, 0, 1, 2], [0, 1, 1, 2]]), num_users=3, num_items=3)


def test_normalized_adjacency_entries_are_inverse_sqrt_degree_products():
    adj = normalized_adjacency(TINY).to_dense()
    # Node ids: users 0..2, items 3..5. deg(u0)=2, deg(i1)=2 → 1/sqrt(2·2).
    assert math.isclose(float(adj[0, 4]), 0.5, rel_tol=1e-6)
    assert math.isclose(float(adj[0, 3]), 1 / math.sqrt(2), rel_tol=1e-6)  # deg(i0)=1
    assert torch.equal(adj, adj.T)
    assert float(adj[0, 0]) == 0.0  # LightGCN: no self-loops


def test_symmetric_spmm_gradient_equals_dense_autograd():
    adj = normalized_adjacency(TINY)
    x = torch.randn(6, 4, dtype=torch.float32, requires_grad=True)
    symmetric_spmm(adj, x).pow(2).sum().backward()
    x_dense = x.detach().clone().requires_grad_(True)
    (adj.to_dense() @ x_dense).pow(2).sum().backward()
    assert torch.allclose(x.grad, x_dense.grad, atol=1e-6)


def test_bpr_loss_on_a_tiny_graph_equals_the_hand_computed_value():
    model = build_lightgcn(3, 3, embedding_dim=2, num_layers=1, init_std=0.1)
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.0], [0.0, 0.5], [1.0, -1.0]])
    with torch.no_grad():
        model.embedding.weight.copy_(weight)
    adj = normalized_adjacency(TINY)
    users, pos, neg = torch.tensor([0]), torch.tensor([1]), torch.tensor([2])
    loss = bpr_loss(model, adj, 3, users, pos, neg, l2=0.1)
    final = (weight + adj.to_dense() @ weight) / 2  # mean of layers 0 and 1
    y_pos, y_neg = final[0] @ final[4], final[0] @ final[5]
    reg = 0.1 * 0.5 * (weight[0].pow(2).sum() + weight[4].pow(2).sum() + weight[5].pow(2).sum())
    assert math.isclose(float(loss), float(F.softplus(y_neg - y_pos) + reg), rel_tol=1e-5)


def test_sampler_draws_true_positives_and_unseen_negatives_deterministically():
    graph = BipartiteGraph(torch.tensor([[0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 3, 0]]), 4, 5)
    users, pos, neg = BPRSampler(graph, seed=3).sample(5000)
    seen = set(zip(graph.edge_index[0].tolist(), graph.edge_index[1].tolist()))
    assert all((u, p) in seen for u, p in zip(users.tolist(), pos.tolist()))
    assert not any((u, n) in seen for u, n in zip(users.tolist(), neg.tolist()))
    assert set(users.tolist()) == {0, 1, 2}  # user 3 has no training items
    again = BPRSampler(graph, seed=3).sample(5000)
    assert all(torch.equal(a, b) for a, b in zip((users, pos, neg), again))


def _two_block_graph() -> tuple[BipartiteGraph, torch.Tensor]:
    """Two communities: users 0–19 like items 0–9, users 20–39 like items 10–19; one held-out item each."""
    gen = torch.Generator().manual_seed(0)
    train, valid = [], []
    for u in range(40):
        block = torch.arange(10) + (0 if u < 20 else 10)
        items = block[torch.randperm(10, generator=gen)]
        train += [(u, int(i)) for i in items[:6]]
        valid.append((u, int(items[6])))
    return BipartiteGraph(torch.tensor(train).T.contiguous(), 40, 20), torch.tensor(valid).T.contiguous()


def test_training_learns_communities_and_resumes_from_its_checkpoint(tmp_path):
    graph, valid = _two_block_graph()
    config = LightGCNConfig(embedding_dim=16, num_layers=2, lr=0.05, batch_size=64, epochs=12, eval_every=3,
                            patience=10, seed=1)
    ckpt = tmp_path / "lightgcn.pt"
    full = train_lightgcn(graph, valid, config, checkpoint_path=ckpt, log=lambda _: None, fingerprint="fp")
    # Random ranking of the 14 unseen items gives Recall@20 = 1 trivially, so use the held-out item's rank:
    scores = full.user_emb @ full.item_emb.T
    same_block = torch.stack([scores[u, (0 if u < 20 else 10):(10 if u < 20 else 20)].mean() for u in range(40)])
    other_block = torch.stack([scores[u, (10 if u < 20 else 0):(20 if u < 20 else 10)].mean() for u in range(40)])
    assert bool((same_block > other_block).all())

    # A run stopped after 6 epochs, then resumed to 12, ends where the uninterrupted run ended.
    ckpt2 = tmp_path / "resumed.pt"
    half = LightGCNConfig(**{**config.__dict__, "epochs": 6})
    train_lightgcn(graph, valid, half, checkpoint_path=ckpt2, log=lambda _: None, fingerprint="fp")
    state = torch.load(ckpt2, weights_only=True)
    state["config"]["epochs"] = 12  # the same run, continued with its original horizon
    torch.save(state, ckpt2)
    resumed = train_lightgcn(graph, valid, config, checkpoint_path=ckpt2, log=lambda _: None, fingerprint="fp")
    assert resumed.resumed_from_epoch == 6
    assert torch.allclose(resumed.user_emb, full.user_emb, atol=1e-5)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]


def test_learning_rate_decays_on_a_validation_plateau_then_training_stops():
    """With 20 items Recall@20 is 1.0 from the first evaluation: every later one is a plateau. The rate drops
    after lr_decay_patience + 1 flat evaluations, twice at most, and each drop restarts the early-stopping count."""
    graph, valid = _two_block_graph()
    config = LightGCNConfig(embedding_dim=8, num_layers=2, lr=0.05, batch_size=64, epochs=50, eval_every=1,
                            patience=3, seed=1, lr_decay=0.1, lr_decay_patience=1, lr_decays=2)
    result = train_lightgcn(graph, valid, config, log=lambda _: None)
    assert [h["lr"] for h in result.history] == pytest.approx([0.05, 0.05, 0.005, 0.005, 5e-4, 5e-4, 5e-4, 5e-4])
    assert result.epochs_run == 8 and result.best_epoch == 1


def test_the_batch_grows_with_the_graph_from_the_demo_s_floor():
    assert [batch_for_edges(edges) for edges in (1, 60_000, 150_000, 756_243, 3_000_000)] == [
        4096, 4096, 8192, 32768, 131072]  # Gowalla's training split: 32,768, about 24 steps an epoch


def test_batch_size_zero_is_resolved_from_the_graph_and_saved_so(tmp_path):
    messages = []
    config = LightGCNConfig(embedding_dim=8, num_layers=2, batch_size=0, epochs=1, eval_k=2)
    valid = torch.tensor([[0, 1], [2, 0]])
    result = train_lightgcn(TINY, valid, config, checkpoint_path=tmp_path / "ckpt.pt", log=messages.append)
    assert result.config["batch_size"] == 4096
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["config"]["batch_size"] == 4096
    assert any("batch_size 0: 4096 for 4 training edges" in m for m in messages)
    with pytest.raises(ValueError, match="batch_size must be ≥ 1, or 0"):
        LightGCNConfig(batch_size=-1)
