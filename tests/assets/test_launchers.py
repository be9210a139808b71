"""Training launched through Dagster Pipes: lightgcn_model with Compute(num_processes=2, launcher='torchrun')
trains under torchrun with two gloo ranks on a tiny demo, and rank 0's metrics come back as materialization metadata.
"""
import json

import pytest
import torch
from dagster import DagsterInstance, materialize

from assets.graph import id_maps, interaction_split, training_graph
from assets.ingest import ingest_source
from assets.launchers import k8s_pod_spec, torchrun_command
from assets.runs import ModelArtifacts
from assets.training import lightgcn_model
from assets.validation import quarantined_interactions
from orchestration.resources import Compute

EPOCHS = 4
RUN_CONFIG = {"ops": {
    "ingest_source": {"config": {"demo_users": 200, "demo_items": 100}},
    "lightgcn_model": {"config": {"epochs": EPOCHS, "eval_every": 2, "batch_size": 1024}},
}}


def test_lightgcn_model_trains_under_torchrun_and_reports_through_pipes(tmp_path, make_resources):
    resources = {**make_resources(tmp_path), "compute": Compute(device="cpu", num_processes=2, launcher="torchrun")}
    # The stages before training, without their checks (tests/assets/test_end_to_end.py runs those).
    assets = [ingest_source, quarantined_interactions, id_maps, interaction_split, training_graph, lightgcn_model]
    instance = DagsterInstance.ephemeral()
    result = materialize(assets, resources=resources, run_config=RUN_CONFIG, instance=instance)

    assert result.success
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("lightgcn_model")[0].metadata.items()}
    # Reported by rank 0 through Pipes: two gloo ranks on the CPU ...
    assert (metadata["world_size"], metadata["backend"], metadata["device"]) == (2, "gloo", "cpu")
    assert metadata["epochs_run"] == EPOCHS
    # ... agreeing with the training record that the asset wrote from the ranks' output.
    run = ModelArtifacts("lightgcn").latest_run(resources["artifacts"])
    assert run.folder.name == result.run_id
    record = json.loads(run.record.read_text())
    evaluated = [h["valid_recall@20"] for h in record["history"] if "valid_recall@20" in h]
    assert len(evaluated) == EPOCHS // 2 and metadata["valid_recall@20"] == pytest.approx(max(evaluated))
    assert 0.1 < metadata["valid_recall@20"] <= 1.0  # 20 of 100 items by chance would be 0.2 at best
    # Rank 0's log lines arrive in the run's log through Pipes.
    assert any("valid_recall@20" in entry.user_message for entry in instance.all_logs(result.run_id))

    embeddings = torch.load(run.embeddings, weights_only=True)
    assert embeddings["user_emb"].shape == (200, 64) and embeddings["item_emb"].shape == (100, 64)
    final = torch.load(run.final, weights_only=True)
    assert final["generator_states"].size(0) == 2 and final["epoch"] == EPOCHS  # one sampling stream per rank


def test_torchrun_command_and_kubernetes_pod_spec():
    assert torchrun_command("python", 4) == ["python", "-m", "torch.distributed.run", "--standalone",
                                             "--nproc_per_node", "4", "-m", "models.runtime.train_entry"]
    gpu = k8s_pod_spec(Compute(device="cuda", num_processes=4, launcher="k8s"))
    container = gpu["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert gpu["nodeSelector"] and gpu["tolerations"]
    assert any(mount["mountPath"] == "/dev/shm" for mount in container["volumeMounts"])  # NCCL needs shared memory
    cpu = k8s_pod_spec(Compute(device="cpu", num_processes=2, launcher="k8s"))
    assert "nvidia.com/gpu" not in cpu["containers"][0]["resources"].get("limits", {})
    assert "nodeSelector" not in cpu and "tolerations" not in cpu
