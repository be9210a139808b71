"""Tests of the power-law interaction generator: the same frame for a seed, exactly the edges asked for (all
distinct), Gowalla-like skew, and a file of it that the ``files`` source ingests and validation keeps whole."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from warehouse.generator import ITEM_EXPONENT, USER_EXPONENT, generate_interactions
from warehouse.ingest import ingest
from warehouse.sources import read_source
from warehouse.validation import ValidationConfig, quarantine

EDGES = 200_000


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return generate_interactions(EDGES, seed=3)


def _degrees(frame: pl.DataFrame, column: str) -> np.ndarray:
    """Degrees of a column's ids, largest first."""
    return frame[column].value_counts(sort=True)["count"].to_numpy()


def test_a_seed_gives_the_same_frame_and_another_seed_another(frame):
    assert_frame_equal(frame, generate_interactions(EDGES, seed=3))
    assert not frame.equals(generate_interactions(EDGES, seed=4))


@pytest.mark.parametrize("edges", [1, 999, EDGES])
def test_exactly_the_edges_asked_for_all_distinct(edges, frame):
    rows = frame if edges == EDGES else generate_interactions(edges, seed=3)
    assert rows.height == edges
    assert rows.select("user_id", "item_id").n_unique() == edges
    assert rows.columns == ["user_id", "item_id", "ts"]
    assert rows["ts"].is_sorted()


@pytest.mark.parametrize(("column", "exponent", "top_share"), [("item_id", ITEM_EXPONENT, (0.08, 0.25)),
                                                                ("user_id", USER_EXPONENT, (0.05, 0.2))])
def test_degrees_follow_the_rank_power_law(frame, column, exponent, top_share):
    degrees = _degrees(frame, column)
    # Uniform activity would give the top 1% about 1% of the edges; Gowalla's top 1% of items hold 13%.
    share = degrees[: degrees.size // 100].sum() / EDGES
    assert top_share[0] < share < top_share[1]
    # Degree against rank on log-log axes, past the head and before the tail's ties: a line of slope -exponent.
    ranks = np.arange(1, degrees.size + 1)
    middle = slice(10, degrees.size // 10)
    slope = np.polyfit(np.log(ranks[middle]), np.log(degrees[middle]), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.12)


def test_too_many_edges_for_the_ids_are_refused():
    with pytest.raises(ValueError, match="users"):
        generate_interactions(100, n_users=10, n_items=10)


def test_the_files_source_ingests_it_and_validation_keeps_every_row(con, tmp_path):
    path = tmp_path / "generated.parquet"
    generate_interactions(2_000, seed=1).write_parquet(path)
    interactions, items = read_source("files", path)
    assert ingest(con, interactions, items, source="files", content_key="generated").rows_added == 2_000
    result = quarantine(con, ValidationConfig(), datetime(2026, 6, 1))
    assert (result.clean_rows, result.rejected_rows) == (2_000, 0)
