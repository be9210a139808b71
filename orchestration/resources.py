"""The resources every asset works through: the DuckDB warehouse, the artifact folder, the compute settings, the
feature store and the validation rules. Assets never hold paths, devices or thresholds of their own; these do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import torch
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from feature_store.store import FeatureStore
from models.runtime.machine import DeviceError, resolve_device
from orchestration.config_classes import config_class, from_config
from orchestration.settings import Settings
from warehouse.connection import connect
from warehouse.validation import ValidationConfig

# Steps that write (or long read) the DuckDB warehouse take turns through this Dagster pool, whose limit of 1 is set
# in the instance's dagster.yaml: DuckDB lets one process at a time hold the file. Training, evaluation and
# publishing steps stay outside it, so that an ingest never waits for a training run; their short reads wait for
# the file instead (Warehouse.connection).
WAREHOUSE_POOL = "duckdb_writer"
# How long a connection waits for another process to let go of the warehouse file before it fails.
LOCK_WAIT_SECONDS = 600.0
PRECISIONS = ("fp32",)
LAUNCHERS = ("inprocess", "torchrun", "k8s")


class ComputeConfigError(ValueError):
    """The Compute resource names a device, precision or launcher that cannot be used here."""


def _connect_waiting(path: str) -> duckdb.DuckDBPyConnection:
    """connect(path), retried while another process holds the file (runs of different jobs may overlap), for at
    most LOCK_WAIT_SECONDS."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return connect(path)
        except duckdb.IOException as error:
            if "Conflicting lock" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


class Warehouse(ConfigurableResource):
    """The DuckDB warehouse: a database file, or ':memory:' for one run's throwaway database."""

    path: str = Field(description="DuckDB database file, or ':memory:'.")

    _memory: duckdb.DuckDBPyConnection | None = PrivateAttr(default=None)

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection with every warehouse table created; closed on exit (a file database is not kept locked
        between steps, so another process can take its turn)."""
        if self.path == ":memory:":
            # Each DuckDB ':memory:' connection is a fresh database, so one is kept for the whole run; every
            # caller gets its own cursor on it (a cursor is a separate connection to the same database).
            if self._memory is None:
                self._memory = connect(":memory:")
            con = self._memory.cursor()
        else:
            con = _connect_waiting(self.path)
        try:
            yield con
        finally:
            con.close()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._memory is not None:
            self._memory.close()
            self._memory = None


class ArtifactStore(ConfigurableResource):
    """A folder for tensors, checkpoints and reports (never pickled objects)."""

    root: str = Field(description="Folder that holds every artifact.")
    keep_runs: int = Field(default=5, ge=1, description="Finished run folders kept per model (`<model>/runs/`); "
                           "older ones are deleted after a successful run, never the latest nor the promoted one's.")

    def path(self, *parts: str) -> Path:
        """`root/parts...`, with its parent folders created."""
        target = Path(self.root).expanduser().joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


class Compute(ConfigurableResource):
    """Where and how training runs: device, numeric precision, process count and launcher."""

    device: str = Field(default="auto", description="auto (cuda when available, else cpu) | cpu | cuda")
    precision: str = Field(default="fp32", description="Numeric precision of training; fp32 for now.")
    num_processes: int = Field(default=1, description="Training processes; more than 1 trains under torchrun (DDP).")
    launcher: str = Field(default="inprocess", description="inprocess | torchrun | k8s")

    def torch_device(self) -> torch.device:
        """The torch device to train and evaluate on."""
        try:
            return resolve_device(self.device)
        except DeviceError as error:
            raise ComputeConfigError(f"Compute.device: {error}") from error

    def launches_processes(self) -> bool:
        """True when training runs in processes of its own: under torchrun (launcher 'torchrun', or more than
        one process) on this machine, or in a Kubernetes pod (launcher 'k8s'); see assets.launchers."""
        if self.precision not in PRECISIONS:
            raise ComputeConfigError(f"Compute.precision={self.precision!r} is not one of {PRECISIONS}.")
        if self.launcher not in LAUNCHERS:
            raise ComputeConfigError(f"Compute.launcher={self.launcher!r} is not one of {LAUNCHERS}.")
        if self.num_processes < 1:
            raise ComputeConfigError(f"Compute.num_processes={self.num_processes}; use 1 or more.")
        return self.launcher != "inprocess" or self.num_processes > 1

    def check_inprocess(self) -> None:
        """Fail clearly unless training can run inside the asset's own process."""
        if self.launches_processes():
            raise ComputeConfigError(
                f"Compute(launcher={self.launcher!r}, num_processes={self.num_processes}) trains in processes of "
                "its own: launch it with assets.launchers.train_in_processes, or use launcher='inprocess', "
                "num_processes=1."
            )


class FeatureStoreResource(ConfigurableResource):
    """The versioned embedding store."""

    root: str = Field(description="Folder of the feature store (registry and version folders).")

    def store(self) -> FeatureStore:
        """The FeatureStore at `root`."""
        return FeatureStore(self.root)


class _ValidationRulesBase(ConfigurableResource):
    """The bounds of the row rules, read by both the blocking expectations on raw_interactions and the quarantine,
    so the two can never disagree; set them once under `resources: validation: config:` (earliest_ts is an ISO
    date-time)."""

    def rules(self) -> ValidationConfig:
        """The rules as the warehouse package's ValidationConfig."""
        return from_config(self, ValidationConfig)


# The fields and defaults come from warehouse.validation.ValidationConfig, the one place they are written.
ValidationRules = config_class(ValidationConfig, "ValidationRules", base=_ValidationRulesBase)


def build_resources(settings: Settings) -> dict[str, ConfigurableResource]:
    """The resources of one environment, under the keys the assets ask for."""
    return {
        "validation": ValidationRules(),
        "warehouse": Warehouse(path=settings.warehouse_path),
        "artifacts": ArtifactStore(root=settings.artifacts_root),
        "compute": Compute(device=settings.device),
        "feature_store": FeatureStoreResource(root=settings.feature_store_root),
    }
