"""What sending a block's rows through the item graph in chunks saves: the full-ranking evaluation of the filters
that score through ``x R̃ᵀR̃`` (GF-CF, BSPM, SGFCF), with each block's rows in one pair of sparse products (the code
before) against chunks of ``models.recsys.interactions.CPU_ROWS_PER_PRODUCT`` rows (now), run for run alternating
in one process, with the seconds and the peak resident memory of each pass.

    python -m benchmarks.item_graph --dataset gowalla [--families gf_cf,bspm,sgfcf] [--users 6000]
        [--repeats 3] [--json FILE]

Each family is fitted once at its dataclass default (the authors' setting) on the pipeline's split (10% of each
user's training pairs carved out for validation) and ranked as its asset ranks it (``evaluate_held_out``: validation
and test in one pass of item-sized blocks), on a seeded sample of ``--users`` users with held-out items (0: all);
only the chunk size differs between the paths, so both must give the same per-user figures (``<family>.identical``).
JSON keys: ``<family>.<path>.seconds`` (median; ``.min``/``.max``), ``<family>.<path>.peak_rss_mb`` (largest), with
``<path>`` ``whole_block`` or ``chunks``; ``<family>.speedup`` (ratio of medians), ``<family>.identical``,
``rows_per_product``.
"""
from __future__ import annotations

import argparse
import sys
from unittest import mock

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
from benchmarks.evaluation import SEED, VALID_FRACTION, one_pass, same_figures, scorer_of
from models.recsys import interactions
from models.recsys.selection import validation_sample

PATHS = ("whole_block", "chunks")
WHOLE_BLOCK = 1 << 62  # more rows than any block holds: one pair of products per block, as before


def held_out_sample(valid: Tensor, test: Tensor, users: int, seed: int) -> tuple[Tensor, Tensor]:
    """Validation and test edges of ``users`` users drawn with ``seed`` from those with held-out items (0: all)."""
    both = torch.cat([valid, test], 1)
    drawn = torch.unique(validation_sample(both, users, seed)[0])
    return valid[:, torch.isin(valid[0], drawn)], test[:, torch.isin(test[0], drawn)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="gowalla")
    parser.add_argument("--families", default="gf_cf,bspm,sgfcf")
    parser.add_argument("--users", type=int, default=6000, help="users ranked (a seeded sample; 0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, repeats=3, users=0)

    graph, valid, test = load_dataset(args.dataset, VALID_FRACTION, SEED)
    valid, test = held_out_sample(valid, test, args.users, SEED)
    rows_per_product = {"whole_block": WHOLE_BLOCK, "chunks": interactions.CPU_ROWS_PER_PRODUCT}
    results: dict = {"dataset": args.dataset, "users": int(torch.unique(torch.cat([valid[0], test[0]])).numel()),
                     "items": graph.num_items, "threads": torch.get_num_threads(), "repeats": args.repeats,
                     "rows_per_product": interactions.CPU_ROWS_PER_PRODUCT}

    def evaluate(path: str, score) -> dict:
        with mock.patch.object(interactions, "CPU_ROWS_PER_PRODUCT", rows_per_product[path]):
            return one_pass(score, graph, valid, test)

    table = []
    for family in args.families.split(","):
        score = scorer_of(family, graph, valid)
        seconds, peaks, outputs = alternate_paths(lambda path, score=score: evaluate(path, score), PATHS, args.repeats)
        identical = same_figures(outputs["whole_block"], outputs["chunks"])
        results.update({**path_figures(family, seconds, peaks), f"{family}.identical": identical})
        table.append([family, format_spread(seconds["whole_block"], 3), format_spread(seconds["chunks"], 3),
                      f"{results[f'{family}.speedup']:.2f}×", f"{max(peaks['whole_block']):,.0f}",
                      f"{max(peaks['chunks']):,.0f}", "yes" if identical else "**no**"])
    print_table(f"validation and test full ranking on {args.dataset}, {results['users']:,} users × "
                f"{graph.num_items:,} items, {args.repeats} runs, {results['threads']} threads",
                ["model", "one product per block: s", f"chunks of {interactions.CPU_ROWS_PER_PRODUCT} rows: s",
                 "speedup (medians)", "peak RSS MiB, per block", "peak RSS MiB, chunks", "same figures"], table)
    write_json(args.json, results)


if __name__ == "__main__":
    sys.exit(main())
