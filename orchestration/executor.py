"""How a run executes its steps: all in one process, or several steps side by side, each in a process of its own.

One process is the default: the multiprocess executor starts a process per step and imports torch and Dagster in
each (measured: three small steps took 17.7 s that way, 5.0 s in process), which a small data set does not repay.
On a larger one, steps that do not depend on each other (the trained models' fixed wall-clock budgets, the graph
filters' SVD and scoring) can overlap: with ``step_processes`` above 1 that many run at a time, each forked from a
server that imported the code location once (about a second per step), with the cores split evenly between them.
"""
from __future__ import annotations

import os

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

from models.runtime.machine import thread_share

# The module that builds the Definitions: the fork server imports it once, and every step's process starts from it.
CODE_LOCATION = "orchestration.definitions"
# Dagster starts the ready steps of a run by this tag, highest first.
PRIORITY_TAG = "dagster/priority"
# A trained model's step runs for its wall-clock budget whatever runs beside it, so with steps side by side it starts
# first, with the steps it waits on, and the shorter steps fill the cores around it. One step at a time, the order changes nothing.
TRAINING_FIRST = {PRIORITY_TAG: "1"}
# Before them, the shared SVD that every graph filter waits on: started first, its minutes (on Gowalla 290–490 s for
# two normalisations, two steps at a time) overlap the first trained model and the filters' steps fill the cores
# later; started after the trained models, it ran alone while the filters queued behind it. Replayed from two recorded
# Gowalla runs (benchmarks.schedule), 1,883 → 1,852 s and 2,096 → 2,009 s.
SHARED_SPECTRA_FIRST = {PRIORITY_TAG: "2"}
# Among the steps that fill the cores, a graph filter's published vectors rank by a dot product where the full filter
# goes through the item graph or a large spectral product (on Gowalla, two steps at a time: BSPM 162–191 s, its
# vectors 109–111 s; SGFCF 127–130 s, its vectors 80–84 s). The vectors start after the full filters, so a long step
# does not end alone while the other core idles.
VECTORS_LAST = {PRIORITY_TAG: "-1"}


def multiprocess_config(step_processes: int, preload_module: str) -> dict:
    """The multiprocess executor's config: ``step_processes`` steps at a time, each forked from a server that imported
    ``preload_module`` once."""
    # A forked step starts in about a second; a fresh interpreter takes about ten to import torch, Dagster and every
    # asset on 2 busy cores.
    return {"max_concurrent": step_processes, "start_method": {"forkserver": {"preload_modules": [preload_module]}}}


def step_executor(step_processes: int) -> ExecutorDefinition:
    """The in-process executor for one step at a time; else the multiprocess executor with ``step_processes`` steps
    at a time, forked from a server that imported the code location, each with its share of the cores."""
    if step_processes == 1:
        return in_process_executor
    # Set before the fork server starts, so that every step's process inherits it.
    os.environ.update(thread_share(step_processes))
    return multiprocess_executor.configured(multiprocess_config(step_processes, CODE_LOCATION))
