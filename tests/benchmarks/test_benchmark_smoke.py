"""Every benchmark command of the README runs: each is read from the README's Benchmarks block and run with
``--smoke`` (tiny synthetic data, a few steps) as a subprocess, and must exit 0 and write JSON with its expected keys,
every number finite. A command added to the README without a working ``--smoke`` fails here. The reliability suite is
left to its own test, which runs the README's command in full (its smoke cases are some of the full run's).
"""
from __future__ import annotations

import math
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Keys that each benchmark's JSON must hold (a few that only a finished run writes).
EXPECTED_KEYS = {
    "baselines": {"popularity.recall@20", "item_knn.ndcg@20", "gf_cf.recall@20", "gf_cf.seconds",
                  "gf_cf_factors.recall@20", "lightgcn.recall@20"},
    "lightgcn": {"recall@20", "ndcg@20", "epoch_seconds_b2048", "pyg_loop_epoch_seconds_b2048", "train_seconds"},
    "rawls_nodeclf": {"sinkhorn_seconds", "cora_ml.gcn.acc_mean", "citeseer.rawls_graph.bias_mean"},
    "rawls_recsys": {"lightgcn.recall@20", "rawls.recall@20", "lightgcn.bias", "rawls.bias"},
    "reliability": {"cases", "caught", "data_intact", "entries"},
    "compatibility": {"bct.v2_v1.recall@20", "hyperbolic.v3_v1.recall@20", "none.criterion_holds", "total_seconds"},
    "compat_map": {"map.v2_v1.recall@20", "map.v3_v1.recall@20", "map.criterion_holds", "raw.criterion_holds",
                   "map.v3.residual", "filter.v3.recall@20", "total_seconds"},
    "shadow": {"ppr.targets_per_second", "recsys.shadow.recall@20", "nodeclf.cora_ml.gcn3.acc_mean",
               "memory.depth5_mb"},
    "distill_linkpred": {"cora.ehdm.hits@20_mean", "cora.llp_gnn.hits@20_mean", "cora.ehdm_over_llp_gnn.train_seconds"},
    "pipeline_report": {"lightgcn.recall@20", "popularity.valid.recall@20", "gf_cf.valid.ndcg@20", "published"},
    "pipeline": {"assets.ingest_source.seconds", "assets.heuristic_scores.peak_rss_mb", "total_seconds", "peak_rss_mb"},
    "schedule": {"actual_seconds", "replayed.run.seconds", "replayed.checkout.seconds", "floor_seconds",
                 "longest_chain_seconds", "slots"},
    "heuristics": {"pairs", "cn.seconds", "ra.seconds.max", "ppr.seconds", "cn+aa+ra.seconds"},
    "ppr_push": {"20000.ms_per_target", "80000.degree_order.ms_per_target.max", "80000.visits_per_target",
                 "20000.pushes_per_target", "slope.ms_per_target", "80000.id_order.ms_per_target",
                 "20000.ns_per_visit", "slope.ns_per_visit"},
    "item_graph": {"bspm.whole_block.seconds", "gf_cf.chunks.peak_rss_mb", "sgfcf.speedup", "bspm.identical",
                   "rows_per_product"},
    "evaluation": {"bspm.two_passes.seconds", "bspm.one_pass.peak_rss_mb", "gf_cf.speedup", "vectors.identical"},
    "selection": {"gf_cf.per_candidate.seconds", "bspm_factors.one_pass.peak_rss_mb", "bspm.speedup",
                  "gf_cf_factors.identical", "sgfcf.sample.seconds", "bspm.sample_speedup",
                  "sgfcf_factors.sample_same_choice"},
    "distill_recsys": {"teacher.recall@20", "student.recall@20", "new.student.recall@20", "speedup"},
    "quality": {"lightgcn.recall@20", "lightgcn_prism.seconds_to_0.175", "rawls_prism.ndcg@20", "gf_cf.seconds",
                "bspm.recall@20", "bspm.valid.recall@20", "bspm.peak_rss_mb", "gf_cf_factors.valid.recall@20",
                "bspm_factors.recall_vs_full", "sgfcf.valid.recall@20", "sgfcf.selection_seconds",
                "sgfcf_factors.recall_vs_full", "filter_blend_factors.recall_vs_full", "recent_popularity.recall@20", "heldout.test.mean_item_degree",
                "best.family", "best.recall@20", "best.ndcg@20", "best.seconds"},
    "frontier": {"frontier.lightgcn.recall@20", "frontier.prism_s100.bias", "frontier.gf_cf_a030.avg_popularity",
                 "frontier.bspm_b020.pareto", "frontier.sgfcf_g050.recall@20", "frontier.fair_point"},
}
# A smoke run takes seconds (the pipeline's, through Dagster, about a minute); this bounds a hung one.
TIMEOUT_S = 240
# Benchmarks whose README command a test of their own runs in full (seconds it may take), so not run here.
RUN_IN_FULL = {"reliability": 900}


def readme_commands() -> list[str]:
    """The benchmark commands of the README's Benchmarks section, as written (comments and ``[...]`` options off)."""
    section = (ROOT / "README.md").read_text().split("## Benchmarks", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    commands = []
    for line in block.splitlines():
        line = re.sub(r"\[[^]]*]", "", line.split("#", 1)[0]).strip()
        if line:
            commands.append(" ".join(line.split()))
    return commands


def module_of(command: str) -> str:
    match = re.search(r"-m benchmarks\.(\w+)", command)
    assert match, f"not a benchmark command: {command}"
    return match.group(1)


def _numbers(value: object) -> list[float]:
    """Every number inside a JSON value (booleans aside)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


def test_the_readme_lists_every_benchmark_module():
    listed = {module_of(command) for command in readme_commands()}
    scripts = {path.stem for path in (ROOT / "benchmarks").glob("*.py")
               if "def main(" in path.read_text() and path.stem != "common"}
    assert listed == scripts, "a benchmark script is missing from the README's Benchmarks block, or the other way"
    assert listed == set(EXPECTED_KEYS)


def arguments(command: str) -> tuple[str, ...]:
    """The arguments after ``python`` of a README command: the README runs .venv/bin/python, the tests run their
    own interpreter in its place."""
    return tuple(shlex.split(command)[1:])


def check_output(module: str, run) -> None:
    """The run exited 0 and wrote its module's expected keys, every number finite."""
    assert run.returncode == 0, f"{module} failed: {run.failure()}"
    missing = EXPECTED_KEYS[module] - set(run.results)
    assert not missing, f"{module}: keys missing from the JSON: {sorted(missing)}"
    bad = [n for n in _numbers(run.results) if not math.isfinite(n)]
    assert not bad, f"{module}: non-finite numbers in the JSON: {bad[:5]}"


@pytest.mark.parametrize("command", [pytest.param(command, id=" ".join(shlex.split(command)[2:]))
                                     for command in readme_commands() if module_of(command) not in RUN_IN_FULL])
def test_readme_benchmark_command_runs_with_smoke(command: str, run_benchmark):
    module = module_of(command)
    check_output(module, run_benchmark((*arguments(command), "--smoke"), TIMEOUT_S))


def test_quality_runs_the_pair_on_the_prism_authors_loss_when_named(run_benchmark):
    run = run_benchmark(("-m", "benchmarks.quality", "--smoke", "--families", "lightgcn_au,lightgcn_prism_au"),
                        TIMEOUT_S)
    assert run.returncode == 0, run.failure()
    for family, init in (("lightgcn_au", "normal"), ("lightgcn_prism_au", "prism")):
        assert run.results[f"{family}.config"].startswith(
            f"init {init}, symmetric, loss align_uniformity, batch 4096, lr 0.001")
        assert math.isfinite(run.results[f"{family}.recall@20"])
    assert "lightgcn.recall@20" not in run.results  # the default families did not run
