"""Readers that turn each supported source into canonical interactions (and items, where the source has them).

Kinds: "demo" (generator), "files" (Parquet/CSV file, glob or folder), "lightgcn" (train.txt/test.txt),
"movielens" (ml-latest ratings.csv/movies.csv or ml-100k u.data/u.item), "amazon_reviews" (a folder of Amazon
Review Data 2018 ``<Category>_5.json.gz`` files). Problems raise SourceError.
"""

from __future__ import annotations

import glob as globlib
import gzip
import io
from pathlib import Path

import polars as pl

from warehouse.demo import DemoConfig, generate_demo
from warehouse.schema import canonical_interactions, canonical_items

KINDS = ("demo", "files", "lightgcn", "movielens", "amazon_reviews")
AMAZON_SUFFIX = "_5.json.gz"  # the per-category 5-core review files
REQUIRED_FILE_COLUMNS = ("user_id", "item_id", "ts")
FILE_SUFFIXES = (".parquet", ".csv")
# ml-100k's u.item has 19 genre flags in this fixed order (its README and u.genre).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)


class SourceError(ValueError):
    """A source cannot be read: the message says what, which file, and what to do."""


def _ensure_file(path: Path, what: str) -> Path:
    """Fail clearly when a required file is missing or empty."""
    if not path.is_file():
        raise SourceError(f"{what}: file {path} does not exist; check the path (or the folder's layout).")
    if path.stat().st_size == 0:
        raise SourceError(f"{what}: file {path} is empty (0 bytes); re-export or re-download it.")
    return path


def _require_columns(df: pl.DataFrame, required: tuple[str, ...], path: Path) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SourceError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; columns found: {df.columns}. "
            f"Rename the columns to {list(required)} (exact names are required)."
        )


def _read_csv(path: Path, data: io.BytesIO | None = None, **kwargs) -> pl.DataFrame:
    """Read the CSV at `path` (or its already-decoded `data`) strictly as UTF-8; Polars errors become SourceError."""
    try:
        return pl.read_csv(path if data is None else data, **kwargs)
    except pl.exceptions.ComputeError as exc:
        if "utf-8" in str(exc).lower():
            raise SourceError(
                f"{path}: not valid UTF-8 ({exc}); re-encode it, e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`."
            ) from exc
        raise SourceError(f"{path}: cannot be parsed as CSV ({exc}); check the separator and quoting.") from exc
    except pl.exceptions.NoDataError as exc:
        raise SourceError(f"{path}: the CSV has no data ({exc}); re-export it with a header and rows.") from exc


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceError(
            f"{path}: unreadable Parquet, probably truncated or not Parquet at all ({exc}); re-export the file."
        ) from exc


def _parse_ts(values: pl.Series, path: Path) -> pl.Series:
    """Timestamps from datetimes, dates, unix seconds, or ISO-like strings; unparseable values raise."""
    dtype = values.dtype
    if isinstance(dtype, pl.Datetime):
        return values
    if dtype == pl.Date:
        return values.cast(pl.Datetime("us"))
    if dtype.is_numeric():
        return pl.from_epoch(values.cast(pl.Int64), time_unit="s")
    text = values.cast(pl.Utf8).str.strip_chars()
    if text.drop_nulls().str.contains(r"^-?\d+$").all():
        return pl.from_epoch(text.cast(pl.Int64), time_unit="s")
    try:
        parsed = text.str.to_datetime(time_unit="us", strict=False)
    except pl.exceptions.ComputeError:
        # Polars infers the format from the values and raises when none looks like a timestamp (booleans, words):
        # then no value parses, and the first one is reported below like any other unparseable value.
        parsed = pl.Series("ts", [None] * len(text), dtype=pl.Datetime("us"))
    bad = parsed.is_null() & text.is_not_null()
    if bad.any():
        row = int(bad.arg_max())
        raise SourceError(
            f"{path}: column 'ts' row {row + 1} has {text[row]!r}, which is not a timestamp; "
            "use ISO 8601 (2026-01-05 12:00:00) or unix seconds."
        )
    return parsed


def _cast_weight(values: pl.Series, path: Path) -> pl.Series:
    cast = values.cast(pl.Float64, strict=False)
    bad = cast.is_null() & values.is_not_null()
    if bad.any():
        row = int(bad.arg_max())
        raise SourceError(f"{path}: column 'weight' row {row + 1} has {values[row]!r}, which is not a number.")
    return cast


def _expand(path: str) -> list[Path]:
    """A file, a folder (its Parquet and CSV files) or a glob, as a sorted list of files."""
    p = Path(path).expanduser()
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in FILE_SUFFIXES)
    elif any(ch in path for ch in "*?["):
        files = sorted(Path(f) for f in globlib.glob(str(p)) if Path(f).is_file())
    else:
        files = [p]
    if not files:
        raise SourceError(f"{path}: no Parquet or CSV files found; check the path or glob pattern.")
    return files


def _read_interaction_file(path: Path) -> pl.DataFrame:
    """One Parquet or CSV file with columns user_id, item_id, ts[, event, weight] as canonical interactions."""
    _ensure_file(path, "interaction file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df = _read_parquet(path)
    elif suffix == ".csv":
        # Everything as text first: ids keep leading zeros, and bad values get an error naming their row.
        df = _read_csv(path, infer_schema=False)
    else:
        raise SourceError(f"{path}: unsupported file type {suffix!r}; use .parquet or .csv.")
    if df.height == 0:
        raise SourceError(f"{path}: has a header but no rows; remove it or re-export it with data.")
    _require_columns(df, REQUIRED_FILE_COLUMNS, path)
    return canonical_interactions(
        df.with_columns(
            _parse_ts(df["ts"], path).alias("ts"),
            (_cast_weight(df["weight"], path) if "weight" in df.columns else pl.lit(1.0)).alias("weight"),
            (pl.col("event") if "event" in df.columns else pl.lit("interaction")).cast(pl.Utf8).alias("event"),
        )
    )


def _read_lightgcn_file(path: Path, split: str) -> pl.DataFrame:
    """`user item item ...` lines as one row per (user, item), exploded with Polars string ops."""
    _ensure_file(path, f"LightGCN {split} file")
    # read_lines is marked unstable in Polars 2.x; it is the direct way to get one string per line.
    lines = pl.read_lines(path)
    tokens = lines.select(pl.col("line").str.strip_chars().str.split(" ").alias("tok"))
    pairs = (
        tokens.select(pl.col("tok").list.first().alias("user_id"), pl.col("tok").list.slice(1).alias("item_id"))
        .explode("item_id")
        .filter(pl.col("item_id").is_not_null() & (pl.col("item_id") != ""))
    )
    bad = pairs.filter(~pl.col("user_id").str.contains(r"^\d+$") | ~pl.col("item_id").str.contains(r"^\d+$"))
    if bad.height:
        raise SourceError(
            f"{path}: expected lines of integer ids `user item item ...`, found user {bad['user_id'][0]!r} "
            f"item {bad['item_id'][0]!r}; check that this is a LightGCN-format file."
        )
    return canonical_interactions(
        pairs.with_columns(
            pl.lit(None, dtype=pl.Datetime("us")).alias("ts"),
            pl.lit("interaction").alias("event"),
            pl.lit(1.0).alias("weight"),
            pl.lit(split).alias("split"),
        )
    )


def _movielens_files(folder: Path) -> tuple[Path, Path]:
    if (folder / "ratings.csv").exists():
        return folder / "ratings.csv", folder / "movies.csv"
    if (folder / "u.data").exists():
        return folder / "u.data", folder / "u.item"
    raise SourceError(
        f"{folder}: not a MovieLens folder (neither ratings.csv nor u.data found); "
        "point to an unpacked ml-latest(-small) or ml-100k folder."
    )


def _read_movielens(folder: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    ratings_path, movies_path = _movielens_files(folder)
    _ensure_file(ratings_path, "MovieLens ratings")
    _ensure_file(movies_path, "MovieLens movies")
    if ratings_path.name == "ratings.csv":
        ratings = _read_csv(ratings_path, schema_overrides={"userId": pl.Utf8, "movieId": pl.Utf8})
        _require_columns(ratings, ("userId", "movieId", "rating", "timestamp"), ratings_path)
        movies = _read_csv(movies_path, schema_overrides={"movieId": pl.Utf8})
        _require_columns(movies, ("movieId", "title", "genres"), movies_path)
        items = movies.select(
            pl.col("movieId").alias("item_id"), pl.col("title"), pl.col("genres").alias("category")
        )
    else:
        ratings = _read_csv(
            ratings_path, separator="\t", has_header=False,
            new_columns=["userId", "movieId", "rating", "timestamp"],
            schema_overrides={"userId": pl.Utf8, "movieId": pl.Utf8},
        )
        # u.item is latin-1 ("Misérables"); decoding the whole file at once keeps titles intact.
        text = movies_path.read_bytes().decode("latin-1")
        movies = _read_csv(
            movies_path, io.BytesIO(text.encode()), separator="|", has_header=False, quote_char=None,
            new_columns=["movieId", "title", "release", "video_release", "url", *ML100K_GENRES],
            schema_overrides={"movieId": pl.Utf8},
        )
        genres = pl.concat_list(
            [pl.when(pl.col(g) == 1).then(pl.lit(g)) for g in ML100K_GENRES]
        ).list.drop_nulls().list.join("|")
        items = movies.select(pl.col("movieId").alias("item_id"), "title", genres.alias("category"))
    interactions = ratings.select(
        pl.col("userId").alias("user_id"),
        pl.col("movieId").alias("item_id"),
        pl.from_epoch(pl.col("timestamp").cast(pl.Int64), time_unit="s").alias("ts"),
        pl.lit("rating").alias("event"),
        pl.col("rating").cast(pl.Float64).alias("weight"),
    )
    return canonical_interactions(interactions), canonical_items(items)


def _amazon_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob(f"*{AMAZON_SUFFIX}"))
    if not files:
        raise SourceError(f"{folder}: no Amazon review files (*{AMAZON_SUFFIX}) found; point to the folder of the "
                          "per-category 5-core files of Amazon Review Data 2018.")
    return files


def _read_amazon_reviews(files: list[Path]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Reviews as interactions (reviewer, product, review time, the star rating as weight); each product's
    category is its file's. One gzip'd JSON object per line, as the data set ships."""
    frames = []
    for path in files:
        _ensure_file(path, "Amazon reviews")
        try:
            reviews = pl.read_ndjson(io.BytesIO(gzip.decompress(path.read_bytes())),
                                     schema_overrides={"reviewerID": pl.Utf8, "asin": pl.Utf8})
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise SourceError(f"{path}: not gzip'd JSON lines of reviews ({exc}); re-download the file.") from exc
        _require_columns(reviews, ("reviewerID", "asin", "unixReviewTime", "overall"), path)
        frames.append(reviews.select(
            pl.col("reviewerID").alias("user_id"), pl.col("asin").alias("item_id"),
            pl.from_epoch(pl.col("unixReviewTime").cast(pl.Int64), time_unit="s").alias("ts"),
            pl.lit("review").alias("event"), pl.col("overall").cast(pl.Float64).alias("weight"),
            pl.lit(path.name.removesuffix(AMAZON_SUFFIX)).alias("category"),
        ))
    reviews = pl.concat(frames)
    items = reviews.group_by("item_id").agg(pl.col("category").first()).with_columns(pl.lit(None, pl.Utf8).alias("title"))
    return canonical_interactions(reviews.drop("category")), canonical_items(items.sort("item_id"))


def source_files(kind: str, path: str | Path | None) -> list[Path]:
    """The files a source reads (for content keys); empty for the generated demo."""
    if kind == "demo":
        return []
    if path is None:
        raise SourceError(f"source kind {kind!r} needs a path; pass the file, glob or folder to read.")
    if kind == "files":
        return _expand(str(path))
    folder = Path(path).expanduser()
    if kind == "lightgcn":
        return [folder / "train.txt", folder / "test.txt"]
    if kind == "movielens":
        return list(_movielens_files(folder))
    if kind == "amazon_reviews":
        return _amazon_files(folder)
    raise SourceError(f"unknown source kind {kind!r}; use one of {KINDS}.")


def read_source(
    kind: str, path: str | Path | None = None, *, demo_config: DemoConfig | None = None
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Read a source as (canonical interactions, canonical items or None).

    Interactions: user_id Utf8, item_id Utf8, ts Datetime, event Utf8, weight Float64, split Utf8 (NULL unless
    the source comes with a given split). Items: item_id, title, category.
    """
    files = source_files(kind, path)
    if kind == "demo":
        interactions, items = generate_demo(demo_config or DemoConfig())
        return canonical_interactions(interactions), canonical_items(items)
    if kind == "files":
        return pl.concat([_read_interaction_file(f) for f in files]), None
    if kind == "lightgcn":
        return pl.concat([_read_lightgcn_file(f, split) for f, split in zip(files, ("train", "test"))]), None
    if kind == "amazon_reviews":
        return _read_amazon_reviews(files)
    return _read_movielens(Path(path).expanduser())
