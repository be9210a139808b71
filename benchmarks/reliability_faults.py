"""The faults of the reliability suite, each on a private copy of the baseline pipeline folder: `kill -9` while
training (the rerun must resume from the last checkpoint), `kill -9` while a new version's files are half-written
(nothing half-written becomes visible, the promoted version stays whole), and two concurrent materializations
against one warehouse (both carry their data through, or one fails clearly on the lock; nothing is corrupted).
Runs that get killed run in worker processes: `python -m benchmarks.reliability_faults SPEC`.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dagster import AssetSelection, DagsterInstance

from benchmarks.reliability_inputs import BatchShape, valid_batch
from benchmarks.reliability_pipeline import (
    QUIET,
    TRAINING,
    RunOutcome,
    VersionSnapshot,
    copy_root,
    files_source,
    run,
    run_config,
    snapshot,
    stopped_by_gate,
)
from feature_store import FeatureStore
from feature_store.layout import STAGING_PREFIX
from orchestration.jobs import full_retrain
from warehouse.connection import connect

# A run long enough to be killed half-way, with a checkpoint after every epoch.
LONG_TRAINING = {**TRAINING, "epochs": 300, "eval_every": 1, "patience": 300}
TRAINED = "lightgcn_model"
# The line a training run logs after each evaluation, just after writing that epoch's checkpoint.
EPOCH_LOGGED = re.compile(r"^epoch (\d+): loss")
# The step that writes a version's files: it stages them, fsyncs, renames the folder into place and registers it.
# (published_embeddings only flips the registry's status, one DuckDB transaction, with no files to half-write.)
STAGES = "embedding_candidate"
# Words by which a person recognizes that two runs collided on a lock, rather than a bug.
CONFLICT_WORDS = ("lock", "conflicting", "busy")


def _spawn(spec: dict[str, Any], folder: Path) -> tuple[subprocess.Popen, Path]:
    """Start a worker process that runs `spec`; returns it and the path of its outcome JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    spec_path, out = folder / f"{spec['name']}.json", folder / f"{spec['name']}.outcome.json"
    spec_path.write_text(json.dumps({**spec, "out": str(out)}, default=str))
    with (folder / f"{spec['name']}.log").open("w") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([sys.executable, "-m", "benchmarks.reliability_faults", str(spec_path)],
                                   stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])
    return process, out


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def _intact(root: Path, baseline: VersionSnapshot) -> bool:
    """The baseline version is still the promoted one, no version was added, and its vectors read back the same."""
    now = snapshot(root)
    return now.version_id == baseline.version_id and now.versions == baseline.versions and now.same_vectors(baseline)


def _entry(name: str, caught: bool, intact: bool, stopped_at: str, message: str, started: float) -> dict[str, Any]:
    return {"case": name, "kind": "fault", "expected": "recovered", "stopped_at": stopped_at, "caught": caught,
            "data_intact": intact, "message": message, "seconds": round(time.perf_counter() - started, 1)}


def _last_logged_epoch(instance: DagsterInstance) -> int:
    """The last epoch that the one run recorded in `instance` has logged as evaluated and checkpointed (0: none)."""
    runs = instance.get_runs(limit=1)
    epochs = [int(match.group(1)) for entry in (instance.all_logs(runs[0].run_id) if runs else [])
              if (match := EPOCH_LOGGED.match(entry.user_message))]
    return max(epochs, default=0)


def kill_during_training(baseline_root: Path, work: Path, baseline: VersionSnapshot) -> dict[str, Any]:
    """kill -9 a training run after a few checkpointed epochs; the rerun must resume at the last checkpoint.

    The worker's run is recorded in a Dagster instance on disk, so that its log tells how far training got: each
    epoch's line follows its checkpoint, so the kill can land after the checkpoint of the next epoch and before
    its line, and the rerun resumes at the last logged epoch or the one after it.
    """
    started, name = time.perf_counter(), "kill9_during_training"
    root = copy_root(baseline_root, work / name)
    config = {"ops": {TRAINED: {"config": LONG_TRAINING}}, "loggers": QUIET}
    instance_dir = work / "workers" / f"{name}_instance"
    instance_dir.mkdir(parents=True)
    instance = DagsterInstance.local_temp(str(instance_dir))  # created here, before the worker opens it too
    process, out = _spawn({"name": name, "root": str(root), "selection": [TRAINED], "config": config,
                           "instance": instance_dir}, work / "workers")
    logged = 0
    while process.poll() is None and logged < 3:
        time.sleep(0.05)
        logged = _last_logged_epoch(instance)
    if process.poll() is not None:
        errors = json.loads(out.read_text())["step_errors"] if out.exists() else "no outcome (see its log)"
        return _entry(name, False, _intact(root, baseline), "worker finished before the kill", str(errors), started)
    _kill(process)
    logged = _last_logged_epoch(instance)
    intact = _intact(root, baseline)
    rerun = run(root, [TRAINED], config)
    metadata = rerun.metadata.get(TRAINED, {})
    resumed = metadata.get("resumed_from_epoch")
    caught = (rerun.success and resumed in (logged, logged + 1) and logged > 0
              and metadata["epochs"] == LONG_TRAINING["epochs"])
    message = (f"killed after the run logged epoch {logged}; the rerun resumed from epoch {resumed} and finished "
               f"{metadata.get('epochs')} epochs")
    return _entry(name, caught, intact and _intact(root, baseline), "resumed from checkpoint", message, started)


def _staging_seen(versions: Path, process: subprocess.Popen) -> bool:
    """Poll (every 0.5 ms: a publish stages its files for milliseconds) until a staging folder holds a file, so
    that a kill then lands with the version's files partly written, not before the first one."""
    while process.poll() is None:
        if _staged_files(versions):
            return True
        time.sleep(0.0005)
    return False


def _staging(versions: Path) -> list[str]:
    """The staging folders in the store's versions folder: files of a version not yet renamed into place."""
    return [entry for entry in os.listdir(versions) if entry.startswith(STAGING_PREFIX)]


def _staged_files(versions: Path) -> list[str]:
    """The files in the staging folders, by name."""
    files = []
    for folder in _staging(versions):
        try:
            files += os.listdir(versions / folder)
        except FileNotFoundError:  # renamed into place (or removed) since it was listed
            pass
    return sorted(files)


def _unregistered(store: FeatureStore) -> list[str]:
    """Version folders (not staging ones) that the registry does not list: what a reader must never be given."""
    registered = {v.version_id for v in store.list_versions()}
    return [entry for entry in os.listdir(store.versions_dir)
            if not entry.startswith(STAGING_PREFIX) and entry not in registered]


def kill_during_publish(baseline_root: Path, work: Path, baseline: VersionSnapshot,
                        attempts: int = 5) -> dict[str, Any]:
    """kill -9 the step that writes a new version's files while they are half-written in their staging folder.

    An attempt counts only when the kill left the staging folder behind with some of the files in it (the step
    had not yet renamed it into place); a kill that lands after the rename is retried on a fresh copy. Then:
    nothing new is registered, no unregistered version folder is visible, the promoted version reads back
    bit-identical, gc collects exactly the staging leftovers, and a rerun of the step registers a whole candidate,
    a child of the baseline holding the champion's vectors (the same ones the baseline published) bit for bit.
    The rerun skips the compatibility check: a candidate that repeats the promoted vectors is no improvement, and
    retiring it is the gate's business, not this fault's.
    """
    started, name = time.perf_counter(), "kill9_during_publish"
    for attempt in range(attempts):
        root = copy_root(baseline_root, work / f"{name}_{attempt}")
        versions = root / "feature_store" / "versions"
        process, _ = _spawn({"name": f"{name}_{attempt}", "root": str(root), "selection": [STAGES],
                             "config": run_config(training=None)}, work / "workers")
        seen = _staging_seen(versions, process)
        if seen:
            _kill(process)
        process.wait()
        if seen and _staged_files(versions):  # files written, folder not yet renamed into place
            break
    else:
        return _entry(name, False, _intact(root, baseline), "no kill landed mid-write",
                      f"{attempts} attempts", started)
    store = FeatureStore(root / "feature_store")
    half_written, written = _staging(versions), _staged_files(versions)
    nothing_visible = len(store.list_versions()) == baseline.versions and not _unregistered(store)
    intact = _intact(root, baseline)
    leftovers = sorted(path.name for path in store.gc(min_age_s=0))
    rerun = run(root, AssetSelection.assets(STAGES).without_checks(), run_config(training=None))
    candidate = FeatureStore(root / "feature_store").list_versions()[-1]
    whole = (candidate.status == "candidate" and candidate.parent_id == baseline.version_id
             and snapshot(root, candidate.version_id).same_vectors(baseline))
    caught = nothing_visible and leftovers == sorted(half_written) and rerun.success and whole
    message = (f"killed {STAGES} mid-write (attempt {attempt + 1}): {len(half_written)} staging folder(s) left "
               f"holding {written}, "
               f"{'nothing' if nothing_visible else 'something'} registered or visible; gc removed "
               f"{len(leftovers)}; the rerun registered candidate {candidate.version_id}"
               f"{', whole' if whole else ', NOT whole'}")
    now = snapshot(root)  # the rerun added a candidate; the promoted version must still be the baseline, unchanged
    still = now.version_id == baseline.version_id and now.same_vectors(baseline)
    return _entry(name, caught, intact and still, "staged, not registered", message, started)


def _warehouse_consistent(root: Path, rows_before: int) -> tuple[bool, int]:
    """Raw rows equal what the ingest log says was added (the warehouse started empty), and the id maps are dense
    and unique; returns (ok, rows now)."""
    with connect(root / "warehouse.duckdb") as con:
        rows = con.execute("SELECT count(*) FROM raw_interactions").fetchall()[0][0]
        logged = con.execute("SELECT coalesce(sum(rows_added), 0) FROM ingest_log").fetchall()[0][0]
        dense = all(con.execute(f"SELECT count(*) = count(DISTINCT idx) AND coalesce(max(idx), -1) = count(*) - 1 "
                                f"FROM {entity}_index").fetchall()[0][0] for entity in ("user", "item"))
    return rows == logged and rows >= rows_before and dense, rows


def concurrent_materializations(baseline_root: Path, work: Path, baseline: VersionSnapshot,
                                shape: BatchShape) -> dict[str, Any]:
    """Two full retrains, each ingesting its own new file, started together against one warehouse and store.

    Handled: at least one run carries its batch through to a gate verdict (promoted, or retired by the
    compatibility gate, which judges the retrained model and not the collision), every other failure names the
    lock, and the warehouse and store stay consistent with exactly one promoted version.
    """
    started, name = time.perf_counter(), "two_concurrent_materializations"
    root = copy_root(baseline_root, work / name)
    with connect(root / "warehouse.duckdb") as con:
        rows_before = con.execute("SELECT count(*) FROM raw_interactions").fetchall()[0][0]
    workers = []
    for k in range(2):
        path = work / "workers" / f"concurrent_{k}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        valid_batch(shape, seed=900 + k).write_parquet(path)
        spec = {"name": f"concurrent_{k}", "root": str(root), "selection": "full_retrain",
                "config": run_config(files_source(path))}
        workers.append(_spawn(spec, work / "workers"))
    outcomes = []
    for process, out in workers:
        process.wait(timeout=900)
        outcomes.append(RunOutcome(**json.loads(out.read_text())))
    # A run whose candidate the gate retired carried its data through; any other failure must name the lock.
    retired = sum(stopped_by_gate(o) for o in outcomes)
    failures = [error["message"] for o in outcomes if not stopped_by_gate(o) for error in o.step_errors]
    clear = all(any(word in message.lower() for word in CONFLICT_WORDS) for message in failures)
    consistent, rows_after = _warehouse_consistent(root, rows_before)
    store = FeatureStore(root / "feature_store")
    readable = all(len(snapshot(root, v.version_id).user_ids) == v.n_users for v in store.list_versions())
    promoted = [v for v in store.list_versions() if v.status == "promoted"]
    succeeded = sum(o.success for o in outcomes)
    message = (f"{succeeded} of 2 runs succeeded"
               + (f", {retired} had its candidate retired by the gate" if retired else "")
               + (f"; failed clearly: {failures[0][:160]}" if failures else "")
               + f"; raw rows {rows_before} -> {rows_after}, {len(store.list_versions())} versions, "
               f"{len(promoted)} promoted")
    return _entry(name, succeeded + retired >= 1 and clear, consistent and readable and len(promoted) == 1,
                  f"{succeeded}/2 succeeded", message, started)


def _worker(spec_path: Path) -> None:
    """Run one materialization described by a spec file and write its RunOutcome as JSON."""
    spec = json.loads(spec_path.read_text())
    selection = full_retrain.selection if spec["selection"] == "full_retrain" else spec["selection"]
    instance = DagsterInstance.local_temp(spec["instance"]) if spec.get("instance") else None
    outcome = run(Path(spec["root"]), selection, spec["config"], instance)
    Path(spec["out"]).write_text(json.dumps(asdict(outcome), default=str))


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
