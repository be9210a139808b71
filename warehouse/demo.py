"""A synthetic, deterministic interaction data set that looks like real usage.

Users and items live in communities (users mostly interact inside theirs, so a graph model has real structure to
learn), item popularity follows a Zipf law, user activity is lognormal, and a share of users are cold-start.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
import polars as pl

# Bump when the generator changes, so that the demo's content key (and thus ingest bookkeeping) changes too.
GENERATOR_VERSION = "demo-v1"

CATEGORY_NAMES = (
    "books", "music", "movies", "games", "outdoors", "kitchen",
    "fashion", "electronics", "garden", "toys", "beauty", "sports",
)
ADJECTIVES = (
    "Crimson", "Quiet", "Golden", "Hidden", "Swift", "Ancient", "Bright", "Silver",
    "Wild", "Gentle", "Iron", "Velvet", "Lucky", "Frozen", "Electric", "Humble",
)
NOUNS = (
    "Lantern", "Harbor", "Garden", "Falcon", "River", "Compass", "Orchard", "Signal",
    "Meadow", "Engine", "Canvas", "Summit", "Anchor", "Echo", "Voyage", "Circuit",
)
EVENTS = np.array(["view", "click", "purchase"])
EVENT_PROBS = np.array([0.75, 0.20, 0.05])
# A purchase says more about taste than a view; weights are the implicit-feedback strength.
EVENT_WEIGHTS = np.array([1.0, 2.0, 4.0])


@dataclass(frozen=True)
class DemoConfig:
    """Size and shape of the demo data set (defaults give about 60k interactions)."""

    seed: int = 7
    # 0 is the first batch; another batch draws new interactions over the same weeks from the same world
    # (communities, item popularity, user activity), as another export of the same service would.
    batch: int = 0
    n_users: int = 3000
    n_items: int = 1500
    n_communities: int = 8
    weeks: int = 8
    cold_start_share: float = 0.1
    mean_interactions: float = 20.0
    community_affinity: float = 0.8  # probability that an interaction stays in the user's community
    zipf_exponent: float = 1.0  # item popularity ~ rank ** -zipf_exponent
    activity_sigma: float = 0.9  # lognormal spread of warm users' activity
    start: datetime = datetime(2026, 1, 5)


def demo_content_key(cfg: DemoConfig) -> str:
    """A stable hash of the demo configuration and generator version (the demo's ingest content key)."""
    payload = json.dumps({"generator": GENERATOR_VERSION, **asdict(cfg)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _activity(cfg: DemoConfig, rng: np.random.Generator) -> np.ndarray:
    """Interactions per user: lognormal (>= 4) for warm users, 1-3 for the cold-start share."""
    n_cold = round(cfg.cold_start_share * cfg.n_users)
    cold_mean = 2.0
    warm_mean = (cfg.mean_interactions * cfg.n_users - cold_mean * n_cold) / max(cfg.n_users - n_cold, 1)
    mu = np.log(warm_mean) - cfg.activity_sigma**2 / 2  # so that the lognormal's mean is warm_mean
    counts = np.rint(rng.lognormal(mu, cfg.activity_sigma, cfg.n_users)).astype(np.int64)
    counts = np.clip(counts, 4, max(4, cfg.n_items // 2))
    cold = rng.permutation(cfg.n_users)[:n_cold]
    counts[cold] = rng.integers(1, 4, n_cold)
    return counts


def _sample_items(
    user_comm: np.ndarray, item_comm: np.ndarray, popularity: np.ndarray,
    cfg: DemoConfig, rng: np.random.Generator,
) -> np.ndarray:
    """One item per interaction: popularity-weighted, inside the user's community with prob. affinity."""
    n_comm = cfg.n_communities
    # Inverse-CDF sampling per community in one searchsorted: items sorted by community carry the key
    # community + cumulative share within it, so a draw c + u lands on community c's items only.
    order = np.argsort(item_comm, kind="stable")
    comm_sorted = item_comm[order]
    pop_sorted = popularity[order]
    comm_total = np.bincount(comm_sorted, weights=pop_sorted, minlength=n_comm)
    cum = np.cumsum(pop_sorted)
    comm_start = np.concatenate([[0.0], np.cumsum(comm_total)[:-1]])
    key = comm_sorted + (cum - comm_start[comm_sorted]) / comm_total[comm_sorted]
    u = rng.random(user_comm.size)
    local = order[np.minimum(np.searchsorted(key, user_comm + u, side="right"), order.size - 1)]
    global_cdf = np.cumsum(popularity) / popularity.sum()
    glob = np.minimum(np.searchsorted(global_cdf, rng.random(user_comm.size), side="right"), popularity.size - 1)
    has_items = np.bincount(item_comm, minlength=n_comm) > 0
    stay = (rng.random(user_comm.size) < cfg.community_affinity) & has_items[user_comm]
    return np.where(stay, local, glob)


def id_expr(column: str, prefix: str) -> pl.Expr:
    """Dense integer -> readable id such as "u00042"."""
    return pl.concat_str(pl.lit(prefix), pl.col(column).cast(pl.Utf8).str.zfill(5))


def generate_demo(cfg: DemoConfig = DemoConfig()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Generate (interactions, items).

    interactions: user_id, item_id, ts, event, weight; items: item_id, title, category (the item's community).
    """
    rng = np.random.default_rng(cfg.seed)
    comm_sizes = rng.dirichlet(np.full(cfg.n_communities, 5.0))  # unequal but not degenerate communities
    user_comm = rng.choice(cfg.n_communities, cfg.n_users, p=comm_sizes)
    item_comm = rng.choice(cfg.n_communities, cfg.n_items, p=comm_sizes)
    popularity = (1.0 + rng.permutation(cfg.n_items)) ** -cfg.zipf_exponent

    counts = _activity(cfg, rng)
    if cfg.batch:
        rng = np.random.default_rng([cfg.seed, cfg.batch])
    users = np.repeat(np.arange(cfg.n_users), counts)
    items = _sample_items(user_comm[users], item_comm, popularity, cfg, rng)

    # Warm users act over the whole span; cold-start users are newcomers seen only in the final week.
    span_s = cfg.weeks * 7 * 86400
    week_s = 7 * 86400
    cold = counts[users] <= 3
    offset = np.where(cold, span_s - week_s + rng.integers(0, week_s, users.size), rng.integers(0, span_s, users.size))
    event = rng.choice(EVENTS.size, users.size, p=EVENT_PROBS)

    interactions = (
        pl.DataFrame({
            "u": users,
            "i": items,
            "ts": pl.Series(offset * 1_000_000, dtype=pl.Int64).cast(pl.Duration("us")) + cfg.start,
            "event": EVENTS[event],
            "weight": EVENT_WEIGHTS[event],
        })
        .select(id_expr("u", "u").alias("user_id"), id_expr("i", "i").alias("item_id"), "ts", "event", "weight")
        .sort("ts", "user_id", "item_id")
    )

    names = np.array(
        [CATEGORY_NAMES[c] if c < len(CATEGORY_NAMES) else f"category_{c:02d}" for c in range(cfg.n_communities)]
    )
    items_df = pl.DataFrame({
        "i": np.arange(cfg.n_items),
        "adjective": np.array(ADJECTIVES)[rng.integers(0, len(ADJECTIVES), cfg.n_items)],
        "noun": np.array(NOUNS)[rng.integers(0, len(NOUNS), cfg.n_items)],
        "category": names[item_comm],
    }).select(
        id_expr("i", "i").alias("item_id"),
        pl.concat_str("adjective", "noun", separator=" ").alias("title"),
        "category",
    )
    return interactions, items_df
