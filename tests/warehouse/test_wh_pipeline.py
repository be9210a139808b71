"""End-to-end warehouse run on a LightGCN-format split: ingest, checks, quarantine, id maps, given split.

On a small folder written here on every run, and on real Gowalla where the shared folder is mounted; Gowalla's counts
are those of the LightGCN paper's split (He et al., SIGIR 2020: 29,858 users, 40,981 items, 810,128 / 217,242).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from warehouse.expectations import run_expectations
from warehouse.id_maps import update_id_maps
from warehouse.ingest import content_key_for, ingest
from warehouse.sources import read_source, source_files
from warehouse.split import SplitConfig, build_split, load_pairs
from warehouse.validation import ValidationConfig, quarantine

NOW = datetime(2026, 3, 10)


def _write_lightgcn_folder(folder: Path, users: int, items: int) -> tuple[int, int]:
    """User u takes 5 + u % 4 training items and 2 test items, stepping by 3 from 7u (mod ``items``), so no pair is
    in both files; lines are written from the highest user down, so indices by first appearance would not match
    the numbers. Returns (train, test) interaction counts."""
    train_lines, test_lines, train, test = [], [], 0, 0
    for user in reversed(range(users)):
        picks = [(7 * user + 3 * k) % items for k in range(5 + user % 4 + 2)]
        train_lines.append(" ".join(map(str, [user, *picks[:-2]])))
        test_lines.append(" ".join(map(str, [user, *picks[-2:]])))
        train, test = train + len(picks) - 2, test + 2
    (folder / "train.txt").write_text("\n".join(train_lines) + "\n")
    (folder / "test.txt").write_text("\n".join(test_lines) + "\n")
    return train, test


def _ingest_clean_lightgcn_folder(con, folder, name: str) -> tuple[int, int, int]:
    """Ingest a LightGCN-format folder, assert that every expectation passes and nothing is quarantined, build the id
    maps; return the rows added, users and items."""
    interactions, items = read_source("lightgcn", folder)
    added = ingest(con, interactions, items, name, content_key_for(source_files("lightgcn", folder)))
    outcomes = run_expectations(con, ValidationConfig(), NOW)
    assert [o.check_name for o in outcomes if not o.passed] == []
    assert quarantine(con, ValidationConfig(), NOW).rejected_rows == 0
    maps = update_id_maps(con)
    return added.rows_added, maps.users_total, maps.items_total


def test_small_lightgcn_folder_given_split_end_to_end(con, tmp_path):
    assert _write_lightgcn_folder(tmp_path, 60, 100) == (390, 120)  # 60 * 5 + 15 * (0 + 1 + 2 + 3); 60 * 2
    assert _ingest_clean_lightgcn_folder(con, tmp_path, "small") == (510, 60, 100)
    # Numeric ids without timestamps keep their own number as index, whatever the order of the lines.
    for entity in ("user", "item"):
        assert con.execute(f"SELECT count(*) FROM {entity}_index WHERE CAST(raw_id AS BIGINT) <> idx").fetchall() == [
            (0,)]

    stats = build_split(con, SplitConfig(mode="given"))
    assert (stats.train + stats.valid, stats.test, stats.users, stats.items) == (390, 120, 60, 100)
    test = load_pairs(con, "test")
    # User 59 (59 % 4 = 3) has 8 training picks; its test items are 7 * 59 + 3 * 8 and + 3 * 9, mod 100.
    assert test.shape == (2, 120) and sorted(test[1][test[0] == 59].tolist()) == [37, 40]


def test_gowalla_given_split_end_to_end(con, gowalla_dir):
    assert _ingest_clean_lightgcn_folder(con, gowalla_dir, "gowalla") == (1_027_370, 29_858, 40_981)
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
