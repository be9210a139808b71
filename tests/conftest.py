"""Test-wide setup: settings pinned to a local throwaway folder (a developer's GRAPHREC_ENV=prod or data folder
never leaks into tests), a factory for graphrec resources in a temporary folder, a one-thread fixture for modules
of many small tensor ops, and the small real data sets kept in ``tests/fixtures`` so the suite runs without the
shared folder.
"""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    # Importing orchestration.definitions resolves the settings; nothing is written there by the tests.
    os.environ["GRAPHREC_ENV"] = "local"
    os.environ["GRAPHREC_DATA_DIR"] = os.path.join(tempfile.gettempdir(), "graphrec-tests-unused")
    os.environ["GRAPHREC_DEVICE"] = "cpu"
    # Under pytest-xdist every worker, and every process a test starts, gets its share of the cores: torch and
    # BLAS would otherwise start a thread per core in each worker and oversubscribe them.
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        from models.runtime.machine import thread_share

        os.environ.update(thread_share(int(workers)))
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The benchmarks run in full (minutes each) first: under pytest-xdist a worker that started one last would run it
    # alone while the other idles. The sort is stable, so everything else keeps its order.
    items.sort(key=lambda item: item.get_closest_marker("benchmark_full") is None)


@pytest.fixture
def single_thread():
    """One intra-op thread: on the shared 2-core machine, OpenMP's spin-waiting makes many small ops up to 50x
    slower with two threads whenever another process holds a core. Modules of such ops use it for every test."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def make_resources() -> Callable[..., dict]:
    """Factory: the graphrec resources under `root` (the warehouse file may be placed elsewhere), validation rules at
    their defaults."""
    from orchestration.resources import ArtifactStore, Compute, FeatureStoreResource, ValidationRules, Warehouse

    def make(root: Path, warehouse: Path | None = None) -> dict:
        return {
            "warehouse": Warehouse(path=str(warehouse or root / "warehouse.duckdb")),
            "artifacts": ArtifactStore(root=str(root / "artifacts")),
            "compute": Compute(device="cpu"),
            "feature_store": FeatureStoreResource(root=str(root / "feature_store")),
            "validation": ValidationRules(),
        }

    return make


@pytest.fixture(scope="session")
def cora_slice() -> Path:
    """A 1,700-node connected slice of Planetoid Cora in the gnn-benchmark ``.npz`` layout (tests/fixtures/README.md)."""
    return FIXTURES / "cora_slice.npz"


@pytest.fixture(scope="session")
def ml_slice_dir() -> Path:
    """The ratings of the first 14 users of MovieLens ml-latest-small and the movies they rated, as a MovieLens folder."""
    return FIXTURES / "ml-latest-small-slice"
