"""Adding a recommendation family takes one module and one registry line: a test-only family, registered before
the Definitions load (as a line in ``models.recsys.registry`` would), gets its asset, its ranking-report rows, and
is chosen and published when the champion policy names it. It runs in a fresh interpreter, because the
Definitions read the registry once, at import.
"""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The test-only family: LightGCN through the library's own training loop under another name and seed, so that it
# is good enough to pass the champion check on the demo data (a family that loses would rightly be refused).
SCRIPT = textwrap.dedent("""
    import json, sys
    from dataclasses import dataclass, replace
    from pathlib import Path

    from models.recsys import registry
    from models.recsys.contract import Fitted, TrainingRecord, resolved, restore_vectors
    from models.recsys.training import LightGCNConfig, train_lightgcn


    @dataclass
    class TwinConfig:
        epochs: int = 30
        lr: float = 0.01
        seed: int = 11


    class LightGCNTwin:
        name, config_type, publishable, baseline = "lightgcn_twin", TwinConfig, True, False
        version = "1"

        def fit(self, graph, valid, config, runtime):
            settings = replace(LightGCNConfig(), epochs=config.epochs, lr=config.lr, seed=config.seed,
                               batch_size=1024, eval_every=3)
            result = train_lightgcn(graph, valid, settings, runtime.device, log=runtime.log)
            record = TrainingRecord(history=result.history, best_epoch=result.best_epoch, seconds=result.train_seconds)
            return Fitted(self.name, resolved(config), record, user_emb=result.user_emb, item_emb=result.item_emb)

        def restore(self, tensors, config):
            return restore_vectors(self.name, tensors, config)


    registry.FAMILIES["lightgcn_twin"] = LightGCNTwin()

    from dagster import DagsterInstance, materialize
    from feature_store import FeatureStore
    from orchestration.definitions import defs
    from orchestration.jobs import full_retrain
    from orchestration.resources import ArtifactStore, Compute, FeatureStoreResource, ValidationRules, Warehouse

    root = Path(sys.argv[1])
    training = {"config": {"epochs": 30, "eval_every": 3, "lr": 0.01, "batch_size": 1024}}
    result = materialize(
        [*defs.assets, *defs.asset_checks], selection=full_retrain.selection, instance=DagsterInstance.ephemeral(),
        resources={"warehouse": Warehouse(path=str(root / "warehouse.duckdb")),
                   "artifacts": ArtifactStore(root=str(root / "artifacts")), "compute": Compute(device="cpu"),
                   "feature_store": FeatureStoreResource(root=str(root / "feature_store")),
                   "validation": ValidationRules()},
        run_config={"ops": {"ingest_source": {"config": {"demo_users": 400, "demo_items": 200}},
                            "lightgcn_model": training, "rawls_model": training,
                            "shadow_model": {"config": {"epochs": 1}},
                            "champion_model": {"config": {"models": ["lightgcn_twin"]}}}},
        raise_on_error=False)
    report = json.loads((root / "artifacts" / "reports" / "ranking_report.json").read_text())
    promoted = FeatureStore(root / "feature_store").promoted_version()
    print(json.dumps({
        "success": result.success,
        "materialized": sorted(e.asset_key.to_user_string() for e in result.get_asset_materialization_events()),
        "report_models": sorted(report["models"]), "report_valid": sorted(report["valid"]),
        "baselines": report["baselines"], "promoted_model": promoted.model if promoted else None,
        "promoted_config": promoted.config if promoted else None,
    }))
""")


def test_a_family_added_to_the_registry_gets_its_asset_its_report_row_and_can_be_published(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["success"]
    assert "lightgcn_twin_model" in outcome["materialized"]
    assert "lightgcn_twin" in outcome["report_models"] and "lightgcn_twin" in outcome["report_valid"]
    assert "lightgcn_twin" not in outcome["baselines"]
    assert outcome["promoted_model"] == "lightgcn_twin"
    assert outcome["promoted_config"]["seed"] == 11
