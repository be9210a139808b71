"""The fairness frontier: Recall@20 against degree-group bias and against the average popularity of the top 20,
over the knobs that move them — PRISM's strength (LightGCN), the Rawls variant's balance strength β (with PRISM),
GF-CF's ideal low-pass weight α, BSPM's β and sharpening time, and SGFCF's high-part weight γ and degree exponent ε —
so that a user can pick a point.

    python -m benchmarks.frontier --dataset gowalla [--points a,b] [--epochs 60] [--json FILE]

Every point is one fixed setting, measured on validation and on test (``benchmarks.quality_runs``); the Pareto-
optimal points are chosen on validation figures alone (higher Recall@20, lower bias; ``pareto_popularity``: lower
average popularity). Every LightGCN-style point trains with the same recipe and epoch budget (early-stopped on
validation). ``fair_point`` is the point with the highest validation Recall@20 among those with ≥ 30% lower
validation bias than ``lightgcn`` (current init) at ≤ 5% lower validation Recall@20, or None when there is none;
``fair_point_holds_on_test`` says whether its test figures meet the same bar. ``--points`` runs a subset and
merges into the ``--json`` file, so the LightGCN points can go in separate invocations.
"""
from __future__ import annotations

import argparse
import os

from benchmarks.common import (
    SMOKE_DATASET,
    add_smoke_argument,
    apply_smoke,
    merge_json,
    print_table,
    resolve_device,
    write_json,
)
from benchmarks.quality_runs import (
    add_training_arguments,
    filter_point,
    in_own_process,
    lightgcn_config,
    lightgcn_point,
    load_split,
)

# The fairness target: bias at most 70% of LightGCN's at a Recall@20 at least 95% of LightGCN's.
BIAS_RATIO, RECALL_RATIO = 0.7, 0.95
FIGURES = ("recall@20", "bias", "avg_popularity")


def _tag(value: float) -> str:
    """A knob's value as a name part without dots: 0.5 → 050, 2 → 200."""
    return f"{round(value * 100):03d}"


def frontier_points(args: argparse.Namespace) -> dict[str, tuple]:
    """Every point by name: ``("lightgcn", config changes)`` or ``("filter", family, settings)``."""
    points: dict[str, tuple] = {"lightgcn": ("lightgcn", {"init": "normal"})}
    for s in args.prism_strengths:
        points[f"prism_s{_tag(s)}"] = ("lightgcn", {"init": "prism", "prism_strength": s})
    for beta in args.rawls_betas:
        points[f"rawls_prism_b{_tag(beta)}"] = ("lightgcn", {"init": "prism", "propagation": "doubly_stochastic",
                                                            "balance_strength": beta})
    for alpha in args.gf_cf_alphas:
        points[f"gf_cf_a{_tag(alpha)}"] = ("filter", "gf_cf", {"alpha": alpha})
    for beta in args.bspm_betas:
        points[f"bspm_b{_tag(beta)}"] = ("filter", "bspm", {"beta": beta})
    for time in args.bspm_times:
        points[f"bspm_t{_tag(time)}"] = ("filter", "bspm", {"sharpen_time": time})
    for gamma in args.sgfcf_gammas:
        points[f"sgfcf_g{_tag(gamma)}"] = ("filter", "sgfcf", {"gamma": gamma})
    for exponent in args.sgfcf_exponents:
        points[f"sgfcf_e{_tag(exponent)}"] = ("filter", "sgfcf", {"exponent": exponent})
    return points


def run_point(spec: tuple, args: argparse.Namespace, split, device, name: str) -> dict[str, object]:
    """One point's validation and test figures, in its own process."""
    if spec[0] == "filter":
        return in_own_process(filter_point, spec[1], spec[2], split, device)
    return in_own_process(lightgcn_point, lightgcn_config(args, **spec[1]), split, device, name, 1.0)


def pareto(rows: dict[str, dict[str, float]], cost: str) -> set[str]:
    """Names of the rows that no other row beats on validation: Recall@20 at least as high and ``cost`` at least
    as low, one of them strictly."""
    def dominates(a: dict[str, float], b: dict[str, float]) -> bool:
        return (a["recall@20"] >= b["recall@20"] and a[cost] <= b[cost]
                and (a["recall@20"] > b["recall@20"] or a[cost] < b[cost]))
    return {name for name, row in rows.items() if not any(dominates(other, row) for other in rows.values())}


def _meets(row: dict[str, float], base: dict[str, float]) -> bool:
    return row["bias"] <= BIAS_RATIO * base["bias"] and row["recall@20"] >= RECALL_RATIO * base["recall@20"]


def summarise(results: dict[str, object]) -> dict[str, object]:
    """Pareto marks and the fair point over every point in ``results`` (merged runs included)."""
    names = sorted({key.split(".")[1] for key in results if key.startswith("frontier.") and key.endswith(".bias")
                    and ".valid." not in key})
    valid = {name: {f: results[f"frontier.{name}.valid.{f}"] for f in FIGURES} for name in names}
    test = {name: {f: results[f"frontier.{name}.{f}"] for f in FIGURES} for name in names}
    marks = {cost: pareto(valid, cost) for cost in ("bias", "avg_popularity")}
    out: dict[str, object] = {}
    for name in names:
        out[f"frontier.{name}.pareto"] = name in marks["bias"]
        out[f"frontier.{name}.pareto_popularity"] = name in marks["avg_popularity"]
    fair = None
    if "lightgcn" in valid:
        candidates = [name for name in names if name != "lightgcn" and _meets(valid[name], valid["lightgcn"])]
        fair = max(candidates, key=lambda name: valid[name]["recall@20"], default=None)
    out["frontier.fair_point"] = fair
    out["frontier.fair_point_holds_on_test"] = fair is not None and _meets(test[fair], test["lightgcn"])
    return out


def print_frontier(results: dict[str, object]) -> None:
    """The frontier table, by validation Recall@20, with the ratios to LightGCN on test."""
    names = sorted({key.split(".")[1] for key in results if key.endswith(".pareto")},
                   key=lambda name: -results[f"frontier.{name}.valid.recall@20"])
    base = {f: results.get(f"frontier.lightgcn.{f}") for f in FIGURES}
    columns = ("valid.recall@20", "valid.bias", "valid.avg_popularity", "recall@20", "bias", "avg_popularity")
    rows = []
    for name in names:
        row = {key: results[f"frontier.{name}.{key}"] for key in (*columns, "pareto", "pareto_popularity")}
        rows.append([name, *(row[key] for key in columns),
                     *(row[f] / base[f] if base[f] else "—" for f in ("recall@20", "bias")),
                     "yes" if row["pareto"] else "", "yes" if row["pareto_popularity"] else ""])
    print_table(f"{results['dataset']}: Recall@20 against degree-group bias and average top-20 popularity",
                ["point", "valid R@20", "valid bias", "valid avg pop", "test R@20", "test bias", "test avg pop",
                 "R@20 / LightGCN", "bias / LightGCN", "Pareto (bias)", "Pareto (popularity)"], rows)
    print(f"\nfair point (≥ {1 - BIAS_RATIO:.0%} lower bias at ≤ {1 - RECALL_RATIO:.0%} lower Recall@20 than "
          f"LightGCN, on validation): {results['frontier.fair_point']}; holds on test: "
          f"{results['frontier.fair_point_holds_on_test']}")


def _floats(text: str) -> list[float]:
    return [float(value) for value in text.split(",") if value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser, max_minutes=0.0)
    parser.set_defaults(epochs=60)  # the epoch budget of every LightGCN-style point, as benchmarks.rawls_recsys
    parser.add_argument("--prism-strengths", type=_floats, default=[0.0, 0.5, 1.0, 2.0])
    parser.add_argument("--rawls-betas", type=_floats, default=[0.25, 0.5, 1.0], help="with PRISM at strength 1")
    parser.add_argument("--gf-cf-alphas", type=_floats, default=[0.0, 0.1, 0.3, 0.5, 1.0])
    parser.add_argument("--bspm-betas", type=_floats, default=[0.0, 0.2, 0.5], help="at the authors' T_s 2.5")
    parser.add_argument("--bspm-times", type=_floats, default=[1.5, 3.5], help="sharpening times T_s, at β 0.2")
    parser.add_argument("--sgfcf-gammas", type=_floats, default=[0.0, 0.5, 1.6],
                        help="high-part weights γ, at the authors' K 650, β 1.3, ε 0.34")
    parser.add_argument("--sgfcf-exponents", type=_floats, default=[0.25, 0.5], help="degree exponents ε, at γ 1.6")
    parser.add_argument("--points", default=None, help="a subset of the point names (default: all)")
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, epochs=2, eval_every=1, batch_size=1024,
                       prism_strengths=[1.0], rawls_betas=[1.0], gf_cf_alphas=[0.0, 0.3], bspm_betas=[0.2],
                       bspm_times=[], sgfcf_gammas=[0.5], sgfcf_exponents=[])
    points = frontier_points(args)
    chosen = args.points.split(",") if args.points else list(points)
    unknown = sorted(set(chosen) - set(points))
    if unknown:
        parser.error(f"unknown points {unknown}; choose from {', '.join(points)}")
    device = resolve_device(args.device)
    split = load_split(args.dataset, args.valid_fraction, args.seed)
    results: dict[str, object] = {"dataset": args.dataset}
    for name in chosen:
        load = os.getloadavg()[0]
        row = run_point(points[name], args, split, device, name)
        print(f"{name}: " + ", ".join(f"{key} {row[key]:.4f}" for key in
                                      ("valid.recall@20", "valid.bias", "recall@20", "bias", "avg_popularity")),
              flush=True)
        kept = {key: row[key] for key in (*FIGURES, *(f"valid.{f}" for f in FIGURES), "ndcg@20", "seconds",
                                          "peak_rss_mb", "config")}
        results.update({f"frontier.{name}.{key}": value for key, value in {**kept, "load_average": load}.items()})
    merged = merge_json(args.json, results)
    merged.update(summarise(merged))
    print_frontier(merged)
    write_json(args.json, merged)


if __name__ == "__main__":
    main()
