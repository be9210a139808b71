"""The training entry point for its own process: `python -m models.runtime.train_entry ...`, alone or under `torchrun`
(DistributedDataParallel, gloo on CPUs, NCCL on GPUs). Rank 0 writes the embeddings and a metrics JSON.

Launched through Dagster Pipes (the DAGSTER_PIPES_* variables are set), rank 0 also sends its log lines and
final metrics back to the run. dagster-pipes is imported only then: models/ never needs dagster.

    torchrun --nproc_per_node 2 -m models.runtime.train_entry --graph train_graph.pt --valid valid_edge_index.pt \
        --config '{"epochs": 20}' --out out/ [--checkpoint ckpt.pt] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from models.graph.bipartite import BipartiteGraph
from models.recsys.training import LightGCNConfig, TrainResult, train_lightgcn
from models.runtime import distributed
from models.runtime.machine import DEVICES, resolve_device

EMBEDDINGS_FILE = "embeddings.pt"
METRICS_FILE = "metrics.json"


class EntryArgumentError(ValueError):
    """An argument of the entry point cannot be used: the message says which one and what to pass."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m models.runtime.train_entry", description=__doc__.splitlines()[0])
    parser.add_argument("--graph", required=True, type=Path, help="training graph saved by BipartiteGraph.save")
    parser.add_argument("--valid", required=True, type=Path, help="tensors file with a (2, V) 'edge_index'")
    parser.add_argument("--config", default="{}", help="LightGCNConfig fields as a JSON object")
    parser.add_argument("--out", required=True, type=Path, help="folder for embeddings.pt and metrics.json")
    parser.add_argument("--checkpoint", type=Path, help="checkpoint to resume from and write (rank 0)")
    parser.add_argument("--fingerprint", default="", help="data fingerprint stored in the checkpoint")
    parser.add_argument("--code-version", default="", help="code version stored in the checkpoint")
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--old-version", type=Path,
                        help="tensors file with the deployed version's 'user_emb' and 'item_emb', to train compatible")
    return parser.parse_args(argv)


def parse_config(text: str) -> LightGCNConfig:
    """A LightGCNConfig from a JSON object of its fields; unknown fields are an error, not ignored."""
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EntryArgumentError(
            f"--config is not valid JSON ({exc}); pass an object like '{{\"epochs\": 20}}'.") from exc
    if not isinstance(fields, dict):
        raise EntryArgumentError(f"--config must be a JSON object of LightGCNConfig fields, got {text!r}.")
    unknown = sorted(set(fields) - set(LightGCNConfig.__dataclass_fields__))
    if unknown:
        raise EntryArgumentError(f"--config has fields that LightGCNConfig does not know: {unknown}.")
    return LightGCNConfig(**fields)


def metrics_record(result: TrainResult, config: LightGCNConfig, ctx: distributed.DistContext) -> dict[str, Any]:
    """What the launcher reads back: the training record without the embedding tensors."""
    return {
        "config": result.config, "history": result.history, "best_epoch": result.best_epoch,
        f"valid_recall@{config.eval_k}": result.best_valid_recall, "epochs_run": result.epochs_run,
        "train_seconds": result.train_seconds, "resumed_from_epoch": result.resumed_from_epoch,
        "world_size": ctx.world_size, "device": str(ctx.device),
        "backend": torch.distributed.get_backend() if ctx.distributed else "none",
    }


@contextmanager
def pipes_reporter(ctx: distributed.DistContext) -> Iterator[Any]:
    """Rank 0's Dagster Pipes connection when launched through Pipes, else None (other ranks stay silent)."""
    if not ctx.is_main or "DAGSTER_PIPES_CONTEXT" not in os.environ:
        yield None
        return
    from dagster_pipes import open_dagster_pipes  # only here: models/ must run without dagster

    with open_dagster_pipes() as pipes:
        yield pipes


def _logger(ctx: distributed.DistContext, pipes: Any) -> Callable[[str], None]:
    if not ctx.is_main:
        return lambda _: None
    if pipes is not None:
        return pipes.log.info
    return lambda message: print(message, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Train on the given graph, as one rank of a torchrun job or alone; rank 0 writes ``--out``."""
    args = parse_args(argv)
    config = parse_config(args.config)
    ctx = distributed.init_distributed(resolve_device(args.device))
    try:
        with pipes_reporter(ctx) as pipes:
            graph = BipartiteGraph.load(args.graph)
            valid = torch.load(str(args.valid), weights_only=True)["edge_index"]
            old = torch.load(str(args.old_version), weights_only=True) if args.old_version else None
            result = train_lightgcn(graph, valid, config, checkpoint_path=args.checkpoint, log=_logger(ctx, pipes),
                                    fingerprint=args.fingerprint, code_version=args.code_version, dist_ctx=ctx,
                                    old_version=(old["user_emb"], old["item_emb"]) if old else None)
            if ctx.is_main:
                record = metrics_record(result, config, ctx)
                args.out.mkdir(parents=True, exist_ok=True)
                torch.save({"user_emb": result.user_emb, "item_emb": result.item_emb},
                           str(args.out / EMBEDDINGS_FILE))
                (args.out / METRICS_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
                if pipes is not None:
                    pipes.report_asset_materialization(metadata={
                        key: record[key] for key in ("world_size", "backend", "device", "best_epoch",
                                                     "epochs_run", f"valid_recall@{config.eval_k}")})
    finally:
        distributed.shutdown(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
