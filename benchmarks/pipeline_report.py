"""``full_retrain`` end to end on a data set, as a user would run it, and the ranking report it produced: every
model and baseline on validation (which chooses) and on test (which only reports), the champion, whether the
champion check let it through and whether a version was published.

    python -m benchmarks.pipeline_report --dataset {demo,movielens,amazon} [--workdir DIR] [--json FILE]

Every setting is the pipeline's default (temporal split: validation is the last slice before the test cut-off),
except that sources older than the validation rules' default earliest timestamp get their own (MovieLens starts
in 1996). The run materializes in this process with resources under ``--workdir`` (default: a temporary folder).
JSON keys: ``<model>.recall@K`` and ``ndcg@K`` (test), ``<model>.valid.recall@K`` and ``valid.ndcg@K``,
``champion``, ``published`` (1 or 0), ``seconds``.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import models  # noqa: F401  (sets OMP_WAIT_POLICY before torch starts)
from assets.champion import CHAMPION
from assets.common import RANKING_REPORT
from benchmarks.common import DATASETS, add_smoke_argument, print_table, write_json
from benchmarks.reliability_pipeline import TRAINING, run
from benchmarks.reliability_pipeline import run_config as pipeline_run_config
from orchestration.jobs import full_retrain
from warehouse.paths import shared_dir

# A demo just large enough, with the reliability suite's training (long enough for LightGCN to beat the
# baselines), that the smoke run goes as far as publishing.
SMOKE_SHAPE = {"demo_users": 400, "demo_items": 200}


def run_config(dataset: str, smoke: bool) -> dict:
    """The run config of a default ``full_retrain`` on ``dataset``: its source only (the default validation rules
    accept every shared data set, MovieLens from 1996 included)."""
    if dataset == "demo":
        ingest = SMOKE_SHAPE if smoke else {}
    else:
        kind, folder = DATASETS[dataset]
        ingest = {"source": kind, "path": str(shared_dir() / "datasets" / folder)}
    return pipeline_run_config(ingest, TRAINING if smoke else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="movielens", choices=["demo", *sorted(DATASETS)])
    parser.add_argument("--workdir", default=None, help="folder for the warehouse, artifacts and feature store")
    parser.add_argument("--json", default=None)
    add_smoke_argument(parser)
    args = parser.parse_args()
    if args.smoke:
        args.dataset = "demo"
    root = Path(args.workdir or tempfile.mkdtemp(prefix=f"graphrec-pipeline-{args.dataset}-"))
    started = time.perf_counter()
    outcome = run(root, full_retrain.selection, run_config(args.dataset, args.smoke))
    seconds = time.perf_counter() - started
    report_file = root / "artifacts" / Path(*RANKING_REPORT)
    if not report_file.exists():
        raise SystemExit(f"full_retrain stopped before the ranking report: {outcome.step_errors}")
    report = json.loads(report_file.read_text())
    champion = json.loads((root / "artifacts" / Path(*CHAMPION)).read_text())["model"]
    k = report["k"]
    metrics = [f"recall@{k}", f"ndcg@{k}"]
    rows = [[model, "yes" if model in report["baselines"] else "",
             *(report["valid"][model][m] for m in metrics), *(report["models"][model][m] for m in metrics),
             report["models"][model].get(f"coverage@{k}", float("nan"))]
            for model in report["models"]]
    rows.sort(key=lambda row: -row[2])
    print_table(f"full_retrain on {args.dataset}: validation chooses, test reports ({report['test_users']} test "
                f"users, {seconds:.0f} s)", ["model", "baseline", *(f"valid {m}" for m in metrics),
                                               *(f"test {m}" for m in metrics), f"coverage@{k}"], rows)
    published = "published_embeddings" in outcome.materialized
    print(f"\nchampion (best validation recall@{k} among the candidates): {champion}; "
          f"published: {'yes' if published else 'no'}")
    print(f"champion_beats_baselines: {outcome.check_descriptions.get('champion_beats_baselines', '(did not run)')}")
    for check, message in outcome.failed_checks.items():
        print(f"failed check {check}: {message}")
    write_json(args.json, {
        **{f"{model}.{m}": figures[m] for model, figures in report["models"].items() for m in metrics},
        **{f"{model}.valid.{m}": figures[m] for model, figures in report["valid"].items() for m in metrics},
        "champion": champion, "published": int(published), "seconds": seconds})


if __name__ == "__main__":
    main()
