"""The production `infra/dagster.postgres.yaml` against a real PostgreSQL server started here (Debian's
binaries): a materialization through a DagsterInstance built from that file lands its events in Postgres.
"""
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from dagster import DagsterInstance, materialize

from assets.ingest import ingest_source

INSTANCE_YAML = Path(__file__).resolve().parents[2] / "infra" / "dagster.postgres.yaml"
PG_BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; Debian's package creates the `postgres` user for it.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres() -> Iterator[SimpleNamespace]:
    """A throwaway PostgreSQL server on 127.0.0.1 with password authentication, stopped and removed after."""
    if not PG_BINARIES:
        pytest.skip("PostgreSQL server binaries are missing (/usr/lib/postgresql/*/bin): apt-get install postgresql")
    bin_dir = Path(PG_BINARIES[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="graphrec-pg-"))
    server = SimpleNamespace(host="127.0.0.1", port=_free_port(), user="graphrec", password=secrets.token_hex(16))
    (root / "password").write_text(server.password)
    if os.geteuid() == 0:
        for path in (root, root / "password"):
            shutil.chown(path, "postgres")
    data = root / "data"
    subprocess.run(_as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", server.user, "-E", "UTF8",
                                    "--auth=scram-sha-256", f"--pwfile={root / 'password'}", "--no-sync"]),
                   check=True, capture_output=True, timeout=120)
    # fsync off: a test server's data is thrown away, and syncing only slows the shared machine.
    options = f"-h {server.host} -p {server.port} -k {root} -F"
    subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                                    "-o", options, "-w", "-t", "60", "start"]),
                   check=True, capture_output=True, timeout=90)
    try:
        yield server
    finally:
        subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _query(server: SimpleNamespace, database: str, sql: str, *params) -> list[tuple]:
    import psycopg2

    con = psycopg2.connect(host=server.host, port=server.port, user=server.user, password=server.password,
                           dbname=database)
    con.autocommit = True
    try:
        with con.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        con.close()


def test_the_instance_file_holds_no_secret():
    database = yaml.safe_load(INSTANCE_YAML.read_text())["storage"]["postgres"]["postgres_db"]
    assert database.pop("scheme") == "postgresql+psycopg2"  # the driver dagster-postgres installs
    assert all(set(value) == {"env"} for value in database.values()), database


def test_a_materialization_lands_its_events_in_postgres(postgres, tmp_path, monkeypatch, make_resources):
    _query(postgres, "postgres", "CREATE DATABASE dagster")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    for name, value in {"HOST": postgres.host, "PORT": str(postgres.port), "USER": postgres.user,
                        "PASSWORD": postgres.password, "DB": "dagster"}.items():
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{name}", value)

    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        result = materialize([ingest_source], resources=make_resources(tmp_path), instance=instance,
                             run_config={"ops": {"ingest_source": {"config": {"demo_users": 50, "demo_items": 30}}}})
    assert result.success

    materialized = _query(postgres, "dagster", "SELECT asset_key FROM event_logs WHERE run_id = %s "
                          "AND dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY asset_key", result.run_id)
    assert [key for (key,) in materialized] == ['["raw_interactions"]', '["raw_items"]']
    assert _query(postgres, "dagster", "SELECT status FROM runs WHERE run_id = %s", result.run_id) == [("SUCCESS",)]
    # Dagster indexes every asset it has materialized; the UI's asset pages read this table.
    keys = _query(postgres, "dagster", "SELECT asset_key FROM asset_keys ORDER BY asset_key")
    assert [key for (key,) in keys] == ['["raw_interactions"]', '["raw_items"]']
