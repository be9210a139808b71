"""Sensors: one that ingests files dropped into the landing folder (a run per new or changed file), and the
automation sensor that evaluates every asset's automation condition (orchestration/automation.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from warehouse.ingest import content_key_for
from warehouse.sources import FILE_SUFFIXES

# Evaluated in the code server: the retrain policy's share of moved interactions is a condition of this project,
# which the daemon could not deserialize.
downstream_automation = AutomationConditionSensorDefinition(
    "downstream_automation", target=AssetSelection.all(), default_status=DefaultSensorStatus.RUNNING,
    use_user_code_server=True,
    description="Carries landed data through the graph assets, and retrains, evaluates and publishes when it pays "
                "(cron tick or share of moved interactions); always after upstream blocking checks pass.",
)


def landed_files(folder: Path) -> list[Path]:
    """Parquet and CSV files in `folder`, sorted; names starting with '.' or '_' are still being written
    (writers should write under such a name, then rename into place)."""
    return sorted(
        path for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in FILE_SUFFIXES and not path.name.startswith((".", "_"))
    )


def landing_requests(folder: Path, seen: dict[str, list]) -> tuple[list[RunRequest], dict[str, list]]:
    """Run requests for the files of `folder` that are new or changed since `seen`, and the new `seen`.

    `seen` maps a path to [size, mtime_ns, content key]: a file is hashed again only when its size or mtime
    moved, and asked for again only when its content changed. Files that disappeared are forgotten.
    """
    requests, current = [], {}
    for path in landed_files(folder):
        stat = path.stat()
        previous = seen.get(str(path))
        if previous and previous[:2] == [stat.st_size, stat.st_mtime_ns]:
            current[str(path)] = previous
            continue
        key = content_key_for([path])
        current[str(path)] = [stat.st_size, stat.st_mtime_ns, key]
        if previous is None or previous[2] != key:
            requests.append(RunRequest(
                run_key=f"{path}:{key}",
                run_config={"ops": {"ingest_source": {"config": {"source": "files", "path": str(path)}}}},
                tags={"graphrec/landing_file": path.name},
            ))
    return requests, current


def landing_sensor(folder: str, job_name: str) -> SensorDefinition:
    """A sensor that starts the job `job_name` with the ingest pointed at each new or changed file in `folder`."""

    @sensor(name="landing_files", job_name=job_name, minimum_interval_seconds=30,
            default_status=DefaultSensorStatus.RUNNING,
            description=f"Ingests each new Parquet or CSV file dropped into {folder}.")
    def landing_files(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        landing = Path(folder)
        if not landing.is_dir():
            return SkipReason(f"landing folder {landing} does not exist; create it and drop Parquet/CSV files in it")
        requests, seen = landing_requests(landing, json.loads(context.cursor) if context.cursor else {})
        return SensorResult(run_requests=requests, cursor=json.dumps(seen))

    return landing_files
