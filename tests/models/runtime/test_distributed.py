"""DistributedDataParallel training for real: `torchrun --nproc_per_node 2` with gloo on the CPU trains to the
Recall@20 of one process, and one DDP step is exactly the one-process step on the two ranks' joined batches.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models.graph.bipartite import BipartiteGraph
from models.graph.propagation import propagation_matrix
from models.recsys.lightgcn import build_lightgcn
from models.recsys.sampling import BPRSampler
from models.recsys.training import LightGCNConfig, bpr_loss, train_lightgcn
from models.runtime.distributed import local_batch_sizes, rank_seed
from models.runtime.train_entry import EMBEDDINGS_FILE, METRICS_FILE, EntryArgumentError, parse_config

REPO = Path(__file__).resolve().parents[3]


def _community_graph(num_users: int, num_items: int, communities: int, per_user: int, per_user_valid: int,
                     seed: int) -> tuple[BipartiteGraph, torch.Tensor]:
    """Each user picks items of its own community by a Zipf popularity; the last picks are held out.

    The best ranking (community, then popularity) is learnable, so two good models agree on Recall@20 far more
    closely than the sampling noise of a graph without structure would allow.
    """
    gen = torch.Generator().manual_seed(seed)
    size = num_items // communities
    popularity = 1.0 / torch.arange(1, size + 1, dtype=torch.float)
    picks = torch.stack([torch.multinomial(popularity, per_user + per_user_valid, generator=gen)
                         for _ in range(num_users)])
    picks += (torch.arange(num_users) % communities * size)[:, None]
    users = torch.arange(num_users)[:, None]

    def edges(part: torch.Tensor) -> torch.Tensor:
        return torch.stack([users.expand_as(part).flatten(), part.flatten()])

    return (BipartiteGraph(edges(picks[:, :per_user]), num_users, num_items), edges(picks[:, per_user:]))


def _torchrun(tmp_path: Path, graph: BipartiteGraph, valid: torch.Tensor, config: LightGCNConfig,
              *extra: str) -> dict:
    """Train with two gloo ranks through the real entry point; returns its metrics and embeddings."""
    graph.save(tmp_path / "graph.pt")
    torch.save({"edge_index": valid}, tmp_path / "valid.pt")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "models.runtime.train_entry", "--graph", str(tmp_path / "graph.pt"), "--valid", str(tmp_path / "valid.pt"),
               "--config", json.dumps(config.__dict__), "--out", str(tmp_path / "out"), "--device", "cpu", *extra]
    done = subprocess.run(command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "out" / METRICS_FILE).read_text())
    return {**metrics, **torch.load(tmp_path / "out" / EMBEDDINGS_FILE, weights_only=True)}


def test_local_batch_sizes_cover_every_batch_evenly():
    assert local_batch_sizes(10, 4, 1) == [4, 4, 2]
    assert local_batch_sizes(10, 4, 2) == [2, 2, 1]
    assert local_batch_sizes(10, 4, 3) == [2, 2, 1]  # rounded up: no rank ever holds an empty batch
    assert rank_seed(7, 0) == 7 and len({rank_seed(7, r) for r in range(8)}) == 8


def test_two_gloo_ranks_reach_the_recall_of_one_process(tmp_path):
    graph, valid = _community_graph(2000, 400, communities=8, per_user=10, per_user_valid=3, seed=0)
    # One full batch per epoch and a modest step: both runs converge to the plateau instead of its noise.
    config = LightGCNConfig(embedding_dim=32, num_layers=2, lr=0.01, batch_size=graph.num_edges, epochs=60,
                            eval_every=10, patience=100, seed=1)
    one = train_lightgcn(graph, valid, config, log=lambda _: None)
    two = _torchrun(tmp_path, graph, valid, config)
    print(f"\nvalid Recall@20: 1 process {one.best_valid_recall:.4f}, 2 gloo processes {two['valid_recall@20']:.4f}")
    assert (two["world_size"], two["backend"]) == (2, "gloo")
    assert abs(two["valid_recall@20"] - one.best_valid_recall) <= 0.005
    assert two["valid_recall@20"] > 0.7  # far above chance (20 of 400 items: 0.05)


def test_a_ddp_epoch_equals_one_process_on_the_joined_batches(tmp_path):
    """Ranks draw their halves from their own seeds; averaging their gradients is the joined batch's gradient."""
    graph, valid = _community_graph(60, 40, communities=4, per_user=4, per_user_valid=1, seed=0)
    config = LightGCNConfig(embedding_dim=8, num_layers=2, lr=0.05, batch_size=64, epochs=2, eval_every=1, seed=3)
    two = _torchrun(tmp_path, graph, valid, config, "--checkpoint", str(tmp_path / "ckpt.pt"))

    torch.manual_seed(config.seed)
    model = build_lightgcn(graph.num_users, graph.num_items, config.embedding_dim, config.num_layers, config.init_std)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    adj = propagation_matrix(graph)
    sizes = local_batch_sizes(graph.num_edges, config.batch_size, 2)
    samplers = [BPRSampler(graph, seed=rank_seed(config.seed, rank)) for rank in (0, 1)]
    weights_after_epoch = []
    for _ in range(config.epochs):
        draws = [sampler.sample(sum(sizes)) for sampler in samplers]
        start = 0
        for size in sizes:
            users, pos, neg = (torch.cat([draw[k][start:start + size] for draw in draws]) for k in range(3))
            optimizer.zero_grad()
            bpr_loss(model, adj, graph.num_users, users, pos, neg, config.l2).backward()
            optimizer.step()
            start += size
        weights_after_epoch.append(model.embedding.weight.detach().clone())
    # The output holds the weights of the best evaluated epoch.
    with torch.no_grad():
        model.embedding.weight.copy_(weights_after_epoch[two["best_epoch"] - 1])
        replay = model.get_embedding(adj)
    torch.testing.assert_close(two["user_emb"], replay[:graph.num_users], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(two["item_emb"], replay[graph.num_users:], atol=1e-5, rtol=1e-4)
    # Rank 0's checkpoint holds both ranks' batch generator states, so a resumed job continues both streams.
    checkpoint = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert checkpoint["generator_states"].shape == (2, samplers[0].generator.get_state().numel())
    assert torch.equal(checkpoint["generator_states"][1], samplers[1].generator.get_state())


@pytest.mark.parametrize("bad", ['{"epochs": ', '[1, 2]', '{"epochs": 2, "learning_rate": 0.1}'])
def test_entry_point_refuses_a_bad_config(bad):
    with pytest.raises(EntryArgumentError, match="--config"):
        parse_config(bad)
