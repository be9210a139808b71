"""Shared helpers for benchmark scripts: loading a data set through the warehouse, timing, memory, output, and the
``--smoke`` setting (tiny seeded synthetic data, a few steps) that checks a benchmark runs without the shared data."""
from __future__ import annotations

import argparse
import atexit
import dataclasses
import importlib.util
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from models.graph.bipartite import BipartiteGraph
from models.nodeclf.npz_graphs import NPZ_FOLDER
from models.runtime.machine import peak_rss_mb, resolve_device  # noqa: F401 (the benchmarks import them from here)
from warehouse.connection import connect
from warehouse.demo import DemoConfig
from warehouse.features import item_table
from warehouse.id_maps import update_id_maps
from warehouse.ingest import ingest
from warehouse.paths import shared_dir
from warehouse.sources import read_source
from warehouse.split import SplitConfig, build_split, load_pair_times, load_pairs
from warehouse.validation import ValidationConfig, quarantine

T = TypeVar("T")
Result = TypeVar("Result")

DATASETS = {"gowalla": ("lightgcn", "gowalla"), "movielens": ("movielens", "ml-latest-small"),
            "amazon": ("amazon_reviews", "amazon2018_5core_small")}
# The smoke data set: the built-in demo generator at a tiny size, through the same warehouse path as the others.
SMOKE_DATASET = "smoke"
SMOKE_DEMO = DemoConfig(seed=7, n_users=300, n_items=150)
# Names of the node-classification graphs that smoke runs find in their synthetic folder (see smoke_npz_dir).
SMOKE_NPZ_GRAPHS = ("cora_ml", "citeseer", "cora")
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
    if name == SMOKE_DATASET:
        kind, (interactions, items) = "demo", read_source("demo", demo_config=SMOKE_DEMO)
    else:
        kind, folder = DATASETS[name]
        interactions, items = read_source(kind, shared_dir() / "datasets" / folder)
    con = connect(":memory:")
    ingest(con, interactions, items, source=name, content_key=name)
    quarantine(con, ValidationConfig(), datetime.now(timezone.utc).replace(tzinfo=None))
    stats = update_id_maps(con)
    mode = "given" if kind == "lightgcn" else mode or "temporal"
    build_split(con, SplitConfig(mode=mode, valid_fraction=valid_fraction, seed=seed))
    train, valid, test = (torch.from_numpy(load_pairs(con, part)) for part in ("train", "valid", "test"))
    train_time = load_pair_times(con, "train")
    items_table = item_table(con)
    con.close()
    graph = BipartiteGraph(train, stats.users_total, stats.items_total,
                           None if train_time is None else torch.from_numpy(train_time))
    return graph, valid, test, items_table


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


def add_init_arguments(parser: argparse.ArgumentParser) -> None:
    """The layer-0 initialization of LightGCN: the current Normal(0, 0.1) or PRISM (which trains without weight
    decay; see models.recsys.prism)."""
    parser.add_argument("--init", default="normal", choices=["normal", "prism"], help="layer-0 initialization")
    parser.add_argument("--prism-strength", type=float, default=1.0,
                        help="PRISM's s in the norms s·ln(d + 2) + 1 − s (0: every norm 1)")


def module_at(commit: str, path: str) -> ModuleType:
    """The module at ``path`` (e.g. ``models/graph/ppr.py``) as it was at ``commit``, imported under another name, so
    a benchmark can run it beside the current one. Its own imports resolve to the current code."""
    source = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=Path(__file__).resolve().parents[1], check=True,
                            capture_output=True, text=True).stdout
    name = Path(path).stem + "_before"
    copy = Path(tempfile.mkdtemp()) / f"{name}.py"
    copy.write_text(source)
    spec = importlib.util.spec_from_file_location(name, copy)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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


def merge_json(path: str | None, results: dict) -> dict:
    """``results`` over the flat results already in ``path`` (when it exists), so that a benchmark run in parts
    (``--families``, ``--points``) adds to one file; refuses a file written for another data set."""
    if not path or not Path(path).is_file():
        return dict(results)
    earlier = json.loads(Path(path).read_text())
    if earlier.get("dataset", results.get("dataset")) != results.get("dataset"):
        raise ValueError(f"{path} holds results on {earlier['dataset']!r}, not {results['dataset']!r}: "
                         f"give another --json file")
    return earlier | results


# Runs a script as __main__ and then prints its process's own peak RSS. VmHWM belongs to the address space made at
# exec, while ru_maxrss (RUSAGE_SELF or RUSAGE_CHILDREN) also counts the parent's pages mapped at fork.
_PEAK_WRAPPER = ("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__'); "
                 "print('peak_rss_kib', open('/proc/self/status').read().split('VmHWM:')[1].split()[0])")


def own_peak_rss_mb() -> float:
    """Peak resident memory in MiB of this process's own address space since its exec (Linux's VmHWM), which in a
    spawned child excludes the parent it was forked from; :func:`peak_rss_mb` where /proc is absent."""
    status = Path("/proc/self/status")
    if not status.is_file():
        return peak_rss_mb()
    return int(status.read_text().split("VmHWM:")[1].split()[0]) / 1024


def reset_peak_rss() -> None:
    """Reset this process's high-water mark (Linux: ``5`` into ``/proc/self/clear_refs``), so that
    :func:`own_peak_rss_mb` then reads the peak of what runs next; does nothing where /proc is absent."""
    clear_refs = Path("/proc/self/clear_refs")
    if clear_refs.exists():
        clear_refs.write_text("5")


def alternate_paths(run: Callable[[str], Result], paths: Sequence[str], repeats: int
                    ) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, Result]]:
    """Each of ``paths`` run as ``run(path)`` ``repeats`` times, path after path in turn: every run's seconds and
    peak RSS in MiB (the high-water mark reset before it), and each path's last output."""
    seconds, peaks, outputs = {path: [] for path in paths}, {path: [] for path in paths}, {}
    for _ in range(repeats):
        for path in paths:
            reset_peak_rss()
            started = time.perf_counter()
            outputs[path] = run(path)
            seconds[path].append(time.perf_counter() - started)
            peaks[path].append(own_peak_rss_mb())
    return seconds, peaks, outputs


def path_figures(name: str, seconds: dict[str, list[float]], peaks: dict[str, list[float]]) -> dict[str, float]:
    """The JSON figures of :func:`alternate_paths`: ``<name>.<path>.seconds`` (median, ``.min``, ``.max``),
    ``<name>.<path>.peak_rss_mb`` (largest), and ``<name>.speedup``, the first path's median over the last's."""
    figures = {}
    for path, runs in seconds.items():
        figures.update({f"{name}.{path}.seconds": spread(runs)["median"], f"{name}.{path}.seconds.min": min(runs),
                        f"{name}.{path}.seconds.max": max(runs), f"{name}.{path}.peak_rss_mb": max(peaks[path])})
    before, *_, after = seconds
    figures[f"{name}.speedup"] = figures[f"{name}.{before}.seconds"] / figures[f"{name}.{after}.seconds"]
    return figures


def run_reference_script(script: Path, folder: Path, *args: object) -> dict[str, float | None]:
    """Run a plain reference script (``script folder args...``, in a child process with its own clock) that prints
    ``recall@20 R ndcg@20 N total Ss``: its figures, its own seconds, the wall seconds with interpreter start-up
    and its own peak RSS in MiB (None where /proc is absent)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK_WRAPPER, str(script), str(folder), *map(str, args)],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    found = re.search(r"recall@20 ([\d.]+) ndcg@20 ([\d.]+) total ([\d.]+)s", done.stdout)
    if found is None:
        raise RuntimeError(f"{script.name} printed no result line:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    peak = re.search(r"peak_rss_kib (\d+)", done.stdout)
    return {"recall@20": float(found[1]), "ndcg@20": float(found[2]), "seconds": float(found[3]), "wall_seconds": wall,
            "peak_rss_mb": int(peak[1]) / 1024 if peak else None}


def add_smoke_argument(parser: argparse.ArgumentParser) -> None:
    """``--smoke``: the whole benchmark on tiny seeded synthetic data with a few steps (seconds; figures mean
    nothing). It checks that the benchmark runs, and needs no shared data folder."""
    parser.add_argument("--smoke", action="store_true",
                        help="tiny synthetic data, a few steps, one seed: checks that the benchmark runs (seconds)")


def apply_smoke(args: argparse.Namespace, **settings: Any) -> argparse.Namespace:
    """With ``--smoke``, ``settings`` replace the parsed options (over any given on the command line, so that every
    README command runs small); without it ``args`` is left as parsed."""
    if args.smoke:
        for name, value in settings.items():
            if not hasattr(args, name):  # a misspelt option would otherwise leave the full-size value in place
                raise AttributeError(f"--smoke sets an unknown option: {name}")
            setattr(args, name, value)
    return args


def smoke_replace(config: T, smoke: bool, **changes: Any) -> T:
    """The dataclass ``config`` with ``changes`` for a smoke run, else as it is (settings no option exposes)."""
    return dataclasses.replace(config, **changes) if smoke else config


def npz_dir(smoke: bool) -> Path:
    """The folder of the node-classification ``.npz`` graphs: the shared one, or for smoke runs a synthetic one."""
    return smoke_npz_dir() if smoke else NPZ_DIR


_smoke_npz: list[Path] = []


def smoke_npz_dir() -> Path:
    """A temporary folder (removed at exit) holding a seeded synthetic graph under each name of SMOKE_NPZ_GRAPHS."""
    if not _smoke_npz:
        folder = Path(tempfile.mkdtemp(prefix="graphrec-smoke-npz-"))
        atexit.register(shutil.rmtree, folder, True)
        for seed, name in enumerate(SMOKE_NPZ_GRAPHS):
            write_synthetic_npz(folder / f"{name}.npz", seed)
        _smoke_npz.append(folder)
    return _smoke_npz[0]


def write_synthetic_npz(path: Path, seed: int, num_nodes: int = 1800, num_classes: int = 7,
                        num_features: int = 64, degree: int = 4) -> None:
    """A planted-partition graph in the gnn-benchmark ``.npz`` layout: mostly same-class edges, bag-of-words
    features drawn mostly from a class's own words.

    Large enough for the benchmarks' fixed split (20 labels per class, 500 validation, 1000 test nodes) and for
    seven classes (the Cora-ML class count that the memory part assumes); small enough to train in seconds.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(num_classes, size=num_nodes)
    members = [np.flatnonzero(labels == c) for c in range(num_classes)]
    source = np.repeat(np.arange(num_nodes), degree)
    same = rng.random(source.size) < 0.8
    target = np.where(same, [rng.choice(members[labels[u]]) for u in source], rng.integers(num_nodes, size=source.size))
    adjacency = sp.csr_matrix((np.ones(source.size, dtype=np.float32), (source, target)), shape=(num_nodes,) * 2)
    words_per_class = num_features // num_classes
    words = np.where(rng.random((num_nodes, 8)) < 0.7,
                     labels[:, None] * words_per_class + rng.integers(words_per_class, size=(num_nodes, 8)),
                     rng.integers(num_features, size=(num_nodes, 8)))
    attributes = sp.csr_matrix((np.ones(words.size, dtype=np.float32), (np.repeat(np.arange(num_nodes), 8),
                                                                         words.ravel())), shape=(num_nodes, num_features))
    attributes.data[:] = 1.0  # a word drawn twice is still one word
    np.savez(path, labels=labels, **{f"{prefix}_{key}": value for prefix, matrix in (("adj", adjacency),
                                                                                      ("attr", attributes))
                                     for key, value in (("data", matrix.data), ("indices", matrix.indices),
                                                        ("indptr", matrix.indptr), ("shape", matrix.shape))})
