"""RawlsGCN for recommendation: LightGCN on the symmetric vs the doubly stochastic propagation, per degree group.

    python -m benchmarks.rawls_recsys --dataset gowalla [--strengths 1.0,0.5] [--init prism] [--json FILE]

Every model gets the same recipe, the same split and the same epoch budget, and stops early on validation Recall@20;
the balance strengths are given, not chosen on test. Test ranking masks the training and the validation items
(the validation part is carved from the training split). Users are bucketed by training degree (quantiles) and the
bias is the variance of the groups' mean Recall@20.
"""
from __future__ import annotations

import argparse

import torch

from benchmarks.common import (
    SMOKE_DATASET,
    add_init_arguments,
    add_smoke_argument,
    apply_smoke,
    load_dataset,
    print_table,
    write_json,
)
from models.eval.ranking import degree_group_metrics, degree_groups, evaluate_full_ranking
from models.recsys.training import LightGCNConfig, train_lightgcn


def degree_report(result, graph, test: torch.Tensor, valid: torch.Tensor, num_groups: int) -> dict[str, float]:
    """Overall Recall/NDCG@20, Recall@20 per user-degree group and the bias across groups, with training and
    validation items masked."""
    ranking = evaluate_full_ranking(result.user_emb, result.item_emb, graph, test, ks=(20,), also_masked=valid)
    return degree_group_metrics(ranking, degree_groups(graph.user_degree()[ranking.users], num_groups))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="gowalla", choices=["gowalla", "movielens"])
    parser.add_argument("--strengths", default="1.0", help="balance strengths β of the Rawls variant to run")
    parser.add_argument("--batch-size", type=int, default=32768)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=60, help="epoch budget per model (the same for every model)")
    parser.add_argument("--max-minutes", type=float, default=0.0, help="optional wall-clock cap per model")
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--valid-fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--json", default=None)
    add_init_arguments(parser)
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, epochs=2, eval_every=1, batch_size=1024)

    graph, valid, test = load_dataset(args.dataset, args.valid_fraction, args.seed)
    runs = {"lightgcn": ("symmetric", 1.0)}
    for beta in (float(s) for s in args.strengths.split(",")):
        # Model names carry no dots (β=0.5 → rawls_b050): result keys are "<model>.<metric>".
        runs["rawls" if beta == 1.0 else f"rawls_b{round(beta * 100):03d}"] = ("doubly_stochastic", beta)

    results: dict[str, object] = {"dataset": args.dataset, "epochs_per_model": args.epochs, "init": args.init,
                                  "prism_strength": args.prism_strength}
    for name, (propagation, beta) in runs.items():
        config = LightGCNConfig(batch_size=args.batch_size, lr=args.lr, epochs=args.epochs,
                                eval_every=args.eval_every, patience=5,
                                seed=args.seed, propagation=propagation, balance_strength=beta,
                                max_train_seconds=args.max_minutes * 60, init=args.init,
                                prism_strength=args.prism_strength)
        result = train_lightgcn(graph, valid, config, log=lambda m, n=name: print(f"[{n}] {m}", flush=True))
        report = degree_report(result, graph, test, valid, args.groups)
        results.update({f"{name}.{k}": v for k, v in report.items()})
        results[f"{name}.epochs"] = result.epochs_run
        results[f"{name}.train_seconds"] = result.train_seconds

    base_bias, base_recall = results["lightgcn.bias"], results["lightgcn.recall@20"]
    rows = [[name, results[f"{name}.recall@20"], results[f"{name}.recall@20"] / base_recall,
             results[f"{name}.bias"], results[f"{name}.bias"] / base_bias if base_bias else float("nan"),
             results[f"{name}.epochs"]] for name in runs]
    print_table(f"{args.dataset}: overall quality and degree-group bias (same recipe and budget)",
                ["model", "recall@20", "recall vs LightGCN", "bias (var of group recall)", "bias vs LightGCN",
                 "epochs"], rows)
    group_keys = sorted({k.split(".")[1] for k in results if k.endswith(".recall@20") and ".group" in k})
    print_table("Recall@20 per user-degree group (0 = lowest-degree quantile)", ["group", *runs],
                [[g, *[results.get(f"{name}.{g}.recall@20", float("nan")) for name in runs]] for g in group_keys])
    write_json(args.json, results)


if __name__ == "__main__":
    main()
