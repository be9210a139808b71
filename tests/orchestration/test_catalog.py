"""The catalog metadata that the Definitions apply centrally: owners and layer tags on every asset, column schemas
that match the tables DuckDB actually creates, code references (local files, or the repository's web address when
configured) and the freshness policy of the served embeddings.
"""

from datetime import timedelta
from pathlib import Path

import pytest
from dagster import LocalFileCodeReference, UrlCodeReference

from assets.ingest import ingest_source
from orchestration.catalog import GROUPS, TABLES, catalogued
from orchestration.definitions import defs
from orchestration.settings import REPO_ROOT, load_settings
from warehouse.connection import connect


@pytest.fixture(scope="module")
def specs() -> dict:
    return {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}


def test_every_asset_has_owners_a_layer_and_a_code_reference(specs):
    for name, spec in specs.items():
        owners, layer = GROUPS[spec.group_name]
        assert spec.owners == owners and spec.tags["graphrec/layer"] == layer, name
        (reference,) = spec.metadata["dagster/code_references"].code_references
        assert isinstance(reference, LocalFileCodeReference), name
        source = Path(reference.file_path)
        assert source.is_relative_to(REPO_ROOT / "assets"), name
        assert source.read_text().splitlines()[reference.line_number - 1].lstrip().startswith(("def ", "@")), name


def test_column_schemas_are_the_tables_duckdb_creates(specs):
    con = connect(":memory:")
    tables = {"id_maps": "user_index", **{name: table for name, (table, _) in TABLES.items() if table}}
    assert set(tables) == {name for name, spec in specs.items() if "dagster/column_schema" in spec.metadata}
    for name, table in tables.items():
        described = [(column, kind) for column, kind, *_ in con.execute(f"DESCRIBE {table}").fetchall()]
        columns = specs[name].metadata["dagster/column_schema"].columns
        assert [(c.name, c.type) for c in columns] == described, name
        assert specs[name].metadata.get("dagster/table_name") == TABLES[name][0]
    assert [c.constraints.unique for c in specs["id_maps"].metadata["dagster/column_schema"].columns] == [True, True]
    con.close()


def test_published_embeddings_should_be_at_most_a_week_old(specs):
    policy = specs["published_embeddings"].freshness_policy
    assert (policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta()) == (timedelta(days=7),
                                                                                      timedelta(days=8))
    assert all(spec.freshness_policy is None for name, spec in specs.items() if name != "published_embeddings")


def test_code_references_point_to_the_repository_when_its_address_is_set():
    settings = load_settings({"GRAPHREC_CODE_URL": "https://github.com/example/graphrec", "GRAPHREC_DATA_DIR": "/x"})
    (asset,) = catalogued([ingest_source], settings)
    for spec in asset.specs:
        (reference,) = spec.metadata["dagster/code_references"].code_references
        assert isinstance(reference, UrlCodeReference)
        assert reference.url.startswith("https://github.com/example/graphrec/tree/main/assets/ingest.py#L")
