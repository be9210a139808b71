"""The feature store's versions as a Dagster table (`MetadataValue.table` with a `TableSchema`), newest first, for
the metadata of published_embeddings: which version is served, what it replaced and how each one fared at the gate.
"""

from dagster import MetadataValue, TableColumn, TableMetadataValue, TableRecord, TableSchema

from feature_store import FeatureStore, VersionInfo

VERSIONS_SCHEMA = TableSchema(columns=[
    TableColumn("version_id", "string", description="Immutable id of the version."),
    TableColumn("status", "string", description="candidate | promoted (served) | retired"),
    TableColumn("model", "string", description="Model that produced the vectors."),
    TableColumn("parent_id", "string", description="Version it was trained to stay compatible with."),
    TableColumn("gate", "string", description="Compatibility gate: passed | failed | not run."),
    TableColumn("created_at", "string", description="Publication time (UTC)."),
    TableColumn("promoted_at", "string", description="Last promotion time (UTC), empty if never promoted."),
    TableColumn("dim", "int", description="Embedding dimension."),
    TableColumn("n_users", "int", description="User vectors."),
    TableColumn("n_items", "int", description="Item vectors."),
])


def _gate(info: VersionInfo) -> str:
    gate = info.compatibility.get("gate")
    return "not run" if gate is None else "passed" if gate.get("passed") else "failed"


def version_record(info: VersionInfo) -> TableRecord:
    """One version as a row of VERSIONS_SCHEMA (times as ISO strings: table cells hold only plain values)."""
    return TableRecord({
        "version_id": info.version_id, "status": info.status, "model": info.model, "parent_id": info.parent_id or "",
        "gate": _gate(info), "created_at": info.created_at.isoformat(timespec="seconds"),
        "promoted_at": info.promoted_at.isoformat(timespec="seconds") if info.promoted_at else "",
        "dim": info.dim, "n_users": info.n_users, "n_items": info.n_items,
    })


def versions_table(store: FeatureStore) -> TableMetadataValue:
    """Every registered version of `store`, newest first, as table metadata."""
    rows = sorted(store.list_versions(), key=lambda info: (info.created_at, info.version_id), reverse=True)
    return MetadataValue.table([version_record(info) for info in rows], schema=VERSIONS_SCHEMA)
