"""What each step of ``full_retrain`` costs: seconds and peak resident memory per asset (and per check), on a shared
data set or on a growth series of generated power-law data sets with the fitted growth of each step's seconds.

    python -m benchmarks.pipeline --dataset gowalla [--training-minutes 10] [--json FILE]
    python -m benchmarks.pipeline --dataset generated --growth [--sizes 1000000,4000000,16000000] [--steps data]
    python -m benchmarks.pipeline --dataset gowalla --concurrency 2

The job runs through Dagster with every model that has a wall-clock budget (``max_train_seconds``) capped at
``--training-minutes`` and the pipeline's defaults otherwise. Each step runs in a process of its own (the
multiprocess executor, forkserver start), one at a time or ``--concurrency`` at a time with the cores split evenly
between them (``OMP_NUM_THREADS``), so the peak RSS that a step records in its metadata (``assets.cost.step_cost``)
is that step's; seconds come from the step's start and end in the run's event log. ``--steps data`` runs only the
steps that fit no model (:data:`DATA_STEPS`). ``--dataset generated`` ingests ``warehouse.generator`` data written
to a Parquet file through the ``files`` source.

JSON keys, per step (an asset, a multi-asset's op or a check): ``assets.<step>.seconds``, ``assets.<step>.peak_rss_mb``
(and for a model's step ``assets.<step>.eval_seconds``, its ranking of the fit on validation and test);
``total_seconds`` (the run's wall clock, process starts included), ``peak_rss_mb`` (the largest step's) and
``overlapping_peak_rss_mb`` (the largest sum of the peaks of steps that ran at the same time, a bound on the
machine's; the largest step's when they ran one at a time). With
``--growth``, one run per size: ``growth.<edges>.<step>.seconds`` and ``.peak_rss_mb``, ``growth.<step>.slope`` (the
log-log slope of seconds against edges, least squares) and the top-level keys of the largest size.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    JobDefinition,
    execute_job,
    multiprocess_executor,
    reconstructable,
)

import models  # noqa: F401  (sets OMP_WAIT_POLICY before torch starts)
from assets.recommenders import RECOMMENDERS
from benchmarks.common import DATASETS, add_smoke_argument, print_table, write_json
from benchmarks.reliability_pipeline import (
    ALL,
    TRAINING,
    config_fields,
    files_source,
    outcome_of,
    resources,
    run_config,
)
from models.runtime.machine import peak_rss_mb, thread_share
from orchestration.executor import multiprocess_config
from orchestration.jobs import BENCHMARKS, full_retrain
from warehouse.generator import generate_interactions
from warehouse.paths import shared_dir

GENERATED = "generated"
SIZES = (1_000_000, 4_000_000, 16_000_000)
# A smoke run: tiny generated sets, the reliability suite's few training steps; two sizes so the slope is fitted.
SMOKE_SIZES = (2_000, 4_000)
SEED = 0
# The steps that fit no model: full_retrain without the recommenders' group and what depends on it (distillation,
# ranking, champion, publishing). The growth series can measure them alone at sizes where fitting and ranking
# every model would take hours on 2 cores.
DATA_STEPS = AssetSelection.all() - BENCHMARKS - AssetSelection.groups("training").downstream()
STEP_SETS = ("all", "data")
# The models whose config has a wall-clock budget: each gets --training-minutes.
BUDGETED = [name for name in (asset.key.to_user_string() for asset in RECOMMENDERS.values())
            if "max_train_seconds" in config_fields(name)]
# The resources' own locations are placeholders: every run's config puts them under that run's folder (the
# executor's processes rebuild the job from this module and cannot be handed a folder otherwise).
PLACEHOLDER_ROOT = Path(tempfile.gettempdir()) / "graphrec-pipeline-unset"


def full_retrain_in_processes() -> JobDefinition:
    """``full_retrain`` with every step in a forked process of its own (module level, so that the executor's
    processes can rebuild it); the run config says how many at a time (:func:`execution_config`)."""
    return Definitions(assets=ALL, resources=resources(PLACEHOLDER_ROOT), jobs=[full_retrain],
                       executor=multiprocess_executor).resolve_job_def(full_retrain.name)


def execution_config(concurrency: int) -> dict:
    """The executor's run config: ``concurrency`` steps at a time, each forked from a server that imported this
    module (which rebuilds the job)."""
    return {"config": multiprocess_config(concurrency, "benchmarks.pipeline")}


def data_step_keys() -> list[AssetKey]:
    """The assets of :data:`DATA_STEPS` (their checks run with them)."""
    asset_graph = Definitions(assets=ALL, resources=resources(PLACEHOLDER_ROOT)).resolve_asset_graph()
    return sorted(DATA_STEPS.resolve(asset_graph))


def benchmark_config(ingest: dict, root: Path, minutes: float, smoke: bool, steps: str = "all",
                     concurrency: int = 1) -> dict:
    """The run config: the source, the resources under ``root``, every budgeted model capped at ``minutes`` (smoke
    runs also take the reliability suite's short training; ``steps="data"`` configures no model) and
    ``concurrency`` steps at a time."""
    fits_models = steps == "all"
    config = run_config(ingest, TRAINING if smoke and fits_models else None)
    config["ops"]["interaction_split"] = {"config": {"mode": split_mode(ingest)}}
    for name in BUDGETED if fits_models else ():
        config["ops"].setdefault(name, {"config": {}})["config"]["max_train_seconds"] = minutes * 60
    config["resources"] = {name: {"config": resource.model_dump()} for name, resource in resources(root).items()}
    config["execution"] = execution_config(concurrency)
    return config


@dataclass
class StepCost:
    """One step's seconds (start to end in the event log), recorded peak RSS in MiB and status; for a model's step,
    the seconds it spent ranking its fit on the held-out sets (``eval_seconds``, part of ``seconds``)."""

    seconds: float
    peak_rss_mb: float
    status: str
    eval_seconds: float = float("nan")
    started: float = float("nan")  # the step's start, seconds since the epoch


def step_costs(instance: DagsterInstance, run_id: str) -> dict[str, StepCost]:
    """Every finished step of the run: its seconds from Dagster's step stats, the largest ``peak_rss_mb`` that
    its materializations and check evaluations recorded (NaN for a step that recorded none, such as a failed one) and
    a model step's ``eval_seconds``."""
    peaks: dict[str, float] = {}
    evaluations: dict[str, float] = {}
    events = instance.get_records_for_run(
        run_id, of_type={DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_CHECK_EVALUATION}).records
    for record in events:
        event = record.event_log_entry.dagster_event
        data = (event.step_materialization_data.materialization if event.is_step_materialization
                else event.asset_check_evaluation_data)
        if "peak_rss_mb" in data.metadata:
            peaks[event.step_key] = max(peaks.get(event.step_key, 0.0), float(data.metadata["peak_rss_mb"].value))
        if "eval_seconds" in data.metadata:
            evaluations[event.step_key] = float(data.metadata["eval_seconds"].value)
    return {stats.step_key: StepCost(stats.end_time - stats.start_time, peaks.get(stats.step_key, float("nan")),
                                     stats.status.value, evaluations.get(stats.step_key, float("nan")),
                                     stats.start_time)
            for stats in instance.get_run_step_stats(run_id) if stats.start_time and stats.end_time}


def run_once(ingest: dict, root: Path, minutes: float, smoke: bool, steps: str = "all",
             concurrency: int = 1) -> tuple[dict[str, StepCost], float]:
    """One ``full_retrain`` (or its ``steps="data"``) on ``ingest`` with everything under ``root``, ``concurrency``
    steps at a time: each step's cost and the wall clock."""
    (root / "dagster").mkdir(parents=True, exist_ok=True)
    instance = DagsterInstance.local_temp(str(root / "dagster"))
    started = time.perf_counter()
    result = execute_job(reconstructable(full_retrain_in_processes), instance,
                         run_config=benchmark_config(ingest, root, minutes, smoke, steps, concurrency),
                         asset_selection=data_step_keys() if steps == "data" else None, raise_on_error=False)
    seconds = time.perf_counter() - started
    outcome = outcome_of(result)
    for error in outcome.step_errors:
        print(f"step {error['step']} failed: {error['error']}: {error['message']}")
    for check, message in outcome.failed_checks.items():
        print(f"check {check} failed: {message}")
    return step_costs(instance, result.run_id), seconds


def generated_source(root: Path, edges: int) -> dict:
    """Ingest config of a generated data set of ``edges`` edges, written under ``root`` as a landing file."""
    path = root / "landing" / f"{GENERATED}-{edges}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    generate_interactions(edges, SEED).write_parquet(path)
    return files_source(path)


def shared_source(dataset: str) -> dict:
    """Ingest config of a shared data set."""
    kind, folder = DATASETS[dataset]
    return {"source": kind, "path": str(shared_dir() / "datasets" / folder)}


def split_mode(ingest: dict) -> str:
    """The split a source calls for: a given-split source (LightGCN files) has no timestamps and keeps its own test
    set; every other source splits by time, the pipeline's default."""
    return "given" if ingest["source"] == "lightgcn" else "temporal"


def flat(prefix: str, costs: dict[str, StepCost]) -> dict[str, float]:
    """Per-step seconds, peak RSS and evaluation seconds as flat JSON keys under ``prefix`` (none of a figure that a
    step did not record)."""
    return {f"{prefix}.{step}.{key}": getattr(cost, key) for step, cost in costs.items()
            for key in ("seconds", "peak_rss_mb", "eval_seconds") if not math.isnan(getattr(cost, key))}


def largest_peak(costs: dict[str, StepCost]) -> float:
    """The largest peak RSS that a step recorded."""
    return max(cost.peak_rss_mb for cost in costs.values() if not math.isnan(cost.peak_rss_mb))


def overlapping_peak(costs: dict[str, StepCost]) -> float:
    """The largest sum of the recorded peaks of steps running at the same moment: at some step's start, that step
    and every step that started before and had not ended."""
    recorded = [cost for cost in costs.values() if not math.isnan(cost.peak_rss_mb)]
    return max(sum(other.peak_rss_mb for other in recorded
                   if other.started <= cost.started < other.started + other.seconds) for cost in recorded)


def summary(costs: dict[str, StepCost], seconds: float) -> dict[str, float]:
    """The run's JSON keys: every step under ``assets``, the wall clock, the largest step's peak RSS and the
    largest sum over steps that overlapped."""
    return {**flat("assets", costs), "total_seconds": seconds, "peak_rss_mb": largest_peak(costs),
            "overlapping_peak_rss_mb": overlapping_peak(costs)}


def slopes(series: dict[int, dict[str, StepCost]]) -> dict[str, float]:
    """Per step that finished at every size: the least-squares slope of log seconds against log edges."""
    steps = set.intersection(*(set(costs) for costs in series.values()))
    edges = np.log(list(series))
    return {step: float(np.polyfit(edges, np.log([costs[step].seconds for costs in series.values()]), 1)[0])
            for step in sorted(steps)}


def print_costs(title: str, costs: dict[str, StepCost], seconds: float) -> None:
    """The table of one run, steps in the order they ran."""
    rows = [[step, "yes" if step in BUDGETED else "", cost.status, f"{cost.seconds:.2f}",
             "" if math.isnan(cost.eval_seconds) else f"{cost.eval_seconds:.2f}", f"{cost.peak_rss_mb:.0f}"]
            for step, cost in costs.items()]
    rows.append(["(run)", "", "", f"{seconds:.2f}", "", f"{largest_peak(costs):.0f}"])
    print_table(title, ["step", "budgeted training", "status", "seconds", "of which evaluation s", "peak RSS MiB"],
                rows)


def print_growth(series: dict[int, dict[str, StepCost]], fitted: dict[str, float]) -> None:
    """Seconds and peak RSS per step at every size, and the fitted slope."""
    sizes = list(series)
    rows = [[step, *(f"{series[size][step].seconds:.2f}" for size in sizes),
             *(f"{series[size][step].peak_rss_mb:.0f}" for size in sizes), f"{slope:.2f}"]
            for step, slope in fitted.items()]
    print_table("growth: seconds and peak RSS per step against edges", ["step", *(f"s @ {n:,}" for n in sizes),
                                                                         *(f"MiB @ {n:,}" for n in sizes), "slope"],
                rows)


def measure(dataset: str, sizes: list[int], growth: bool, root: Path, minutes: float, smoke: bool,
            steps: str = "all", concurrency: int = 1) -> dict:
    """Run, print the tables and return the JSON results: ``dataset`` once, or generated data at the first size, or
    with ``growth`` at every size; ``steps`` and ``concurrency`` as :func:`run_once` takes them."""
    how = f"{'steps that fit no model' if steps == 'data' else 'per step'}, {concurrency} at a time"
    if dataset != GENERATED:
        costs, seconds = run_once(shared_source(dataset), root, minutes, smoke, steps, concurrency)
        print_costs(f"full_retrain on {dataset}: {how}", costs, seconds)
        return summary(costs, seconds)
    series, walls = {}, {}
    for edges in sizes if growth else sizes[:1]:
        folder = root / str(edges)
        series[edges], walls[edges] = run_once(generated_source(folder, edges), folder, minutes, smoke, steps,
                                               concurrency)
        print_costs(f"full_retrain on {edges:,} generated edges: {how}", series[edges], walls[edges])
    largest = max(series)
    results = summary(series[largest], walls[largest])
    if growth:
        fitted = slopes(series)
        print_growth(series, fitted)
        for edges, costs in series.items():
            results |= flat(f"growth.{edges}", costs)
        results |= {f"growth.{step}.slope": slope for step, slope in fitted.items()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default=None, choices=[GENERATED, *sorted(DATASETS)],
                        help="a shared data set (default gowalla), or generated (with --growth, the default)")
    parser.add_argument("--growth", action="store_true", help="one run per size of generated data; fitted slopes")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="edges of the generated data sets (without --growth, the first size)")
    parser.add_argument("--training-minutes", type=float, default=10.0, help="each budgeted model's wall clock")
    parser.add_argument("--steps", default="all", choices=STEP_SETS,
                        help="all of full_retrain, or data: only the steps that fit no model")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="steps at a time, the cores split evenly between them")
    parser.add_argument("--workdir", default=None, help="folder for the runs' warehouses and artifacts")
    parser.add_argument("--json", default=None)
    add_smoke_argument(parser)
    args = parser.parse_args()
    if args.growth and args.dataset not in (None, GENERATED):
        parser.error("--growth measures generated data sets; leave --dataset out or pass generated")
    dataset = GENERATED if args.smoke or args.growth else args.dataset or "gowalla"
    sizes = list(SMOKE_SIZES) if args.smoke else [int(size) for size in args.sizes.split(",")]
    if args.concurrency < 1:
        parser.error(f"--concurrency must be at least 1, got {args.concurrency}")
    root = Path(args.workdir or tempfile.mkdtemp(prefix="graphrec-pipeline-cost-"))
    # The executor forks every step from a server started with this environment: each of the steps at a time gets
    # its share of the cores for torch and BLAS.
    os.environ.update(thread_share(args.concurrency))
    results = measure(dataset, sizes, args.growth, root, args.training_minutes, args.smoke, args.steps,
                      args.concurrency)
    print(f"\nthis process's own peak RSS: {peak_rss_mb():.0f} MiB; runs under {root}")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
