"""One run per benchmark command per test session: the README's smoke test and the tests that look closer at a
benchmark's output (the pipeline's per-step costs) read the same run, since each
such run takes a minute or two on 2 cores. Under pytest-xdist the workers share it too: the first to ask runs it
while holding a file lock, the others wait and read what it saved."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from filelock import FileLock

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


def _execute(args: tuple[str, ...], timeout_s: float, folder: Path) -> BenchmarkRun:
    """``python <args> --json FILE`` in the repository root, the shared data folder pointed at an empty one."""
    out = folder / "results.json"
    env = {**os.environ, "GRAPHREC_SHARED_DIR": str(folder / "no_shared_data")}
    done = subprocess.run([sys.executable, *args, "--json", str(out)], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s)
    return BenchmarkRun(done.returncode, done.stdout, done.stderr, json.loads(out.read_text()) if out.exists() else None)


@pytest.fixture(scope="session")
def run_benchmark(tmp_path_factory) -> Callable[..., BenchmarkRun]:
    """``run_benchmark(args, timeout_s)``: the :class:`BenchmarkRun` of ``python <args> --json FILE`` (no test may
    need the shared data sets), run once per distinct ``args`` in the whole session."""
    # xdist gives each worker its own base folder under one that the session's workers share.
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if "PYTEST_XDIST_WORKER" in os.environ else shared

    def run(args: tuple[str, ...], timeout_s: float) -> BenchmarkRun:
        folder = shared / f"benchmark-{hashlib.sha256(repr(args).encode()).hexdigest()[:16]}"
        saved = folder / "run.json"
        with FileLock(f"{folder}.lock"):
            if not saved.exists():
                folder.mkdir(exist_ok=True)  # left without a run by one that timed out: run it again
                saved.write_text(json.dumps(asdict(_execute(args, timeout_s, folder))))
        return BenchmarkRun(**json.loads(saved.read_text()))

    return run
