"""Where the forward push's time goes as the graph grows: on the growth series' generated power-law sets, the push
of a seeded sample of targets, per target: pushes, neighbours visited and milliseconds, and the nanoseconds per
visited neighbour (the push's unit of work); beside them the same number of consecutive ids (as ``ppr_scopes``
pushes every node in id order) and the random targets pushed on the graph renumbered by descending degree.

    python -m benchmarks.ppr_push [--sizes 1000000,4000000,16000000 | --dataset gowalla] [--targets 20000]
        [--repeats 3] [--before COMMIT] [--json FILE]

The graph is every generated interaction as an undirected user–item graph (``ppr_scopes``' graph without the split),
or with ``--dataset`` that data set's training split (``ppr_scopes``' graph); the push is ``ppr_scopes``' (ε 1e-5,
top 32, the default threads). ``--before`` pushes the same random targets with ``models/graph/ppr.py`` as it was at
``COMMIT``, alternating with the current code. Milliseconds are min/median/max of ``--repeats`` runs, the target sets
(and the two codes) alternating run for run. JSON keys per size ``<edges>.`` (or ``<dataset>.``): ``nodes``,
``pushes_per_target``, ``visits_per_target``, ``ns_per_visit`` (median run), ``ms_per_target`` (``.min``/``.max``
beside), ``id_order.ms_per_target``, ``degree_order.ms_per_target``; with ``--before``, ``before.ms_per_target``
(``.min``/``.max``), ``speedup`` (ratio of medians) and ``top_k_agreement`` (mean share of the earlier code's top
32 that the current one also returns); and ``slope.ms_per_target``, ``slope.ns_per_visit`` (log–log against
edges, generated sizes only).
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from benchmarks.common import (
    DATASETS,
    add_smoke_argument,
    apply_smoke,
    format_spread,
    load_dataset,
    module_at,
    print_table,
    spread,
    write_json,
)
from models.graph.bipartite import to_homogeneous_edge_index
from models.graph.ppr import DAMPING, TopKPPR, forward_push
from models.graph.sparse import binary_adjacency
from warehouse.generator import generate_interactions

EPSILON, TOP_K, SEED = 1e-5, 32, 0


def generated_graph(edges: int) -> sp.csr_matrix:
    """The generated set of ``edges`` interactions as a symmetric binary user–item adjacency (users first)."""
    frame = generate_interactions(edges, SEED)
    users = np.unique(frame["user_id"].to_numpy(), return_inverse=True)[1]
    items = np.unique(frame["item_id"].to_numpy(), return_inverse=True)[1]
    num_users = int(users.max()) + 1
    edge_index = torch.from_numpy(np.stack([users, items + num_users]).astype(np.int64))
    return binary_adjacency(edge_index, num_users + int(items.max()) + 1)


def dataset_graph(name: str) -> sp.csr_matrix:
    """The training split of data set ``name`` as ``ppr_scopes`` pushes it: a symmetric binary user–item
    adjacency (users first)."""
    train, _, _ = load_dataset(name, 0.0, SEED)
    return binary_adjacency(to_homogeneous_edge_index(train), train.num_users + train.num_items)


def degree_ordered(adj: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """``adj`` with nodes renumbered by descending degree, and each old node's new id."""
    order = np.argsort(-np.diff(adj.indptr), kind="stable")
    new_id = np.empty_like(order)
    new_id[order] = np.arange(order.size)
    return adj[order][:, order].tocsr(), new_id


def timed(push: Callable[..., TopKPPR], adj: sp.csr_matrix, targets: np.ndarray, **options: Any
          ) -> tuple[float, TopKPPR]:
    """Milliseconds per target of ``push`` (a ``forward_push``, the default threads) over ``targets``, and its
    result."""
    started = time.perf_counter()
    result = push(adj, targets, DAMPING, EPSILON, TOP_K, **options)
    return 1e3 * (time.perf_counter() - started) / targets.size, result


def agreement(current: TopKPPR, before: TopKPPR) -> float:
    """Mean over targets of the share of ``before``'s top nodes that ``current`` also returns."""
    shares = [np.intersect1d(current.row(i)[0].numpy(), before.row(i)[0].numpy()).size / max(before.row(i)[0].numel(), 1)
              for i in range(len(before))]
    return float(np.mean(shares)) if shares else 1.0


def measure(adj: sp.csr_matrix, sample: int, repeats: int, before: ModuleType | None
            ) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Every figure of one graph (keys as in the module docstring, without the size), and the milliseconds per
    target of each run: random targets, consecutive ids, random targets on degree-ordered ids (and the random targets
    with the earlier code)."""
    rng = np.random.default_rng(SEED)
    count = min(sample, adj.shape[0])
    targets = rng.choice(adj.shape[0], count, replace=False)
    first = int(rng.integers(0, adj.shape[0] - count + 1))
    consecutive = np.arange(first, first + count)
    ordered, new_id = degree_ordered(adj)
    forward_push(adj, targets[:1], DAMPING, EPSILON, TOP_K)  # compiles the push (or loads it) outside the timing
    runs, work = {"given": [], "id_order": [], "degree_order": [], "before": []}, [0, 0]
    for repeat in range(repeats):
        milliseconds, result = timed(forward_push, adj, targets, work=work if repeat == 0 else None)
        runs["given"].append(milliseconds)
        runs["id_order"].append(timed(forward_push, adj, consecutive)[0])
        runs["degree_order"].append(timed(forward_push, ordered, new_id[targets])[0])
        if before is not None:
            milliseconds, earlier = timed(before.forward_push, adj, targets)
            runs["before"].append(milliseconds)
    pushes, visits = work[0] / count, work[1] / count
    median = spread(runs["given"])["median"]
    figures = {"nodes": float(adj.shape[0]), "pushes_per_target": pushes, "visits_per_target": visits,
               "ns_per_visit": 1e6 * median / visits, **timing("ms_per_target", runs["given"]),
               **timing("id_order.ms_per_target", runs["id_order"]),
               **timing("degree_order.ms_per_target", runs["degree_order"])}
    if before is not None:
        figures.update({**timing("before.ms_per_target", runs["before"]),
                        "speedup": spread(runs["before"])["median"] / median,
                        "top_k_agreement": agreement(result, earlier)})
    return figures, runs


def timing(key: str, runs: list[float]) -> dict[str, float]:
    """``key`` (the median of ``runs``) with ``key.min`` and ``key.max`` beside it."""
    return {key if stat == "median" else f"{key}.{stat}": value for stat, value in spread(runs).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,4000000,16000000", help="generated edges, comma-separated")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default=None,
                        help="push on this data set's training graph instead of the generated sizes")
    parser.add_argument("--targets", type=int, default=20000, help="seeded random targets pushed at each size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", default=None, help="a commit whose push runs beside the current one")
    parser.add_argument("--json", default=None)
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), sizes="20000,80000", targets=500, repeats=1)
    before = module_at(args.before, "models/graph/ppr.py") if args.before else None
    graphs = {args.dataset: lambda: dataset_graph(args.dataset)} if args.dataset else {
        int(size): lambda size=int(size): generated_graph(size) for size in args.sizes.split(",")}
    measured = {key: measure(graph(), args.targets, args.repeats, before) for key, graph in graphs.items()}
    figures = {key: f for key, (f, _) in measured.items()}
    rows = [[f"{key:,}" if isinstance(key, int) else key, f"{int(f['nodes']):,}", f"{f['pushes_per_target']:.0f}",
             f"{f['visits_per_target']:.0f}", f"{f['ns_per_visit']:.1f}", format_spread(runs["given"], 3),
             format_spread(runs["id_order"], 3), format_spread(runs["degree_order"], 3)]
            + ([format_spread(runs["before"], 3), f"{f['speedup']:.2f}×", f"{f['top_k_agreement']:.5f}"] if before
               else []) for key, (f, runs) in measured.items()]
    print_table(f"forward push of {args.targets:,} seeded targets (ε {EPSILON}, top {TOP_K})",
                ["edges", "nodes", "pushes / target", "neighbours visited / target", "ns / visit", "ms / target",
                 "ms / target, consecutive ids", "ms / target, degree order"]
                + ([f"ms / target at {args.before}", "speedup", "top-32 agreement"] if before else []), rows)
    results = {f"{key}.{name}": value for key, f in figures.items() for name, value in f.items()}
    sizes = [key for key in figures if isinstance(key, int)]
    if len(sizes) > 1:
        for key in ("ms_per_target", "ns_per_visit"):
            results[f"slope.{key}"] = float(np.polyfit(np.log(sizes), np.log(
                [figures[size][key] for size in sizes]), 1)[0])
        print(f"\nlog–log slopes against edges: ms per target {results['slope.ms_per_target']:.3f}, "
              f"ns per visited neighbour {results['slope.ns_per_visit']:.3f}")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
