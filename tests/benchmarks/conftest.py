"""One run per benchmark command per test session: the README's smoke test and the tests that look closer at a
benchmark's output (the pipeline's per-step costs, the reliability suite in full) read the same run, since each
such run takes a minute or two on 2 cores."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BenchmarkRun:
    """A finished benchmark process: its exit status, output, and the JSON it wrote (None if it wrote none)."""

    returncode: int
    stdout: str
    stderr: str
    results: dict | None

    def failure(self) -> str:
        """The tail of both streams, for an assertion message."""
        return f"exit status {self.returncode}:\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"


@pytest.fixture(scope="session")
def run_benchmark(tmp_path_factory) -> Callable[..., BenchmarkRun]:
    """``run_benchmark(args, timeout_s)``: ``python <args> --json FILE`` in the repository root, with the shared
    data folder pointed at an empty one (no test may need the shared data sets), run once per distinct ``args``."""
    runs: dict[tuple[str, ...], BenchmarkRun] = {}

    def run(args: tuple[str, ...], timeout_s: float) -> BenchmarkRun:
        if args not in runs:
            folder = tmp_path_factory.mktemp("benchmark")
            out = folder / "results.json"
            env = {**os.environ, "GRAPHREC_SHARED_DIR": str(folder / "no_shared_data")}
            done = subprocess.run([sys.executable, *args, "--json", str(out)], check=False, cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=timeout_s)
            runs[args] = BenchmarkRun(done.returncode, done.stdout, done.stderr,
                                      json.loads(out.read_text()) if out.exists() else None)
        return runs[args]

    return run
