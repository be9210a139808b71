"""Per-run artifact folders of the recommender factory, with real materializations of a stand-in family: one
complete folder per run, the latest pointer, the links in the metadata, retention (and what it never deletes), a
run that fails while writing, and the time-to-quality PNG."""

from dataclasses import dataclass

import pytest
import torch
from dagster import materialize
from matplotlib.image import imread

from assets.common import load_tensors, read_json
from assets.runs import STAGING, ModelArtifacts
from feature_store import VersionMeta
from models.recsys.contract import Fitted
from models.runtime.checkpoint import save_checkpoint
from models.runtime.loop import TrainingRecord
from orchestration.config_classes import config_class
from orchestration.resources import ArtifactStore
from tests.assets.stand_in_data import ITEMS, write_stand_in_data

FILES = ModelArtifacts("standin")
RUN_FILES = {"final_checkpoint.pt", "embeddings.pt", "evaluation.pt", "training.json", "time_to_quality.png"}


@dataclass
class StandInConfig:
    dim: int = 4
    compatibility: str = "none"
    fail_while_writing: bool = False


def _fit(inputs, config, runtime):
    save_checkpoint(runtime.checkpoint, {"epoch": 3})  # as the training loop leaves it
    history = [{"epoch": e, "loss": 1 / e, "valid_recall@20": 0.1 * e, "elapsed_seconds": 0.5 * e} for e in (1, 2, 3)]
    record = TrainingRecord(history, "valid_recall@20", 3, 0.3, 3, 9, 1.5)
    fitted = Fitted("standin", config.model_dump(), record, user_emb=torch.full((3, config.dim), float(config.dim)),
                    item_emb=torch.zeros(ITEMS, config.dim))
    # A figure that JSON cannot hold makes the record's write fail after the embeddings are staged.
    return fitted, {"bad": object()} if config.fail_while_writing else {}


@pytest.fixture
def standin(tmp_path, make_resources):
    """Materialize the stand-in family under ``tmp_path`` with ``config`` and ``keep_runs``."""
    from assets.factory import recommender_asset

    write_stand_in_data(tmp_path / "artifacts")
    asset = recommender_asset("standin", config_class(StandInConfig, "StandInRunsConfig"), _fit, description="test",
                              code_version="s-1")

    def run(keep_runs=5, **config):
        resources = {**make_resources(tmp_path), "artifacts": ArtifactStore(root=str(tmp_path / "artifacts"),
                                                                            keep_runs=keep_runs)}
        return materialize([asset], resources=resources, raise_on_error=False,
                           run_config={"ops": {"standin_model": {"config": config}}})

    run.artifacts = ArtifactStore(root=str(tmp_path / "artifacts"))
    run.root = tmp_path
    return run


def _metadata(result):
    return {k: v.value for k, v in result.asset_materializations_for_node("standin_model")[0].metadata.items()}


def _runs(artifacts):
    return {run.folder.name for run in FILES.finished_runs(artifacts)}


def test_two_materializations_leave_two_complete_run_folders_linked_from_their_metadata(standin):
    first, second = standin(dim=4), standin(dim=6)
    assert first.success and second.success and first.run_id != second.run_id
    assert _runs(standin.artifacts) == {first.run_id, second.run_id}
    for result, dim in ((first, 4), (second, 6)):
        run = FILES.run(standin.artifacts, result.run_id)
        assert {path.name for path in run.folder.iterdir()} == RUN_FILES
        assert load_tensors(run.embeddings)["user_emb"].shape == (3, dim)
        metadata = _metadata(result)
        links = ("run_folder", "embeddings_file", "training_record", "final_checkpoint", "time_to_quality_plot")
        assert all(metadata[key].startswith(str(run.folder)) for key in links)
        assert all(run.folder.joinpath(metadata[key]).exists() for key in links)
        assert metadata["run_id"] == result.run_id
    # Readers read the newest complete run; the running checkpoint has moved into it, so the next run starts fresh.
    assert FILES.latest_run(standin.artifacts).folder.name == second.run_id
    assert not standin.artifacts.path(*FILES.checkpoint).exists()


def test_the_time_to_quality_plot_is_a_valid_png(standin):
    result = standin()
    png = FILES.run(standin.artifacts, result.run_id).curve
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, channels = imread(png).shape  # decodes the whole image
    assert height > 100 and width > 100 and channels in (3, 4)
    assert "data:image/png;base64," in _metadata(result)["time_to_quality"]


def test_retention_keeps_the_newest_runs(standin):
    results = [standin(keep_runs=2, dim=d) for d in (4, 5, 6)]
    assert all(result.success for result in results)
    assert _runs(standin.artifacts) == {results[1].run_id, results[2].run_id}
    assert FILES.latest_run(standin.artifacts).folder.name == results[2].run_id


def test_retention_never_deletes_the_run_of_the_promoted_version(standin, tmp_path):
    from feature_store import FeatureStore

    promoted = standin(dim=4)
    record = read_json(FILES.run(standin.artifacts, promoted.run_id).record)
    store = FeatureStore(tmp_path / "feature_store")
    meta = VersionMeta(model="standin", config=record["config"], data_fingerprint=record["data_fingerprint"],
                       code_version=record["code_version"])
    store.promote(store.publish(meta, ["u0"], torch.ones(1, 4), ["i0"], torch.ones(1, 4)))
    later = [standin(keep_runs=2, dim=5) for _ in range(3)]
    assert _runs(standin.artifacts) == {promoted.run_id, later[1].run_id, later[2].run_id}


def test_a_run_that_fails_while_writing_leaves_no_run_folder_and_the_previous_run_latest(standin):
    good = standin(dim=4)
    failed = standin(dim=6, fail_while_writing=True)
    assert good.success and not failed.success
    assert _runs(standin.artifacts) == {good.run_id}
    assert not any(standin.artifacts.path(*FILES.runs, STAGING).iterdir())
    latest = FILES.latest_run(standin.artifacts)
    assert latest.folder.name == good.run_id
    assert load_tensors(latest.embeddings)["user_emb"].shape == (3, 4) and read_json(latest.record)["model"]
    # The failed run's checkpoint stays where its successor resumes from.
    assert standin.artifacts.path(*FILES.checkpoint).exists()
