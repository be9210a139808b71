"""Metadata records of embedding versions: what a publisher supplies and what the registry returns.
Version ids are a UTC timestamp plus a short hash of model, config, data and code, so they sort by age."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from feature_store.errors import InvalidMetadataError

Status = Literal["candidate", "promoted", "retired"]
STATUSES: tuple[Status, ...] = ("candidate", "promoted", "retired")

# Version ids name folders, so they are restricted to characters that are safe in any file system.
_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def utc_now() -> datetime:
    """Current UTC time as a naive datetime (the registry stores TIMESTAMP columns in UTC)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_json(value: Any, what: str, indent: int | None = None) -> str:
    """Canonical JSON (sorted keys) of `value`; numpy/torch scalars are unwrapped with `.item()`."""

    def scalar(obj: Any) -> Any:
        if hasattr(obj, "item"):
            return obj.item()
        raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")

    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, default=scalar, indent=indent)
    except (TypeError, ValueError) as error:
        raise InvalidMetadataError(
            f"{what} must be JSON-serialisable with finite numbers ({error}); "
            "convert paths to str and tuples to lists, and replace NaN/inf by null"
        ) from error


def check_version_id(version_id: str) -> str:
    """Return `version_id` if it is a safe folder name, else raise `InvalidMetadataError`."""
    if not isinstance(version_id, str) or not _VERSION_ID.fullmatch(version_id):
        raise InvalidMetadataError(
            f"version_id {version_id!r} is not allowed: use 1-128 characters from [A-Za-z0-9._-], "
            "starting with a letter or digit (or leave it empty to generate one)"
        )
    return version_id


@dataclass(frozen=True, kw_only=True)
class VersionMeta:
    """What a publisher knows about a new embedding version.

    Args:
        version_id: unique id; empty (default) generates ``<UTC yyyymmddThhmmssffffffZ>-<8 hex>``
            where the hex is a hash of model, config, data fingerprint, code version and parent.
        parent_id: the version this one was trained to be compatible with (must be registered).
        model: name of the model that produced the vectors.
        config: the resolved training config (JSON-serialisable).
        data_fingerprint: hash of the training data.
        code_version: version of the code that trained the model.
        metrics: evaluation metrics (JSON-serialisable).
        compatibility: compatibility report against the parent, if already known.
    """

    model: str
    version_id: str = ""
    parent_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str = ""
    code_version: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    compatibility: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise InvalidMetadataError("VersionMeta.model is empty: name the model that produced the vectors")
        for name in ("config", "metrics", "compatibility"):
            to_json(getattr(self, name), f"VersionMeta.{name}")  # fail at construction, not mid-publish
        if not self.version_id:
            content = to_json(
                [self.model, self.config, self.data_fingerprint, self.code_version, self.parent_id],
                "VersionMeta",
            )
            digest = hashlib.sha256(content.encode()).hexdigest()[:8]
            # frozen dataclass: the generated id is set once, here, and never changes afterwards
            object.__setattr__(self, "version_id", f"{utc_now():%Y%m%dT%H%M%S%fZ}-{digest}")
        check_version_id(self.version_id)


@dataclass(frozen=True)
class VersionInfo:
    """A registered embedding version: its metadata, status and sizes (as stored in the registry)."""

    version_id: str
    parent_id: str | None
    model: str
    config: dict[str, Any]
    data_fingerprint: str
    code_version: str
    metrics: dict[str, Any]
    compatibility: dict[str, Any]
    status: Status
    created_at: datetime
    promoted_at: datetime | None
    dim: int
    n_users: int
    n_items: int


@dataclass(frozen=True)
class Event:
    """One entry of the registry's audit log (publish, promote, rollback, retire, compatibility)."""

    seq: int
    at: datetime
    version_id: str
    action: str
    detail: dict[str, Any]
