"""The recommender asset factory with a stand-in family: what its fit is handed (device, checkpoint, fingerprint,
the deployed version), the run folder it leaves, the metadata it reports (links to the run's files, the
time-to-quality plot), and the launcher choice."""
from dataclasses import dataclass

import torch
from dagster import materialize

from assets.common import load_tensors, read_json
from assets.factory import ModelArtifacts, recommender_asset
from assets.held_out import load_evaluation
from models.recsys.contract import Fitted
from models.runtime.checkpoint import save_checkpoint
from models.runtime.loop import TrainingRecord
from orchestration.config_classes import config_class
from orchestration.resources import ArtifactStore, Compute
from tests.assets.stand_in_data import ITEMS, write_stand_in_data


@dataclass
class StandInConfig:
    dim: int = 4
    compatibility: str = "bct"


def _stand_in(calls):
    def fit(inputs, config, runtime):
        calls.append({"how": "fit", "config": config.model_dump(), "device": runtime.device,
                      "fingerprint": runtime.fingerprint, "deployed": runtime.deployed,
                      "checkpoint": runtime.checkpoint, "users": inputs.graph.num_users})
        save_checkpoint(runtime.checkpoint, {"epoch": 2})  # as the training loop leaves it
        record = TrainingRecord([{"epoch": 1, "loss": 0.5, "valid_recall@20": 0.2},
                                 {"epoch": 2, "loss": 0.4, "valid_recall@20": 0.3}], "valid_recall@20", 2, 0.3, 2, 6,
                                1.5)
        fitted = Fitted("standin", {**config.model_dump()}, record, user_emb=torch.ones(3, config.dim),
                        item_emb=torch.arange(ITEMS, dtype=torch.float32)[:, None].expand(ITEMS, config.dim))
        return fitted, {"own_figure": 7}

    def launch(inputs, config, runtime):
        calls.append({"how": "launch"})
        fitted, figures = fit(inputs, config, runtime)
        return fitted, {**figures, "world_size": 2}

    return fit, launch


def test_the_factory_hands_every_family_the_same_runtime_and_writes_the_same_layout(tmp_path, make_resources):
    write_stand_in_data(tmp_path / "artifacts")
    calls = []
    fit, launch = _stand_in(calls)
    run_config = config_class(StandInConfig, "StandInModelConfig")
    standin = recommender_asset("standin", run_config, fit, launch=launch, description="test", code_version="s-1")
    result = materialize([standin], resources=make_resources(tmp_path))
    assert result.success

    (call,) = calls
    assert call["how"] == "fit" and call["device"] == torch.device("cpu") and call["users"] == 3
    # Nothing deployed yet: no compatibility loss, and the config that ran says so.
    assert call["deployed"] is None and call["config"]["compatibility"] == "none"
    assert call["fingerprint"] == "data"
    files = ModelArtifacts("standin")
    artifacts = tmp_path / "artifacts"
    assert call["checkpoint"] == artifacts.joinpath(*files.checkpoint)
    # The finished run's files are in a folder named by the Dagster run; its checkpoint is kept there as its record,
    # so that the next run starts fresh.
    run = files.latest_run(ArtifactStore(root=str(artifacts)))
    assert run.folder == artifacts / "standin" / "runs" / result.run_id
    assert not artifacts.joinpath(*files.checkpoint).exists() and run.final.exists()
    assert torch.equal(load_tensors(run.embeddings)["user_emb"], torch.ones(3, 4))
    record = read_json(run.record)
    assert (record["model"], record["best_epoch"], record["valid_recall@20"], record["own_figure"]) == (
        "standin", 2, 0.3, 7)
    assert record["config"]["compatibility"] == "none" and record["compatible_with"] is None
    assert record["run_id"] == result.run_id

    metadata = {k: v.value for k, v in result.asset_materializations_for_node("standin_model")[0].metadata.items()}
    assert metadata["run_folder"] == str(run.folder) and metadata["embeddings_file"] == str(run.embeddings)
    assert metadata["training_record"] == str(run.record) and metadata["final_checkpoint"] == str(run.final)
    assert metadata["time_to_quality_plot"] == str(run.curve) and run.curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![standin time to quality](data:image/png;base64," in metadata["time_to_quality"]
    assert (metadata["device"], metadata["epochs"], metadata["steps"], metadata["best_epoch"]) == ("cpu", 2, 6, 2)
    assert metadata["valid_recall@20"] == 0.3 and metadata["train_seconds"] == 1.5 and metadata["peak_rss_mb"] > 0
    assert metadata["compatibility_loss"] == "none" and metadata["own_figure"] == 7
    assert "| epoch |" in metadata["time_to_quality"]
    # The step ranked its fit (every user prefers higher item ids): validation item 1 of user 0 is not in its top 50;
    # at test, item 59 is user 0's first and item 30 user 1's 30th. Kept with the run for the ranking report.
    assert metadata["valid.recall@50"] == 0.0 and metadata["eval_seconds"] > 0
    stored, _ = load_evaluation(run.evaluation, "data", 20)
    assert stored["test"].users.tolist() == [0, 1]
    assert stored["test"].recall[10].tolist() == [1.0, 0.0] and stored["test"].recall[50].tolist() == [1.0, 1.0]


def test_a_family_with_a_launcher_is_launched_and_one_without_trains_here(tmp_path, make_resources):
    write_stand_in_data(tmp_path / "artifacts")
    calls = []
    fit, launch = _stand_in(calls)
    run_config = config_class(StandInConfig, "StandInModelConfig")
    resources = {**make_resources(tmp_path), "compute": Compute(device="cpu", num_processes=2, launcher="torchrun")}
    launched = recommender_asset("standin", run_config, fit, launch=launch, description="test", code_version="s-1")
    result = materialize([launched], resources=resources)
    assert [call["how"] for call in calls] == ["launch", "fit"]
    metadata = result.asset_materializations_for_node("standin_model")[0].metadata
    assert metadata["world_size"].value == 2

    calls.clear()
    here = recommender_asset("standin", run_config, fit, description="test", code_version="s-1")
    assert materialize([here], resources=resources).success
    assert [call["how"] for call in calls] == ["fit"]
