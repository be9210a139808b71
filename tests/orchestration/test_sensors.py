"""The landing sensor asks for one ingest run per new or changed file, and nothing for files it has seen."""

from pathlib import Path

import polars as pl
from dagster import SkipReason, build_sensor_context, validate_run_config

from orchestration.definitions import defs
from orchestration.sensors import landing_sensor
from warehouse.ingest import content_key_for


def _write(path: Path, users: list[str]) -> Path:
    pl.DataFrame({"user_id": users, "item_id": ["i1"] * len(users), "ts": ["2026-01-05 10:00:00"] * len(users)}
                 ).write_csv(path)
    return path


def _evaluate(folder: Path, cursor: str | None):
    return landing_sensor(str(folder), "landing_ingest")(build_sensor_context(cursor=cursor))


def test_one_run_per_new_file_and_none_the_second_time(tmp_path: Path):
    first = _write(tmp_path / "a.csv", ["u1", "u2"])
    second = _write(tmp_path / "b.csv", ["u3"])
    _write(tmp_path / ".c.csv", ["u4"])  # still being written: ignored until renamed
    (tmp_path / "notes.txt").write_text("not data")

    result = _evaluate(tmp_path, None)
    assert [r.run_key for r in result.run_requests] == [
        f"{first}:{content_key_for([first])}", f"{second}:{content_key_for([second])}"]
    assert [r.run_config["ops"]["ingest_source"]["config"] for r in result.run_requests] == [
        {"source": "files", "path": str(first)}, {"source": "files", "path": str(second)}]

    again = _evaluate(tmp_path, result.cursor)
    assert again.run_requests == []

    _write(first, ["u1", "u2", "u5"])  # new content under the same name is ingested again
    changed = _evaluate(tmp_path, again.cursor)
    assert [r.run_key for r in changed.run_requests] == [f"{first}:{content_key_for([first])}"]


def test_run_config_is_valid_for_the_landing_job(tmp_path: Path):
    _write(tmp_path / "a.csv", ["u1"])
    request = _evaluate(tmp_path, None).run_requests[0]
    assert validate_run_config(defs.resolve_job_def("landing_ingest"), request.run_config)


def test_missing_landing_folder_is_skipped_with_a_reason(tmp_path: Path):
    result = _evaluate(tmp_path / "absent", None)
    assert isinstance(result, SkipReason) and "does not exist" in result.skip_message
