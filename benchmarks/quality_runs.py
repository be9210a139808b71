"""One recommender's run on a shared split, as the quality and frontier benchmarks measure it.

A training-free filter at a setting gets its validation figures from a fit on the training part and its test figures
from a refit on the whole training split (train + validation), as ``benchmarks.baselines`` does; LightGCN trains on
the training part, stops early on validation Recall@20 and is tested with training and validation items masked.
Every run reports Recall@20, NDCG@20, the degree-group bias (variance of the mean Recall@20 of users' training-degree
quantile groups, as ``benchmarks.rawls_recsys``) and the average training popularity of the top 20, on validation and
on test. Users are grouped, and items weighed, by their degrees in the whole training split for every test figure,
so the families share one yardstick. Each run can go to a fresh process of its own, so that its peak RSS is its own.
"""
from __future__ import annotations

import argparse
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from benchmarks.common import add_lightgcn_arguments, load_dataset, own_peak_rss_mb
from models.eval.ranking import degree_group_metrics, degree_groups, evaluate_scores
from models.graph.bipartite import BipartiteGraph
from models.recsys.blend import FactorBlend, FilterBlend
from models.recsys.contract import Runtime
from models.recsys.registry import FAMILIES
from models.recsys.training import LightGCNConfig, train_lightgcn

K = 20
GROUPS = 5  # user-degree quantile groups of the bias figure, as benchmarks.rawls_recsys
# The training-free families: the filters, their published vectors and recency-weighted popularity (the strongest
# popularity baseline on temporal splits), each fitted through the registry family the pipeline runs, the blend
# of two filters, which the pipeline does not run, and the blend of their vectors, which it does.
TRAINING_FREE = {**{name: FAMILIES[name] for name in ("gf_cf", "gf_cf_factors", "bspm", "bspm_factors", "sgfcf",
                                                      "sgfcf_factors", "recent_popularity")},
                 "filter_blend": FilterBlend(), "filter_blend_factors": FactorBlend()}


@dataclass
class Split:
    """The training part and validation carve, the whole training split and the test edges of one data set."""

    train: BipartiteGraph
    valid: Tensor
    full: BipartiteGraph
    test: Tensor


def load_split(dataset: str, valid_fraction: float, seed: int) -> Split:
    """The data set with a validation carve, and without one for the refit; checks that the two agree."""
    train, valid, test = load_dataset(dataset, valid_fraction, seed)
    full, _, full_test = load_dataset(dataset, 0.0, seed)
    if full.num_edges != train.num_edges + valid.size(1) or not torch.equal(full_test, test):
        raise RuntimeError("the training split loaded without a validation carve is not train + valid")
    return Split(train, valid, full, test)


def add_training_arguments(parser: argparse.ArgumentParser, max_minutes: float) -> None:
    """The data set, device and LightGCN options of ``benchmarks.lightgcn`` (same names and defaults, so a run here
    trains as that benchmark does), with a wall-clock budget per model of ``max_minutes`` by default."""
    add_lightgcn_arguments(parser, valid_fraction=0.05)
    parser.add_argument("--patience", type=int, default=10, help="evaluations without gain before stopping")
    parser.add_argument("--lr-decay", type=float, default=0.1, help="lr factor on a validation plateau")
    parser.add_argument("--lr-decay-patience", type=int, default=5, help="evaluations without gain before a decay")
    parser.add_argument("--max-minutes", type=float, default=max_minutes, help="training budget per model")


def lightgcn_config(args: argparse.Namespace, **changes: Any) -> LightGCNConfig:
    """The LightGCN config of the parsed training options, with ``changes`` (init, propagation, loss...) over
    them."""
    config = LightGCNConfig(batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, eval_every=args.eval_every,
                            patience=args.patience, seed=args.seed, max_train_seconds=args.max_minutes * 60,
                            lr_decay=args.lr_decay, lr_decay_patience=args.lr_decay_patience)
    return replace(config, **changes)


def ranking_figures(score: Callable[[Tensor], Tensor], graph: BipartiteGraph, heldout: Tensor, masked: Tensor | None,
                    yardstick: BipartiteGraph, device: torch.device) -> dict[str, float]:
    """Recall@20, NDCG@20, degree-group bias and average popularity of the top 20 of ``score`` on ``heldout``,
    with ``graph``'s items (and ``masked``) masked; users grouped and items weighed by ``yardstick``'s degrees."""
    result = evaluate_scores(score, graph, heldout, ks=(K,), batch_size=2048, also_masked=masked, device=device,
                             item_popularity=yardstick.item_degree())
    figures = degree_group_metrics(result, degree_groups(yardstick.user_degree()[result.users], GROUPS), K)
    return {"recall@20": figures[f"recall@{K}"], "ndcg@20": figures[f"ndcg@{K}"], "bias": figures["bias"],
            "avg_popularity": figures[f"avg_popularity@{K}"]}


def _prefixed(prefix: str, figures: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}{key}": value for key, value in figures.items()}


def filter_valid(name: str, settings: dict[str, Any], split: Split, device: torch.device) -> dict[str, float]:
    """Validation figures of filter ``name`` at ``settings``, fitted on the training part."""
    family = TRAINING_FREE[name]
    fitted = family.fit(split.train, split.valid, family.config_type(**settings), Runtime(device=device))
    return ranking_figures(fitted.score, split.train, split.valid, None, split.train, device)


def filter_test(name: str, settings: dict[str, Any], split: Split, device: torch.device) -> dict[str, object]:
    """Test figures of filter ``name`` at ``settings`` refitted on the whole training split; ``seconds`` are the
    fit plus scoring every test user."""
    family = TRAINING_FREE[name]
    started = time.perf_counter()
    fitted = family.fit(split.full, torch.empty(2, 0, dtype=torch.long), family.config_type(**settings),
                        Runtime(device=device))
    figures = ranking_figures(fitted.score, split.full, split.test, None, split.full, device)
    return {**figures, "seconds": time.perf_counter() - started, "config": str(fitted.config)}


def filter_point(name: str, settings: dict[str, Any], split: Split, device: torch.device) -> dict[str, object]:
    """Filter ``name`` at fixed ``settings``: validation and test figures (no choice made)."""
    return {**_prefixed("valid.", filter_valid(name, settings, split, device)),
            **filter_test(name, settings, split, device)}


def select_filter(name: str, grid: list[dict[str, Any]], split: Split, device: torch.device,
                  target: float) -> dict[str, object]:
    """Filter ``name`` at the setting of ``grid`` with the best validation Recall@20, tested once;
    ``selection_seconds`` is the time the grid took, ``seconds`` the chosen setting's refit and test scoring. A
    filter has no training curve: ``seconds_to_target`` is ``seconds`` when its validation Recall@20 reaches
    ``target``, else None."""
    started = time.perf_counter()
    tried = [(filter_valid(name, settings, split, device), settings) for settings in grid]
    selection_seconds = time.perf_counter() - started
    print(f"{name}, validation recall@{K} by setting: " + "; ".join(
        f"{settings} {figures['recall@20']:.4f}" for figures, settings in tried), flush=True)
    valid, chosen = max(tried, key=lambda pair: pair[0]["recall@20"])
    return _tested_choice(name, valid, chosen, selection_seconds, split, device, target)


def _tested_choice(name: str, valid: dict[str, float], chosen: dict[str, Any], selection_seconds: float, split: Split,
                   device: torch.device, target: float) -> dict[str, object]:
    """The row of filter ``name`` chosen at ``chosen`` with ``valid`` figures: its test figures, once."""
    test = filter_test(name, chosen, split, device)
    return {**_prefixed("valid.", valid), **test, "selection_seconds": selection_seconds, "settings": chosen,
            "seconds_to_target": test["seconds"] if valid["recall@20"] >= target else None}


def family_choice(name: str, split: Split, device: torch.device, target: float,
                  settings: dict[str, Any] | None = None) -> dict[str, object]:
    """Family ``name`` at the setting its own fit chooses on validation from ``settings`` (``choose_on_validation``
    where the config has it, as in the pipeline; recent popularity chooses by default), tested once at that setting;
    ``selection_seconds`` is the choosing fit with its validation figures."""
    family = TRAINING_FREE[name]
    names = [field.name for field in fields(family.config_type)]
    started = time.perf_counter()
    choosing = {"choose_on_validation": True} if "choose_on_validation" in names else {}
    fitted = family.fit(split.train, split.valid, family.config_type(**{**(settings or {}), **choosing}),
                        Runtime(device=device))
    valid = ranking_figures(fitted.score, split.train, split.valid, None, split.train, device)
    selection_seconds = time.perf_counter() - started
    print(f"{name}, validation recall@{K} by setting: " + "; ".join(
        f"{ {key: value for key, value in row.items() if key != 'valid_recall'} } {row['valid_recall']:.4f}"
        for row in fitted.record.history), flush=True)
    chosen = {key: fitted.config[key] for key in names if key != "choose_on_validation"}
    return _tested_choice(name, valid, chosen, selection_seconds, split, device, target)


def seconds_to(curve: list[dict[str, float]], target: float) -> float | None:
    """Elapsed training seconds at the first evaluation whose validation Recall@20 reaches ``target``, or None."""
    return next((point["elapsed_seconds"] for point in curve if point["valid_recall@20"] >= target), None)


def lightgcn_point(config: LightGCNConfig, split: Split, device: torch.device, label: str,
                   target: float) -> dict[str, object]:
    """LightGCN trained with ``config`` (early-stopped on validation), with its validation curve; ``seconds`` are
    the training plus scoring every test user, ``seconds_to_target`` those of the curve reaching ``target``."""
    result = train_lightgcn(split.train, split.valid, config, device=device,
                            log=lambda line: print(f"[{label}] {line}", flush=True))
    user_emb, item_emb = result.user_emb.to(device), result.item_emb.to(device)

    def score(users: Tensor) -> Tensor:
        return user_emb[users] @ item_emb.T

    started = time.perf_counter()
    test = ranking_figures(score, split.train, split.test, split.valid, split.full, device)
    test_seconds = time.perf_counter() - started
    curve = [{"elapsed_seconds": h["elapsed_seconds"], "valid_recall@20": h["valid_recall@20"]}
             for h in result.history if "valid_recall@20" in h]
    return {**_prefixed("valid.", ranking_figures(score, split.train, split.valid, None, split.train, device)),
            **test, "seconds": result.train_seconds + test_seconds, "seconds_to_target": seconds_to(curve, target),
            "epochs": result.epochs_run, "curve": curve,
            "config": f"init {config.init}, {config.propagation}, loss {config.loss}, batch {config.batch_size}, "
                      f"lr {config.lr:g}, {result.epochs_run} epochs"}


def _measured(run: Callable[..., dict[str, object]], *args: Any) -> dict[str, object]:
    baseline = own_peak_rss_mb()
    row = run(*args)
    return {**row, "peak_rss_mb": row.get("peak_rss_mb", own_peak_rss_mb()), "start_rss_mb": baseline}


# Each run's process forks from a server that has imported this module (torch, PyG and the models) and run nothing:
# as fresh as a spawned interpreter (no thread pool started, no data loaded) without its seconds of imports per run.
_FRESH = multiprocessing.get_context("forkserver")
_FRESH.set_forkserver_preload([__name__])


def in_own_process(run: Callable[..., dict[str, object]], *args: Any) -> dict[str, object]:
    """``run(*args)`` in a fresh process, with ``peak_rss_mb`` (that process's own high-water mark: the interpreter
    with torch, its copy of the data and the run) and ``start_rss_mb`` (the same before the run).

    A run whose row already holds ``peak_rss_mb`` (a reference script's own) keeps it.
    """
    # An executor, not a Pool: a worker that dies (out of memory, a crash in native code) raises BrokenProcessPool
    # here, where a Pool would start a new worker and wait forever for the lost result.
    with ProcessPoolExecutor(max_workers=1, mp_context=_FRESH) as pool:
        return pool.submit(_measured, run, *args).result()
