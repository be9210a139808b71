"""When the assets after ingest run by themselves. A landed file flows eagerly through the cheap graph assets;
training, evaluation and publishing retrain only when it pays: at each tick of the retrain cron, or once the clean
interactions have moved by the configured share since the asset last ran (GRAPHREC_RETRAIN_CRON and
GRAPHREC_RETRAIN_SHARE, orchestration/settings.py). Both wait until every upstream blocking check has passed.
"""

from __future__ import annotations

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AutomationCondition,
    AutomationContext,
    AutomationResult,
    DagsterInstance,
)

from orchestration.settings import RetrainPolicy, retrain_policy

# Training reads the interactions that passed validation; the share is measured on their row count.
INTERACTIONS = AssetKey("clean_interactions")
ROW_COUNT = "dagster/row_count"


def interaction_count(instance: DagsterInstance, before: float | None = None) -> int | None:
    """clean_interactions' row count at its latest materialization (the latest before the time `before`, when given);
    None when there is none."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=INTERACTIONS, before_timestamp=before), limit=1).records
    value = records[0].asset_materialization.metadata.get(ROW_COUNT) if records else None
    return None if value is None else int(value.value)


def last_started(instance: DagsterInstance, key: AssetKey) -> float | None:
    """When the run behind `key`'s latest materialization started (interactions that landed while it ran are new to
    it), or the event's own time for a materialization reported without a run; None when it has none."""
    records = instance.fetch_materializations(key, limit=1).records
    if not records:
        return None
    run = instance.get_run_record_by_id(records[0].run_id) if records[0].run_id else None
    return run.start_time if run is not None and run.start_time is not None else records[0].timestamp


def interactions_moved(instance: DagsterInstance, key: AssetKey) -> float:
    """By what share clean_interactions' row count moved (up or down: new files, or a retracted one) since `key`
    last ran; infinite when it never ran on any, 0 when there are no interactions yet."""
    now = interaction_count(instance)
    if not now:
        return 0.0
    started = last_started(instance, key)
    then = interaction_count(instance, before=started) if started is not None else None
    return abs(now - then) / then if then else float("inf")


class InteractionsMoved(AutomationCondition[AssetKey]):
    """True for an asset while clean_interactions' row count differs by at least `share` from what it was when the
    asset last ran (see :func:`interactions_moved`)."""

    def __init__(self, share: float) -> None:
        self.share = share

    @property
    def name(self) -> str:
        return "interactions_moved"

    @property
    def description(self) -> str:
        return f"clean interactions moved by at least {self.share:.0%} since this asset last ran"

    def evaluate(self, context: AutomationContext) -> AutomationResult:
        """The whole candidate subset (these assets are not partitioned) when the share is reached, else nothing."""
        moved = interactions_moved(context.asset_graph_view.instance, context.key)
        return AutomationResult(context, context.candidate_subset if moved >= self.share else context.get_empty_subset())


def retrain_when_it_pays(policy: RetrainPolicy) -> AutomationCondition:
    """Run at each cron tick, or when the interactions newly reach the share; latched until the asset is requested
    (so that it starts once upstream runs finish), never while it or an upstream asset is in progress, and only
    once every upstream blocking check has passed.

    The share counts only when it is newly reached: a training that fails is not asked for again on every tick,
    but at the next cron tick (or by hand)."""
    trigger = AutomationCondition.cron_tick_passed(policy.cron, "UTC") | InteractionsMoved(policy.share).newly_true()
    return (
        trigger.since_last_handled()
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
        & AutomationCondition.all_deps_blocking_checks_passed()
    ).with_label(f"retrain on {policy.cron} (UTC) or {policy.share:.0%} moved interactions, after blocking checks")


# Cheap assets follow new data as soon as an upstream asset updates, once its blocking checks have passed (also when
# the checks ran in an earlier run: eager alone would not wait for them across runs).
AFTER_UPSTREAM_PASSES = (
    AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager after blocking checks pass")

# Training, evaluation and publishing: the policy of this environment.
RETRAIN_WHEN_IT_PAYS = retrain_when_it_pays(retrain_policy())
