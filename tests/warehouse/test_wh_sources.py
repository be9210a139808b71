"""Tests of read_source on the real shared data sets, on the MovieLens slice in tests/fixtures and on small files
written here, including error messages.

Gowalla and ml-latest-small come from GRAPHREC_SHARED_DIR; counts are those of the published files (Gowalla as split
by LightGCN, He et al., SIGIR 2020; GroupLens' Oct 2016 ml-latest-small); the slice's are in tests/fixtures/README.md.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from warehouse.schema import INTERACTIONS_SCHEMA
from warehouse.sources import SourceError, read_source, source_files

CANONICAL = pl.Schema(INTERACTIONS_SCHEMA)


def test_gowalla_lightgcn_counts(gowalla_dir):
    interactions, items = read_source("lightgcn", gowalla_dir)
    assert items is None
    assert interactions.schema == CANONICAL
    by_split = dict(interactions.group_by("split").len().iter_rows())
    assert by_split == {"train": 810_128, "test": 217_242}
    assert interactions["user_id"].n_unique() == 29_858
    assert interactions["item_id"].n_unique() == 40_981
    assert interactions["ts"].null_count() == interactions.height
    # No (user, item) pair is in both train and test: 810,128 + 217,242 distinct pairs.
    assert interactions.select("user_id", "item_id").unique().height == 1_027_370


def test_movielens_latest_small_counts(ml_small_dir):
    # This folder is GroupLens' Oct 2016 edition (the 2018 one has 100,836 ratings): 100,004 ratings, 671 users,
    # 9,125 movies (9,066 rated).
    interactions, items = read_source("movielens", ml_small_dir)
    assert interactions.schema == CANONICAL
    assert interactions.height == 100_004
    assert interactions["user_id"].n_unique() == 671
    assert interactions["item_id"].n_unique() == 9_066
    assert items.height == 9_125
    assert interactions["weight"].min() == 0.5 and interactions["weight"].max() == 5.0
    assert interactions["ts"].min() == datetime(1995, 1, 9, 11, 46, 49)
    assert interactions["ts"].max() == datetime(2016, 10, 16, 17, 57, 24)
    toy_story = items.filter(pl.col("item_id") == "1").row(0, named=True)
    assert toy_story == {
        "item_id": "1", "title": "Toy Story (1995)", "category": "Adventure|Animation|Children|Comedy|Fantasy"
    }
    assert interactions["item_id"].is_in(items["item_id"].implode()).all()


def test_movielens_slice_reads_ratings_and_movies(ml_slice_dir):
    interactions, items = read_source("movielens", ml_slice_dir)
    assert interactions.schema == CANONICAL
    assert (interactions.height, interactions["user_id"].n_unique(), interactions["item_id"].n_unique()) == (962, 14, 650)
    assert items.height == 650 and items["item_id"].n_unique() == 650
    assert interactions["weight"].min() == 0.5 and interactions["weight"].max() == 5.0
    by_rating = dict(interactions.group_by("weight").len().sort("weight").iter_rows())
    assert by_rating == {0.5: 2, 1.0: 28, 1.5: 4, 2.0: 64, 2.5: 16, 3.0: 208, 3.5: 79, 4.0: 284, 4.5: 64, 5.0: 213}
    assert interactions["ts"].min() == datetime(1996, 6, 21, 11, 9, 55)
    assert interactions["ts"].max() == datetime(2014, 2, 6, 3, 51, 7)
    # The first row of ratings.csv: user 1 gave movie 31 2.5 at Unix time 1260759144.
    assert interactions.row(0) == ("1", "31", datetime(2009, 12, 14, 2, 52, 24), "rating", 2.5, None)
    toy_story = items.filter(pl.col("item_id") == "1").row(0, named=True)
    assert toy_story == {
        "item_id": "1", "title": "Toy Story (1995)", "category": "Adventure|Animation|Children|Comedy|Fantasy"
    }
    # A quoted title that holds a comma stays one field.
    assert items.filter(pl.col("item_id") == "50").rows() == [
        ("50", "Usual Suspects, The (1995)", "Crime|Mystery|Thriller")
    ]
    assert interactions["item_id"].is_in(items["item_id"].implode()).all()


def test_movielens_100k_latin1(tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t4\t881250949\n2\t11\t3\t891717742\n")
    flags = ["0"] * 19
    drama_musical = flags.copy()
    drama_musical[8] = drama_musical[12] = "1"
    lines = [
        "10|Misérables, Les (1995)|01-Jan-1995||http://x|" + "|".join(drama_musical),
        "11|Plain (1996)|01-Jan-1996||http://y|" + "|".join(flags),
    ]
    (tmp_path / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    interactions, items = read_source("movielens", tmp_path)
    assert interactions["weight"].to_list() == [4.0, 3.0]
    assert interactions["ts"][0] == datetime(1997, 12, 4, 15, 55, 49)
    assert items.rows() == [("10", "Misérables, Les (1995)", "Drama|Musical"), ("11", "Plain (1996)", "")]


def test_demo_source_is_canonical():
    interactions, items = read_source("demo")
    assert interactions.schema == CANONICAL
    assert interactions["split"].null_count() == interactions.height
    assert items.columns == ["item_id", "title", "category"]


def test_csv_parquet_glob_and_folder(tmp_path):
    (tmp_path / "a.csv").write_text("user_id,item_id,ts,event\n007,1,2026-01-05 10:00:00,click\n8,2,2026-01-06,view\n")
    (tmp_path / "b.csv").write_text("item_id,user_id,ts,weight\n3,9,1767600000,2.5\n")
    pl.DataFrame({
        "user_id": [10], "item_id": [4], "ts": [datetime(2026, 1, 7)], "event": ["buy"], "weight": [3.0],
        "extra": ["ignored"],
    }).write_parquet(tmp_path / "c.parquet")

    one, items = read_source("files", tmp_path / "a.csv")
    assert items is None
    assert one.schema == CANONICAL
    assert one.rows() == [
        ("007", "1", datetime(2026, 1, 5, 10), "click", 1.0, None),
        ("8", "2", datetime(2026, 1, 6), "view", 1.0, None),
    ]
    globbed, _ = read_source("files", str(tmp_path / "*.csv"))
    assert globbed["user_id"].to_list() == ["007", "8", "9"]
    assert globbed.row(2) == ("9", "3", datetime(2026, 1, 5, 8), "interaction", 2.5, None)
    folder, _ = read_source("files", tmp_path)
    assert folder.height == 4
    assert folder.row(3) == ("10", "4", datetime(2026, 1, 7), "buy", 3.0, None)
    assert [p.name for p in source_files("files", tmp_path)] == ["a.csv", "b.csv", "c.parquet"]


def test_missing_column_names_column_and_file(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user,item_id,ts\n1,2,2026-01-05\n")
    with pytest.raises(SourceError, match=r"events\.csv.*'user_id'.*columns found: \['user', 'item_id', 'ts'\]"):
        read_source("files", path)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.csv", b"", r"empty\.csv is empty"),
    ("header.csv", b"user_id,item_id,ts\n", r"header\.csv: has a header but no rows"),
    ("latin.csv", "user_id,item_id,ts\nJosé,2,2026-01-05\n".encode("latin-1"), r"latin\.csv: not valid UTF-8.*iconv"),
    # Bad values name the column, the row and the value.
    ("ts.csv", b"user_id,item_id,ts\n1,2,2026-01-05\n1,3,yesterday\n", r"ts\.csv: column 'ts' row 2 has 'yesterday'"),
    ("w.csv", b"user_id,item_id,ts,weight\n1,2,2026-01-05,heavy\n", r"w\.csv: column 'weight' row 1 has 'heavy'"),
])
def test_unreadable_csv_files_say_what_is_wrong_and_where(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SourceError, match=message):
        read_source("files", tmp_path / name)


def test_truncated_parquet(tmp_path):
    good = tmp_path / "good.parquet"
    frame = pl.DataFrame({"user_id": ["1"] * 100, "item_id": ["2"] * 100, "ts": [datetime(2026, 1, 5)] * 100})
    frame.write_parquet(good)
    data = good.read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"cut\.parquet: unreadable Parquet"):
        read_source("files", tmp_path / "cut.parquet")


def test_missing_paths_and_kinds(tmp_path):
    with pytest.raises(SourceError, match="no Parquet or CSV files found"):
        read_source("files", str(tmp_path / "*.parquet"))
    (tmp_path / "train.txt").write_text("0 1 2\n")
    with pytest.raises(SourceError, match=r"test\.txt does not exist"):
        read_source("lightgcn", tmp_path)
    with pytest.raises(SourceError, match="not a MovieLens folder"):
        read_source("movielens", tmp_path)
    with pytest.raises(SourceError, match="unknown source kind 'kafka'"):
        read_source("kafka", tmp_path)
    with pytest.raises(SourceError, match="needs a path"):
        read_source("files")


def test_lightgcn_small_folder(tmp_path):
    (tmp_path / "train.txt").write_text("0 5 6\n1 7\n2\n")
    (tmp_path / "test.txt").write_text("0 8\n1 5 6\n2 7\n")
    interactions, _ = read_source("lightgcn", tmp_path)
    assert interactions.select("user_id", "item_id", "split").rows() == [
        ("0", "5", "train"), ("0", "6", "train"), ("1", "7", "train"),
        ("0", "8", "test"), ("1", "5", "test"), ("1", "6", "test"), ("2", "7", "test"),
    ]
    (tmp_path / "test.txt").write_text("user item\n")
    with pytest.raises(SourceError, match="expected lines of integer ids"):
        read_source("lightgcn", tmp_path)


def test_amazon_review_files_become_interactions_with_their_category(tmp_path):
    import gzip
    import json

    reviews = [{"reviewerID": "A1", "asin": "B01", "unixReviewTime": 1500000000, "overall": 5.0, "reviewText": "x"},
               {"reviewerID": "A2", "asin": "B01", "unixReviewTime": 1500086400, "overall": 2.0}]
    (tmp_path / "Gift_Cards_5.json.gz").write_bytes(gzip.compress("\n".join(map(json.dumps, reviews)).encode()))
    (tmp_path / "All_Beauty_5.json.gz").write_bytes(gzip.compress(json.dumps(
        {"reviewerID": "A1", "asin": "C07", "unixReviewTime": 1400000000, "overall": 4.0}).encode()))
    interactions, items = read_source("amazon_reviews", tmp_path)
    assert interactions.select("user_id", "item_id", "weight").rows() == [("A1", "C07", 4.0), ("A1", "B01", 5.0),
                                                                          ("A2", "B01", 2.0)]
    assert interactions["ts"][0] == datetime(2014, 5, 13, 16, 53, 20)
    assert items.select("item_id", "category").rows() == [("B01", "Gift_Cards"), ("C07", "All_Beauty")]
    with pytest.raises(SourceError, match=r"no Amazon review files \(\*_5.json.gz\) found"):
        read_source("amazon_reviews", tmp_path / "empty")
