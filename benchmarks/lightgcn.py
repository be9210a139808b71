"""LightGCN on a real data set: quality against the paper, time-to-quality, and epoch speed against plain PyG.

    python -m benchmarks.lightgcn --dataset gowalla [--device auto] [--init prism --prism-strength S] [--json FILE]

The main speed reference is PyG's strongest CPU configuration: its own ``LightGCN`` on a normalised adjacency computed
once (``gcn_norm`` without self-loops, as a torch CSR tensor by ``to_torch_csr_tensor``; ``LGConv(normalize=False)``),
in the training step of PyG's ``examples/lightgcn.py``. The example loop as written (``LightGCN(edge_index)``,
normalising and message passing over the edge list on every batch) is a second row. Every loop is timed
``--speed-repeats`` times in this process (a fresh model each time, the same number of batch-2048 steps), and the
tables show min, median and max seconds per epoch; speed-ups are ratios of medians. The paper's Recall/NDCG are
reported figures, not run here.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.models import LightGCN
from torch_geometric.utils import to_torch_csr_tensor

from benchmarks.common import (
    SMOKE_DATASET,
    add_init_arguments,
    add_lightgcn_arguments,
    add_smoke_argument,
    apply_smoke,
    format_spread,
    load_dataset,
    peak_rss_mb,
    print_table,
    resolve_device,
    spread,
    write_json,
)
from models.eval.ranking import evaluate_full_ranking
from models.graph.bipartite import BipartiteGraph, normalized_adjacency, to_homogeneous_edge_index
from models.recsys.lightgcn import build_lightgcn
from models.recsys.sampling import BPRSampler
from models.recsys.training import LightGCNConfig, bpr_loss, train_lightgcn

# Reported in the LightGCN paper (Table 3), not measured here.
PAPER = {"gowalla": {"recall@20": 0.1830, "ndcg@20": 0.1554}}


def _median_step_seconds(step, steps: int) -> float:
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def ours_epoch_seconds(graph: BipartiteGraph, device: torch.device, batch_size: int, steps: int) -> float:
    """Seconds per epoch of our loop at ``batch_size``: median step time × steps per epoch + one epoch's sampling."""
    model = build_lightgcn(graph.num_users, graph.num_items, 64, 3, 0.1).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    adj = normalized_adjacency(graph).to(device)
    sampler = BPRSampler(graph, seed=0)
    started = time.perf_counter()
    users, pos, neg = (t.to(device) for t in sampler.sample(graph.num_edges))
    sampling = time.perf_counter() - started
    starts = iter(range(0, graph.num_edges, batch_size))

    def step() -> None:
        start = next(starts)
        batch = slice(start, start + batch_size)
        loss = bpr_loss(model, adj, graph.num_users, users[batch], pos[batch], neg[batch], 1e-4)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return _median_step_seconds(step, steps) * -(-graph.num_edges // batch_size) + sampling


def pyg_csr_adjacency(graph: BipartiteGraph) -> torch.Tensor:
    """The normalised adjacency as a PyG user would precompute it: ``gcn_norm`` without self-loops, then
    ``to_torch_csr_tensor``; shape ``(N, N)`` over users then items."""
    num_nodes = graph.num_users + graph.num_items
    norm_index, norm_weight = gcn_norm(to_homogeneous_edge_index(graph), None, num_nodes, add_self_loops=False)
    return to_torch_csr_tensor(norm_index, norm_weight, size=(num_nodes, num_nodes))


def pyg_epoch_seconds(graph: BipartiteGraph, device: torch.device, batch_size: int, steps: int,
                      precomputed: bool) -> float:
    """Seconds per epoch of PyG's ``examples/lightgcn.py`` training step at ``batch_size``: with ``precomputed``,
    PyG's ``LightGCN`` on a CSR adjacency normalised once (``gcn_norm``, no self-loops); otherwise the example as
    written, on the edge list, normalising on every batch."""
    num_nodes = graph.num_users + graph.num_items
    model = LightGCN(num_nodes, embedding_dim=64, num_layers=3, normalize=not precomputed).to(device)
    adj = (pyg_csr_adjacency(graph) if precomputed else to_homogeneous_edge_index(graph)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_edge_label_index = torch.stack([graph.edge_index[0], graph.edge_index[1] + graph.num_users]).to(device)
    loader = iter(torch.utils.data.DataLoader(range(graph.num_edges), batch_size=batch_size, shuffle=True))

    def step() -> None:
        index = next(loader)
        pos_edge_label_index = train_edge_label_index[:, index]
        neg_edge_label_index = torch.stack([
            pos_edge_label_index[0],
            torch.randint(graph.num_users, num_nodes, (index.numel(),), device=device)])
        edge_label_index = torch.cat([pos_edge_label_index, neg_edge_label_index], dim=1)
        pos_rank, neg_rank = model(adj, edge_label_index).chunk(2)
        loss = model.recommendation_loss(pos_rank, neg_rank, node_id=edge_label_index.unique())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return _median_step_seconds(step, steps) * -(-graph.num_edges // batch_size)


def speed_comparison(graph: BipartiteGraph, device: torch.device, steps: int, repeats: int) -> dict[str, object]:
    """Seconds per epoch at batch 2048 of our loop and both PyG loops, ``repeats`` fresh runs each in this process,
    interleaved so that a change in machine load touches every loop alike; prints the table."""
    loops = {"epoch_seconds_b2048": lambda: ours_epoch_seconds(graph, device, 2048, steps),
             "pyg_csr_epoch_seconds_b2048": lambda: pyg_epoch_seconds(graph, device, 2048, steps, precomputed=True),
             "pyg_loop_epoch_seconds_b2048": lambda: pyg_epoch_seconds(graph, device, 2048, steps, precomputed=False)}
    runs: dict[str, list[float]] = {key: [] for key in loops}
    for _ in range(repeats):
        for key, loop in loops.items():
            runs[key].append(loop())
    results: dict[str, object] = {}
    for key, values in runs.items():
        results[key] = spread(values)["median"]
        results.update({f"{key}.{stat}": value for stat, value in spread(values).items()})
    reference = results["pyg_csr_epoch_seconds_b2048"]
    labels = {"epoch_seconds_b2048": "graphrec (CSR, symmetric backward, vectorized sampling)",
              "pyg_csr_epoch_seconds_b2048": "PyG LightGCN on a precomputed normalised CSR adjacency (reference)",
              "pyg_loop_epoch_seconds_b2048": "PyG examples/lightgcn.py loop (renormalises every step)"}
    print_table(f"Epoch time at batch 2048 (median of {steps} timed steps × steps per epoch; median (min–max) of "
                f"{repeats} runs in this process)", ["loop", "seconds/epoch", "speed-up vs PyG reference (medians)"],
                [[labels[key], format_spread(runs[key]), reference / results[key]] for key in loops])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_lightgcn_arguments(parser, valid_fraction=0.05)
    add_init_arguments(parser)
    parser.add_argument("--patience", type=int, default=10, help="evaluations without gain before stopping")
    parser.add_argument("--lr-decay", type=float, default=0.1,
                        help="on a validation plateau multiply lr by this (twice at most); 1.0: constant lr")
    parser.add_argument("--lr-decay-patience", type=int, default=5,
                        help="evaluations without gain, beyond which the plateau decay applies")
    parser.add_argument("--max-minutes", type=float, default=120.0, help="training wall-clock budget")
    parser.add_argument("--speed-steps", type=int, default=50, help="batches timed per loop for the speed rows")
    parser.add_argument("--speed-repeats", type=int, default=3, help="timed runs per loop (at least 3)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--speed-only", action="store_true", help="only the batch-2048 epoch-time comparison")
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, epochs=2, eval_every=1, batch_size=1024,
                       speed_steps=1, max_minutes=1.0)

    device = resolve_device(args.device)
    graph, valid, test = load_dataset(args.dataset, args.valid_fraction, args.seed)
    print(f"{args.dataset}: {graph.num_users} users, {graph.num_items} items, {graph.num_edges} train, "
          f"{valid.size(1)} valid, {test.size(1)} test edges; device {device}; {torch.get_num_threads()} threads")

    results: dict[str, object] = {"dataset": args.dataset, "device": str(device)}
    if not args.skip_speed:
        results.update(speed_comparison(graph, device, args.speed_steps, args.speed_repeats))
    if args.speed_only:
        write_json(args.json, results)
        return

    config = LightGCNConfig(batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, eval_every=args.eval_every,
                            patience=args.patience, seed=args.seed, max_train_seconds=args.max_minutes * 60,
                            lr_decay=args.lr_decay, lr_decay_patience=args.lr_decay_patience,
                            init=args.init, prism_strength=args.prism_strength)
    result = train_lightgcn(graph, valid.to(device), config, device=device, log=lambda m: print(m, flush=True))
    started = time.perf_counter()
    # The validation part is carved from the given train.txt, so it is masked like the rest of train.
    metrics = evaluate_full_ranking(result.user_emb.to(device), result.item_emb.to(device), graph,
                                    test.to(device), also_masked=valid).summary()
    eval_seconds = time.perf_counter() - started

    results.update({k: v for k, v in metrics.items()})
    results.update(epochs=result.epochs_run, best_epoch=result.best_epoch, batch_size=args.batch_size,
                   lr=args.lr, lr_decay=args.lr_decay, lr_decay_patience=args.lr_decay_patience,
                   init=args.init, prism_strength=args.prism_strength, l2=result.config["l2"],
                   valid_fraction=args.valid_fraction,
                   train_seconds=result.train_seconds, eval_seconds=eval_seconds,
                   peak_rss_mb=peak_rss_mb(),
                   curve=[{"epoch": h["epoch"], "elapsed_seconds": h["elapsed_seconds"],
                           "valid_recall@20": h["valid_recall@20"], "lr": h["lr"]}
                          for h in result.history if "valid_recall@20" in h])
    paper = PAPER.get(args.dataset, {})
    print_table(f"Test quality on {args.dataset} (full ranking, train and validation items masked)",
                ["metric", "graphrec", "paper (reported, not run here)", "ratio"],
                [[k, metrics[k], paper.get(k, "—"), metrics[k] / paper[k] if k in paper else "—"]
                 for k in ("recall@20", "ndcg@20", "recall@10", "ndcg@10", "recall@50", "ndcg@50")])
    print_table("Run", ["epochs", "best epoch", "batch", "lr", "train s", "eval s", "peak RSS MB", "device"],
                [[result.epochs_run, result.best_epoch, args.batch_size, args.lr, result.train_seconds,
                  eval_seconds, peak_rss_mb(), str(device)]])
    print_table("Time to quality (validation Recall@20 at each evaluation)",
                ["epoch", "elapsed s", "valid recall@20", "lr"],
                [[c["epoch"], c["elapsed_seconds"], c["valid_recall@20"], c["lr"]] for c in results["curve"]])
    write_json(args.json, results)


if __name__ == "__main__":
    main()
