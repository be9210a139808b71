"""The one `validation` resource drives both the blocking expectations and the quarantine, in real Dagster runs on a
file warehouse: MovieLens timestamps from 1996 pass with the defaults, future timestamps fail both, and a bound set
once on the resource moves both together; each run's row rules are kept as a Data Docs page linked from the checks.
"""

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
from dagster import DagsterInstance, PathMetadataValue, materialize

from assets.ingest import ingest_source
from assets.validation import quarantined_interactions, raw_interactions_expectations
from orchestration.resources import ValidationRules
from warehouse.validation import ValidationConfig

ML_SLICE_ROWS = 962  # ratings.csv of the slice: 14 users, 255 of the ratings made before 2000 (from 1996-06-21)
BEFORE_2000 = 255
FUTURE_ROWS = 20  # 20 of 982 rows (2%): above the 1% that a rule may reject before its check fails


def _run(resources, selection, ingest=None):
    config = {"ops": {"ingest_source": {"config": ingest}}} if ingest else None
    return materialize([ingest_source, quarantined_interactions, raw_interactions_expectations], selection=selection,
                       resources=resources, run_config=config, instance=DagsterInstance.ephemeral(),
                       raise_on_error=False)


def _checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _rejected(warehouse) -> dict[str, int]:
    with duckdb.connect(warehouse) as con:
        return dict(con.execute("SELECT reason, count(*) FROM rejected_interactions GROUP BY ALL").fetchall())


def test_default_rules_are_one_place_with_an_epoch_lower_bound():
    assert ValidationRules().rules() == ValidationConfig()
    assert ValidationConfig().earliest_ts == datetime(1970, 1, 1)


def test_movielens_from_1996_passes_default_rules_and_future_rows_fail_both(tmp_path, make_resources, ml_slice_dir):
    resources = make_resources(tmp_path)
    ingest = _run(resources, ["raw_interactions", "raw_items"], {"source": "movielens", "path": str(ml_slice_dir)})
    assert ingest.success
    checks = _checks(ingest)
    assert len(checks) == 7 and all(checks.values()), checks
    quarantined = _run(resources, ["clean_interactions", "rejected_interactions"])
    assert quarantined.success
    meta = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in quarantined.get_asset_materialization_events()}
    assert meta["clean_interactions"]["dagster/row_count"].value == ML_SLICE_ROWS
    assert meta["rejected_interactions"]["dagster/row_count"].value == 0

    # A file of known users and items whose timestamps are a year ahead.
    future = datetime.now() + timedelta(days=365)
    pl.DataFrame({"user_id": [f"f{i}" for i in range(FUTURE_ROWS)], "item_id": ["1"] * FUTURE_ROWS,
                  "ts": [future] * FUTURE_ROWS}).write_parquet(tmp_path / "future.parquet")
    ingest = _run(resources, ["raw_interactions", "raw_items"],
                  {"source": "files", "path": str(tmp_path / "future.parquet")})
    failed = [name for name, passed in _checks(ingest).items() if not passed]
    assert failed == ["interactions_timestamps_in_range"]
    assert _run(resources, ["clean_interactions", "rejected_interactions"]).success
    assert _rejected(resources["warehouse"].path) == {"ts_in_future": FUTURE_ROWS}


def test_a_bound_set_once_moves_the_check_and_the_quarantine(tmp_path, make_resources, ml_slice_dir):
    resources = {**make_resources(tmp_path), "validation": ValidationRules(earliest_ts="2000-01-01T00:00:00")}
    ingest = _run(resources, ["raw_interactions", "raw_items"], {"source": "movielens", "path": str(ml_slice_dir)})
    failed = [name for name, passed in _checks(ingest).items() if not passed]
    assert failed == ["interactions_timestamps_in_range"]
    assert _run(resources, ["clean_interactions", "rejected_interactions"]).success
    assert _rejected(resources["warehouse"].path) == {"ts_before_start": BEFORE_2000}


def test_duplicates_warn_without_stopping_the_quarantine(tmp_path, make_resources):
    resources = make_resources(tmp_path)
    # 50 distinct interactions, 5 of them twice: 5 duplicates of 55 rows (9%), above the 1% bound.
    pairs = [(f"u{i}", f"i{i % 7}") for i in range(50)]
    rows = pairs + pairs[:5]
    pl.DataFrame({"user_id": [u for u, _ in rows], "item_id": [i for _, i in rows],
                  "ts": [datetime(2026, 1, 1)] * len(rows)}).write_parquet(tmp_path / "dups.parquet")
    result = _run(resources, ["raw_interactions", "raw_items", "clean_interactions", "rejected_interactions"],
                  {"source": "files", "path": str(tmp_path / "dups.parquet")})
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    failed = {name: e.severity.value for name, e in evaluations.items() if not e.passed}
    assert failed == {"interactions_duplicate_rate_within_bound": "WARN"}
    assert _rejected(resources["warehouse"].path) == {"duplicate": 5}


def test_each_run_links_its_data_docs_page(tmp_path, make_resources):
    resources = make_resources(tmp_path)
    rows = [(f"u{i}", f"i{i}", datetime(2026, 1, 1)) for i in range(30)] + [(None, "i0", datetime(2026, 1, 1))]
    pl.DataFrame({"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows], "ts": [r[2] for r in rows]},
                 schema_overrides={"user_id": pl.Utf8}).write_parquet(tmp_path / "one_null.parquet")
    result = _run(resources, ["raw_interactions", "raw_items"],
                  {"source": "files", "path": str(tmp_path / "one_null.parquet")})
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["interactions_have_no_null_ids"].passed  # 1 of 31 rows: above the 1% allowed
    link = evaluations["interactions_have_no_null_ids"].metadata["data_docs"]
    assert isinstance(link, PathMetadataValue)
    page = Path(link.path)
    assert page.is_file() and page.suffix == ".html" and result.run_id in page.name
    assert page.is_relative_to(tmp_path / "artifacts")
    html = page.read_text()
    assert "raw_interactions_rows" in html and "values must not be null" in html and result.run_id in html
    for name in ("interactions_timestamps_in_range", "interactions_weights_finite_and_in_range",
                 "interactions_reference_known_items"):
        assert evaluations[name].metadata["data_docs"].path == link.path  # one page per run, for every row check
