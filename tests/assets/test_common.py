"""Shared asset helpers: Dagster config built from package dataclasses, fingerprints and markdown metadata."""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import pytest
import torch
from dagster import DagsterInvalidConfigError, asset, materialize
from matplotlib.figure import Figure

from assets.common import (
    fingerprint,
    load_tensors,
    markdown_image,
    markdown_table,
    read_json,
    replace_atomically,
    save_tensors,
    write_json,
)
from orchestration.config_classes import config_class, from_config


@dataclass(frozen=True)
class _Example:
    mode: Literal["a", "b"] = "a"
    start: datetime = datetime(2026, 1, 5)
    cutoff: datetime | None = None
    rate: float = 0.5
    steps: int = 3


def test_config_class_keeps_dataclass_defaults_and_converts_datetimes():
    ExampleConfig = config_class(_Example, "ExampleConfig", {"steps": 7})
    config = ExampleConfig()
    assert config.model_dump() == {"mode": "a", "start": "2026-01-05T00:00:00", "cutoff": None, "rate": 0.5,
                                   "steps": 7}
    assert from_config(ExampleConfig(cutoff="2026-02-01T12:00:00"), _Example) == _Example(
        cutoff=datetime(2026, 2, 1, 12), steps=7)


def test_config_class_is_usable_as_run_config():
    ExampleConfig = config_class(_Example, "ExampleConfig")
    seen = []

    @asset
    def example(config: ExampleConfig) -> None:
        seen.append(from_config(config, _Example))

    assert materialize([example], run_config={"ops": {"example": {"config": {"mode": "b", "rate": 0.1}}}}).success
    assert seen == [_Example(mode="b", rate=0.1)]
    with pytest.raises(DagsterInvalidConfigError):
        materialize([example], run_config={"ops": {"example": {"config": {"rate": "fast"}}}})


def test_fingerprint_depends_on_values_and_shapes():
    a = torch.tensor([[0, 1], [2, 3]])
    assert fingerprint(a) == fingerprint(a.clone())
    assert fingerprint(a) != fingerprint(a.flatten())
    assert fingerprint(a) != fingerprint(torch.tensor([[0, 1], [2, 4]]))


def test_markdown_table_and_image():
    assert markdown_table([{"group": 0, "recall@20": 0.25}, {"group": 1, "recall@20": 0.5}]) == (
        "| group | recall@20 |\n|---|---|\n| 0 | 0.2500 |\n| 1 | 0.5000 |")
    assert markdown_table([]) == "_(no rows)_"
    figure = Figure()
    figure.subplots().plot([0, 1], [1, 0])
    assert markdown_image(figure, "line").startswith("![line](data:image/png;base64,iVBORw0KGgo")


def test_artifacts_are_replaced_whole_and_a_failed_write_leaves_the_old_file(tmp_path):
    record, tensors = tmp_path / "record.json", tmp_path / "tensors.pt"
    write_json(record, {"version": 1})
    save_tensors(tensors, x=torch.arange(3))
    write_json(record, {"version": 2})
    assert read_json(record) == {"version": 2}

    def half_written(temporary):
        temporary.write_text('{"version": ')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_atomically(record, half_written)
    with pytest.raises(OSError, match="disk full"):
        replace_atomically(tensors, half_written)
    assert read_json(record) == {"version": 2}
    assert torch.equal(load_tensors(tensors)["x"], torch.arange(3))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["record.json", "tensors.pt"]  # no temporaries left
