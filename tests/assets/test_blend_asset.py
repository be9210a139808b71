"""The blend asset reads its members' latest fits only when they were fitted on the current training graph, and
blends only the members its step depends on; each refusal says what to run."""
from types import SimpleNamespace

import pytest
import torch

from assets.blend import MEMBERS, fit_blend, member_fit
from assets.common import save_tensors, write_json
from assets.runs import ModelArtifacts, NoFinishedRunError, new_run
from models.recsys.blend import FactorBlendConfig
from orchestration.config_classes import config_class
from orchestration.resources import ArtifactStore

VECTORS = {"user_emb": torch.arange(6.0).reshape(3, 2), "item_emb": torch.ones(4, 2)}


def _saved_fit(artifacts: ArtifactStore, model: str, fingerprint: str) -> None:
    with new_run(artifacts, ModelArtifacts(model), "run-1") as run:
        save_tensors(run.embeddings, **VECTORS)
        write_json(run.record, {"run_id": "run-1", "data_fingerprint": fingerprint, "config": {"rank": 2}})


def test_a_member_fit_is_read_for_its_own_training_graph_only(tmp_path):
    inputs = SimpleNamespace(artifacts=ArtifactStore(root=str(tmp_path)))
    with pytest.raises(NoFinishedRunError, match="materialize sgfcf_factors's model asset first"):
        member_fit(inputs, "sgfcf_factors", "graph-a")
    _saved_fit(inputs.artifacts, "sgfcf_factors", "graph-a")
    fitted, run_id = member_fit(inputs, "sgfcf_factors", "graph-a")
    assert run_id == "run-1" and fitted.family == "sgfcf_factors" and fitted.config == {"rank": 2}
    torch.testing.assert_close(fitted.user_emb, VECTORS["user_emb"])
    with pytest.raises(ValueError, match=r"run run-1\) is of another training graph \(fingerprint graph-a, now "
                                         r"graph-b\): materialize sgfcf_factors_model first"):
        member_fit(inputs, "sgfcf_factors", "graph-b")


def test_the_asset_blends_only_the_members_it_depends_on():
    assert MEMBERS == ("sgfcf_factors", "bspm_factors")
    config = config_class(FactorBlendConfig, "BlendConfig")(first="gf_cf_factors")
    with pytest.raises(ValueError, match="blends the vectors of its upstream steps, sgfcf_factors then bspm_factors"):
        fit_blend(SimpleNamespace(), config, None)
