"""Baselines side by side with LightGCN in one run: popularity (plain and recency-weighted), item-kNN, GF-CF and
GF-CF published as vectors (``gf_cf_factors``, beside the full filter to show what the vectors cost) against a
LightGCN run, with the GF-CF reference script timed on the same machine in the same run.

Protocol: settings are chosen on validation (a carve of the training split); each family is then refitted on the
whole training split with the chosen setting and scored once on test, with training and validation items masked
(LightGCN-style Recall@20 and NDCG@20). Seconds are a family's fit plus scoring every test user; peak RSS is the
process's high-water mark after the family ran (families run in sequence, cheapest first). LightGCN trains on
the training split less the validation carve, as in its own benchmark, and is scored with both masked.
``gf_cf_authors`` is GF-CF at the published setting the reference script runs (not chosen on validation): the
like-for-like row for quality and time against that script.

    python -m benchmarks.baselines --dataset gowalla [--json FILE] [--lightgcn-embeddings FILE]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from benchmarks.common import (
    DATASETS,
    SMOKE_DATASET,
    add_smoke_argument,
    apply_smoke,
    load_dataset,
    peak_rss_mb,
    print_table,
    resolve_device,
    run_reference_script,
    write_json,
)
from models.eval.ranking import evaluate_scores
from models.graph.bipartite import BipartiteGraph
from models.recsys.baselines import HALF_LIVES_DAYS
from models.recsys.contract import Runtime
from models.recsys.registry import FAMILIES
from models.recsys.training import LightGCNConfig, train_lightgcn
from warehouse.paths import shared_dir

K = 20
# Settings tried on validation; the first of each list is the published default.
GRIDS = {
    "popularity": [{}],
    "recent_popularity": [{"half_life_days": days} for days in HALF_LIVES_DAYS],
    "item_knn": [{"neighbours": 100, "shrink": 0.0}, {"neighbours": 50, "shrink": 0.0}, {"neighbours": 200, "shrink": 10.0}],
    "gf_cf": [{"rank": 256, "alpha": 0.3}, {"rank": 256, "alpha": 0.1}, {"rank": 256, "alpha": 0.5}],
    "gf_cf_factors": [{"rank": 256, "alpha": 0.3, "factor_rank": 1024}, {"rank": 256, "alpha": 0.1, "factor_rank": 1024}],
}
# GF-CF's published Gowalla setting (Shen et al., CIKM 2021), which the reference script runs.
GFCF_AUTHORS = {"rank": 256, "alpha": 0.3}
REFERENCE = shared_dir() / "tools" / "gfcf_reference.py"


def _evaluate(fitted, graph: BipartiteGraph, heldout: torch.Tensor, masked: torch.Tensor | None,
              device: torch.device) -> dict[str, float]:
    result = evaluate_scores(fitted.score, graph, heldout, ks=(K,), batch_size=2048, also_masked=masked,
                             device=device)
    return result.summary()


def run_setting(name: str, config, full: BipartiteGraph, test: torch.Tensor, device: torch.device,
                valid_recall: float | None = None) -> dict[str, object]:
    """Fit family ``name`` with ``config`` on ``full`` and score test once; seconds are the fit plus the scoring."""
    started = time.perf_counter()
    fitted = FAMILIES[name].fit(full, torch.empty(2, 0, dtype=torch.long), config, Runtime(device=device))
    test_metrics = _evaluate(fitted, full, test, None, device)
    seconds = time.perf_counter() - started
    return {"valid_recall@20": valid_recall, "recall@20": test_metrics[f"recall@{K}"],
            "ndcg@20": test_metrics[f"ndcg@{K}"], "seconds": seconds, "peak_rss_mb": peak_rss_mb(),
            "config": str(fitted.config)}


def run_family(name: str, train: BipartiteGraph, valid: torch.Tensor, full: BipartiteGraph, test: torch.Tensor,
               device: torch.device) -> dict[str, object]:
    """Choose ``name``'s setting on validation (fit on ``train``), refit on ``full`` (train + valid, with their
    times), score test once."""
    family = FAMILIES[name]
    tried = []
    for settings in GRIDS[name]:
        config = family.config_type(**settings)
        fitted = family.fit(train, valid, config, Runtime(device=device))
        tried.append((_evaluate(fitted, train, valid, None, device), config))
        del fitted
    valid_metrics, chosen = max(tried, key=lambda pair: pair[0][f"recall@{K}"])
    if len(tried) > 1:
        print(f"{name}, validation recall@{K} by setting: " + "; ".join(
            f"{settings} {metrics[f'recall@{K}']:.4f}" for (metrics, _), settings in zip(tried, GRIDS[name])),
            flush=True)
    return run_setting(name, chosen, full, test, device, valid_metrics[f"recall@{K}"])


def run_lightgcn(train: BipartiteGraph, valid: torch.Tensor, test: torch.Tensor, device: torch.device,
                 minutes: float, embeddings: str | None) -> dict[str, object]:
    """LightGCN from saved vectors (a run of ``benchmarks.lightgcn``), or trained here within ``minutes``."""
    started = time.perf_counter()
    if embeddings:
        vectors = torch.load(embeddings, weights_only=True)
        user_emb, item_emb, source = vectors["user_emb"], vectors["item_emb"], f"saved run {embeddings}"
        valid_recall = None
    else:
        config = replace(LightGCNConfig(), batch_size=32768, lr=0.01, eval_every=10,
                         max_train_seconds=minutes * 60)
        result = train_lightgcn(train, valid, config, device, log=lambda line: None)
        user_emb, item_emb, valid_recall = result.user_emb, result.item_emb, result.best_valid_recall
        source = f"trained here, {minutes:g} min budget, {result.epochs_run} epochs"
    metrics = evaluate_scores(lambda users: user_emb[users] @ item_emb.T, train, test, ks=(K,), batch_size=2048,
                              also_masked=valid).summary()
    return {"valid_recall@20": valid_recall, "recall@20": metrics[f"recall@{K}"], "ndcg@20": metrics[f"ndcg@{K}"],
            "seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(), "config": source}


def run_reference(dataset: str) -> dict[str, object] | None:
    """The plain-scipy GF-CF reference script on the same machine, in a child process (its own clock and RSS)."""
    if dataset != "gowalla" or not REFERENCE.is_file():
        return None
    run = run_reference_script(REFERENCE, shared_dir() / "datasets" / DATASETS[dataset][1], GFCF_AUTHORS["rank"],
                               GFCF_AUTHORS["alpha"])
    return {"valid_recall@20": None, "recall@20": run["recall@20"], "ndcg@20": run["ndcg@20"],
            "seconds": run["seconds"], "peak_rss_mb": None,
            "config": f"reference script, authors' setting (k 256, α 0.3), test only; "
                      f"{run['wall_seconds']:.1f} s with start-up"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="gowalla", choices=sorted(DATASETS))
    parser.add_argument("--families", default="popularity,recent_popularity,item_knn,gf_cf,gf_cf_authors,gf_cf_factors,"
                                                "lightgcn,reference")
    parser.add_argument("--valid-fraction", type=float, default=0.05)
    parser.add_argument("--lightgcn-minutes", type=float, default=10.0)
    parser.add_argument("--lightgcn-embeddings", default=None, help="saved user_emb/item_emb of a LightGCN run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--json", default=None)
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, lightgcn_minutes=0.05,
                       families="popularity,recent_popularity,item_knn,gf_cf,gf_cf_authors,gf_cf_factors,lightgcn")
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    train, valid, test = load_dataset(args.dataset, args.valid_fraction, args.seed)
    # The whole training split (train + the validation carve, with interaction times) for the refit.
    full, _, full_test = load_dataset(args.dataset, 0.0, args.seed)
    if full.num_edges != train.num_edges + valid.size(1) or not torch.equal(full_test, test):
        raise RuntimeError("the training split loaded without a validation carve is not train + valid")
    print(f"{args.dataset}: {train.num_users} users, {train.num_items} items, {train.num_edges} train, "
          f"{valid.size(1)} valid, {test.size(1)} test interactions", flush=True)
    results = {}
    for name in args.families.split(","):
        if name == "reference":
            row = run_reference(args.dataset)
        elif name == "gf_cf_authors":  # the reference script's setting, not chosen here: like for like with it
            row = run_setting("gf_cf", FAMILIES["gf_cf"].config_type(**GFCF_AUTHORS), full, test, device)
        elif name == "lightgcn":
            row = run_lightgcn(train, valid, test, device, args.lightgcn_minutes, args.lightgcn_embeddings)
        else:
            row = run_family(name, train, valid, full, test, device)
        if row is not None:
            results[name] = row
            print(f"{name}: {row}", flush=True)
    print_table(f"{args.dataset}: test Recall@20 / NDCG@20 (settings chosen on validation)",
                ["model", "valid recall@20", "recall@20", "ndcg@20", "seconds", "peak RSS MiB", "setting"],
                [[name, *(row[key] for key in ("valid_recall@20", "recall@20", "ndcg@20", "seconds", "peak_rss_mb",
                                               "config"))] for name, row in results.items()])
    write_json(args.json, {f"{name}.{key}": value for name, row in results.items() for key, value in row.items()
                           if key != "config" and value is not None} | {"dataset": args.dataset})


if __name__ == "__main__":
    main()
