"""Reliability suite: bad inputs and faults fed through the real pipeline, which must stop each at the right
place with a clear message while the promoted embedding version (and the warehouse) stay intact.

A good baseline first: the demo through every recommendation asset (a version is promoted), then one landing
file of the `files` source (the volume check's reference). Then each case runs on a private copy of that folder:
an in-process Dagster materialization of the full retrain with the ingest pointed at one bad file (see
benchmarks/reliability_inputs.py), or a fault (benchmarks/reliability_faults.py). `caught` means handled
correctly: stopped at the expected check, or at ingest with a SourceError, or, for valid but hostile input (ids
with SQL metacharacters), carried through to a candidate version with the ids intact, which the compatibility gate
then promotes or retires on the model's merits; `data_intact` means the promoted version reads back bit-identical
(or, where a run legitimately publishes, the baseline version still does and the new one is whole).

    python -m benchmarks.reliability [--json FILE] [--only CASE ...] [--workdir DIR] [--workers N]

The cases are independent (each on its own copy of the baseline), so they run ``--workers`` at a time (default: one
per core), each worker a fresh process with its share of the cores.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

import models  # noqa: F401  (sets OMP_WAIT_POLICY before torch starts)
from benchmarks.common import add_smoke_argument, apply_smoke, print_table, write_json
from benchmarks.reliability_faults import concurrent_materializations, kill_during_publish, kill_during_training
from benchmarks.reliability_inputs import (
    HOSTILE_USER_IDS,
    SOURCE_ERROR,
    SUCCESS,
    WARNS,
    BatchShape,
    InputCase,
    input_cases,
    valid_batch,
)
from benchmarks.reliability_pipeline import (
    GATE,
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
from models.runtime.machine import thread_share
from orchestration.jobs import full_retrain, landing_ingest
from warehouse.connection import connect
from warehouse.id_maps import load_id_map

SHAPE = BatchShape(users=400, items=200)
# One input case of each verdict (a blocking check, a SourceError at ingest, valid input carried through): what a
# smoke run feeds after the same baseline. The faults start worker processes, which takes too long for a smoke run.
SMOKE_CASES = ("null_user_ids", "missing_file", "sql_metacharacter_ids")


class BaselineError(RuntimeError):
    """The good baseline did not materialize, so no case can be judged; the message holds the run's errors."""


def build_baseline(root: Path) -> tuple[Path, VersionSnapshot]:
    """Materialize the demo end to end (a promoted version), then ingest one good landing file."""
    root.mkdir(parents=True)
    first = run(root, full_retrain.selection, run_config({"demo_users": SHAPE.users, "demo_items": SHAPE.items}))
    landing = root.parent / "landing"
    landing.mkdir()
    baseline_file = landing / "baseline_batch.parquet"
    valid_batch(SHAPE, seed=1).write_parquet(baseline_file)
    second = run(root, landing_ingest.selection, run_config(files_source(baseline_file), training=None))
    for outcome in (first, second):
        if not outcome.success:
            raise BaselineError(f"baseline run failed: {outcome.step_errors} {outcome.failed_checks}")
    return baseline_file, snapshot(root)


def _stopped_at(outcome: RunOutcome) -> tuple[str, str]:
    """Where a run stopped and the message a person reads there."""
    if outcome.failed_checks:  # a failed blocking check also fails its step; the check says more
        return ", ".join(sorted(outcome.failed_checks)), next(iter(outcome.failed_checks.values()))
    if outcome.step_errors:
        first = outcome.step_errors[0]
        return f"{first['step']}: {first['error']}", first["message"]
    return ("published" if outcome.success else "failed without an error"), ""


def _hostile_ids_round_trip(root: Path, version_id: str) -> tuple[bool, str]:
    """Every hostile id is in the raw table, the id map and the run's version, and top-k works for it there."""
    with connect(root / "warehouse.duckdb") as con:
        raw = [con.execute("SELECT count(*) FROM raw_interactions WHERE user_id = ?", [uid]).fetchall()[0][0]
               for uid in HOSTILE_USER_IDS]
        mapped = set(load_id_map(con, "user")["raw_id"].to_list())
        tables = {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    store = FeatureStore(root / "feature_store")
    vectors = store.read_vectors("user", list(HOSTILE_USER_IDS), version_id)
    ranked = [store.top_k_items(uid, k=5, version_id=version_id) for uid in HOSTILE_USER_IDS]
    ok = (all(raw) and set(HOSTILE_USER_IDS) <= mapped and {"raw_interactions", "user_index"} <= tables
          and bool(np.isfinite(vectors).all()) and all(len(r) == 5 for r in ranked))
    return ok, f"{len(HOSTILE_USER_IDS)} hostile ids round-tripped: raw rows {raw}, mapped, vectors, top-5"


def _judge_valid(root: Path, outcome: RunOutcome, baseline: VersionSnapshot) -> tuple[bool, bool, str]:
    """(caught, intact, message) for valid input: carried through to a candidate version with the hostile ids
    intact, that version lined up with the promoted one, and the gate's verdict on it applied cleanly.

    The gate may promote the candidate or retire it (see reliability_inputs.SUCCESS for why either is right);
    any other stop (a step error, another check) is not. Lined up: the candidate's first rows are the promoted
    version's ids in the same order, so the gate compared each user and item with itself. Intact: the baseline
    version reads back bit-identical, the candidate is whole, and the promoted version is the candidate (a child
    of the baseline) when it passed, else still the baseline.
    """
    candidate_id = outcome.metadata.get("embedding_candidate", {}).get("version_id")
    gate_only = outcome.success or stopped_by_gate(outcome)
    kept = snapshot(root, baseline.version_id).same_vectors(baseline)
    if not candidate_id or not gate_only:
        return False, kept and snapshot(root).version_id == baseline.version_id, _stopped_at(outcome)[1]
    ok, message = _hostile_ids_round_trip(root, candidate_id)
    store = FeatureStore(root / "feature_store")
    info, candidate = store.get_version(candidate_id), snapshot(root, candidate_id)
    aligned = (candidate.user_ids[:len(baseline.user_ids)] == baseline.user_ids
               and candidate.item_ids[:len(baseline.item_ids)] == baseline.item_ids)
    verdict = "promoted" if outcome.success else "retired"
    whole = len(candidate.user_ids) == info.n_users and len(candidate.item_ids) == info.n_items
    live = store.promoted_version().version_id
    intact = kept and whole and info.parent_id == baseline.version_id and (
        live == candidate_id if outcome.success else live == baseline.version_id)
    reason = "" if outcome.success else f" ({outcome.failed_checks[GATE]})"
    message = (f"{message}; candidate {'lined up with' if aligned else 'NOT lined up with'} the promoted version, "
               f"{verdict} by the gate{reason}")
    return ok and aligned and info.status == verdict, intact, message


def _duplicates_left(root: Path) -> int:
    """Exact duplicate rows in clean_interactions (what a warning-only duplicate finding must leave behind: 0)."""
    with connect(root / "warehouse.duckdb") as con:
        return con.execute("SELECT count(*) - count(DISTINCT (user_id, item_id, ts, event, split)) "
                           "FROM clean_interactions").fetchone()[0]


def _judge_warning(root: Path, case: InputCase, outcome: RunOutcome, kept: bool,
                   baseline: VersionSnapshot) -> tuple[bool, bool]:
    """(caught, intact) for a warning-only finding: raised, no other check failed but the gate, no duplicate left
    in the clean table; the baseline kept, and whatever is promoted is it or a candidate derived from it."""
    others = set(outcome.failed_checks) - {case.expected, GATE}
    caught = case.expected in outcome.failed_checks and not others and _duplicates_left(root) == 0
    now = snapshot(root)
    store = FeatureStore(root / "feature_store")
    intact = kept and (now.version_id == baseline.version_id
                       or store.get_version(now.version_id).parent_id == baseline.version_id)
    return caught, intact


def run_input_case(case: InputCase, baseline_root: Path, work: Path, baseline: VersionSnapshot,
                   seed: int) -> dict[str, Any]:
    """Feed one bad file through the full retrain on a copy of the baseline and judge where it stopped."""
    started = time.perf_counter()
    root = copy_root(baseline_root, work / case.name)
    inputs = work / "inputs"
    inputs.mkdir(exist_ok=True)
    outcome = run(root, full_retrain.selection, run_config(files_source(case.write(inputs, SHAPE, seed))))
    stopped_at, message = _stopped_at(outcome)
    kept = snapshot(root, baseline.version_id).same_vectors(baseline)
    if case.expected == SUCCESS:
        caught, intact, message = _judge_valid(root, outcome, baseline)
    elif case.expected == WARNS:
        caught, intact = _judge_warning(root, case, outcome, kept, baseline)
    else:
        nothing_downstream = "clean_interactions" not in outcome.materialized
        if case.expected == SOURCE_ERROR:
            caught = [e["error"] for e in outcome.step_errors] == [SOURCE_ERROR] and not outcome.materialized
        else:
            caught = set(outcome.failed_checks) == {case.expected} and nothing_downstream
        now = snapshot(root)
        intact = kept and now.version_id == baseline.version_id and now.versions == baseline.versions
    return {"case": case.name, "kind": "input", "expected": case.expected, "stopped_at": stopped_at,
            "caught": bool(caught), "data_intact": bool(intact), "message": message,
            "seconds": round(time.perf_counter() - started, 1)}


# The faults by name, as a worker process looks them up.
FAULTS = {
    "kill9_during_training": kill_during_training,
    "kill9_during_publish": kill_during_publish,
    "two_concurrent_materializations": partial(concurrent_materializations, shape=SHAPE),
}


def _run_named_case(name: str, seed: int, baseline_file: Path, baseline_root: Path, work: Path,
                    baseline: VersionSnapshot) -> dict[str, Any]:
    # A case's writer is a closure, which a worker process cannot receive: it gets the case's name instead.
    if name in FAULTS:
        return FAULTS[name](baseline_root, work, baseline)
    case = next(case for case in input_cases(baseline_file) if case.name == name)
    return run_input_case(case, baseline_root, work, baseline, seed)


def run_suite(work: Path, only: set[str] | None = None, workers: int = 1) -> dict[str, Any]:
    """Baseline, then every input case and every fault, ``workers`` at a time (each in a fresh process, on its own
    copy of the baseline); the summary counts and one entry per case, inputs first, in order."""
    baseline_root = work / "baseline"
    baseline_file, baseline = build_baseline(baseline_root)
    inputs = [c.name for c in input_cases(baseline_file) if not only or c.name in only]
    names = inputs + [name for name in FAULTS if not only or name in only]
    seeds = range(100, 100 + len(names))  # an input case's seed makes its batch; the faults ignore theirs
    # The workers inherit the environment: each gets its share of the cores for torch and BLAS.
    share = thread_share(workers)
    os.environ.update(share)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            entries = list(pool.map(_run_named_case, names, seeds, repeat(baseline_file), repeat(baseline_root),
                                    repeat(work), repeat(baseline)))
    finally:
        for key in share:
            del os.environ[key]
    return {
        "cases": len(entries), "input_cases": sum(e["kind"] == "input" for e in entries),
        "fault_cases": sum(e["kind"] == "fault" for e in entries),
        "caught": sum(e["caught"] for e in entries), "data_intact": sum(e["data_intact"] for e in entries),
        "baseline_version": baseline.version_id, "entries": entries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--only", nargs="*", help="run only these cases (names as in the table)")
    parser.add_argument("--workdir", help="keep every case's folder in this new folder (default: a temporary one)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="cases at a time, each in a process of its own (default: one per core)")
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), only=list(SMOKE_CASES))
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    with tempfile.TemporaryDirectory(prefix="graphrec-reliability-") as scratch:
        results = run_suite(Path(args.workdir or scratch), set(args.only) if args.only else None, args.workers)
    rows = [[e["case"], e["kind"], e["expected"], e["stopped_at"], "yes" if e["caught"] else "NO",
             "yes" if e["data_intact"] else "NO", f"{e['seconds']:.1f}", e["message"][:110].replace("|", "/")]
            for e in results["entries"]]
    print_table(f"Reliability: {results['caught']}/{results['cases']} caught, {results['data_intact']}/"
                f"{results['cases']} data intact ({results['input_cases']} inputs, {results['fault_cases']} faults)",
                ["case", "kind", "expected", "stopped at", "caught", "intact", "s", "message"], rows)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
