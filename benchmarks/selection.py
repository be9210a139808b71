"""What choosing a filter's setting on validation costs: every candidate ranked in one pass over the users, sharing
each block's setting-independent work (the pipeline's fit now), against one pass per candidate (the fit before),
run for run alternating in one process, with the seconds and the peak resident memory of each fit.

    python -m benchmarks.selection --dataset gowalla [--families gf_cf,gf_cf_factors,bspm,bspm_factors]
        [--repeats 3] [--json FILE]

Each family is fitted as its pipeline asset fits it (``choose_on_validation``, the dataclass defaults otherwise) on
the pipeline's split (10% of each user's training pairs carved out for validation); a fit's seconds include its SVD,
which both paths compute alike. The path before is the same code with the candidates ranked one pass each
(``models.recsys.selection.evaluate_candidates`` replaced for the run), so each block's shared part is recomputed
for every candidate, as it was; the factors families then also built each candidate's whole vectors, which this
leaves out (so it understates their cost before). Both paths must choose the same setting from the same validation
figures; ``<family>.identical`` says whether they did. Peak RSS as in ``benchmarks.evaluation``. JSON keys:
``<family>.<path>.seconds`` (median; ``.min``/``.max``), ``<family>.<path>.peak_rss_mb`` (largest), with ``<path>``
``per_candidate`` or ``one_pass``; ``<family>.speedup`` (ratio of medians) and ``<family>.identical``.
"""
from __future__ import annotations

import argparse
import sys
from unittest import mock

import torch

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
from models.eval.ranking import evaluate_candidates
from models.recsys import selection
from models.recsys.contract import Fitted, Runtime
from models.recsys.registry import FAMILIES

VALID_FRACTION, SEED = 0.1, 2020  # the pipeline's split defaults
PATHS = ("per_candidate", "one_pass")
FILTERS = ("gf_cf", "gf_cf_factors", "bspm", "bspm_factors")


def one_pass_per_candidate(scorers, *args, **kwargs):
    """``evaluate_candidates`` as the selection ran before: each candidate ranked in a pass of its own."""
    return [evaluate_candidates([scorer], *args, **kwargs)[0] for scorer in scorers]


def choosing_fit(family: str, graph, valid, path: str) -> Fitted:
    """``family`` fitted with ``choose_on_validation`` along ``path``."""
    spec = FAMILIES[family]
    config = spec.config_type(choose_on_validation=True)
    if path == "one_pass":
        return spec.fit(graph, valid, config, Runtime(log=lambda _: None))
    with mock.patch.object(selection, "evaluate_candidates", one_pass_per_candidate):
        return spec.fit(graph, valid, config, Runtime(log=lambda _: None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="gowalla")
    parser.add_argument("--families", default=",".join(FILTERS), help=f"a subset of {', '.join(FILTERS)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, repeats=3)

    graph, valid, _ = load_dataset(args.dataset, VALID_FRACTION, SEED)
    results: dict = {"dataset": args.dataset, "users": graph.num_users, "items": graph.num_items,
                     "threads": torch.get_num_threads(), "repeats": args.repeats}
    rows = []
    for family in args.families.split(","):
        if family not in FILTERS:
            parser.error(f"--families: {family!r} is not one of {', '.join(FILTERS)}")
        seconds, peaks, fits = alternate_paths(lambda path, family=family: choosing_fit(family, graph, valid, path),
                                               PATHS, args.repeats)
        identical = fits["one_pass"].config == fits["per_candidate"].config and \
            fits["one_pass"].record.history == fits["per_candidate"].record.history
        results.update({**path_figures(family, seconds, peaks), f"{family}.identical": identical,
                        f"{family}.history": fits["one_pass"].record.history})
        speedup = results[f"{family}.speedup"]
        rows.append([family, format_spread(seconds["per_candidate"], 3), format_spread(seconds["one_pass"], 3),
                     f"{speedup:.2f}×", f"{max(peaks['per_candidate']):,.0f}", f"{max(peaks['one_pass']):,.0f}",
                     "yes" if identical else "**no**"])
    print_table(f"choosing fits on {args.dataset} ({graph.num_users:,} users × {graph.num_items:,} items), "
                f"{args.repeats} runs, {results['threads']} threads",
                ["family", "one pass per candidate: s", "one pass for all: s", "speedup (medians)",
                 "peak RSS MiB, per candidate", "peak RSS MiB, one pass", "same choice"], rows)
    write_json(args.json, results)


if __name__ == "__main__":
    sys.exit(main())
