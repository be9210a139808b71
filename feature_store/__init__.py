"""Versioned embedding store: atomic publishing of user/item vectors, promotion and rollback,
vector reads and top-k item search by inner product (DuckDB registry, Parquet, usearch)."""

from feature_store.errors import (
    FeatureStoreError,
    InvalidMetadataError,
    InvalidTransitionError,
    InvalidVectorsError,
    NoPromotedVersionError,
    PromotionConflictError,
    RegistryBusyError,
    UnknownIdsError,
    VersionExistsError,
    VersionNotFoundError,
)
from feature_store.meta import Event, VersionInfo, VersionMeta
from feature_store.store import FeatureStore

__all__ = [
    "Event",
    "FeatureStore",
    "FeatureStoreError",
    "InvalidMetadataError",
    "InvalidTransitionError",
    "InvalidVectorsError",
    "NoPromotedVersionError",
    "PromotionConflictError",
    "RegistryBusyError",
    "UnknownIdsError",
    "VersionExistsError",
    "VersionInfo",
    "VersionMeta",
    "VersionNotFoundError",
]
