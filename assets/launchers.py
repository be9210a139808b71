"""Training in processes of its own, launched through Dagster Pipes: torchrun on this machine
(PipesSubprocessClient), or torchrun in a Kubernetes pod on the GPU node pool (PipesK8sClient, infra/k8s/).

Either way the command is `torchrun -m models.runtime.train_entry`; its rank 0 sends log lines and metrics back to the
run through Pipes and writes the embeddings, which come back as the same TrainResult as in-process training.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import yaml
from dagster import AssetExecutionContext, PipesClientCompletedInvocation, PipesSubprocessClient

import models
from assets.common import TRAIN_GRAPH, VALID_EDGES, load_tensors
from models.recsys.training import LightGCNConfig, TrainResult
from models.runtime.machine import thread_share
from models.runtime.train_entry import EMBEDDINGS_FILE, METRICS_FILE
from orchestration.resources import ArtifactStore, Compute, ComputeConfigError

# The folder that holds the `models` package: where `python -m models.runtime.train_entry` resolves, installed or not.
CODE_ROOT = Path(models.__file__).resolve().parents[1]
K8S_POD_SPEC = CODE_ROOT / "infra" / "k8s" / "training-pod.yaml"
K8S_IMAGE_VARIABLE = "GRAPHREC_TRAINING_IMAGE"


def torchrun_command(python: str, num_processes: int) -> list[str]:
    """`torchrun --standalone --nproc_per_node N -m models.runtime.train_entry` run by the interpreter `python`."""
    return [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(num_processes),
            "-m", "models.runtime.train_entry"]


def _check_devices(compute: Compute) -> None:
    """On this machine, CUDA ranks need one GPU each."""
    if compute.torch_device().type == "cuda" and compute.num_processes > torch.cuda.device_count():
        raise ComputeConfigError(
            f"Compute(num_processes={compute.num_processes}) on CUDA needs one GPU per process, but torch sees "
            f"{torch.cuda.device_count()}; lower num_processes or use device='cpu' (gloo)."
        )


def k8s_pod_spec(compute: Compute) -> dict[str, Any]:
    """The training pod's spec from infra/k8s/training-pod.yaml, asking for one GPU per process when on CUDA."""
    spec = yaml.safe_load(K8S_POD_SPEC.read_text())["spec"]
    resources = spec["containers"][0].setdefault("resources", {})
    if compute.device == "cpu":
        # No GPU request: the pod may land on any node, and the ranks talk over gloo.
        resources.get("limits", {}).pop("nvidia.com/gpu", None)
        spec.pop("nodeSelector", None)
        spec.pop("tolerations", None)
    else:
        resources.setdefault("limits", {})["nvidia.com/gpu"] = compute.num_processes
    return spec


def _run_in_pod(context: AssetExecutionContext, compute: Compute, command: list[str]) -> PipesClientCompletedInvocation:
    """Run `command` in a Kubernetes pod (dagster-k8s, installed with the `k8s` extra) and wait for it."""
    image = os.environ.get(K8S_IMAGE_VARIABLE)
    if not image:
        raise ComputeConfigError(
            f"Compute(launcher='k8s') needs {K8S_IMAGE_VARIABLE}, the image of this code (infra/Dockerfile.cuda) "
            "that the training pod runs; set it in the code server's environment (see infra/helm/values.yaml)."
        )
    try:
        from dagster_k8s import PipesK8sClient  # only here: local runs do not need the Kubernetes client
    except ImportError as exc:
        raise ComputeConfigError(
            "Compute(launcher='k8s') needs dagster-k8s: pip install 'graphrec[k8s]'.") from exc
    return PipesK8sClient().run(context=context, image=image, command=command, base_pod_spec=k8s_pod_spec(compute))


def train_in_processes(context: AssetExecutionContext, compute: Compute, artifacts: ArtifactStore,
                       config: LightGCNConfig, checkpoint: Path, fingerprint: str, code_version: str,
                       old_version: Path | None = None) -> tuple[TrainResult, dict[str, Any]]:
    """Train under torchrun as `compute` asks (locally or in a Kubernetes pod), through Dagster Pipes.

    Returns the training result and the metadata that rank 0 reported through Pipes (world size, backend,
    device, best epoch, validation recall). The checkpoint is resumed and written as in-process training does.
    ``old_version`` is a tensors file of the deployed version's vectors to train compatible with.
    """
    out = checkpoint.parent / "launch"
    shutil.rmtree(out, ignore_errors=True)  # an earlier run's output must never be read back as this one's
    arguments = [
        "--graph", str(artifacts.path(*TRAIN_GRAPH)), "--valid", str(artifacts.path(*VALID_EDGES)),
        "--config", json.dumps(asdict(config)), "--out", str(out), "--checkpoint", str(checkpoint),
        "--fingerprint", fingerprint, "--code-version", code_version, "--device", compute.device,
        *(["--old-version", str(old_version)] if old_version else []),
    ]
    if compute.launcher == "k8s":
        invocation = _run_in_pod(context, compute, [*torchrun_command("python", compute.num_processes), *arguments])
    else:
        _check_devices(compute)
        client = PipesSubprocessClient(cwd=str(CODE_ROOT), env=thread_share(compute.num_processes))
        invocation = client.run(context=context,
                                command=[*torchrun_command(sys.executable, compute.num_processes), *arguments])
    reported = {key: value.value for key, value in invocation.get_materialize_result().metadata.items()}
    record = json.loads((out / METRICS_FILE).read_text())
    tensors = load_tensors(out / EMBEDDINGS_FILE)
    result = TrainResult(
        tensors["user_emb"], tensors["item_emb"], record["history"], record["best_epoch"],
        record[f"valid_recall@{config.eval_k}"], record["epochs_run"], record["train_seconds"],
        record["resumed_from_epoch"], record["config"],
    )
    return result, reported
