"""Shared helpers for benchmark scripts: loading a data set through the warehouse, timing, memory, output."""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import torch

from models.graph.bipartite import BipartiteGraph
from models.nodeclf.npz_graphs import NPZ_FOLDER
from warehouse.connection import connect
from warehouse.features import item_table
from warehouse.id_maps import update_id_maps
from warehouse.ingest import ingest
from warehouse.paths import shared_dir
from warehouse.sources import read_source
from warehouse.split import SplitConfig, build_split, load_pairs
from warehouse.validation import ValidationConfig, quarantine

DATASETS = {"gowalla": ("lightgcn", "gowalla"), "movielens": ("movielens", "ml-latest-small")}
# ml-latest-small starts in 1996, before the validation default's earliest timestamp (2000).
EARLIEST = {"movielens": datetime(1995, 1, 1)}
# The gnn-benchmark node-classification graphs (Cora-ML, Citeseer, Cora) by bare name.
NPZ_DIR = shared_dir() / NPZ_FOLDER


def load_dataset(name: str, valid_fraction: float, seed: int) -> tuple[BipartiteGraph, torch.Tensor, torch.Tensor]:
    """(train graph, valid edges, test edges) of a shared data set, through the same warehouse path as the assets.

    Sources with a given split (LightGCN folders) keep it; others get a temporal split. The validation part is
    carved from train with ``valid_fraction`` per user.
    """
    return load_dataset_with_items(name, valid_fraction, seed)[:3]


def load_dataset_with_items(name: str, valid_fraction: float, seed: int,
                            mode: str | None = None) -> tuple[BipartiteGraph, torch.Tensor, torch.Tensor, pl.DataFrame]:
    """:func:`load_dataset`'s (train graph, valid edges, test edges) and the item table aligned to item indices
    (``idx``, ``title``, ``category``; NULLs for a source without item metadata, such as Gowalla).

    ``mode`` overrides the split mode (``warehouse.split.SplitConfig.mode``) of a timestamped source."""
    kind, folder = DATASETS[name]
    interactions, items = read_source(kind, shared_dir() / "datasets" / folder)
    con = connect(":memory:")
    ingest(con, interactions, items, source=name, content_key=name)
    validation = ValidationConfig(**({"earliest_ts": EARLIEST[name]} if name in EARLIEST else {}))
    quarantine(con, validation, datetime.now(timezone.utc).replace(tzinfo=None))
    stats = update_id_maps(con)
    mode = "given" if kind == "lightgcn" else mode or "temporal"
    build_split(con, SplitConfig(mode=mode, valid_fraction=valid_fraction, seed=seed))
    train, valid, test = (torch.from_numpy(load_pairs(con, part)) for part in ("train", "valid", "test"))
    items_table = item_table(con)
    con.close()
    return BipartiteGraph(train, stats.users_total, stats.items_total), valid, test, items_table


def add_lightgcn_arguments(parser: argparse.ArgumentParser, valid_fraction: float) -> None:
    """The data set, device, LightGCN training and output options that the Gowalla benchmarks share."""
    parser.add_argument("--dataset", default="gowalla", choices=sorted(DATASETS))
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--batch-size", type=int, default=32768, help="BPR triples per training step")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--valid-fraction", type=float, default=valid_fraction, help="per-user share of train held out")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--json", default=None)


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when torch sees a GPU, else cpu; any other name as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def spread(values: list[float]) -> dict[str, float]:
    """``min``, ``median`` and ``max`` of repeated measurements of one figure (timings: at least 3 runs in one
    process, so that a claim of one path being faster than another shows its run-to-run range)."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def format_spread(values: list[float], digits: int = 4) -> str:
    """``median (min–max)`` of repeated measurements, for a table cell."""
    s = spread(values)
    return f"{s['median']:.{digits}g} ({s['min']:.{digits}g}–{s['max']:.{digits}g})"


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    """Print a GitHub-markdown table."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |")


def write_json(path: str | None, results: dict) -> None:
    """Write flat results to ``path`` (when given) and echo where."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(results, indent=2, sort_keys=True))
        print(f"\nwrote {path}", file=sys.stderr)
