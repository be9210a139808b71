"""A seeded power-law interaction generator for growth measurements: any number of distinct (user, item) edges,
with Zipf-like user activity and item popularity and timestamps over a year, as the rows of an interaction file
(``user_id``, ``item_id``, ``ts``) that the ``files`` source ingests.

Users and items grow with the edges at a fixed density (Gowalla's: about 40 edges per user, 30 per item), so a
series of sizes measures how cost grows with the data rather than with density. Everything is vectorised numpy and
Polars: 16 M edges take seconds and well under 2 GB.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from warehouse.demo import id_expr

EDGES_PER_USER = 40
EDGES_PER_ITEM = 30
# Rank weights r ** -exponent: the degree distributions then have power-law tails (exponent 1 + 1/exponent). The
# defaults are Gowalla's: its degree-against-rank slopes (ranks 10 to n/10, log-log) are -0.50 for users and -0.58
# for items, and its top 1% of items hold 13% of the edges.
USER_EXPONENT = 0.5
ITEM_EXPONENT = 0.6
START = datetime(2025, 1, 1)
SPAN_SECONDS = 365 * 86400
# Extra draws per round beyond the edges still missing: repeats of a drawn pair are dropped, so a round falls short.
OVERDRAW = 1.1


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities ∝ rank ** -exponent, ranks shuffled over the ids (popularity has nothing to do with the id)."""
    weights = rng.permutation(n).astype(np.float64) + 1.0
    weights **= -exponent
    return weights / weights.sum()


def _distinct_pairs(edges: int, users: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``edges`` distinct pair keys ``user * n_items + item``, each pair drawn from the product of the user and item
    probabilities (a bipartite Chung–Lu graph); rounds of draws top up what de-duplication removed."""
    n_items = items.size
    keys = np.empty(0, dtype=np.int64)
    while keys.size < edges:
        draws = int((edges - keys.size) * OVERDRAW) + 1024
        new = rng.choice(users.size, draws, p=users).astype(np.int64) * n_items + rng.choice(n_items, draws, p=items)
        keys = np.unique(np.concatenate([keys, new]))
    # A uniform subset of the distinct pairs: exactly `edges`, with the shape of all of them.
    return np.sort(rng.choice(keys, edges, replace=False))


def generate_interactions(edges: int, seed: int = 0, *, n_users: int | None = None, n_items: int | None = None,
                          user_exponent: float = USER_EXPONENT, item_exponent: float = ITEM_EXPONENT) -> pl.DataFrame:
    """``edges`` distinct interactions (``user_id``, ``item_id``, ``ts``), the same for the same arguments.

    User activity and item popularity follow Zipf-like rank laws with the given exponents; users and items default
    to ``edges / EDGES_PER_USER`` and ``edges / EDGES_PER_ITEM`` (more for small sets). Timestamps are uniform over a year from START, so
    a temporal split sees every user throughout. Rows are ordered by time.
    """
    # Small sets get at least 2 sqrt(edges) of each, so that the edges fill at most a quarter of all pairs.
    floor = int(2 * np.sqrt(edges)) + 1
    n_users = n_users or max(edges // EDGES_PER_USER, floor)
    n_items = n_items or max(edges // EDGES_PER_ITEM, floor)
    if edges > n_users * n_items // 2:
        raise ValueError(f"{edges} distinct edges need more than {n_users} users x {n_items} items allow for a "
                         "power law; give more users or items.")
    rng = np.random.default_rng(seed)
    users = _zipf_weights(n_users, user_exponent, rng)
    items = _zipf_weights(n_items, item_exponent, rng)
    keys = _distinct_pairs(edges, users, items, rng)
    seconds = rng.integers(0, SPAN_SECONDS, edges)
    return (
        pl.DataFrame({"u": keys // n_items, "i": keys % n_items,
                      "ts": pl.Series(seconds * 1_000_000, dtype=pl.Int64).cast(pl.Duration("us")) + START})
        .sort("ts", "u", "i")
        .select(id_expr("u", "u").alias("user_id"), id_expr("i", "i").alias("item_id"), "ts")
    )
