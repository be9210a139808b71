"""Backward-compatible embedding versions over three generations: cross-version retrieval without a compatibility
loss, with BCT's influence loss (Shen et al., CVPR 2020) and with the hyperbolic entailment-cone loss (Bui et al.,
ICML 2025).

    python -m benchmarks.compatibility --dataset gowalla [--json FILE] [--max-minutes-per-model M] [--users N]
        [--hyperbolic-grid 0.01:0.002,0.025:0.005,...]

Generations: v1 trains LightGCN on a seeded 60% of each user's training interactions, v2 on 80% (a superset) with
the Rawls variant (doubly stochastic propagation), v3 on 100%; each generation has its own seed, as a real
retrain would. Each method trains v2 against v1 and v3 against its own v2 (v1 is shared); ``none`` is the
independently trained twin of every generation. All pairs are measured on the test interactions with every
training interaction masked. Keys: ``<method>.<users>_<items>.recall@20`` (and ``ndcg@20``) for every ordered pair
of generations, ``independent.<v>.recall@20``, ``<method>.<v>.self_ratio`` (self-retrieval over the independent
twin's) and ``<method>.criterion_holds`` (M(new users, old items) > M(old, old) for v2→v1, v3→v2 and v3→v1).

``--hyperbolic-grid`` trains one more hyperbolic chain per ``λ_ent:λ_align`` setting (named
``hyperbolic@λ_ent:λ_align``) beside the shared v1 and the independent twins, and chooses among them and the
default ``hyperbolic`` on validation only: ``chosen_hyperbolic`` is the one whose criterion holds on the validation pairs with the highest mean
validation self-retrieval ratio (v2 and v3), or None when no setting holds it.
"""
from __future__ import annotations

import argparse
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
from models.eval.compat_report import Embeddings, compatibility_report
from models.graph.bipartite import BipartiteGraph
from models.recsys.compat import METHODS, make_compatibility_loss
from models.recsys.training import LightGCNConfig, train_lightgcn

# (name, share of each user's training interactions, propagation)
GENERATIONS = (("v1", 0.6, "symmetric"), ("v2", 0.8, "doubly_stochastic"), ("v3", 1.0, "symmetric"))
METRICS = ("recall@20", "ndcg@20")


def nested_subsample(edge_index: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """The first ``ceil(fraction · degree)`` edges of each user in one seeded random order, so that for one seed a
    smaller fraction is always a subset of a larger one (interactions only accumulate across generations).

    Shapes:
        edge_index: ``(2, E)`` (user, item) → ``(2, E')``.
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(edge_index.size(1), generator=generator)
    order = order[torch.argsort(edge_index[0][order], stable=True)]
    users = edge_index[0][order]
    degree = torch.bincount(users, minlength=int(users.max()) + 1)
    rank = torch.arange(users.numel()) - (torch.cumsum(degree, 0) - degree)[users]
    return edge_index[:, order[rank < torch.ceil(fraction * degree[users].double()).long()]]


def restrict_users(graph: BipartiteGraph, valid: torch.Tensor, test: torch.Tensor, num_users: int,
                   seed: int) -> tuple[BipartiteGraph, torch.Tensor, torch.Tensor]:
    """The interactions of ``num_users`` seeded random users, renumbered ``0 .. num_users − 1`` (for quick runs).

    Renumbering matters: users left without interactions would keep untrained vectors that distort statistics
    over all users, such as the hyperbolic loss's default scale.
    """
    chosen = torch.randperm(graph.num_users, generator=torch.Generator().manual_seed(seed))[:num_users]
    new_id = torch.full((graph.num_users,), -1, dtype=torch.long)
    new_id[chosen.sort().values] = torch.arange(chosen.numel())

    def renumber(edge_index: torch.Tensor) -> torch.Tensor:
        users = new_id[edge_index[0]]
        return torch.stack([users, edge_index[1]])[:, users >= 0]

    return BipartiteGraph(renumber(graph.edge_index), chosen.numel(), graph.num_items), renumber(valid), renumber(test)


def train_generations(graph: BipartiteGraph, valid: torch.Tensor, base: LightGCNConfig, device: torch.device,
                      variants: dict[str, tuple[str, dict[str, float]]]) -> tuple[dict[str, dict[str, Embeddings]], dict]:
    """Every variant's chain of generations (v1 shared) as ``{variant: {generation: (user_emb, item_emb)}}``, and a
    training record per model. ``variants`` maps a name to ``(method, options)``: the compatibility method and its
    options for :func:`models.recsys.compat.make_compatibility_loss`; it must hold ``none``, the independent twins."""
    if variants.get("none", ("",))[0] != "none":
        raise ValueError(f"variants need the independent chain 'none': ('none', {{}}), got {sorted(variants)}")
    chains: dict[str, dict[str, Embeddings]] = {name: {} for name in variants}
    records: dict[str, dict] = {}
    for index, (name, fraction, propagation) in enumerate(GENERATIONS):
        sub = BipartiteGraph(nested_subsample(graph.edge_index, fraction, base.seed), graph.num_users, graph.num_items)
        config = replace(base, propagation=propagation, seed=base.seed + index)
        # The first generation has no parent: one model starts every variant's chain.
        for variant in variants if index else ("none",):
            method, options = variants[variant]
            parent = chains[variant][GENERATIONS[index - 1][0]] if index else (None, None)
            key = f"{variant}.{name}" if index else name
            loss = make_compatibility_loss(method, *parent, **options)
            result = train_lightgcn(sub, valid.to(device), config, device=device, log=lambda m: None,
                                    auxiliary_loss=loss)
            for chain in [chains[variant]] if index else chains.values():
                chain[name] = (result.user_emb, result.item_emb)
            records[key] = {"edges": sub.num_edges, "epochs": result.epochs_run, "best_epoch": result.best_epoch,
                            "train_seconds": result.train_seconds}
            print(f"trained {key}: {sub.num_edges} edges, {propagation}, {result.epochs_run} epochs "
                  f"({result.train_seconds:.0f} s), best valid recall@20 {result.best_valid_recall:.4f}", flush=True)
    return chains, records


def parse_grid(text: str) -> dict[str, tuple[str, dict[str, float]]]:
    """``"0.01:0.002,0.025:0.005"`` → one hyperbolic variant per ``λ_ent:λ_align`` setting."""
    variants = {}
    for setting in filter(None, text.split(",")):
        try:
            cone, align = (float(part) for part in setting.split(":"))
        except ValueError:
            raise ValueError(f"--hyperbolic-grid: {setting!r} is not 'λ_ent:λ_align' (two numbers)") from None
        variants[f"hyperbolic@{cone:g}:{align:g}"] = ("hyperbolic", {"weight": cone, "align_weight": align})
    return variants


def choose_on_validation(results: dict[str, object], candidates: list[str]) -> str | None:
    """The candidate whose criterion holds on validation with the highest mean validation self-retrieval ratio over
    the new generations (what a compatibility loss costs the new model), or None when none holds it."""
    held = [c for c in candidates if results[f"valid.{c}.criterion_holds"]]

    def mean_self_ratio(candidate: str) -> float:
        ratios = [results[f"valid.{candidate}.{new}.self_ratio"] for new, _, _ in GENERATIONS[1:]]
        return sum(ratios) / len(ratios)

    return max(held, key=mean_self_ratio, default=None)


def collect(chains: dict[str, dict[str, Embeddings]], graph: BipartiteGraph, heldout: torch.Tensor,
            masked: torch.Tensor | None) -> dict[str, object]:
    """Flat benchmark keys from one compatibility report per new generation and method on ``heldout`` (test, with
    the validation pairs ``masked`` too; or validation, which is what a choice of loss weights reads)."""
    results: dict[str, object] = {}
    for method, chain in chains.items():
        holds = True
        for index, (new, _, _) in enumerate(GENERATIONS[1:], start=1):
            olds = {old: chain[old] for old, _, _ in GENERATIONS[:index]}
            report = compatibility_report(chain[new], olds, graph, heldout, ks=(20,),
                                          independent=chains["none"][new], also_masked=masked)
            for m in METRICS:
                results[f"{method}.{new}_{new}.{m}"] = report["new_new"][m]
                if method == "none":
                    results[f"independent.{new}.{m}"] = report["new_new"][m]
                for old, entry in report["ancestors"].items():
                    results[f"{method}.{old}_{old}.{m}"] = entry["old_old"][m]
                    results[f"{method}.{new}_{old}.{m}"] = entry["new_old"][m]
                    results[f"{method}.{old}_{new}.{m}"] = entry["old_new"][m]
                    results[f"{method}.{new}_{old}.update_gain.{m}"] = entry["update_gain"][m]
            independent = report["independent_new"]["recall@20"]
            results[f"{method}.{new}.self_ratio"] = report["new_new"]["recall@20"] / independent
            holds &= report["compatible"]
        results[f"{method}.criterion_holds"] = holds
    for m in METRICS:
        results[f"independent.v1.{m}"] = results[f"none.v1_v1.{m}"]
    return results


def print_results(results: dict[str, object], variants: list[str]) -> None:
    """The cross-version matrix with variants side by side, then the self-retrieval ratios and the criterion."""
    names = [name for name, _, _ in GENERATIONS]
    kind = {1: "cross: new users, old items", -1: "reverse: old users, new items", 0: "self"}
    print_table("Recall@20 (users of one version ranking the items of another; test set, train and validation items masked)",
                ["users → items", *variants],
                [[f"{q} → {g} ({kind[(i > j) - (i < j)]})",
                  *[results[f"{method}.{q}_{g}.recall@20"] for method in variants]]
                 for i, q in enumerate(names) for j, g in enumerate(names)])
    rows = [[f"{new} self / independent {new}", *[results[f"{method}.{new}.self_ratio"] for method in variants]]
            for new in names[1:]]
    rows += [[f"update gain {new} → {old}", *[results[f"{method}.{new}_{old}.update_gain.recall@20"]
                                              for method in variants]]
             for new, old in (("v2", "v1"), ("v3", "v2"), ("v3", "v1"))]
    rows.append(["criterion M(new, old) > M(old, old) for all pairs",
                 *[str(results[f"{method}.criterion_holds"]) for method in variants]])
    print_table("Self-retrieval against the independent twin, update gain, criterion", ["", *variants],
                [[r[0], *["—" if v is None else v for v in r[1:]]] for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_lightgcn_arguments(parser, valid_fraction=0.05)
    parser.add_argument("--max-minutes-per-model", type=float, default=6.0, help="training wall-clock budget")
    parser.add_argument("--users", type=int, default=0, help="keep this many seeded random users (0: all)")
    # Loss weights; left out, the defaults of models.recsys.compat apply.
    parser.add_argument("--bct-weight", type=float, default=None, help="λ of BCT")
    parser.add_argument("--cone-weight", type=float, default=None, help="λ_ent of hyperbolic")
    parser.add_argument("--align-weight", type=float, default=None, help="λ_align of hyperbolic")
    parser.add_argument("--hyperbolic-grid", default="", help="λ_ent:λ_align settings to choose from on validation, "
                        "comma separated (e.g. 0.01:0.002,0.025:0.005)")
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, epochs=2, eval_every=1, batch_size=1024, users=0,
                       max_minutes_per_model=1.0)
    grid = parse_grid(args.hyperbolic_grid)

    device = resolve_device(args.device)
    graph, valid, test = load_dataset(args.dataset, args.valid_fraction, args.seed)
    if args.users:
        graph, valid, test = restrict_users(graph, valid, test, args.users, args.seed)
    print(f"{args.dataset}: {graph.num_users} users, {graph.num_items} items, {graph.num_edges} train, "
          f"{valid.size(1)} valid, {test.size(1)} test edges; device {device}; {torch.get_num_threads()} threads")
    base = LightGCNConfig(batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, eval_every=args.eval_every,
                          seed=args.seed, max_train_seconds=args.max_minutes_per_model * 60)

    started = time.perf_counter()
    loss_options = {"bct": {"weight": args.bct_weight},
                    "hyperbolic": {"weight": args.cone_weight, "align_weight": args.align_weight}}
    loss_options = {method: {k: v for k, v in options.items() if v is not None}
                    for method, options in loss_options.items()}
    variants = {method: (method, loss_options.get(method, {})) for method in METHODS} | grid
    chains, records = train_generations(graph, valid, base, device, variants)
    results = collect(chains, graph, test, valid)
    # Loss weights are chosen on validation: the criterion and self-retrieval there come first in the JSON.
    chosen_on = collect(chains, graph, valid, None)
    results.update({f"valid.{key}": value for key, value in chosen_on.items()})
    print(f"validation: criterion holds {({v: chosen_on[f'{v}.criterion_holds'] for v in variants})}; self / "
          f"independent v2, v3 {({v: [round(chosen_on[f'{v}.{g}.self_ratio'], 4) for g in ('v2', 'v3')] for v in variants})}")
    if grid:
        results["chosen_hyperbolic"] = choose_on_validation(results, ["hyperbolic", *grid])
        print(f"chosen on validation: {results['chosen_hyperbolic']}")
    print_results(results, list(variants))
    results.update(dataset=args.dataset, device=str(device), users=args.users or graph.num_users,
                   batch_size=args.batch_size, lr=args.lr, epochs=args.epochs,
                   max_minutes_per_model=args.max_minutes_per_model, loss_options=loss_options,
                   hyperbolic_grid=args.hyperbolic_grid, models=records, total_seconds=time.perf_counter() - started,
                   peak_rss_mb=peak_rss_mb())
    print_table("Models", ["model", "edges", "epochs", "best epoch", "train s"],
                [[k, r["edges"], r["epochs"], r["best_epoch"], r["train_seconds"]] for k, r in records.items()])
    write_json(args.json, results)


if __name__ == "__main__":
    main()
