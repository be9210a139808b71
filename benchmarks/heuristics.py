"""Seconds of the heuristic teachers (``heuristic_scores``: CN, AA, RA and PPR of every user's context items) on a
shared data set, and optionally side by side with the implementation of an earlier commit on the same pairs.

    python -m benchmarks.heuristics --dataset gowalla [--users N] [--heuristics cn,aa,ra,ppr,cn+aa+ra]
        [--repeats 3] [--before COMMIT] [--json FILE]

The pairs are the asset's: each user's context items (as many own and random as the student uses), seed 0, for
``--users`` seeded random users (0: all) on the full training graph. Each entry of ``--heuristics`` is timed as one
call; ``cn+aa+ra`` asks for the three overlaps together, as the asset does. ``--before`` loads
``models/graph/heuristics.py`` as it was at ``COMMIT`` (``git show``) and times it on the same pairs in the same
process, run for run alternating with the current code, so both see the same machine. JSON keys:
``<heuristic>.seconds`` (median; ``.min``/``.max`` beside it), ``<heuristic>.before.seconds``, ``<heuristic>.speedup``
(ratio of medians), ``<heuristic>.max_abs_diff`` (current against before) and ``pairs``.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

import models  # noqa: F401  (sets OMP_WAIT_POLICY before torch starts)
import models.graph.heuristics as current
from benchmarks.common import (
    DATASETS,
    SMOKE_DATASET,
    add_smoke_argument,
    apply_smoke,
    format_spread,
    load_dataset,
    module_at,
    print_table,
    spread,
    write_json,
)
from models.recsys.student import teacher_contexts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="gowalla")
    parser.add_argument("--users", type=int, default=0, help="seeded random users whose pairs are scored (0: all)")
    parser.add_argument("--heuristics", default="cn,aa,ra,ppr,cn+aa+ra",
                        help="comma-separated entries, each timed as one call; '+' joins heuristics of one call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", default=None, help="a commit whose implementation runs beside the current one")
    parser.add_argument("--json", default=None)
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, users=0, repeats=3)

    graph, _, _ = load_dataset(args.dataset, valid_fraction=0.05, seed=2020)
    users = torch.arange(graph.num_users)
    if args.users:
        users = torch.randperm(graph.num_users, generator=torch.Generator().manual_seed(0))[:args.users].sort().values
    contexts = teacher_contexts(graph, seed=0, users=users)
    pair_users, pair_items = users.repeat_interleave(contexts.size(1)), contexts.flatten()
    before = module_at(args.before, "models/graph/heuristics.py") if args.before else None
    results: dict = {"dataset": args.dataset, "pairs": pair_users.numel(), "edges": graph.edge_index.size(1),
                     "before": args.before, "threads": torch.get_num_threads()}
    rows = []
    for name in args.heuristics.split(","):
        names = tuple(name.split("+"))
        seconds, before_seconds = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            scores = torch.stack(list(current.bipartite_heuristic_scores(graph, pair_users, pair_items, names).values()))
            seconds.append(time.perf_counter() - started)
            if before is not None:
                started = time.perf_counter()
                old = torch.stack(list(before.bipartite_heuristic_scores(graph, pair_users, pair_items, names).values()))
                before_seconds.append(time.perf_counter() - started)
        results.update({f"{name}.seconds": spread(seconds)["median"], f"{name}.seconds.min": min(seconds),
                        f"{name}.seconds.max": max(seconds)})
        row = [name, format_spread(seconds, 3)]
        if before is not None:
            speedup = spread(before_seconds)["median"] / spread(seconds)["median"]
            max_abs = float((scores - old).abs().max())
            results.update({f"{name}.before.seconds": spread(before_seconds)["median"],
                            f"{name}.before.seconds.min": min(before_seconds),
                            f"{name}.before.seconds.max": max(before_seconds),
                            f"{name}.speedup": speedup, f"{name}.max_abs_diff": max_abs})
            row += [format_spread(before_seconds, 3), f"{speedup:.1f}×", f"{max_abs:.2g}"]
        rows.append(row)
    header = ["heuristic", "seconds, median (min–max)"]
    if before is not None:
        header += [f"at {args.before}", "speedup (medians)", "max |difference|"]
    print_table(f"heuristic teachers on {args.dataset}: {results['pairs']:,} pairs, {results['edges']:,} training "
                f"edges, {args.repeats} runs, {results['threads']} threads", header, rows)
    write_json(args.json, results)


if __name__ == "__main__":
    sys.exit(main())
