"""The deployment files hang together: every YAML parses, docker-compose runs the four Dagster services against
PostgreSQL with the password from the environment only, the Dockerfiles copy what exists, and the Helm values and
the training pod agree on the node pools and the shared data volume, and every instance lets the DuckDB writers take
turns through one pool instead of running one run at a time.
"""
import re
from pathlib import Path

import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"


def _yaml(name: str) -> dict:
    return yaml.safe_load((INFRA / name).read_text())


def test_compose_runs_dagster_on_postgres_with_the_password_from_the_environment():
    compose = _yaml("docker-compose.yaml")
    assert set(compose["services"]) == {"postgres", "code", "webserver", "daemon"}
    for name in ("code", "webserver", "daemon"):
        env = compose["services"][name]["environment"]
        assert env["DAGSTER_POSTGRES_HOST"] == "postgres"
        assert env["DAGSTER_POSTGRES_PASSWORD"].startswith("${DAGSTER_POSTGRES_PASSWORD:?")
    assert compose["services"]["code"]["command"][-1] == "orchestration.definitions"
    workspace = _yaml("workspace.docker.yaml")["load_from"][0]["grpc_server"]
    assert (workspace["host"], workspace["port"]) == ("code", 4000)


def test_dockerfiles_copy_what_the_repository_has():
    for name in ("Dockerfile.cpu", "Dockerfile.cuda"):
        text = (INFRA / name).read_text()
        for source in re.findall(r"^COPY (\S+)", text, flags=re.MULTILINE):
            assert (INFRA.parent / source).exists(), f"{name} copies {source}, which does not exist"
        assert "dagster.postgres.yaml" in text and "pip install --no-deps -e ." in text


def test_helm_values_and_training_pod_share_pools_and_volume():
    values = _yaml("helm/values.yaml")
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "orchestration.definitions"]
    claim = deployment["volumes"][0]["persistentVolumeClaim"]["claimName"]
    pod = _yaml("k8s/training-pod.yaml")["spec"]
    assert pod["nodeSelector"] == {"graphrec/pool": "gpu"}
    assert deployment["nodeSelector"] == {"graphrec/pool": "cpu"}
    assert {v["name"]: v for v in pod["volumes"]}["graphrec-data"]["persistentVolumeClaim"]["claimName"] == claim
    assert _yaml("k8s/data-pvc.yaml")["metadata"]["name"] == claim
    runs = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]["serviceAccountName"]
    rbac = list(yaml.safe_load_all((INFRA / "k8s" / "training-rbac.yaml").read_text()))
    assert rbac[0]["metadata"]["name"] == runs and rbac[2]["subjects"][0]["name"] == runs


def test_every_instance_limits_the_warehouse_pool_not_the_runs():
    instances = {name: _yaml(name) for name in ("dagster.yaml", "dagster.postgres.yaml")}
    instances["helm/values.yaml"] = _yaml("helm/values.yaml")["additionalInstanceConfig"]
    for name, instance in instances.items():
        assert instance["concurrency"]["pools"] == {"granularity": "op", "default_limit": 1}, name
        assert "run_coordinator" not in instance, name
    assert _yaml("helm/values.yaml")["dagsterDaemon"]["runCoordinator"] == {"enabled": False}
