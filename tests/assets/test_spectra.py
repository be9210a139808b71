"""The shared spectra are handed to the filters only for the training data they were computed from, and the asset
computes them again only when the data or its settings change."""
import torch
from dagster import materialize

from assets.common import write_json
from assets.spectra import interaction_spectra, load_spectra
from models.recsys.interactions import interaction_matrix
from models.recsys.spectrum import compute_spectrum
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
    saved = load_spectra(tmp_path / "graph" / "spectra.pt", "data-a")
    assert [(s.exponent, s.values.size) for s in saved] == [(0.5, 4), (0.34, 4)]
    assert _materialize(tmp_path, exponents=[0.5, 0.34], rank=4)["cached"] is True
    assert _materialize(tmp_path, exponents=[0.5, 0.34], rank=3)["cached"] is True  # fewer triplets: covered
    assert _materialize(tmp_path, exponents=[0.5], rank=4)["cached"] is False  # other settings: computed again
    assert [s.exponent for s in load_spectra(tmp_path / "graph" / "spectra.pt", "data-a")] == [0.5]
    write_json(tmp_path / "graph" / "graph.json", {"fingerprint": "data-b"})
    assert _materialize(tmp_path, exponents=[0.5], rank=4)["cached"] is False  # new data
    assert load_spectra(tmp_path / "graph" / "spectra.pt", "data-a") == ()
