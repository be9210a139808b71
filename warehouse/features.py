"""Serving-time features of items and users for graph-free students: hashed TF-IDF of item titles, category
multi-hot, log popularity; a user is the mean of their interacted items' features plus their log degree.

Everything here needs only an item's own row and a user's own interactions (no graph propagation), so a user or
item that arrives after training gets features the same way.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import duckdb
import numpy as np
import polars as pl
import scipy.sparse as sp

TOKEN = re.compile(r"[a-z0-9]+")


def item_table(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Items aligned to their dense index: ``idx``, ``title``, ``category`` (NULL where raw_items has no row)."""
    return con.sql(
        "SELECT i.idx, r.title, r.category FROM item_index i LEFT JOIN raw_items r ON r.item_id = i.raw_id "
        "ORDER BY i.idx"
    ).pl()


def hashed_tfidf(texts: Sequence[str | None], dim: int = 256) -> np.ndarray:
    """TF-IDF of lower-cased alphanumeric tokens hashed into ``dim`` signed buckets (crc32: stable across runs and
    machines), rows L2-normalized; a missing text gives a zero row.

    The vocabulary is never stored, so a new title hashes into the same space. IDF comes from ``texts``.

    Shapes:
        output: ``(len(texts), dim)`` float32.
    """
    rows, cols, values = [], [], []
    # Tokenizing is a Python loop over short titles (about 10k on MovieLens); no installed library hashes
    # tokens stably (Polars' hash may change between versions).
    for row, text in enumerate(texts):
        for token in TOKEN.findall((text or "").lower()):
            digest = zlib.crc32(token.encode())
            rows.append(row)
            cols.append(digest % dim)
            values.append(1.0 if digest & 0x80000000 else -1.0)
    counts = sp.coo_array((np.asarray(values, dtype=np.float32), (np.asarray(rows, dtype=np.int64),
                           np.asarray(cols, dtype=np.int64))), shape=(len(texts), dim)).tocsr()
    document_frequency = np.asarray((counts != 0).sum(axis=0)).ravel()
    idf = np.log((1 + len(texts)) / (1 + document_frequency)) + 1.0
    tfidf = (counts @ sp.diags_array(idf.astype(np.float32))).toarray()
    norms = np.linalg.norm(tfidf, axis=1, keepdims=True)
    return np.divide(tfidf, norms, out=np.zeros_like(tfidf), where=norms > 0).astype(np.float32)


def category_multi_hot(categories: Sequence[str | None], separator: str = "|") -> tuple[np.ndarray, list[str]]:
    """Multi-hot matrix of ``separator``-joined category lists and its sorted vocabulary.

    Shapes:
        output: ``(len(categories), len(vocabulary))`` float32.
    """
    split = [[c for c in (value or "").split(separator) if c] for value in categories]
    vocabulary = sorted({c for cats in split for c in cats})
    column = {c: i for i, c in enumerate(vocabulary)}
    matrix = np.zeros((len(categories), len(vocabulary)), dtype=np.float32)
    for row, cats in enumerate(split):
        matrix[row, [column[c] for c in cats]] = 1.0
    return matrix, vocabulary


def item_features(items: pl.DataFrame, popularity: np.ndarray, text_dim: int = 256) -> np.ndarray:
    """Item features in index order: hashed TF-IDF of ``title`` (``text_dim``), ``category`` multi-hot, and
    ``log1p(popularity)`` scaled to at most 1. ``items`` is :func:`item_table`'s frame (a frame without titles or
    categories, e.g. Gowalla's, gives popularity alone).

    Shapes:
        popularity: ``(num_items,)`` training interactions per item; output: ``(num_items, F)`` float32.
    """
    if items.height != popularity.size:
        raise ValueError(f"{items.height} item rows but {popularity.size} popularity values: both must cover every "
                         "item index once, in index order")
    parts = []
    if "title" in items.columns and items["title"].drop_nulls().len():
        parts.append(hashed_tfidf(items["title"].to_list(), text_dim))
    if "category" in items.columns and items["category"].drop_nulls().len():
        parts.append(category_multi_hot(items["category"].to_list())[0])
    log_popularity = np.log1p(popularity.astype(np.float32))
    parts.append((log_popularity / max(float(log_popularity.max()), 1.0))[:, None])
    return np.concatenate(parts, axis=1).astype(np.float32)


def user_features(features: np.ndarray, user_items: sp.csr_array) -> np.ndarray:
    """Each user's mean item features and ``log1p`` of their interaction count (zeros for a user with none).

    Shapes:
        features: ``(num_items, F)``; user_items: ``(num_users, num_items)`` binary; output: ``(num_users, F + 1)``.
    """
    degree = np.asarray(user_items.sum(axis=1)).ravel().astype(np.float32)
    inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    mean = sp.diags_array(inverse) @ user_items @ features
    return np.concatenate([mean, np.log1p(degree)[:, None]], axis=1).astype(np.float32)


def interaction_matrix(users: np.ndarray, items: np.ndarray, num_users: int, num_items: int) -> sp.csr_array:
    """Binary ``(num_users, num_items)`` CSR matrix of (user, item) index pairs (duplicates count once)."""
    matrix = sp.coo_array((np.ones(users.size, dtype=np.float32), (users, items)), shape=(num_users, num_items)).tocsr()
    matrix.data[:] = 1.0
    return matrix


def serving_features(items: pl.DataFrame, train: sp.csr_array, interactions: sp.csr_array | None = None,
                     text_dim: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(item_features, user_features)``: items with their popularity in ``train``; users from ``interactions``
    (default ``train``; pass a matrix that also holds later users' interactions to featurize them)."""
    features = item_features(items, np.asarray(train.sum(axis=0)).ravel(), text_dim)
    return features, user_features(features, train if interactions is None else interactions)


def later_user_interactions(con: duckdb.DuckDBPyConnection, num_users: int, num_items: int) -> np.ndarray:
    """``(2, E)`` (user index, item index) of the clean interactions of users whose index is ``num_users`` or more
    (users appended to the id map after the training graph was built), with items known to the training graph."""
    pairs = con.execute(
        "SELECT DISTINCT u.idx AS user_idx, i.idx AS item_idx FROM clean_interactions c "
        "JOIN user_index u ON u.raw_id = c.user_id JOIN item_index i ON i.raw_id = c.item_id "
        "WHERE u.idx >= $users AND i.idx < $items ORDER BY 1, 2", {"users": num_users, "items": num_items}
    ).fetchnumpy()
    return np.stack([np.asarray(pairs["user_idx"], dtype=np.int64), np.asarray(pairs["item_idx"], dtype=np.int64)])
