"""Shared fixtures for the warehouse tests: a fresh in-memory warehouse and the shared data-set folders.

Tests of a full-size shared data set skip (with the reason) when the shared folder is not mounted; the small slices
they are checked against on every run are in tests/fixtures (see tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from warehouse.connection import connect
from warehouse.paths import shared_dir


@pytest.fixture
def con():
    """An empty in-memory warehouse with every table created."""
    connection = connect(":memory:")
    yield connection
    connection.close()


def _dataset(name: str) -> Path:
    path = shared_dir() / "datasets" / name
    if not path.is_dir():
        pytest.skip(f"full-size data set: shared {path} not found (set GRAPHREC_SHARED_DIR)")
    return path


@pytest.fixture
def gowalla_dir() -> Path:
    """The LightGCN-format Gowalla folder (train.txt / test.txt)."""
    return _dataset("gowalla")


@pytest.fixture
def ml_small_dir() -> Path:
    """The MovieLens ml-latest-small folder (ratings.csv / movies.csv)."""
    return _dataset("ml-latest-small")
