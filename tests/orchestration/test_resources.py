"""Resources: the warehouse connection, artifact paths, the compute device and launcher, the feature store."""

import pytest
import torch

from feature_store import FeatureStore
from orchestration.resources import ArtifactStore, Compute, ComputeConfigError, FeatureStoreResource, Warehouse


def test_memory_warehouse_keeps_one_database_across_connections():
    warehouse = Warehouse(path=":memory:")
    with warehouse.connection() as con:
        con.execute("INSERT INTO raw_items VALUES ('i1', 'A title', 'books', 'demo')")
        con.execute("SELECT * FROM range(3)").fetchone()  # a result left unfinished stays with this connection
    with warehouse.connection() as con:
        assert con.execute("SELECT count(*) FROM raw_items").fetchall() == [(1,)]


def test_file_warehouse_is_persistent_and_released(tmp_path):
    warehouse = Warehouse(path=str(tmp_path / "nested" / "wh.duckdb"))
    with warehouse.connection() as con:
        con.execute("INSERT INTO raw_items VALUES ('i1', 'A title', 'books', 'demo')")
    with warehouse.connection() as con:
        assert con.execute("SELECT count(*) FROM raw_items").fetchone()[0] == 1


def test_artifact_paths_get_their_folders(tmp_path):
    path = ArtifactStore(root=str(tmp_path)).path("graph", "train_graph.pt")
    assert path == tmp_path / "graph" / "train_graph.pt" and path.parent.is_dir() and not path.exists()


def test_artifact_store_keeps_five_runs_by_default_and_at_least_one():
    assert ArtifactStore(root="a").keep_runs == 5
    with pytest.raises(ValueError, match="keep_runs"):
        ArtifactStore(root="a", keep_runs=0)


def test_compute_device():
    assert Compute(device="cpu").torch_device() == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert Compute(device="auto").torch_device().type == expected
    with pytest.raises(ComputeConfigError, match="not one of"):
        Compute(device="tpu").torch_device()


def test_compute_says_when_training_needs_processes_of_its_own():
    assert not Compute().launches_processes()
    Compute().check_inprocess()
    for compute in (Compute(launcher="torchrun"), Compute(launcher="k8s"), Compute(num_processes=2)):
        assert compute.launches_processes()
        with pytest.raises(ComputeConfigError, match="processes of its own"):
            compute.check_inprocess()
    for bad, match in ((Compute(precision="fp8"), "precision"), (Compute(launcher="slurm"), "launcher"),
                       (Compute(num_processes=0), "num_processes")):
        with pytest.raises(ComputeConfigError, match=match):
            bad.launches_processes()


def test_feature_store_resource(tmp_path):
    store = FeatureStoreResource(root=str(tmp_path / "fs")).store()
    assert isinstance(store, FeatureStore) and store.promoted_version() is None
