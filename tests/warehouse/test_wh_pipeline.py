"""End-to-end warehouse run on real Gowalla (LightGCN split): ingest, checks, quarantine, id maps, given split.

The counts are those of SOURCE.md and the LightGCN paper (29,858 users, 40,981 items, 810,128 / 217,242).
"""

from __future__ import annotations

from datetime import datetime

from warehouse.expectations import run_expectations
from warehouse.id_maps import update_id_maps
from warehouse.ingest import content_key_for, ingest
from warehouse.sources import read_source, source_files
from warehouse.split import SplitConfig, build_split, load_pairs
from warehouse.validation import ValidationConfig, quarantine

NOW = datetime(2026, 3, 10)


def test_gowalla_given_split_end_to_end(con, gowalla_dir):
    interactions, items = read_source("lightgcn", gowalla_dir)
    added = ingest(con, interactions, items, "gowalla", content_key_for(source_files("lightgcn", gowalla_dir)))
    assert added.rows_added == 1_027_370

    outcomes = run_expectations(con, ValidationConfig(), NOW)
    assert [o.check_name for o in outcomes if not o.passed] == []
    assert quarantine(con, ValidationConfig(), NOW).rejected_rows == 0

    maps = update_id_maps(con)
    assert (maps.users_total, maps.items_total) == (29_858, 40_981)
    # Numeric ids without timestamps keep their own number as index, so LightGCN files line up.
    assert con.execute(
        "SELECT count(*) FROM user_index WHERE CAST(raw_id AS BIGINT) <> idx"
    ).fetchall() == [(0,)]

    stats = build_split(con, SplitConfig(mode="given"))
    assert stats.train + stats.valid == 810_128
    assert stats.test == 217_242
    assert (stats.users, stats.items) == (29_858, 40_981)
    test = load_pairs(con, "test")
    assert test.shape == (2, 217_242) and test[0].max() == 29_857
