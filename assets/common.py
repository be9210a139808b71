"""What every stage shares: artifact file names, data fingerprints and UI metadata helpers (markdown tables and
inline base64 PNG plots).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from models.runtime.machine import peak_rss_mb  # noqa: F401 (the assets import it from here)

# Artifact paths (relative to the ArtifactStore root) that hand data from one stage to the next.
TRAIN_GRAPH = ("graph", "train_graph.pt")
VALID_EDGES = ("graph", "valid_edge_index.pt")
TEST_EDGES = ("graph", "test_edge_index.pt")
RANKING_REPORT = ("reports", "ranking_report.json")
# Every model's per-user validation Recall@K and NDCG@K beside the report, for paired comparisons.
VALID_PER_USER = ("reports", "validation_per_user.pt")
GRAPH_RECORD = ("graph", "graph.json")


def replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary file beside ``path``, then rename it over ``path``: a reader (another step, another
    run) sees the old file or the new one, never half of one, and a failed write leaves the old file as it was."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def save_tensors(path: Path, **tensors: torch.Tensor) -> None:
    """Save named tensors (a plain dict, readable with ``weights_only=True``), replacing ``path`` atomically."""
    replace_atomically(path, lambda temporary: torch.save(dict(tensors), str(temporary)))


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


def fingerprint_tensor(fingerprint: str) -> torch.Tensor:
    """A fingerprint as a ``uint8`` tensor, to keep it inside a tensors file beside what it identifies."""
    return torch.tensor(list(fingerprint.encode()), dtype=torch.uint8)


def write_json(path: Path, record: Mapping[str, Any]) -> None:
    """Write a JSON record (reports travel between stages as JSON, never pickles), replacing ``path`` atomically."""
    text = json.dumps(record, indent=2, sort_keys=True)
    replace_atomically(path, lambda temporary: temporary.write_text(text))


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


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes (rendered without pyplot's global state)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def markdown_image(figure: Figure | bytes, alt: str) -> str:
    """The figure (or its PNG bytes) as an inline base64 PNG in markdown."""
    png = figure if isinstance(figure, bytes) else png_bytes(figure)
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
