"""Exceptions raised by the feature store, one class per thing a caller can act on.
Every message says what was wrong, where (version, entity, row, id) and what to do about it."""


class FeatureStoreError(Exception):
    """Base class of every feature-store error."""


class InvalidVectorsError(FeatureStoreError, ValueError):
    """Ids or vectors handed to `publish` are malformed (duplicates, NaN, shape or dim mismatch)."""


class InvalidMetadataError(FeatureStoreError, ValueError):
    """A `VersionMeta` field is unusable (bad version id, unknown parent, config not JSON)."""


class VersionExistsError(FeatureStoreError):
    """The version id is already registered; versions are immutable."""


class VersionNotFoundError(FeatureStoreError, LookupError):
    """No registered version has this id."""


class NoPromotedVersionError(FeatureStoreError, LookupError):
    """A read asked for the promoted version but none has been promoted yet."""


class UnknownIdsError(FeatureStoreError, LookupError):
    """Some requested user or item ids are not in the version's vectors."""


class InvalidTransitionError(FeatureStoreError):
    """A status change that the lifecycle candidate -> promoted -> retired does not allow."""


class PromotionConflictError(FeatureStoreError):
    """Another version was promoted after a candidate's gate measured it against the live one."""


class RegistryBusyError(FeatureStoreError):
    """The registry file stayed locked by another process for longer than the lock timeout."""
