"""The reliability suite in full, as the README runs it (a few minutes on 2 cores): every bad input and fault is
handled and leaves the promoted version intact."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 900


@pytest.mark.benchmark_full
def test_reliability_suite_in_full(tmp_path: Path):
    out = tmp_path / "reliability.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.reliability", "--json", str(out)], check=False,
                          cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert (results["input_cases"], results["fault_cases"]) == (26, 3)
    unhandled = {e["case"]: e["message"] for e in results["entries"] if not (e["caught"] and e["data_intact"])}
    assert not unhandled, f"cases not handled: {unhandled}\n{done.stdout[-4000:]}"
    assert (results["caught"], results["data_intact"]) == (29, 29)
