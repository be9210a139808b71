"""The shared spectra are handed to the filters only for the training data they were computed from, and the asset
computes them again only when the data or its settings change; its defaults cover every filter family's pipeline
setting."""
import torch
from dagster import materialize

from assets.common import write_json
from assets.spectra import SpectraConfig, interaction_spectra, load_spectra
from models.recsys.bspm import BSPMConfig, BSPMFactorsConfig
from models.recsys.graph_filter import GFCFConfig, GFCFFactorsConfig
from models.recsys.interactions import interaction_matrix
from models.recsys.registry import FAMILIES
from models.recsys.sgfcf import SETTING_GRID, SGFCFConfig
from models.recsys.spectrum import compute_spectrum, svd_solver
from orchestration.resources import ArtifactStore
from tests.models.recsys.small_matrix import GRAPH


def test_spectra_load_only_for_the_training_data_they_came_from(tmp_path):
    spectrum = compute_spectrum(interaction_matrix(GRAPH), 3, seed=2020, exponent=0.34)
    path = tmp_path / "spectra.pt"
    assert load_spectra(path, "abc") == ()  # nothing computed yet
    torch.save({"fingerprint": torch.tensor(list(b"abc"), dtype=torch.uint8), **spectrum.tensors("spectrum0")},
               path)
    (loaded,) = load_spectra(path, "abc")
    assert (loaded.exponent, loaded.seed, loaded.shape, loaded.values.size) == (0.34, 2020, (7, 6), 3)
    assert load_spectra(path, "abd") == ()  # left from other data: the filters run their own SVD


def _materialize(root, **config):
    result = materialize([interaction_spectra], resources={"artifacts": ArtifactStore(root=str(root))},
                         run_config={"ops": {"interaction_spectra": {"config": config}}})
    return {key: value.value for key, value in result.asset_materializations_for_node("interaction_spectra")[0]
            .metadata.items()}


def test_the_asset_keeps_its_spectra_until_the_data_or_the_settings_change(tmp_path):
    (tmp_path / "graph").mkdir()
    GRAPH.save(tmp_path / "graph" / "train_graph.pt")
    write_json(tmp_path / "graph" / "graph.json", {"fingerprint": "data-a"})
    first = _materialize(tmp_path, exponents=[0.5, 0.34], rank=4)
    assert first["cached"] is False and first["data_fingerprint"] == "data-a"
    assert first["svd_solver"] == svd_solver(interaction_matrix(GRAPH).shape, 4)
    saved = load_spectra(tmp_path / "graph" / "spectra.pt", "data-a")
    assert [(s.exponent, s.values.size) for s in saved] == [(0.5, 4), (0.34, 4)]
    assert _materialize(tmp_path, exponents=[0.5, 0.34], rank=4)["cached"] is True
    assert _materialize(tmp_path, exponents=[0.5, 0.34], rank=3)["cached"] is True  # fewer triplets: covered
    assert _materialize(tmp_path, exponents=[0.5], rank=4)["cached"] is False  # other settings: computed again
    assert [s.exponent for s in load_spectra(tmp_path / "graph" / "spectra.pt", "data-a")] == [0.5]
    write_json(tmp_path / "graph" / "graph.json", {"fingerprint": "data-b"})
    assert _materialize(tmp_path, exponents=[0.5], rank=4)["cached"] is False  # new data
    assert load_spectra(tmp_path / "graph" / "spectra.pt", "data-a") == ()


def test_the_default_spectra_cover_every_filter_family_at_its_pipeline_setting():
    # Rank and normalisation each filter asks for in the pipeline (choose_on_validation on), against the defaults
    # of the interaction_spectra asset; a family added without a covering spectrum would run its own SVD.
    defaults = SpectraConfig()
    asked = {
        "gf_cf": (0.5, GFCFConfig().rank), "gf_cf_factors": (0.5, max(GFCFFactorsConfig().factor_rank,
                                                                       GFCFFactorsConfig().rank)),
        "bspm": (0.5, BSPMConfig().rank), "bspm_factors": (0.5, max(BSPMFactorsConfig().factor_rank,
                                                                   BSPMFactorsConfig().rank)),
        "sgfcf": (SGFCFConfig().exponent, max(SGFCFConfig().rank, *(s.get("rank", 0) for s in SETTING_GRID))),
    }
    asked["sgfcf_factors"] = asked["sgfcf"]
    assert set(asked) == {name for name, family in FAMILIES.items() if getattr(family, "spectral", False)}
    for name, (exponent, rank) in asked.items():
        assert exponent in defaults.exponents and rank <= defaults.rank, name
    seeds = {config.seed for config in (GFCFConfig(), GFCFFactorsConfig(), BSPMConfig(), BSPMFactorsConfig(),
                                        SGFCFConfig())}
    assert seeds == {defaults.seed} and SGFCFConfig().offset == 0.0  # the asset's spectra are at offset 0
