"""The retrain policy through Dagster's own automation evaluation on the real Definitions: a landed file runs the
graph assets and nothing else until the clean interactions have moved by the share (10% by default) since the last
training, summed over files; then, or at the cron tick, training, evaluation and publishing run, all together.

Runs are stood in for by reported materializations (with the clean row count the policy reads) and passing checks,
so every tick is real Dagster evaluation and no model trains.
"""

from datetime import datetime, timedelta, timezone

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    evaluate_automation_conditions,
)

from orchestration.automation import AFTER_UPSTREAM_PASSES, RETRAIN_WHEN_IT_PAYS, interactions_moved
from orchestration.definitions import defs
from orchestration.settings import DEFAULT_RETRAIN

GRAPH = {"clean_interactions", "rejected_interactions", "id_maps", "interaction_split", "training_graph",
         "ppr_audience"}
RETRAIN = {"interaction_spectra", "heuristic_scores", "ppr_scopes", "lightgcn_model", "rawls_model", "mlp_student", "shadow_model",
           "popularity_model", "recent_popularity_model", "item_knn_model", "gf_cf_model", "gf_cf_factors_model",
           "bspm_model", "bspm_factors_model", "sgfcf_model", "sgfcf_factors_model", "filter_blend_factors_model",
           "ranking_report", "champion_model", "embedding_candidate", "published_embeddings"}
SUNDAY = datetime(2026, 1, 4, 10, 0, tzinfo=timezone.utc)  # the day before the default cron's Monday 03:00 UTC tick


class Daemon:
    """The automation sensor's ticks at chosen times, each requested asset then 'run' by reporting it."""

    def __init__(self) -> None:
        self.instance = DagsterInstance.ephemeral()
        self.graph = defs.resolve_asset_graph()
        self.cursor = None
        self.now = SUNDAY
        self.interactions = 0
        assert self.tick() == set()  # the sensor ran before any data landed

    def tick(self, at: datetime | None = None) -> set[str]:
        """One evaluation (a minute after the last, or at `at`): the assets it requests."""
        self.now = at or self.now + timedelta(minutes=1)
        result = evaluate_automation_conditions(defs=defs, instance=self.instance, cursor=self.cursor,
                                                evaluation_time=self.now)
        self.cursor = result.cursor
        return {r.key.to_user_string() for r in result.results
                if isinstance(r.key, AssetKey) and not r.true_subset.is_empty}

    def materialize(self, names: set[str]) -> None:
        """Report each asset materialized (clean_interactions with the current row count) and its checks passed."""
        for name in names:
            key = AssetKey(name)
            metadata = {"dagster/row_count": self.interactions} if name == "clean_interactions" else {}
            self.instance.report_runless_asset_event(AssetMaterialization(key, metadata=metadata))
            for check in self.graph.get(key).check_keys:
                self.instance.report_runless_asset_event(AssetCheckEvaluation(key, check.name, passed=True))

    def land(self, interactions: int) -> set[str]:
        """A landing run adds `interactions`; tick and run what is requested until nothing is: all it requested."""
        self.interactions += interactions
        self.materialize({"raw_interactions", "raw_items"})
        return self.settle()

    def settle(self, at: datetime | None = None) -> set[str]:
        """Tick (first at `at`) and run what each tick requests, until a tick requests nothing: all it requested."""
        requested, asked = set(), self.tick(at)
        while asked:
            requested |= asked
            self.materialize(asked)
            asked = self.tick()
        return requested


@pytest.fixture
def trained() -> Daemon:
    """1,000 interactions landed on an empty deployment: the first data trains everything."""
    daemon = Daemon()
    assert daemon.land(1000) == GRAPH | RETRAIN
    return daemon


def test_the_policy_splits_the_assets_after_ingest_in_two():
    conditions = {spec.key.to_user_string(): spec.automation_condition for spec in defs.resolve_all_asset_specs()}
    assert {name for name, condition in conditions.items() if condition == AFTER_UPSTREAM_PASSES} == GRAPH
    assert {name for name, condition in conditions.items() if condition == RETRAIN_WHEN_IT_PAYS} == RETRAIN
    assert DEFAULT_RETRAIN.share == 0.1


def test_a_small_landed_file_refreshes_the_graph_and_trains_nothing(trained):
    assert trained.land(50) == GRAPH
    assert interactions_moved(trained.instance, AssetKey("lightgcn_model")) == pytest.approx(0.05)
    assert trained.tick() == set()


def test_files_that_together_move_the_share_retrain_evaluate_and_publish(trained):
    assert trained.land(50) == GRAPH
    assert trained.land(60) == GRAPH | RETRAIN  # 1,110 against the 1,000 the models last trained on
    assert interactions_moved(trained.instance, AssetKey("published_embeddings")) == 0
    assert trained.land(50) == GRAPH  # counted again from the new training


def test_the_cron_tick_retrains_without_new_data(trained):
    assert trained.settle(at=datetime(2026, 1, 5, 2, 59, tzinfo=timezone.utc)) == set()
    assert trained.settle(at=datetime(2026, 1, 5, 3, 1, tzinfo=timezone.utc)) == RETRAIN
    assert trained.tick() == set()
