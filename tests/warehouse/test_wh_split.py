"""Tests of build_split(): exact part counts for each mode on hand-made frames, collapsing of repeated pairs,
no pair in two parts, determinism of the seeded valid share, and clear errors.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from warehouse.id_maps import update_id_maps
from warehouse.ingest import ingest
from warehouse.split import SplitConfig, SplitError, build_split, load_pair_times, load_pairs
from warehouse.validation import ValidationConfig, quarantine

NOW = datetime(2026, 3, 10)
DAY0 = datetime(2026, 1, 1)


def _day(d: int) -> datetime:
    return DAY0 + timedelta(days=d)


# (user, item, day, weight): a has 5 pairs, b has 2 pairs (one repeated), c has 4 pairs.
TIMED = [
    ("a", "i1", 1, 1.0), ("a", "i2", 2, 1.0), ("a", "i3", 3, 1.0), ("a", "i4", 4, 1.0), ("a", "i5", 6, 1.0),
    ("b", "i1", 2, 1.0), ("b", "i2", 6, 1.0), ("b", "i1", 7, 3.0),
    ("c", "i3", 1, 1.0), ("c", "i4", 2, 1.0), ("c", "i5", 3, 1.0), ("c", "i6", 4, 1.0),
]
# (user, item, split): (b, i2) is listed in both train and test: test wins.
GIVEN = [
    ("a", "i1", "train"), ("a", "i2", "train"), ("a", "i3", "train"), ("a", "i4", "train"), ("a", "i5", "test"),
    ("b", "i1", "train"), ("b", "i2", "train"), ("b", "i2", "test"),
    ("c", "i3", "train"), ("c", "i4", "train"), ("c", "i5", "train"), ("c", "i6", "train"),
]


def _prepare(con, frame: pl.DataFrame) -> None:
    ingest(con, frame, None, "hand", "k", now=NOW)
    quarantine(con, ValidationConfig(), NOW)
    update_id_maps(con)


def _timed(con) -> None:
    _prepare(con, pl.DataFrame(
        [(u, i, _day(d), w) for u, i, d, w in TIMED], schema=["user_id", "item_id", "ts", "weight"], orient="row"
    ))


def _parts(con) -> set[tuple[str, str, str]]:
    rows = con.execute(
        """
        SELECT u.raw_id, i.raw_id, s.part FROM interaction_split s
        JOIN user_index u ON u.idx = s.user_idx JOIN item_index i ON i.idx = s.item_idx
        """
    ).fetchall()
    return set(rows)


def _assert_pairs_unique(con) -> None:
    total, distinct = con.execute(
        "SELECT count(*), count(DISTINCT (user_idx, item_idx)) FROM interaction_split"
    ).fetchall()[0]
    assert total == distinct


def test_temporal_with_cutoff(con):
    _timed(con)
    stats = build_split(con, SplitConfig(mode="temporal", cutoff=_day(5), valid_fraction=0.5))
    assert (stats.train, stats.valid, stats.test, stats.users, stats.items) == (4, 4, 3, 3, 6)
    assert stats.cutoff == _day(5)
    # the median of the 9 raw timestamps up to the cut-off is day 2: the validation slice is (day 2, day 5]
    assert stats.valid_cutoff == _day(2)
    parts = _parts(con)
    assert {p for p in parts if p[2] == "test"} == {("a", "i5", "test"), ("b", "i1", "test"), ("b", "i2", "test")}
    # valid is every pair last seen in the slice, whoever the user
    assert {p for p in parts if p[2] == "valid"} == {
        ("a", "i4", "valid"), ("a", "i3", "valid"), ("c", "i6", "valid"), ("c", "i5", "valid"),
    }
    # (b, i1) seen twice collapses to one pair with the latest ts and the max weight
    assert con.execute(
        "SELECT ts, weight FROM interaction_split WHERE part = 'test' AND weight > 1"
    ).fetchall() == [(_day(7), 3.0)]
    _assert_pairs_unique(con)


def test_temporal_validation_slice_lies_strictly_between_train_and_test_in_time(con):
    _timed(con)
    stats = build_split(con, SplitConfig(mode="temporal", test_fraction=0.25, valid_fraction=0.3))
    spans = dict(con.execute(
        "SELECT part, (min(ts), max(ts)) FROM interaction_split GROUP BY part"
    ).fetchall())
    (_, train_last), (valid_first, valid_last), (test_first, _) = spans["train"], spans["valid"], spans["test"]
    assert train_last <= stats.valid_cutoff < valid_first <= valid_last <= stats.cutoff < test_first
    assert (stats.train, stats.valid, stats.test) == (6, 2, 3)
    _assert_pairs_unique(con)


def test_pair_times_follow_the_pairs_and_are_absent_for_a_given_split(con):
    _timed(con)
    build_split(con, SplitConfig(mode="temporal", cutoff=_day(5), valid_fraction=0.5))
    pairs, seconds = load_pairs(con, "test"), load_pair_times(con, "test")
    users = dict(con.execute("SELECT idx, raw_id FROM user_index").fetchall())
    items = dict(con.execute("SELECT idx, raw_id FROM item_index").fetchall())
    as_days = {(users[u], items[i]): (datetime.fromtimestamp(t, timezone.utc).replace(tzinfo=None) - DAY0).days
               for (u, i), t in zip(pairs.T.tolist(), seconds)}
    assert as_days == {("a", "i5"): 6, ("b", "i1"): 7, ("b", "i2"): 6}  # a repeated pair keeps its latest ts


def test_given_split_has_no_pair_times(con):
    _prepare(con, pl.DataFrame(GIVEN, schema=["user_id", "item_id", "split"], orient="row"))
    build_split(con, SplitConfig(mode="given", valid_fraction=0.5))
    assert load_pair_times(con, "train") is None


def test_temporal_quantile_cutoff(con):
    _timed(con)
    stats = build_split(con, SplitConfig(mode="temporal", test_fraction=0.25, valid_fraction=0.0))
    # the 0.75 quantile of the 12 raw timestamps is day 4: pairs whose latest ts is after it go to test
    assert stats.cutoff == _day(4)
    assert (stats.train, stats.valid, stats.test) == (8, 0, 3)


def test_leave_last_out(con):
    _timed(con)
    stats = build_split(con, SplitConfig(mode="leave_last_out"))
    assert (stats.train, stats.valid, stats.test) == (7, 2, 2)
    parts = _parts(con)
    assert {p for p in parts if p[2] != "train"} == {
        ("a", "i5", "test"), ("a", "i4", "valid"), ("c", "i6", "test"), ("c", "i5", "valid"),
    }
    assert ("b", "i1", "train") in parts and ("b", "i2", "train") in parts  # b has < 3 pairs
    _assert_pairs_unique(con)


def test_given_split(con):
    _prepare(con, pl.DataFrame(GIVEN, schema=["user_id", "item_id", "split"], orient="row"))
    stats = build_split(con, SplitConfig(mode="given", valid_fraction=0.5))
    assert (stats.train, stats.valid, stats.test, stats.users, stats.items) == (5, 4, 2, 3, 6)
    parts = _parts(con)
    assert ("b", "i2", "test") in parts and ("b", "i1", "train") in parts
    _assert_pairs_unique(con)
    test = load_pairs(con, "test")
    assert test.dtype == np.int64 and test.shape == (2, 2)


def test_given_valid_share_is_seeded(con):
    users = [f"u{k}" for k in range(40) for _ in range(10)]
    items = [f"i{j}" for _ in range(40) for j in range(10)]
    split = ["test" if j == 0 else "train" for _ in range(40) for j in range(10)]
    _prepare(con, pl.DataFrame({"user_id": users, "item_id": items, "split": split}))

    def valid_with(seed: int) -> np.ndarray:
        build_split(con, SplitConfig(mode="given", valid_fraction=0.25, seed=seed))
        return load_pairs(con, "valid")

    first = valid_with(2020)
    assert first.shape == (2, 40 * 3)  # ceil(0.25 * 9) = 3 valid pairs per user
    np.testing.assert_array_equal(valid_with(2020), first)
    assert not np.array_equal(valid_with(7), first)
    assert load_pairs(con, "train").shape[1] + first.shape[1] + load_pairs(con, "test").shape[1] == 400


def test_given_valid_holds_out_every_user_with_two_training_pairs(con):
    # A 5% share of 2 to 9 training pairs is under one pair; each such user still gets one in validation, so
    # validation covers the light users that test covers. A user with one training pair keeps it.
    users = [f"u{n}" for n in range(1, 10) for _ in range(n + 1)]
    items = [f"i{j}" for n in range(1, 10) for j in range(n + 1)]
    split = ["test" if j == 0 else "train" for n in range(1, 10) for j in range(n + 1)]
    _prepare(con, pl.DataFrame({"user_id": users, "item_id": items, "split": split}))
    stats = build_split(con, SplitConfig(mode="given", valid_fraction=0.05))
    assert (stats.train, stats.valid, stats.test) == (45 - 8, 8, 9)
    held_out = dict(con.execute("""SELECT u.raw_id, count(*) FILTER (s.part = 'valid') FROM interaction_split s
                                   JOIN user_index u ON u.idx = s.user_idx GROUP BY ALL""").fetchall())
    assert held_out == {"u1": 0, **{f"u{n}": 1 for n in range(2, 10)}}


def test_clear_errors(con):
    _prepare(con, pl.DataFrame(GIVEN, schema=["user_id", "item_id", "split"], orient="row"))
    with pytest.raises(SplitError, match=r"mode='temporal' orders interactions by time, but 12 of 12 .* no ts"):
        build_split(con, SplitConfig(mode="temporal"))
    with pytest.raises(SplitError, match="mode='leave_last_out'"):
        build_split(con, SplitConfig(mode="leave_last_out"))
    with pytest.raises(SplitError, match="unknown part 'holdout'"):
        load_pairs(con, "holdout")


def test_given_needs_split_column(con):
    _timed(con)
    with pytest.raises(SplitError, match=r"mode='given' needs the source's split, but 12 of 12"):
        build_split(con, SplitConfig(mode="given"))


def test_needs_id_maps(con):
    ingest(con, pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "ts": [_day(1)]}), None, "s", "k", now=NOW)
    quarantine(con, ValidationConfig(), NOW)
    with pytest.raises(SplitError, match="run update_id_maps"):
        build_split(con, SplitConfig())
