"""What every stage shares: the automation condition, artifact file names, run config built from package
dataclasses, data fingerprints and UI metadata helpers (markdown tables and inline base64 PNG plots).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
from dagster import AutomationCondition, Config, ConfigurableResource
from matplotlib.figure import Figure
from pydantic import Field, create_model

from models.runtime.machine import peak_rss_mb  # noqa: F401 (the assets import it from here)

T = TypeVar("T")

# Downstream assets update when an upstream asset does, but only once its blocking checks have passed,
# also when the checks ran in an earlier run (eager alone would not wait for them across runs).
AFTER_UPSTREAM_PASSES = (
    AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager after blocking checks pass")

# Artifact paths (relative to the ArtifactStore root) that hand data from one stage to the next.
TRAIN_GRAPH = ("graph", "train_graph.pt")
VALID_EDGES = ("graph", "valid_edge_index.pt")
TEST_EDGES = ("graph", "test_edge_index.pt")
RANKING_REPORT = ("reports", "ranking_report.json")
GRAPH_RECORD = ("graph", "graph.json")


def config_class(source: type, name: str, overrides: Mapping[str, Any] | None = None,
                 base: type[Config | ConfigurableResource] = Config) -> type:
    """A Dagster ``Config`` (or, with ``base``, a ``ConfigurableResource`` subclass) with the fields and defaults of
    the dataclass ``source``, some defaults replaced by ``overrides`` (the environment's).

    The package dataclass stays the one place where defaults live. Dagster config has no datetime or
    Literal type, so datetimes become ISO strings and Literals plain strings (``source`` validates them).
    """
    hints = typing.get_type_hints(source)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(source):
        own = field.default_factory() if field.default is dataclasses.MISSING else field.default
        kind, default = hints[field.name], (overrides or {}).get(field.name, own)
        if datetime in (kind, *typing.get_args(kind)):
            kind = str if kind is datetime else str | None
            default = default.isoformat() if isinstance(default, datetime) else default
        elif typing.get_origin(kind) is Literal:
            kind = str
        fields[field.name] = (kind, Field(default=default))
    # A resource base documents itself (the UI shows it); a plain Config says which dataclass it mirrors.
    doc = f"Run config of {source.__name__}." if base is Config else base.__doc__
    return create_model(name, __base__=base, __doc__=doc, **fields)


def from_config(config: Config | ConfigurableResource, target: type[T]) -> T:
    """The dataclass ``target`` built from a :func:`config_class` config (ISO strings back to datetimes)."""
    hints = typing.get_type_hints(target)
    values = config.model_dump()
    for key, value in values.items():
        if isinstance(value, str) and datetime in (hints[key], *typing.get_args(hints[key])):
            values[key] = datetime.fromisoformat(value)
    return target(**values)


def save_tensors(path: Path, **tensors: torch.Tensor) -> None:
    """Save named tensors (a plain dict, readable with ``weights_only=True``)."""
    torch.save(dict(tensors), str(path))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read tensors saved by :func:`save_tensors` without unpickling objects."""
    return torch.load(str(path), weights_only=True)


def fingerprint(*tensors: torch.Tensor) -> str:
    """sha256 over the tensors' shapes and bytes: the identity of a training data set."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def write_json(path: Path, record: Mapping[str, Any]) -> None:
    """Write a JSON record (reports travel between stages as JSON, never pickles)."""
    path.write_text(json.dumps(record, indent=2, sort_keys=True))


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON record written by :func:`write_json`."""
    return json.loads(path.read_text())


def markdown_table(rows: Sequence[Mapping[str, Any]], floats: str = ".4f") -> str:
    """A markdown table with one column per key of the first row; floats formatted with `floats`."""
    if not rows:
        return "_(no rows)_"
    columns = list(rows[0])

    def cell(value: Any) -> str:
        return format(value, floats) if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def markdown_image(figure: Figure, alt: str) -> str:
    """The figure as an inline base64 PNG in markdown (rendered without pyplot's global state)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"![{alt}](data:image/png;base64,{encoded})"
