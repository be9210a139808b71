"""What choosing a filter's setting on validation costs: every candidate ranked in one pass over the users, sharing
each block's setting-independent work (the pipeline's fit), against one pass per candidate (the fit before), and
the pipeline's default of ranking a seeded sample of the validation users against ranking them all; run for run
alternating in one process, with the seconds and the peak resident memory of each fit.

    python -m benchmarks.selection --dataset gowalla [--families gf_cf,bspm,...] [--paths one_pass,sample]
        [--repeats 3] [--json FILE]

Each family is fitted as its pipeline asset fits it (``choose_on_validation``, the dataclass defaults otherwise) on
the pipeline's split (10% of each user's training pairs carved out for validation); a fit's seconds include its SVD,
which every path computes alike. Paths: ``per_candidate`` and ``one_pass`` rank every validation user
(``choice_users`` 0), ``sample`` ranks the configured default sample in one pass. The path before is the same code
with the candidates ranked one pass each (``models.recsys.selection.evaluate_candidates`` replaced for the run), so
each block's shared part is recomputed for every candidate, as it was; the factors families then also built each
candidate's whole vectors, which this leaves out (so it understates their cost before). BSPM's candidates now share
one series of powers for all three settings, so its ``per_candidate`` path computes all three settings in each pass:
it overstates the cost before, and its speedup is not the one the change to one pass made. Every path must choose the
setting ``one_pass`` chooses; ``<family>.identical`` says whether ``per_candidate`` also read the same validation
figures, ``<family>.sample_same_choice`` whether the sample chose the same setting. Peak RSS as in
``benchmarks.evaluation``. JSON keys: ``<family>.<path>.seconds`` (median; ``.min``/``.max``),
``<family>.<path>.peak_rss_mb`` (largest); ``<family>.speedup`` (``per_candidate`` over ``one_pass``, ratio of
medians) and ``<family>.sample_speedup`` (``one_pass`` over ``sample``) where both paths ran.
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
PATHS = ("per_candidate", "one_pass", "sample")
FILTERS = ("gf_cf", "gf_cf_factors", "bspm", "bspm_factors", "sgfcf", "sgfcf_factors")


def one_pass_per_candidate(scorers, *args, **kwargs):
    """``evaluate_candidates`` as the selection ran before: each candidate ranked in a pass of its own."""
    return [evaluate_candidates([scorer], *args, **kwargs)[0] for scorer in scorers]


def choosing_fit(family: str, graph, valid, path: str) -> Fitted:
    """``family`` fitted with ``choose_on_validation`` along ``path``."""
    spec = FAMILIES[family]
    config = spec.config_type(choose_on_validation=True, **({} if path == "sample" else {"choice_users": 0}))
    if path != "per_candidate":
        return spec.fit(graph, valid, config, Runtime(log=lambda _: None))
    with mock.patch.object(selection, "evaluate_candidates", one_pass_per_candidate):
        return spec.fit(graph, valid, config, Runtime(log=lambda _: None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="gowalla")
    parser.add_argument("--families", default=",".join(FILTERS), help=f"a subset of {', '.join(FILTERS)}")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"a subset of {', '.join(PATHS)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, repeats=3)

    graph, valid, _ = load_dataset(args.dataset, VALID_FRACTION, SEED)
    results: dict = {"dataset": args.dataset, "users": graph.num_users, "items": graph.num_items,
                     "threads": torch.get_num_threads(), "repeats": args.repeats}
    paths = [path for path in PATHS if path in args.paths.split(",")]
    if "one_pass" not in paths or set(args.paths.split(",")) - set(PATHS):
        parser.error(f"--paths: a subset of {', '.join(PATHS)} that includes one_pass, got {args.paths!r}")
    rows = []
    for family in args.families.split(","):
        if family not in FILTERS:
            parser.error(f"--families: {family!r} is not one of {', '.join(FILTERS)}")
        seconds, peaks, fits = alternate_paths(lambda path, family=family: choosing_fit(family, graph, valid, path),
                                               paths, args.repeats)
        figures = {key: value for key, value in path_figures(family, seconds, peaks).items()
                   if not key.endswith(".speedup")}
        median = {path: figures[f"{family}.{path}.seconds"] for path in paths}
        chosen = {path: _chosen(fit) for path, fit in fits.items()}
        if "per_candidate" in paths:
            figures[f"{family}.speedup"] = median["per_candidate"] / median["one_pass"]
            figures[f"{family}.identical"] = chosen["per_candidate"] == chosen["one_pass"] and \
                fits["per_candidate"].record.history == fits["one_pass"].record.history
        if "sample" in paths:
            figures[f"{family}.sample_speedup"] = median["one_pass"] / median["sample"]
            figures[f"{family}.sample_same_choice"] = chosen["sample"] == chosen["one_pass"]
        results.update({**figures, **{f"{family}.{path}.history": fit.record.history for path, fit in fits.items()}})
        rows.append([family, *(format_spread(seconds[path], 3) for path in paths),
                     *(f"{max(peaks[path]):,.0f}" for path in paths),
                     *(_yes(figures[key]) if isinstance(figures.get(key), bool) else f"{figures[key]:.2f}×"
                       for key in (f"{family}.speedup", f"{family}.identical", f"{family}.sample_speedup",
                                   f"{family}.sample_same_choice") if key in figures)])
    extra = ([["speedup (medians)", "same figures"]] if "per_candidate" in paths else []) + \
        ([["sample speedup (medians)", "sample: same choice"]] if "sample" in paths else [])
    print_table(f"choosing fits on {args.dataset} ({graph.num_users:,} users × {graph.num_items:,} items), "
                f"{args.repeats} runs, {results['threads']} threads",
                ["family", *(f"{path}: s" for path in paths), *(f"{path}: peak RSS MiB" for path in paths),
                 *(name for pair in extra for name in pair)], rows)
    write_json(args.json, results)


def _chosen(fit: Fitted) -> dict:
    """The setting a fit chose: its config without how many users the choice ranked."""
    return {key: value for key, value in fit.config.items() if key != "choice_users"}


def _yes(value: bool) -> str:
    return "yes" if value else "**no**"


if __name__ == "__main__":
    sys.exit(main())
