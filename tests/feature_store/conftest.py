"""Fixtures for the feature-store tests: a store in a temporary folder and seeded random embeddings.
Embeddings come as publish() keyword arguments so a test can write `store.publish(meta, **data)`."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from feature_store import FeatureStore


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    """An empty feature store under the test's temporary folder."""
    return FeatureStore(tmp_path / "store")


@pytest.fixture
def make_embeddings() -> Callable[..., dict]:
    """Factory: seeded standard-normal user and item vectors with ids "u<i>" and "i<j>"."""

    def make(seed: int, n_users: int = 30, n_items: int = 40, dim: int = 8) -> dict:
        rng = np.random.default_rng(seed)
        return {
            "user_ids": [f"u{i}" for i in range(n_users)],
            "user_vectors": rng.standard_normal((n_users, dim)).astype(np.float32),
            "item_ids": [f"i{j}" for j in range(n_items)],
            "item_vectors": rng.standard_normal((n_items, dim)).astype(np.float32),
        }

    return make
