"""Status changes of embedding versions: candidate -> promoted -> retired, with exactly one promoted
version at a time after the first promotion. Each change is one registry transaction plus an audit event.

Rollback undoes promotions in order: the `promote` and `rollback` events form a stack (promote pushes,
rollback pops), so promoting A, B, C then rolling back twice promotes B and then A again.
"""

from __future__ import annotations

from typing import Any

from feature_store.errors import InvalidTransitionError, PromotionConflictError
from feature_store.meta import VersionInfo
from feature_store.registry import Registry, Transaction


def _swap_promoted(tx: Transaction, version_id: str) -> str | None:
    """Retire the promoted version (if any) and promote `version_id`; returns the retired id."""
    previous = tx.promoted()
    if previous is not None:
        tx.set_status(previous.version_id, "retired")
    tx.set_status(version_id, "promoted")
    return previous.version_id if previous else None


# The default of promote's ``expected_live``: promote whatever is live now.
ANY_LIVE = object()


def promote(registry: Registry, version_id: str, expected_live: str | None | object = ANY_LIVE) -> VersionInfo:
    """Promote a candidate (or re-promote a retired version), retiring the current promoted one.

    Promoting the version that is already promoted changes nothing. With ``expected_live`` (a version id, or None
    for "nothing promoted yet"), the swap happens only if that version is still the promoted one, in the same
    transaction: a candidate gated against one live version is never promoted over another that a concurrent run
    promoted in the meantime (raises `PromotionConflictError`).
    """
    with registry.transaction() as tx:
        live = tx.promoted()
        live_id = live.version_id if live else None
        if expected_live is not ANY_LIVE and live_id != expected_live and live_id != version_id:
            raise PromotionConflictError(
                f"conflicting promotion: {version_id!r} was gated against live version {expected_live!r}, but "
                f"{live_id!r} has been promoted since (by another run); {live_id!r} stays live. Run the "
                "compatibility check again against it before promoting.")
        if tx.get(version_id).status != "promoted":
            previous = _swap_promoted(tx, version_id)
            tx.log(version_id, "promote", {"previous": previous})
            tx.commit()
        return tx.get(version_id)


def promotion_stack(tx: Transaction) -> list[str]:
    """Ids of the versions promoted so far that no rollback has undone, oldest first."""
    stack: list[str] = []
    # Replaying the log in Python: a push/pop stack is not something SQL expresses plainly.
    for event in tx.events(("promote", "rollback")):
        if event.action == "promote":
            stack.append(event.version_id)
        else:
            stack.pop()
    return stack


def rollback(registry: Registry) -> VersionInfo:
    """Retire the promoted version and re-promote the one that was promoted before it."""
    with registry.transaction() as tx:
        current = tx.promoted()
        stack = promotion_stack(tx)
        if current is None or len(stack) < 2:
            raise InvalidTransitionError(
                "nothing to roll back to: "
                + ("no version is promoted" if current is None else
                   f"{current.version_id!r} is the only promotion left in the history")
                + "; promote a version explicitly with promote(version_id)"
            )
        target = stack[-2]
        _swap_promoted(tx, target)
        tx.log(target, "rollback", {"retired": current.version_id})
        tx.commit()
        return tx.get(target)


def retire(registry: Registry, version_id: str) -> VersionInfo:
    """Retire a candidate; a retired version stays retired; the promoted one cannot be retired."""
    with registry.transaction() as tx:
        info = tx.get(version_id)
        if info.status == "promoted":
            raise InvalidTransitionError(
                f"{version_id!r} is the promoted version and cannot be retired directly: "
                "promote another version or call rollback() first"
            )
        if info.status == "candidate":
            tx.set_status(version_id, "retired")
            tx.log(version_id, "retire", {"previous_status": info.status})
            tx.commit()
        return tx.get(version_id)


def record_compatibility(registry: Registry, version_id: str, report: dict[str, Any]) -> VersionInfo:
    """Attach a compatibility report (for example new-vs-old retrieval) to a version."""
    with registry.transaction() as tx:
        tx.get(version_id)
        tx.set_compatibility(version_id, report)
        tx.log(version_id, "compatibility", report)
        tx.commit()
        return tx.get(version_id)
