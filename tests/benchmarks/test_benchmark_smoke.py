"""Every benchmark command of the README runs: each is read from the README's Benchmarks block and run with
``--smoke`` (tiny synthetic data, a few steps) as a subprocess, and must exit 0 and write JSON with its expected keys,
every number finite. A command added to the README without a working ``--smoke`` fails here.
"""
from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
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
    "heuristics": {"pairs", "cn.seconds", "ra.seconds.max", "ppr.seconds"},
    "evaluation": {"bspm.two_passes.seconds", "bspm.one_pass.peak_rss_mb", "gf_cf.speedup", "vectors.identical"},
    "distill_recsys": {"teacher.recall@20", "student.recall@20", "new.student.recall@20", "speedup"},
    "quality": {"lightgcn.recall@20", "lightgcn_prism.seconds_to_0.175", "rawls_prism.ndcg@20", "gf_cf.seconds",
                "bspm.recall@20", "bspm.valid.recall@20", "bspm.peak_rss_mb", "gf_cf_factors.valid.recall@20",
                "bspm_factors.recall_vs_full", "best.family", "best.recall@20", "best.ndcg@20", "best.seconds"},
    "frontier": {"frontier.lightgcn.recall@20", "frontier.prism_s100.bias", "frontier.gf_cf_a030.avg_popularity",
                 "frontier.bspm_b020.pareto", "frontier.fair_point"},
}
# A smoke run takes seconds; this bounds a hung one.
TIMEOUT_S = 180


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


def _module(command: str) -> str:
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
    listed = {_module(command) for command in readme_commands()}
    scripts = {path.stem for path in (ROOT / "benchmarks").glob("*.py")
               if "def main(" in path.read_text() and path.stem != "common"}
    assert listed == scripts, "a benchmark script is missing from the README's Benchmarks block, or the other way"
    assert listed == set(EXPECTED_KEYS)


@pytest.mark.parametrize("command", readme_commands(), ids=lambda command: " ".join(shlex.split(command)[2:]))
def test_readme_benchmark_command_runs_with_smoke(command: str, tmp_path: Path):
    module = _module(command)
    out = tmp_path / f"{module}.json"
    # The README runs .venv/bin/python; here the test's own interpreter stands in for it.
    argv = [sys.executable, *shlex.split(command)[1:], "--smoke", "--json", str(out)]
    # No shared data set may be needed: point the shared folder at an empty one.
    env = {**os.environ, "GRAPHREC_SHARED_DIR": str(tmp_path / "no_shared_data")}
    done = subprocess.run(argv, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, f"{command} --smoke failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    results = json.loads(out.read_text())
    missing = EXPECTED_KEYS[module] - set(results)
    assert not missing, f"{module}: keys missing from the JSON: {sorted(missing)}"
    bad = [n for n in _numbers(results) if not math.isfinite(n)]
    assert not bad, f"{module}: non-finite numbers in the JSON: {bad[:5]}"
