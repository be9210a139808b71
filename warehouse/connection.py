"""Opening the warehouse: one DuckDB file (or ':memory:') with every table created.

Callers get a plain DuckDB connection; the DDL is idempotent, so connecting twice is harmless.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from warehouse.schema import DDL

# I/O goes through DuckDB and Polars directly (not dagster-duckdb-polars): that integration breaks with
# duckdb 2.x (it calls the connection's `.arrow()`, which 2.x removed), and the plain clients are all the warehouse
# needs.


def connect(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the DuckDB database at `path` and create all warehouse tables."""
    target = str(path)
    if target != ":memory:":
        Path(target).expanduser().parent.mkdir(parents=True, exist_ok=True)
        target = str(Path(target).expanduser())
    con = duckdb.connect(target)
    for statement in DDL:
        con.execute(statement)
    return con
