"""The shared spectra are handed to the filters only for the training data they were computed from."""
import torch

from assets.spectra import load_spectra
from models.recsys.interactions import interaction_matrix
from models.recsys.spectrum import compute_spectrum
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
