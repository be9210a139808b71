"""The one training loop of every family that trains with a loss: epochs of batches, early stopping on validation,
learning-rate decay on a plateau, a time budget, resumable checkpoints, an auxiliary loss hook and the record.

A family supplies a :class:`Task` (its model, one epoch's batches, a batch's loss and, optionally, a validation
score) and reads its own settings into a :class:`Schedule`; :func:`train_loop` does the rest, the same way for all.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from models.runtime import distributed
from models.runtime.checkpoint import load_checkpoint, save_checkpoint
from models.runtime.machine import peak_rss_mb

# A batch's final vectors for the auxiliary loss: (users, user vectors, items, item vectors).
BatchVectors = tuple[Tensor, Tensor, Tensor, Tensor]
# An extra term on a batch's final vectors, e.g. a compatibility loss against a deployed version.
AuxiliaryLoss = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Schedule:
    """How long and how carefully to train; every family config names these fields the same way.

    ``eval_every`` 0 evaluates only after the last epoch. On a plateau of ``lr_decay_patience`` evaluations the
    rate is multiplied by ``lr_decay`` (at most ``lr_decays`` times; 1.0 keeps it constant) and the early-stopping
    count restarts. ``max_train_seconds`` (0: none) bounds the loop's wall clock, validations and checkpoints
    included: a budgeted pipeline step then ends near its budget whatever its validation costs. The epoch that
    reaches it stops mid-epoch (or, when its validation crossed it, after that validation) and is validated.
    """

    epochs: int
    lr: float
    seed: int
    eval_every: int = 0
    patience: int = 10
    lr_decay: float = 1.0
    lr_decay_patience: int = 2
    lr_decays: int = 2
    max_train_seconds: float = 0.0

    @classmethod
    def of(cls, config: Any) -> Schedule:
        """The schedule that a family config dataclass carries in fields of the same names."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in dataclasses.asdict(config).items() if name in names})

    def evaluates(self, epoch: int, out_of_time: bool) -> bool:
        """Whether ``epoch`` ends with a validation (the last epoch, and the one that ran out of time, always do)."""
        return (self.eval_every > 0 and epoch % self.eval_every == 0) or epoch == self.epochs or out_of_time


class Task(Protocol):
    """What a family gives the loop.

    ``generator`` drives the batches (saved per rank with the checkpoint); ``metric`` names the validation score in
    the history; ``validate`` (higher is better, run without gradients in eval mode) may be None: the run then
    keeps its last weights.
    """

    model: nn.Module
    generator: torch.Generator | None
    metric: str
    validate: Callable[[], float] | None

    def batches(self) -> Iterable[tuple[Any, float]]:
        """One epoch's batches, each with its weight in the epoch's mean loss (e.g. its size)."""

    def loss(self, batch: Any) -> tuple[Tensor, BatchVectors | None]:
        """The batch's loss and, for the auxiliary loss, its final vectors (None: the family takes none)."""


@dataclass
class TrainingRecord:
    """How a fit went: one history row per epoch (validation rows carry ``metric`` and ``lr``), the best epoch and
    score (0 and NaN without validation), epochs and steps run, training seconds, the epoch a resumed run started
    from and the process's peak resident memory. Families that do not train keep the defaults they do not use."""

    history: list[dict[str, float]] = field(default_factory=list)
    metric: str = ""
    best_epoch: int = 0
    best_score: float = math.nan
    epochs_run: int = 0
    steps: int = 0
    seconds: float = 0.0
    resumed_from_epoch: int = 0
    peak_memory_mb: float = 0.0


def _copy(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {name: tensor.detach().clone() for name, tensor in state.items()}


def train_loop(build: Callable[[], Task], schedule: Schedule, *, identity: Mapping[str, Any] | None = None,
               checkpoint: str | Path | None = None, log: Callable[[str], None] = print,
               auxiliary_loss: AuxiliaryLoss | None = None, ctx: distributed.DistContext | None = None,
               code_version: str = "") -> tuple[Task, TrainingRecord]:
    """Seed torch with ``schedule.seed``, ``build`` the task and train its model with Adam; return the task, its
    model holding the best validated weights (the last ones without validation), and the record.

    With ``checkpoint``, the state is saved after every epoch, and an existing checkpoint written for the same
    ``identity`` (e.g. resolved config and data fingerprint) and number of processes is resumed: the run then ends
    exactly as an uninterrupted one. Under torchrun (``ctx``), rank 0 validates and writes the checkpoint, its
    clock decides the time budget, and every rank ends with the same weights.
    """
    ctx = ctx or distributed.DistContext()
    identity = dict(identity or {})
    torch.manual_seed(schedule.seed)
    task = build()
    model = task.model
    optimizer = torch.optim.Adam(model.parameters(), lr=schedule.lr)
    scheduler = None
    if schedule.lr_decay < 1.0:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=schedule.lr_decay, patience=schedule.lr_decay_patience,
            min_lr=schedule.lr * schedule.lr_decay ** schedule.lr_decays)
    # train_seconds counts the training steps (the time-to-quality clock); spent_seconds the whole loop (the budget).
    state = {"epoch": 0, "history": [], "best_score": -math.inf, "best_epoch": 0, "train_seconds": 0.0,
             "spent_seconds": 0.0, "steps": 0, "evals_without_gain": 0, "stopped": False}
    best = _copy(model.state_dict())
    resumed_from = 0
    if checkpoint is not None and Path(checkpoint).exists():
        saved = _resumable(load_checkpoint(checkpoint, map_location=ctx.device), task, identity, ctx)
        if saved is None:
            log(f"ignoring checkpoint {checkpoint}: written for another config, data fingerprint, format or "
                f"number of processes (now {ctx.world_size})")
        else:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(saved["scheduler"])
            if task.generator is not None:
                task.generator.set_state(saved["generator_states"][ctx.rank].cpu())
            torch.set_rng_state(saved["torch_rng"].cpu())  # dropout and other draws from torch's global generator
            # A checkpoint from before the budget counted validations: its training seconds are the time spent.
            saved.setdefault("spent_seconds", saved["train_seconds"])
            best, state = saved["best_state"], {key: saved[key] for key in state}
            resumed_from = state["epoch"]
            log(f"resumed from {checkpoint} at epoch {resumed_from}")

    # The budget's clock: the time spent before (a resumed run's) plus this loop's.
    clock_start = time.perf_counter() - state["spent_seconds"]

    def spent_all_of_the_budget() -> bool:
        # Rank 0's clock decides, so that every rank stops at the same step.
        spent = schedule.max_train_seconds <= time.perf_counter() - clock_start
        return bool(distributed.broadcast_float(float(spent), ctx))

    epoch = state["epoch"]
    while epoch < schedule.epochs and not state["stopped"]:
        epoch += 1
        started = time.perf_counter()
        model.train()
        total, weight, out_of_time = 0.0, 0.0, False
        for batch, batch_weight in task.batches():
            loss, vectors = task.loss(batch)
            if auxiliary_loss is not None and vectors is not None:
                loss = loss + auxiliary_loss(*vectors)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * batch_weight
            weight += batch_weight
            state["steps"] += 1
            if schedule.max_train_seconds > 0:
                out_of_time = spent_all_of_the_budget()
                if out_of_time:
                    break
        epoch_seconds = time.perf_counter() - started
        state["train_seconds"] += epoch_seconds
        record = {"epoch": epoch, "steps": state["steps"],
                  "loss": distributed.sum_float(total, ctx) / (max(weight, 1.0) * ctx.world_size),
                  "epoch_seconds": epoch_seconds, "elapsed_seconds": state["train_seconds"]}
        message = f"epoch {epoch}: loss {record['loss']:.4f}"
        validates = task.validate is not None and schedule.evaluates(epoch, out_of_time)
        if validates:
            score = _validate(task, ctx)
            record[task.metric] = score
            message += f", {task.metric} {score:.4f}"
            if score > state["best_score"]:
                state.update(best_score=score, best_epoch=epoch, evals_without_gain=0)
                best = _copy(model.state_dict())
            else:
                state["evals_without_gain"] += 1
            if scheduler is not None:
                lr_before = optimizer.param_groups[0]["lr"]
                scheduler.step(score)
                if optimizer.param_groups[0]["lr"] < lr_before:
                    state["evals_without_gain"] = 0  # the lower rate gets its own patience
                    log(f"epoch {epoch}: validation plateau, learning rate {lr_before:g} → "
                        f"{optimizer.param_groups[0]['lr']:g}")
            record["lr"] = optimizer.param_groups[0]["lr"]
        if validates and schedule.max_train_seconds > 0 and not out_of_time:
            # A validation that crossed the budget ends the run here rather than after one more step.
            out_of_time = spent_all_of_the_budget()
        state["epoch"] = epoch
        state["spent_seconds"] = time.perf_counter() - clock_start
        state["history"].append(record)
        stop_reason = ("time budget reached" if out_of_time else
                       f"no gain in {schedule.patience} evaluations (best epoch {state['best_epoch']})"
                       if state["evals_without_gain"] >= schedule.patience else "")
        state["stopped"] = bool(stop_reason)
        if checkpoint is not None:
            _save(checkpoint, task, model, optimizer, scheduler, state, best, identity, ctx,
                  {"seed": schedule.seed, "code_version": code_version})
        log(f"{message}, {state['steps']} steps, {epoch_seconds:.1f} s/epoch")
        if stop_reason:
            log(f"stopping at epoch {epoch}: {stop_reason}")

    if state["best_epoch"] > 0:
        model.load_state_dict(best)
    model.eval()
    best_score = state["best_score"] if state["best_epoch"] else math.nan
    return task, TrainingRecord(state["history"], task.metric, state["best_epoch"], best_score, epoch,
                                state["steps"], state["train_seconds"], resumed_from, peak_rss_mb())


def _resumable(saved: dict[str, Any], task: Task, identity: Mapping[str, Any], ctx: distributed.DistContext
               ) -> dict[str, Any] | None:
    """``saved`` when this run can resume it: the same identity, this loop's format, one batch stream per rank."""
    if "best_state" not in saved or any(saved.get(key) != value for key, value in identity.items()):
        return None
    if task.generator is not None and len(torch.atleast_2d(saved["generator_states"])) != ctx.world_size:
        return None
    return {**saved, "generator_states": torch.atleast_2d(saved["generator_states"])}


def _validate(task: Task, ctx: distributed.DistContext) -> float:
    score = 0.0
    if ctx.is_main:
        task.model.eval()
        with torch.no_grad():
            score = task.validate()
    # Every rank holds the same weights (DDP), so with rank 0's score each keeps the same best state.
    return distributed.broadcast_float(score, ctx)


def _save(path: str | Path, task: Task, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
          state: dict[str, Any], best: dict[str, Tensor], identity: Mapping[str, Any], ctx: distributed.DistContext,
          extra: Mapping[str, Any]) -> None:
    # Every rank takes part in the gather, so that rank 0's checkpoint resumes every rank's batch stream.
    generators = (distributed.gather_generator_states(task.generator, ctx) if task.generator is not None
                  else torch.empty(0))
    if ctx.is_main:
        save_checkpoint(path, {
            **state, **identity, **extra, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            **({"scheduler": scheduler.state_dict()} if scheduler is not None else {}),
            "best_state": best, "generator_states": generators, "torch_rng": torch.get_rng_state()})
