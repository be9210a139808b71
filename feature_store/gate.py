"""The promotion gate for embedding candidates: a candidate is promoted only when its compatibility report
shows it beats every ancestor on that ancestor's own gallery; otherwise the promoted version stays live.

The report is the dict of `models.eval.compat_report.compatibility_report` (this package never imports torch):
``{"metric", "new_new", "ancestors": {version_id: {"old_old": {...}, "new_old": {...}, ...}}, ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feature_store.errors import FeatureStoreError, InvalidTransitionError
from feature_store.store import FeatureStore


class InvalidReportError(FeatureStoreError, ValueError):
    """A compatibility report lacks what the gate needs (the metric, or an ancestor's old/old or new/old value)."""


@dataclass(frozen=True)
class GateDecision:
    """What the gate did with a candidate.

    ``status`` is the candidate's status afterwards (``promoted``; ``candidate`` when it passed but
    ``promote=False``; ``retired`` when it failed). ``live_version`` is the promoted version after the decision.
    """

    candidate_id: str
    passed: bool
    status: str
    failures: tuple[str, ...]
    live_version: str | None
    message: str = ""  # for a refusal: both models, the map (if any) and the figures, in one sentence for people


def _metric_value(report: dict[str, Any], version_id: str, pair: str, metric: str) -> float:
    try:
        return float(report["ancestors"][version_id][pair][metric])
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidReportError(
            f"compatibility report has no {pair}[{metric!r}] for ancestor {version_id!r} ({error!r}); recompute it "
            "with models.eval.compat_report.compatibility_report and a cut-off that produces this metric"
        ) from error


def gate_failures(report: dict[str, Any], live_version: str | None, metric: str | None = None) -> list[str]:
    """Why ``report`` does not allow promotion over ``live_version`` (empty list: it does).

    The report must compare the candidate with the live version (a report computed before another promotion is
    stale), and BCT's empirical criterion M(new, old) > M(old, old) must hold against every ancestor it lists,
    on ``metric`` (default: the report's own ``metric``). With no live version, any report passes.
    """
    if not isinstance(report, dict) or not isinstance(report.get("ancestors"), dict):
        raise InvalidReportError("compatibility report must be a dict with an 'ancestors' dict; recompute it with "
                                 "models.eval.compat_report.compatibility_report")
    metric = metric or report.get("metric")
    if not metric:
        raise InvalidReportError("compatibility report names no 'metric' and none was passed to the gate")
    failures = []
    if live_version is not None and live_version not in report["ancestors"]:
        failures.append(f"the report does not compare with the promoted version {live_version!r} "
                        f"(it covers {sorted(report['ancestors'])}); recompute it against {live_version!r}")
    for version_id in report["ancestors"]:
        new_old = _metric_value(report, version_id, "new_old", metric)
        old_old = _metric_value(report, version_id, "old_old", metric)
        if not new_old > old_old:
            failures.append(f"against {version_id!r}: {metric} of new users on its items is {new_old:.4f}, not above "
                            f"its own {old_old:.4f} (M(new, old) > M(old, old) fails)")
    return failures


def refusal_message(candidate_model: str, candidate_id: str, live_model: str | None, live_id: str | None,
                    failures: list[str] | tuple[str, ...], compatibility_map: dict[str, Any] | None) -> str:
    """Why ``candidate_id`` (of ``candidate_model``) may not replace ``live_id`` (of ``live_model``), in one message:
    both models (a champion switch when they differ), whether a learned map into the live space was applied and
    how well it fitted (``compatibility_map``: the map's summary, see ``models.recsys.compat_map``), and the
    gate's figures (``failures``)."""
    switch = (f"champion switch from {live_model} ({live_id!r}) to {candidate_model} ({candidate_id!r})"
              if live_model != candidate_model else f"{candidate_model} retrain {candidate_id!r} over {live_id!r}")
    if compatibility_map:
        mapped = (f"with the learned {compatibility_map['kind']} map into {compatibility_map.get('fitted_to')!r}'s "
                  f"space applied (fit residual {compatibility_map['residual']:.3f})")
    else:
        mapped = "without a learned map (the vectors were published as trained)"
    return f"refused: {switch}, {mapped}: " + "; ".join(failures) + f". {live_id!r} stays live."


def gate_and_promote(store: FeatureStore, candidate_id: str, report: dict[str, Any], metric: str | None = None,
                     promote: bool = True) -> GateDecision:
    """Record ``report`` on the candidate, then promote it if :func:`gate_failures` finds nothing.

    What the publisher recorded under the candidate's compatibility (the learned map, ``"map"``) is kept beside the
    report. A failing candidate is retired with its report, the failures (under ``"gate"``) and the
    :func:`refusal_message` (under ``"refusal"``, and in the decision's ``message``), and the promoted version
    is left untouched, so pinned and unpinned readers keep their vectors. ``promote=False`` stops a passing
    candidate after recording (a staged rollout: a person or a later run promotes it). The report is recorded
    before the promotion, so a crash in between leaves a candidate with its verdict and the old version live.
    Raises `InvalidTransitionError` when ``candidate_id`` is not a candidate.
    """
    info = store.get_version(candidate_id)
    if info.status != "candidate":
        raise InvalidTransitionError(
            f"{candidate_id!r} is {info.status}, not a candidate: only new candidates go through the gate; "
            "use promote() or rollback() to move between versions that were already live"
        )
    live = store.promoted_version()
    live_id = live.version_id if live else None
    failures = gate_failures(report, live_id, metric)
    # What the publisher recorded (the learned map, if one was applied) stays beside the report.
    recorded = {**info.compatibility, **report, "gate": {"passed": not failures, "failures": failures,
                                                         "live_version": live_id}}
    message = ""
    if failures:
        message = refusal_message(info.model, candidate_id, live.model if live else None, live_id, failures,
                                  info.compatibility.get("map"))
        recorded["refusal"] = message
    store.record_compatibility(candidate_id, recorded)
    if failures:
        store.retire(candidate_id)
        return GateDecision(candidate_id, False, "retired", tuple(failures), live_id, message)
    if not promote:
        return GateDecision(candidate_id, True, "candidate", (), live_id)
    store.promote(candidate_id, expected_live=live_id)
    return GateDecision(candidate_id, True, "promoted", (), candidate_id)
