"""Where the forward push's time goes as the graph grows: on the growth series' generated power-law sets, the push
of a seeded sample of targets, per target: pushes, neighbours visited and milliseconds, and the nanoseconds per
visited neighbour (the push's unit of work); beside them the same number of consecutive ids (as ``ppr_scopes``
pushes every node in id order) and the random targets pushed on the graph renumbered by descending degree.

    python -m benchmarks.ppr_push [--sizes 1000000,4000000,16000000] [--targets 20000] [--repeats 3] [--json FILE]

The graph is every generated interaction as an undirected user–item graph (``ppr_scopes``' graph without the split),
the push ``ppr_scopes``' (ε 1e-5, top 32, the default threads). Milliseconds are min/median/max of ``--repeats``
runs, the three target sets alternating run for run. JSON keys per size ``<edges>.``: ``nodes``,
``pushes_per_target``, ``visits_per_target``, ``ns_per_visit`` (median run), ``ms_per_target`` (``.min``/``.max``
beside), ``id_order.ms_per_target``, ``degree_order.ms_per_target``; and ``slope.ms_per_target``,
``slope.ns_per_visit`` (log–log against edges).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import torch

from benchmarks.common import add_smoke_argument, apply_smoke, format_spread, print_table, spread, write_json
from models.graph.ppr import DAMPING, forward_push
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


def degree_ordered(adj: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """``adj`` with nodes renumbered by descending degree, and each old node's new id."""
    order = np.argsort(-np.diff(adj.indptr), kind="stable")
    new_id = np.empty_like(order)
    new_id[order] = np.arange(order.size)
    return adj[order][:, order].tocsr(), new_id


def ms_per_target(adj: sp.csr_matrix, targets: np.ndarray, work: list[int] | None = None) -> float:
    """Milliseconds per target of :func:`forward_push` (the default threads) over ``targets``; its pushes and visited
    neighbours are added to ``work`` when given."""
    started = time.perf_counter()
    forward_push(adj, targets, DAMPING, EPSILON, TOP_K, work=work)
    return 1e3 * (time.perf_counter() - started) / targets.size


def measure(edges: int, sample: int, repeats: int) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Every figure of one size (keys as in the module docstring, without the size), and the milliseconds per target
    of each run: random targets, consecutive ids, random targets on degree-ordered ids."""
    adj = generated_graph(edges)
    rng = np.random.default_rng(SEED)
    count = min(sample, adj.shape[0])
    targets = rng.choice(adj.shape[0], count, replace=False)
    first = int(rng.integers(0, adj.shape[0] - count + 1))
    consecutive = np.arange(first, first + count)
    ordered, new_id = degree_ordered(adj)
    forward_push(adj, targets[:1], DAMPING, EPSILON, TOP_K)  # compiles the push (or loads it) outside the timing
    runs, work = {"given": [], "id_order": [], "degree_order": []}, [0, 0]
    for repeat in range(repeats):
        runs["given"].append(ms_per_target(adj, targets, work if repeat == 0 else None))
        runs["id_order"].append(ms_per_target(adj, consecutive))
        runs["degree_order"].append(ms_per_target(ordered, new_id[targets]))
    pushes, visits = work[0] / count, work[1] / count
    median = spread(runs["given"])["median"]
    return {"nodes": float(adj.shape[0]), "pushes_per_target": pushes, "visits_per_target": visits,
            "ns_per_visit": 1e6 * median / visits, **timing("ms_per_target", runs["given"]),
            **timing("id_order.ms_per_target", runs["id_order"]),
            **timing("degree_order.ms_per_target", runs["degree_order"])}, runs


def timing(key: str, runs: list[float]) -> dict[str, float]:
    """``key`` (the median of ``runs``) with ``key.min`` and ``key.max`` beside it."""
    return {key if stat == "median" else f"{key}.{stat}": value for stat, value in spread(runs).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,4000000,16000000", help="generated edges, comma-separated")
    parser.add_argument("--targets", type=int, default=20000, help="seeded random targets pushed at each size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), sizes="20000,80000", targets=500, repeats=1)
    sizes = [int(size) for size in args.sizes.split(",")]
    measured = {size: measure(size, args.targets, args.repeats) for size in sizes}
    figures = {size: f for size, (f, _) in measured.items()}
    rows = [[f"{size:,}", f"{int(f['nodes']):,}", f"{f['pushes_per_target']:.0f}", f"{f['visits_per_target']:.0f}",
             f"{f['ns_per_visit']:.1f}", format_spread(runs["given"], 3), format_spread(runs["id_order"], 3),
             format_spread(runs["degree_order"], 3)] for size, (f, runs) in measured.items()]
    print_table(f"forward push of {args.targets:,} seeded targets (ε {EPSILON}, top {TOP_K})",
                ["edges", "nodes", "pushes / target", "neighbours visited / target", "ns / visit", "ms / target",
                 "ms / target, consecutive ids", "ms / target, degree order"], rows)
    results = {f"{size}.{key}": value for size, f in figures.items() for key, value in f.items()}
    if len(sizes) > 1:
        for key in ("ms_per_target", "ns_per_visit"):
            results[f"slope.{key}"] = float(np.polyfit(np.log(sizes), np.log(
                [figures[size][key] for size in sizes]), 1)[0])
        print(f"\nlog–log slopes against edges: ms per target {results['slope.ms_per_target']:.3f}, "
              f"ns per visited neighbour {results['slope.ns_per_visit']:.3f}")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
