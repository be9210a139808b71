"""Compatibility of training-free versions through a learned map into the promoted space, over three generations:
v1 LightGCN → v2 graph filter (GF-CF as vectors) → v3 graph filter on more data.

    python -m benchmarks.compat_map --dataset gowalla [--users N] [--json FILE] [--smoke]
        [--factor-rank M] [--rank K] [--alpha A] [--map-kind auto|procrustes|least_squares]

Generations use the nested subsamples of ``benchmarks.compatibility`` (60%, 80%, 100% of each user's training
interactions; each generation has its own seed). Two chains are judged by the publishing gate's criterion
(``feature_store.gate.gate_failures``: M(new users, old items) > M(old, old) against every ancestor, on validation
with the training pairs masked, as the pipeline's check does):

- ``map``: each filter version is published as ``new @ W`` with ``W`` fitted into its parent's published space
  (``models.recsys.compat_map``), so v3 is mapped onto the mapped v2, which lives in v1's space;
- ``raw``: the filter's vectors as fitted. A pair whose dimensions differ cannot be scored at all and fails.

Keys: ``<chain>.<users>_<items>.recall@20`` (and ``ndcg@20``) for each new/old pair and ``<chain>.<old>_<old>``,
``<chain>.<new>_<old>.criterion``, ``<chain>.criterion_holds``, ``<chain>.<new>.refusal`` (the gate's message
when refused), ``map.<v>.kind`` / ``.residual`` / ``.user_residual`` / ``.item_residual``, ``filter.<v>.recall@20``
(the unmapped filter on its own) and ``map.<v>.self_ratio`` (the mapped version's own Recall@20 over the
unmapped filter's: what the map costs the new model).
"""
from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import replace

import torch

from benchmarks.common import (
    SMOKE_DATASET,
    add_lightgcn_arguments,
    add_smoke_argument,
    apply_smoke,
    load_dataset,
    peak_rss_mb,
    print_table,
    resolve_device,
    write_json,
)
from benchmarks.compatibility import METRICS, nested_subsample, restrict_users
from feature_store.gate import gate_failures, refusal_message
from models.eval.compat_report import Embeddings, compatibility_report
from models.graph.bipartite import BipartiteGraph
from models.recsys.compat_map import KINDS, fit_compatibility_map
from models.recsys.contract import Runtime
from models.recsys.graph_filter import GFCFFactors, GFCFFactorsConfig
from models.recsys.training import LightGCNConfig, train_lightgcn

# (name, share of each user's training interactions, family)
GENERATIONS = (("v1", 0.6, "lightgcn"), ("v2", 0.8, "gf_cf_factors"), ("v3", 1.0, "gf_cf_factors"))
CHAINS = ("map", "raw")


def fit_generations(graph: BipartiteGraph, valid: torch.Tensor, lightgcn: LightGCNConfig,
                    gf: GFCFFactorsConfig, device: torch.device) -> tuple[dict[str, Embeddings], dict[str, dict]]:
    """Each generation's vectors as fitted, and a record (edges, seconds) per generation."""
    fitted: dict[str, Embeddings] = {}
    records: dict[str, dict] = {}
    for index, (name, fraction, family) in enumerate(GENERATIONS):
        sub = BipartiteGraph(nested_subsample(graph.edge_index, fraction, lightgcn.seed), graph.num_users,
                             graph.num_items)
        started = time.perf_counter()
        if family == "lightgcn":
            result = train_lightgcn(sub, valid.to(device), replace(lightgcn, seed=lightgcn.seed + index), device=device,
                                    log=lambda m: None)
            fitted[name] = (result.user_emb.cpu(), result.item_emb.cpu())
        else:
            model = GFCFFactors().fit(sub, valid, replace(gf, seed=gf.seed + index), Runtime(device=device))
            fitted[name] = (model.user_emb, model.item_emb)
        records[name] = {"family": family, "edges": sub.num_edges, "dim": fitted[name][0].size(1),
                         "seconds": time.perf_counter() - started}
        print(f"fitted {name} ({family}): {sub.num_edges} edges, dim {records[name]['dim']}, "
              f"{records[name]['seconds']:.1f} s", flush=True)
    return fitted, records


def map_chain(fitted: dict[str, Embeddings], kind: str) -> tuple[dict[str, Embeddings], dict[str, dict]]:
    """The published chain with maps: every generation after the first mapped into its parent's published space."""
    published = {GENERATIONS[0][0]: fitted[GENERATIONS[0][0]]}
    maps = {}
    for (parent, _, _), (name, _, _) in itertools.pairwise(GENERATIONS):
        learned = fit_compatibility_map(*fitted[name], *published[parent], kind=kind)
        published[name] = learned.apply(*fitted[name])
        maps[name] = learned.summary(fitted_to=parent)
    return published, maps


def judge(chain: str, published: dict[str, Embeddings], fitted: dict[str, Embeddings], maps: dict[str, dict],
          graph: BipartiteGraph, valid: torch.Tensor) -> dict[str, object]:
    """The gate's verdict and figures for each new generation of one chain against all earlier ones."""
    results: dict[str, object] = {}
    holds = True
    for index, (new, _, new_family) in enumerate(GENERATIONS[1:], start=1):
        parent, _, parent_family = GENERATIONS[index - 1]
        dim = published[new][0].size(1)
        olds = {old: published[old] for old, _, _ in GENERATIONS[:index] if published[old][0].size(1) == dim}
        report = compatibility_report(published[new], olds, graph, valid, ks=(20,), independent=fitted[new])
        failures = [f"against {old!r}: dimensions differ (new {dim}, old {published[old][0].size(1)}), so new users "
                     "cannot score its items" for old, _, _ in GENERATIONS[:index] if old not in olds]
        failures += gate_failures(report, None)
        for old, entry in report["ancestors"].items():
            for m in METRICS:
                results[f"{chain}.{old}_{old}.{m}"] = entry["old_old"][m]
                results[f"{chain}.{new}_{old}.{m}"] = entry["new_old"][m]
            results[f"{chain}.{new}_{old}.criterion"] = entry["criterion"]
        for old, _, _ in GENERATIONS[:index]:
            results.setdefault(f"{chain}.{new}_{old}.criterion", False)
        results[f"{chain}.{new}_{new}.recall@20"] = report["new_new"]["recall@20"]
        if failures:
            results[f"{chain}.{new}.refusal"] = refusal_message(new_family, new, parent_family, parent, failures,
                                                                maps.get(new))
            print(results[f"{chain}.{new}.refusal"])
        holds &= not failures
    results[f"{chain}.criterion_holds"] = holds
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_lightgcn_arguments(parser, valid_fraction=0.05)
    parser.add_argument("--max-minutes-per-model", type=float, default=6.0, help="LightGCN's wall-clock budget")
    parser.add_argument("--users", type=int, default=0, help="keep this many seeded random users (0: all)")
    defaults = GFCFFactorsConfig()
    parser.add_argument("--factor-rank", type=int, default=defaults.factor_rank, help="the filter's m")
    parser.add_argument("--rank", type=int, default=defaults.rank, help="the filter's k (ideal low-pass)")
    parser.add_argument("--alpha", type=float, default=defaults.alpha, help="the filter's ideal low-pass weight")
    parser.add_argument("--map-kind", default="auto", choices=KINDS)
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, epochs=20, eval_every=5, batch_size=1024, users=0,
                       max_minutes_per_model=0.5)

    device = resolve_device(args.device)
    graph, valid, test = load_dataset(args.dataset, args.valid_fraction, args.seed)
    if args.users:
        graph, valid, test = restrict_users(graph, valid, test, args.users, args.seed)
    print(f"{args.dataset}: {graph.num_users} users, {graph.num_items} items, {graph.num_edges} train, "
          f"{valid.size(1)} valid edges; device {device}; {torch.get_num_threads()} threads")
    lightgcn = LightGCNConfig(batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, eval_every=args.eval_every,
                              seed=args.seed, max_train_seconds=args.max_minutes_per_model * 60)
    gf = GFCFFactorsConfig(rank=args.rank, alpha=args.alpha, factor_rank=args.factor_rank, seed=args.seed)

    started = time.perf_counter()
    fitted, records = fit_generations(graph, valid, lightgcn, gf, device)
    mapped, maps = map_chain(fitted, args.map_kind)
    results: dict[str, object] = {}
    results.update(judge("map", mapped, fitted, maps, graph, valid))
    results.update(judge("raw", fitted, fitted, {}, graph, valid))
    for name, summary in maps.items():
        results.update({f"map.{name}.{key}": summary[key]
                        for key in ("kind", "residual", "user_residual", "item_residual")})
        results[f"filter.{name}.recall@20"] = results[f"raw.{name}_{name}.recall@20"]
        results[f"map.{name}.self_ratio"] = results[f"map.{name}_{name}.recall@20"] / results[f"filter.{name}.recall@20"]

    pairs = [(new, old) for i, (new, _, _) in enumerate(GENERATIONS) for old, _, _ in GENERATIONS[:i]]
    print_table("Recall@20 on validation (the gate's set; training pairs masked): new users on old items against the "
                "old version on itself", ["new → old", *[f"{c}: {m}" for c in CHAINS
                                                         for m in ("M(new, old)", "M(old, old)", "criterion")]],
                [[f"{new} → {old}", *[cell for c in CHAINS for cell in (
                    results.get(f"{c}.{new}_{old}.recall@20", "n/a (dims differ)"),
                    results.get(f"{c}.{old}_{old}.recall@20", "—"), str(results[f"{c}.{new}_{old}.criterion"]))]]
                 for new, old in pairs])
    print_table("The map and what it costs the filter", ["version", "kind", "residual (users / items)",
                                                         "filter Recall@20", "mapped Recall@20", "ratio"],
                [[name, results[f"map.{name}.kind"], (f"{results[f'map.{name}.residual']:.3f} "
                  f"({results[f'map.{name}.user_residual']:.3f} / {results[f'map.{name}.item_residual']:.3f})"),
                  results[f"filter.{name}.recall@20"], results[f"map.{name}_{name}.recall@20"],
                  results[f"map.{name}.self_ratio"]] for name in maps])
    print(f"\ncriterion holds for every pair: with the map {results['map.criterion_holds']}, "
          f"without {results['raw.criterion_holds']}")
    results.update(dataset=args.dataset, device=str(device), users=args.users or graph.num_users,
                   filter_config={"factor_rank": args.factor_rank, "rank": args.rank, "alpha": args.alpha},
                   map_kind=args.map_kind, models=records, total_seconds=time.perf_counter() - started,
                   peak_rss_mb=peak_rss_mb())
    write_json(args.json, results)


if __name__ == "__main__":
    main()
