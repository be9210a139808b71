"""DuckDB registry of embedding versions (`<root>/registry.duckdb`): the `versions` table and the
`events` audit log. Each operation opens the file briefly, so several processes can take turns."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from feature_store.errors import RegistryBusyError, VersionNotFoundError
from feature_store.meta import Event, Status, VersionInfo, to_json, utc_now

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    version_id VARCHAR PRIMARY KEY,
    parent_id VARCHAR,
    model VARCHAR NOT NULL,
    config_json VARCHAR NOT NULL,
    data_fingerprint VARCHAR NOT NULL,
    code_version VARCHAR NOT NULL,
    metrics_json VARCHAR NOT NULL,
    compatibility_json VARCHAR NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('candidate', 'promoted', 'retired')),
    created_at TIMESTAMP NOT NULL,
    promoted_at TIMESTAMP,
    dim INTEGER NOT NULL,
    n_users BIGINT NOT NULL,
    n_items BIGINT NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS events_seq;
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT PRIMARY KEY DEFAULT nextval('events_seq'),
    "at" TIMESTAMP NOT NULL,  -- quoted: AT is a DuckDB keyword
    version_id VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    detail VARCHAR NOT NULL
);
"""

_COLUMNS = (
    "version_id, parent_id, model, config_json, data_fingerprint, code_version, metrics_json, "
    "compatibility_json, status, created_at, promoted_at, dim, n_users, n_items"
)


def _info(row: tuple[Any, ...]) -> VersionInfo:
    (version_id, parent_id, model, config, fingerprint, code, metrics, compat, status, created, promoted,
     dim, n_users, n_items) = row
    return VersionInfo(
        version_id=version_id, parent_id=parent_id, model=model, config=json.loads(config),
        data_fingerprint=fingerprint, code_version=code, metrics=json.loads(metrics),
        compatibility=json.loads(compat), status=status, created_at=created, promoted_at=promoted,
        dim=dim, n_users=n_users, n_items=n_items,
    )


class Transaction:
    """Reads and writes inside one open registry transaction (see `Registry.transaction`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.committed = False

    def _versions(self, where: str = "", params: list[Any] | None = None) -> list[VersionInfo]:
        sql = f"SELECT {_COLUMNS} FROM versions {where} ORDER BY created_at, version_id"
        return [_info(row) for row in self._con.execute(sql, params or []).fetchall()]

    def find(self, version_id: str) -> VersionInfo | None:
        """The version with this id, or None."""
        found = self._versions("WHERE version_id = ?", [version_id])
        return found[0] if found else None

    def get(self, version_id: str) -> VersionInfo:
        """The version with this id; raises `VersionNotFoundError` listing a few known ids."""
        info = self.find(version_id)
        if info is None:
            known = [row[0] for row in self._con.execute(
                "SELECT version_id FROM versions ORDER BY created_at DESC LIMIT 5").fetchall()]
            raise VersionNotFoundError(
                f"no version {version_id!r} in the registry; most recent versions: {known or 'none'}"
            )
        return info

    def promoted(self) -> VersionInfo | None:
        """The promoted version, or None before the first promotion."""
        found = self._versions("WHERE status = 'promoted'")
        return found[0] if found else None

    def all(self) -> list[VersionInfo]:
        """Every registered version, oldest first."""
        return self._versions()

    def lineage(self, version_id: str) -> list[VersionInfo]:
        """`version_id` followed by its parent, grandparent, ... (a recursive query)."""
        self.get(version_id)
        rows = self._con.execute(
            f"""
            WITH RECURSIVE chain(version_id, depth) AS (
                SELECT version_id, 0 FROM versions WHERE version_id = ?
                UNION ALL
                SELECT v.parent_id, c.depth + 1 FROM chain c JOIN versions v USING (version_id)
                WHERE v.parent_id IS NOT NULL
            )
            SELECT {_COLUMNS} FROM versions JOIN chain USING (version_id) ORDER BY depth
            """,
            [version_id],
        ).fetchall()
        return [_info(row) for row in rows]

    def version_ids(self) -> set[str]:
        """Ids of all registered versions."""
        return {row[0] for row in self._con.execute("SELECT version_id FROM versions").fetchall()}

    def insert(self, info: VersionInfo) -> None:
        """Register a new version and log its publication."""
        self._con.execute(
            f"INSERT INTO versions ({_COLUMNS}) VALUES ({', '.join('?' * 14)})",
            [info.version_id, info.parent_id, info.model, to_json(info.config, "config"),
             info.data_fingerprint, info.code_version, to_json(info.metrics, "metrics"),
             to_json(info.compatibility, "compatibility"), info.status, info.created_at,
             info.promoted_at, info.dim, info.n_users, info.n_items],
        )
        self.log(info.version_id, "publish", {"n_users": info.n_users, "n_items": info.n_items})

    def set_status(self, version_id: str, status: Status) -> None:
        """Change a version's status; becoming promoted also stamps `promoted_at`."""
        if status == "promoted":
            self._con.execute(
                "UPDATE versions SET status = ?, promoted_at = ? WHERE version_id = ?",
                [status, utc_now(), version_id],
            )
        else:
            self._con.execute("UPDATE versions SET status = ? WHERE version_id = ?", [status, version_id])

    def set_compatibility(self, version_id: str, report: dict[str, Any]) -> None:
        """Store the compatibility report of a version."""
        self._con.execute(
            "UPDATE versions SET compatibility_json = ? WHERE version_id = ?",
            [to_json(report, "compatibility report"), version_id],
        )

    def log(self, version_id: str, action: str, detail: dict[str, Any]) -> None:
        """Append one entry to the audit log."""
        self._con.execute(
            'INSERT INTO events ("at", version_id, action, detail) VALUES (?, ?, ?, ?)',
            [utc_now(), version_id, action, to_json(detail, "event detail")],
        )

    def events(self, actions: tuple[str, ...] | None = None) -> list[Event]:
        """Audit-log entries in the order they were written, optionally only some actions."""
        where = f"WHERE action IN ({', '.join('?' * len(actions))})" if actions else ""
        rows = self._con.execute(
            f'SELECT seq, "at", version_id, action, detail FROM events {where} ORDER BY seq', list(actions or ())
        ).fetchall()
        return [Event(seq, at, vid, action, json.loads(detail)) for seq, at, vid, action, detail in rows]

    def commit(self) -> None:
        """Make every write of this transaction visible at once."""
        self._con.commit()
        self.committed = True


class Registry:
    """The DuckDB registry file of one feature store.

    Args:
        path: the DuckDB file (created with its tables if missing).
        lock_timeout_s: how long to wait while another process holds the file (default: 30).
    """

    def __init__(self, path: str | Path, lock_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        con = self._connect()
        try:
            con.execute(_SCHEMA)
        finally:
            con.close()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        # DuckDB lets one process at a time open a file for writing and has no "wait for the lock"
        # option, so we retry with a capped exponential backoff until the timeout.
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.01
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.IOException as error:
                if "lock" not in str(error).lower():
                    raise
                if time.monotonic() > deadline:
                    raise RegistryBusyError(
                        f"registry {self.path} stayed locked for {self.lock_timeout_s:g} s by another "
                        f"process ({error}); wait for it to finish or raise lock_timeout_s"
                    ) from error
                time.sleep(delay)
                delay = min(2 * delay, 0.5)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Open the file, begin a transaction, yield it; roll back unless `commit()` was called."""
        con = self._connect()
        try:
            con.begin()
            tx = Transaction(con)
            try:
                yield tx
            finally:
                if not tx.committed:
                    con.rollback()
        finally:
            con.close()
