"""Test-wide setup: settings pinned to a local throwaway folder (a developer's GRAPHREC_ENV=prod or data folder
never leaks into tests), and a factory for graphrec resources in a temporary folder.
"""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Importing orchestration.definitions resolves the settings; nothing is written there by the tests.
    os.environ["GRAPHREC_ENV"] = "local"
    os.environ["GRAPHREC_DATA_DIR"] = os.path.join(tempfile.gettempdir(), "graphrec-tests-unused")
    os.environ["GRAPHREC_DEVICE"] = "cpu"


@pytest.fixture(scope="session")
def make_resources() -> Callable[..., dict]:
    """Factory: the four graphrec resources under `root` (the warehouse file may be placed elsewhere)."""
    from orchestration.resources import ArtifactStore, Compute, FeatureStoreResource, Warehouse

    def make(root: Path, warehouse: Path | None = None) -> dict:
        return {
            "warehouse": Warehouse(path=str(warehouse or root / "warehouse.duckdb")),
            "artifacts": ArtifactStore(root=str(root / "artifacts")),
            "compute": Compute(device="cpu"),
            "feature_store": FeatureStoreResource(root=str(root / "feature_store")),
        }

    return make
