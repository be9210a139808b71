"""Tests of the demo generator: determinism by seed and realistic shape (power law, communities, cold start).

Default-size data (about 58k interactions) is generated in well under a second.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from warehouse.demo import DemoConfig, demo_content_key, generate_demo


@pytest.fixture(scope="module")
def demo() -> tuple[pl.DataFrame, pl.DataFrame]:
    return generate_demo(DemoConfig())


def test_same_seed_gives_equal_frames(demo):
    again = generate_demo(DemoConfig())
    assert_frame_equal(demo[0], again[0])
    assert_frame_equal(demo[1], again[1])


def test_different_seed_gives_different_frames(demo):
    other, _ = generate_demo(DemoConfig(seed=8))
    assert not demo[0].equals(other)
    assert demo_content_key(DemoConfig()) != demo_content_key(DemoConfig(seed=8))
    assert demo_content_key(DemoConfig()) == demo_content_key(DemoConfig())


def test_a_later_batch_is_new_interactions_from_the_same_world(demo):
    interactions, items = demo
    later, later_items = generate_demo(DemoConfig(batch=3))
    assert_frame_equal(items.drop("title"), later_items.drop("title"))  # the same catalogue and communities
    assert not interactions.equals(later)
    assert demo_content_key(DemoConfig(batch=3)) != demo_content_key(DemoConfig())
    # The same users are active to the same degree; only which items they touch and when is drawn anew.
    per_user = interactions.group_by("user_id").len().sort("user_id")
    assert_frame_equal(per_user, later.group_by("user_id").len().sort("user_id"))
    # Same popularity law: the ten most popular items of either batch overlap mostly.
    top = [set(frame.group_by("item_id").len().sort("len", descending=True)["item_id"][:10])
           for frame in (interactions, later)]
    assert len(top[0] & top[1]) >= 7


def test_schema_and_ids(demo):
    interactions, items = demo
    assert interactions.schema == pl.Schema(
        {"user_id": pl.Utf8, "item_id": pl.Utf8, "ts": pl.Datetime("us"), "event": pl.Utf8, "weight": pl.Float64}
    )
    assert items.columns == ["item_id", "title", "category"]
    assert interactions["user_id"].str.contains(r"^u\d{5}$").all()
    assert interactions["item_id"].str.contains(r"^i\d{5}$").all()
    assert items.height == 1500 and items["item_id"].n_unique() == 1500
    assert interactions["item_id"].is_in(items["item_id"].implode()).all()
    assert interactions["user_id"].n_unique() == 3000
    assert interactions.null_count().sum_horizontal().item() == 0
    assert set(interactions["event"].unique()) == {"view", "click", "purchase"}


def test_about_twenty_interactions_per_user(demo):
    assert 18.0 <= demo[0].height / 3000 <= 22.0


def test_item_popularity_is_heavy_tailed(demo):
    counts = demo[0].group_by("item_id").len().sort("len", descending=True)["len"]
    top_decile = counts.head(len(counts) // 10).sum()
    assert top_decile / demo[0].height > 0.40


def test_cold_start_share(demo):
    per_user = demo[0].group_by("user_id").len()["len"]
    cold = (per_user <= 3).mean()
    assert cold == pytest.approx(0.10, abs=0.01)
    assert per_user.min() >= 1


def test_users_mostly_stay_in_their_community(demo):
    interactions, items = demo
    # A user's community is the category they use most; most of their interactions fall inside it.
    with_cat = interactions.join(items.select("item_id", "category"), on="item_id")
    per_user = with_cat.group_by("user_id", "category").len()
    top_share = per_user.group_by("user_id").agg(pl.col("len").max() / pl.col("len").sum())["len"]
    assert top_share.mean() > 0.7
    assert items["category"].n_unique() == 8


def test_timestamps_span_the_weeks(demo):
    ts = demo[0]["ts"]
    start = datetime(2026, 1, 5)
    assert ts.min() >= start
    assert ts.max() < start + timedelta(weeks=8)
    weeks = ((ts - start).dt.total_days() // 7).unique()
    assert sorted(weeks.to_list()) == list(range(8))
