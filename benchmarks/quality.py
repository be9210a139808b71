"""Quality at a cost, side by side: LightGCN (current init), LightGCN + PRISM, the Rawls variant + PRISM, GF-CF,
BSPM and SGFCF, with the plain-scipy BSPM reference script timed in the same run and recency-weighted popularity
(its half-life chosen on validation; plain popularity where the data has no times) as the floor.

    python -m benchmarks.quality --dataset gowalla [--families a,b] [--json FILE] [--max-minutes M]

Per family: test Recall@20 and NDCG@20, seconds (training or the fit, plus scoring every test user), seconds to
reach validation Recall@20 ≥ ``--target`` (the first evaluation of the training curve that does; a filter, which has
no curve, takes its ``seconds`` when its validation figure reaches it; None when it never does), peak RSS, and the
degree-group bias and average popularity of the top 20 beside them. BSPM is the spec's best published filter on
this split (BSPM-EM 0.1920 against GF-CF's 0.1849 on Gowalla); SGFCF's published figures use another recall and
other splits, so it is only measured here. Every setting is chosen on validation: GF-CF's and BSPM's on a small grid
of separate fits (GF-CF's is ``benchmarks.baselines``'s; ``selection_seconds`` is what the grid took), SGFCF's by its
own choosing fit as the pipeline runs it (``selection_seconds`` is that fit), LightGCN's are
``benchmarks.lightgcn``'s defaults and budget. The reference script runs the authors' Gowalla setting, on test
only (Gowalla's given split alone: it reads the LightGCN files).

Each family runs in a fresh process of its own, one after another; its ``peak_rss_mb`` is that process's high-water
mark (the interpreter with torch, its copy of the split, and the family), ``start_rss_mb`` the same before the family
began; the reference's is the script's own. ``--families a,b`` runs a subset and merges into the ``--json`` file, so
that the long LightGCN runs can go in separate invocations; ``load_average`` records the machine's 1-minute load when
each family started. ``best`` is the family with the highest validation Recall@20 in the merged file.

``lightgcn_au`` and ``lightgcn_prism_au`` train LightGCN with the current init and with PRISM on the PRISM authors'
default loss instead of BPR (alignment + uniformity, γ 1, at their batch of 4,096 and Adam's 1e-3; each pair costs
the square of a batch's distinct users and items, so an epoch on Gowalla takes about two minutes on one core): the
two compare the inits all else equal under that loss. They run only when named in ``--families``.

``filter_blend`` mixes SGFCF's and BSPM's per-user standardised scores at the settings they chose on validation
(``models.recsys.blend``), the first's weight chosen on validation, then refitted and tested once like the filters;
it runs after both (or into the same file). The pipeline does not run it; it runs its vectors.

``gf_cf_factors``, ``bspm_factors``, ``sgfcf_factors`` and ``filter_blend_factors`` (the blend of SGFCF's and BSPM's
vectors, ``models.recsys.blend.FactorBlend``, at the full blend's settings and weight) are the filters as the pipeline publishes them (user and
item vectors; GF-CF's and BSPM's linear part carried by 1,024 singular triplets, SGFCF's high part by its own K) at
the setting their full filter chose on validation, so each runs after (or into the same file as) its full filter; ``<factors>.recall_vs_full`` is their test Recall@20 over the full
filter's.
"""
from __future__ import annotations

import argparse
import os

import torch

from benchmarks.baselines import GRIDS
from benchmarks.common import (
    DATASETS,
    SMOKE_DATASET,
    add_smoke_argument,
    apply_smoke,
    merge_json,
    print_table,
    resolve_device,
    run_reference_script,
    write_json,
)
from benchmarks.quality_runs import (
    add_training_arguments,
    family_choice,
    in_own_process,
    lightgcn_config,
    lightgcn_point,
    load_split,
    select_filter,
)
from models.eval.ranking import heldout_item_degree
from warehouse.paths import shared_dir

# Run when --families is not given.
DEFAULT_FAMILIES = ("recent_popularity", "lightgcn", "lightgcn_prism", "rawls_prism", "gf_cf", "gf_cf_factors", "bspm",
                    "bspm_factors", "sgfcf", "sgfcf_factors", "filter_blend", "filter_blend_factors", "bspm_reference")
# Run only when named: the pair trained with the PRISM authors' loss, which is slow on a CPU.
ALIGN_UNIFORMITY_FAMILIES = ("lightgcn_au", "lightgcn_prism_au")
FAMILY_NAMES = DEFAULT_FAMILIES + ALIGN_UNIFORMITY_FAMILIES
# The PRISM authors' loss and its batch and rate (alignment + uniformity, γ 1; 4,096 pairs, Adam 1e-3), for LightGCN
# with the current init (weight decay as the others) and with PRISM (none): the pair compares the inits all else equal.
ALIGN_UNIFORMITY = {"loss": "align_uniformity", "batch_size": 4096, "lr": 1e-3}
# The published vectors of each filter, at the setting its full filter chose on validation; GF-CF's and BSPM's with
# this many singular triplets for the linear part (the families' default), SGFCF's with the filter's own K.
FACTORS_OF = {"gf_cf_factors": "gf_cf", "bspm_factors": "bspm", "sgfcf_factors": "sgfcf"}
FACTOR_RANK = 1024
# Every family of published vectors and the full filter its test Recall@20 is compared with.
VECTORS_OF = {**FACTORS_OF, "filter_blend_factors": "filter_blend"}
# The blend's two filters, each at the setting it chose on validation, in this order (the first's weight is chosen).
BLEND_OF = ("sgfcf", "bspm")
# BSPM settings tried on validation: the authors' Gowalla setting first (see models.recsys.bspm), then its ideal
# low-pass weight either side, as GF-CF's grid does with α.
BSPM_GRID = [{}, {"beta": 0.1}, {"beta": 0.3}]
BSPM_REFERENCE = shared_dir() / "tools" / "bspm_reference.py"
SHOWN = ("valid.recall@20", "recall@20", "ndcg@20", "seconds", "seconds_to_target", "selection_seconds",
         "peak_rss_mb", "bias", "avg_popularity")


def reference_row(dataset: str) -> dict[str, object]:
    """The BSPM reference script at the authors' Gowalla setting, test only, in a child process."""
    run = run_reference_script(BSPM_REFERENCE, shared_dir() / "datasets" / DATASETS[dataset][1])
    return {**run, "config": f"reference script, authors' Gowalla setting (k 448, β 0.2, T_s 2.5), test only; "
                             f"{run['wall_seconds']:.1f} s with start-up"}


def run_family(name: str, args: argparse.Namespace, split, device: torch.device,
               earlier: dict[str, object]) -> dict[str, object] | None:
    """One family's row, run in its own process; None for the reference where it cannot run. A filter's vectors
    take the setting that its full filter chose on validation (in ``earlier``, this run's and the file's rows)."""
    prism = {"init": "prism", "prism_strength": args.prism_strength}
    if name == "bspm_reference":
        if args.dataset != "gowalla" or not BSPM_REFERENCE.is_file():
            print("bspm_reference: skipped (it reads the LightGCN Gowalla files)", flush=True)
            return None
        return in_own_process(reference_row, args.dataset)
    if name in FACTORS_OF:
        chosen = chosen_settings(name, (FACTORS_OF[name],), earlier)[0]
        return in_own_process(select_filter, name, [{**chosen, **factor_extra(name)}], split, device, args.target)
    if name == "filter_blend":
        first, second = chosen_settings(name, BLEND_OF, earlier)
        settings = {"first": BLEND_OF[0], "second": BLEND_OF[1], "first_settings": first, "second_settings": second}
        return in_own_process(family_choice, name, split, device, args.target, settings)
    if name == "filter_blend_factors":  # the blend's vectors: the two filters' vectors at the blend's settings
        blend = chosen_settings(name, ("filter_blend",), earlier)[0]
        members = [f"{member}_factors" for member in BLEND_OF]
        settings = {**blend, "first": members[0], "second": members[1],
                    "first_settings": {**blend["first_settings"], **factor_extra(members[0])},
                    "second_settings": {**blend["second_settings"], **factor_extra(members[1])}}
        return in_own_process(select_filter, name, [settings], split, device, args.target)
    if name in ("sgfcf", "recent_popularity"):
        return in_own_process(family_choice, name, split, device, args.target)
    if name in ("gf_cf", "bspm"):
        return in_own_process(select_filter, name, GRIDS["gf_cf"] if name == "gf_cf" else BSPM_GRID, split, device,
                              args.target)
    changes = {"lightgcn": {"init": "normal"}, "lightgcn_prism": prism,
               "rawls_prism": {**prism, "propagation": "doubly_stochastic", "balance_strength": args.rawls_beta},
               "lightgcn_au": {"init": "normal", **ALIGN_UNIFORMITY}, "lightgcn_prism_au": {**prism, **ALIGN_UNIFORMITY}}
    return in_own_process(lightgcn_point, lightgcn_config(args, **changes[name]), split, device, name, args.target)


def factor_extra(name: str) -> dict[str, int]:
    """What the vectors family ``name`` takes beside its full filter's setting: the linear part's triplets."""
    return {} if name == "sgfcf_factors" else {"factor_rank": FACTOR_RANK}


def chosen_settings(name: str, filters: tuple[str, ...], earlier: dict[str, object]) -> list[dict]:
    """The settings that ``filters`` chose on validation (in ``earlier``), which family ``name`` takes; a clear exit
    when one of them has not run."""
    chosen = [earlier.get(f"{member}.settings") for member in filters]
    if None in chosen:
        raise SystemExit(f"{name} takes the settings that {' and '.join(filters)} chose on validation: run "
                         f"--families {','.join((*filters, name))} (or into the same --json file)")
    return chosen


def heldout_popularity(split) -> dict[str, float]:
    """``heldout.<part>.<mean|median>_item_degree`` of the validation and test items, both read in the training
    part without the validation carve (so neither set counts itself)."""
    return {f"heldout.{part}.{key}": value for part, edges in (("valid", split.valid), ("test", split.test))
            for key, value in heldout_item_degree(split.train, edges).items()}


def best_of(results: dict[str, object]) -> dict[str, object]:
    """``best.*``: the family with the highest validation Recall@20 among those in ``results``, and its test
    figures and seconds."""
    present = [name for name in FAMILY_NAMES if results.get(f"{name}.valid.recall@20") is not None]
    if not present:
        return {}
    best = max(present, key=lambda name: results[f"{name}.valid.recall@20"])
    return {"best.family": best, **{f"best.{key}": results[f"{best}.{key}"] for key in ("recall@20", "ndcg@20",
                                                                                        "seconds")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser, max_minutes=120.0)
    parser.add_argument("--prism-strength", type=float, default=1.0,
                        help="PRISM's s of lightgcn_prism and rawls_prism (norms s·ln(d + 2) + 1 − s)")
    parser.add_argument("--families", default=",".join(DEFAULT_FAMILIES),
                        help=f"a subset of {', '.join(FAMILY_NAMES)} (default: all but "
                             f"{' and '.join(ALIGN_UNIFORMITY_FAMILIES)})")
    parser.add_argument("--rawls-beta", type=float, default=1.0, help="balance strength β of rawls_prism")
    parser.add_argument("--target", type=float, default=0.175, help="validation Recall@20 to time the reaching of")
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, epochs=2, eval_every=1, batch_size=1024,
                       max_minutes=1.0)
    families = args.families.split(",")
    unknown = sorted(set(families) - set(FAMILY_NAMES))
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILY_NAMES)}")
    device = resolve_device(args.device)
    split = load_split(args.dataset, args.valid_fraction, args.seed)
    print(f"{args.dataset}: {split.train.num_users} users, {split.train.num_items} items, {split.train.num_edges} "
          f"train, {split.valid.size(1)} valid, {split.test.size(1)} test; device {device}; "
          f"{torch.get_num_threads()} threads", flush=True)
    results: dict[str, object] = {"dataset": args.dataset, **heldout_popularity(split)}
    print("training degree of the held-out items, mean / median: validation "
          f"{results['heldout.valid.mean_item_degree']:.1f} / {results['heldout.valid.median_item_degree']:g}, test "
          f"{results['heldout.test.mean_item_degree']:.1f} / {results['heldout.test.median_item_degree']:g}", flush=True)
    target_key = f"seconds_to_{args.target:g}"
    for name in families:
        load = os.getloadavg()[0]
        row = run_family(name, args, split, device, merge_json(args.json, results))
        if row is None:
            continue
        reached = row.pop("seconds_to_target", None)
        row = {**row, "load_average": load, target_key: reached}
        results.update({f"{name}.{key}": value for key, value in row.items()})
        print(f"{name}: " + ", ".join(f"{key} {row.get(key)}" for key in (*SHOWN[:4], target_key)), flush=True)
    merged = merge_json(args.json, results)
    merged.update(best_of(merged))
    merged.update({f"{name}.recall_vs_full": merged[f"{name}.recall@20"] / merged[f"{full}.recall@20"]
                   for name, full in VECTORS_OF.items() if f"{name}.recall@20" in merged and f"{full}.recall@20" in merged})
    shown = [name for name in FAMILY_NAMES if f"{name}.recall@20" in merged]
    columns = [target_key if key == "seconds_to_target" else key for key in SHOWN]
    print_table(f"{args.dataset}: test figures, settings chosen on validation (target: validation Recall@20 ≥ "
                f"{args.target:g})", ["family", *columns, "setting"],
                [[name, *(merged.get(f"{name}.{key}") for key in columns), merged.get(f"{name}.config")]
                 for name in shown])
    for name, full in VECTORS_OF.items():
        if f"{name}.recall_vs_full" in merged:
            print(f"{name}: test recall@20 {merged[f'{name}.recall_vs_full']:.1%} of {full}'s")
    if "best.family" in merged:
        print(f"\nbest on validation: {merged['best.family']} (test recall@20 {merged['best.recall@20']:.4f}, "
              f"ndcg@20 {merged['best.ndcg@20']:.4f}, {merged['best.seconds']:.1f} s)")
    write_json(args.json, merged)


if __name__ == "__main__":
    main()
