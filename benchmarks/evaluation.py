"""What the ranking report's full-ranking evaluation costs per model: validation and test scored in two passes of
4,096-user blocks (the report before) against one pass of item-sized blocks (``evaluate_held_out``, the report
now), run for run alternating in one process, with the seconds and the peak resident memory of each pass.

    python -m benchmarks.evaluation --dataset gowalla [--families gf_cf,bspm,item_knn,popularity,vectors]
        [--repeats 3] [--json FILE]

Each family is fitted once at its dataclass default (the authors' setting) on the pipeline's split (the given or
temporal split, 10% of each user's training pairs carved out for validation), as ``ranking_report`` then finds it.
``vectors`` is 64-dim random user and item vectors, seed 0: the evaluation cost of any dot-product model (LightGCN,
Rawls, shaDow, the student), which does not depend on the values. Both paths must give the same per-user figures;
``<family>.identical`` says whether they did. Peak RSS is the process's high-water mark during one pass, reset
before it (Linux ``/proc/self/clear_refs``), so it includes the fitted model and the data set. JSON keys:
``<family>.<path>.seconds`` (median; ``.min``/``.max``), ``<family>.<path>.peak_rss_mb`` (largest), with ``<path>``
``two_passes`` or ``one_pass``; ``<family>.speedup`` (ratio of medians) and ``<family>.identical``.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import torch
from torch import Tensor

import models  # noqa: F401  (sets OMP_WAIT_POLICY before torch starts)
from benchmarks.common import (
    DATASETS,
    SMOKE_DATASET,
    add_smoke_argument,
    alternate_paths,
    apply_smoke,
    format_spread,
    load_dataset,
    path_figures,
    print_table,
    write_json,
)
from models.eval.ranking import HeldOut, RankingResult, evaluate_held_out, evaluate_scores
from models.graph.bipartite import BipartiteGraph
from models.recsys.contract import Runtime, vectors_scorer
from models.recsys.registry import FAMILIES

KS = (10, 20, 50)  # the report's cut-offs
BEFORE_BLOCK = 4096  # the users per block of the report before
VALID_FRACTION, SEED = 0.1, 2020  # the pipeline's split defaults
VECTORS = "vectors"
PATHS = ("two_passes", "one_pass")


def scorer_of(family: str, graph: BipartiteGraph, valid: Tensor) -> Callable[[Tensor], Tensor]:
    """The fitted family's scorer (``vectors``: random 64-dim vectors, seed 0)."""
    if family == VECTORS:
        generator = torch.Generator().manual_seed(0)
        return vectors_scorer(torch.randn(graph.num_users, 64, generator=generator),
                              torch.randn(graph.num_items, 64, generator=generator))
    spec = FAMILIES[family]
    return spec.fit(graph, valid, spec.config_type(), Runtime(log=lambda _: None)).score


def two_passes(score, graph: BipartiteGraph, valid: Tensor, test: Tensor) -> dict[str, RankingResult]:
    """The report before: validation, then test, each a pass of 4,096-user blocks."""
    return {"valid": evaluate_scores(score, graph, valid, KS, BEFORE_BLOCK),
            "test": evaluate_scores(score, graph, test, KS, BEFORE_BLOCK, also_masked=valid,
                                    item_popularity=graph.item_degree(), beyond_accuracy_k=20)}


def one_pass(score, graph: BipartiteGraph, valid: Tensor, test: Tensor) -> dict[str, RankingResult]:
    """The report now: both sets from one pass of item-sized blocks."""
    return evaluate_held_out(score, graph, {
        "valid": HeldOut(valid),
        "test": HeldOut(test, also_masked=valid, item_popularity=graph.item_degree(), beyond_accuracy_k=20)}, KS)


EVALUATIONS = {"two_passes": two_passes, "one_pass": one_pass}


def same_figures(a: dict[str, RankingResult], b: dict[str, RankingResult]) -> bool:
    """Whether both paths gave the same users and per-user Recall/NDCG in both sets."""
    return all(torch.equal(a[name].users, b[name].users)
               and all(torch.equal(a[name].recall[k], b[name].recall[k]) for k in KS)
               and all(torch.equal(a[name].ndcg[k], b[name].ndcg[k]) for k in KS) for name in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="gowalla")
    parser.add_argument("--families", default="gf_cf,bspm,item_knn,popularity,vectors")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, repeats=3)

    graph, valid, test = load_dataset(args.dataset, VALID_FRACTION, SEED)
    results: dict = {"dataset": args.dataset, "users": graph.num_users, "items": graph.num_items,
                     "threads": torch.get_num_threads(), "repeats": args.repeats}
    rows = []
    for family in args.families.split(","):
        score = scorer_of(family, graph, valid)
        seconds, peaks, outputs = alternate_paths(
            lambda path, score=score: EVALUATIONS[path](score, graph, valid, test), PATHS, args.repeats)
        identical = same_figures(outputs["two_passes"], outputs["one_pass"])
        results.update({**path_figures(family, seconds, peaks), f"{family}.identical": identical})
        speedup = results[f"{family}.speedup"]
        rows.append([family, format_spread(seconds["two_passes"], 3), format_spread(seconds["one_pass"], 3),
                     f"{speedup:.2f}×", f"{max(peaks['two_passes']):,.0f}", f"{max(peaks['one_pass']):,.0f}",
                     "yes" if identical else "**no**"])
    print_table(f"validation and test full-ranking evaluation on {args.dataset} ({graph.num_users:,} users × "
                f"{graph.num_items:,} items), {args.repeats} runs, {results['threads']} threads",
                ["model", "two passes, 4,096-user blocks: s", "one pass, item-sized blocks: s", "speedup (medians)",
                 "peak RSS MiB, two passes", "peak RSS MiB, one pass", "same figures"], rows)
    write_json(args.json, results)


if __name__ == "__main__":
    sys.exit(main())
