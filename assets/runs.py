"""Per-run artifact folders of a recommender, the pointer to the newest complete one, and their retention.

Layout under the artifact store's root, for model ``m``::

    m/checkpoint.pt               the running checkpoint: fixed, so that a crashed run's successor finds and resumes it
    m/deployed_version.pt         the deployed version's vectors, handed to training processes launched apart
    m/runs/<run id>/              one folder per finished run: final_checkpoint.pt, embeddings.pt, training.json,
                                  time_to_quality.png (the Dagster run id names it, so the UI's run and its files match)
    m/runs/.staging/<run id>/     where a run writes before its folder is published
    m/latest.json                 {"run_id", "folder"}: the newest complete run, the one readers read

Why a pointer file rather than looking up the latest materialization's metadata: readers (the ranking report, the
embedding candidate, the student's teacher) read the run that the newest successful materialization wrote, and the
pointer is replaced (``os.replace``, atomic) only after that run's folder is complete and renamed into place, so a
reader sees the previous run or the new one, never a half-written one. It needs no Dagster instance, so it works the
same for benchmarks and launched processes and survives a wiped instance; a symlink would do the same on POSIX but not
where artifact folders get copied to object stores. The materialization's metadata links the same folder for people.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assets.common import write_json
from orchestration.resources import ArtifactStore

STAGING = ".staging"


class NoFinishedRunError(FileNotFoundError):
    """A reader asked for a model's files before any run of it finished."""


def _file(name: str) -> property:
    """A ``(model folder, name)`` path of :class:`ModelArtifacts`."""
    return property(lambda self: (self.model, name))


@dataclass(frozen=True)
class RunFiles:
    """The files of one finished (or staging) run, as absolute paths inside its folder."""

    folder: Path

    @property
    def final(self) -> Path:
        """The run's last checkpoint, kept as its record (the next run starts fresh)."""
        return self.folder / "final_checkpoint.pt"

    @property
    def embeddings(self) -> Path:
        """The fit's tensors (``user_emb`` and ``item_emb``, or a scorer's state)."""
        return self.folder / "embeddings.pt"

    @property
    def record(self) -> Path:
        """The training record (JSON: model, config, data fingerprint, code version, history)."""
        return self.folder / "training.json"

    @property
    def evaluation(self) -> Path:
        """The fit's per-user validation and test results (see assets.held_out)."""
        return self.folder / "evaluation.pt"

    @property
    def curve(self) -> Path:
        """The time-to-quality plot (validation metric against elapsed training seconds), a PNG."""
        return self.folder / "time_to_quality.png"


@dataclass(frozen=True)
class ModelArtifacts:
    """Where one recommender's files live in the artifact store: fixed paths as ``(folder, file)`` relative to its
    root (``checkpoint``, ``deployed``, ``runs``, ``latest``), and each finished run's files as :class:`RunFiles`."""

    model: str
    checkpoint = _file("checkpoint.pt")
    deployed = _file("deployed_version.pt")
    runs = _file("runs")
    latest = _file("latest.json")

    def run(self, artifacts: ArtifactStore, run_id: str) -> RunFiles:
        """The files of the finished run ``run_id``."""
        return RunFiles(artifacts.path(*self.runs, run_id))

    def latest_run(self, artifacts: ArtifactStore) -> RunFiles:
        """The files of the newest complete run; raises :class:`NoFinishedRunError` before the first one."""
        pointer = artifacts.path(*self.latest)
        if not pointer.exists():
            raise NoFinishedRunError(f"no finished run of {self.model}: materialize {self.model}'s model asset first "
                                     f"({pointer} is missing)")
        return RunFiles(pointer.parent / json.loads(pointer.read_text())["folder"])

    def finished_runs(self, artifacts: ArtifactStore) -> list[RunFiles]:
        """Every finished run, newest first (by the folder's modification time, which publishing fixes: nothing
        is written into a run folder after it is renamed into place)."""
        runs = artifacts.path(*self.runs)
        folders = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")] if runs.exists() else []
        folders.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
        return [RunFiles(p) for p in folders]


@contextmanager
def new_run(artifacts: ArtifactStore, files: ModelArtifacts, run_id: str) -> Iterator[RunFiles]:
    """Stage a run's files; publish the folder as ``runs/<run_id>`` and point ``latest.json`` at it when the body
    returns. When the body raises, the staging folder is deleted: no run folder, and the previous run stays latest."""
    staging = artifacts.path(*files.runs, STAGING, run_id)
    shutil.rmtree(staging, ignore_errors=True)  # left by a process killed while staging this very run
    staging.mkdir()
    try:
        yield RunFiles(staging)
        target = artifacts.path(*files.runs, run_id)
        os.replace(staging, target)  # a rename within one folder tree: atomic, the folder appears complete
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_json(artifacts.path(*files.latest), {"run_id": run_id, "folder": f"{files.runs[1]}/{run_id}"})


def prune_runs(artifacts: ArtifactStore, files: ModelArtifacts, keep: int,
               protect: Callable[[dict[str, Any]], bool] = lambda record: False) -> list[str]:
    """Delete all but the ``keep`` newest finished runs of a model, never the latest one nor a run whose training
    record ``protect`` says must stay (e.g. the one the promoted embedding version came from); returns the deleted
    run ids."""
    latest = files.latest_run(artifacts).folder.resolve()
    deleted = []
    for run in files.finished_runs(artifacts)[keep:]:
        if run.folder.resolve() == latest or (run.record.exists() and protect(json.loads(run.record.read_text()))):
            continue
        shutil.rmtree(run.folder)
        deleted.append(run.folder.name)
    return deleted
