"""Which candidates go through the learned map: families without a compatibility loss by default, the others on
request; an unmapped candidate of another dimension is stopped with a message naming both models."""
from datetime import datetime

import pytest
import torch

from assets.candidate_map import CandidateConfig, IncomparableCandidateError, candidate_vectors, wants_map
from feature_store import VersionInfo


def _promoted(dim: int) -> VersionInfo:
    return VersionInfo(version_id="v1", parent_id=None, model="lightgcn", config={}, data_fingerprint="",
                       code_version="", metrics={}, compatibility={}, status="promoted", created_at=datetime(2025, 1, 1),
                       promoted_at=None, dim=dim, n_users=30, n_items=40)


def _old() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(30, 4, generator=generator), torch.randn(40, 4, generator=generator)


def test_the_policy_maps_families_without_a_loss_unless_told_otherwise():
    assert wants_map("auto", {"rank": 256}) and not wants_map("auto", {"compatibility": "bct"})
    assert wants_map("always", {"compatibility": "none"}) and not wants_map("never", {"rank": 256})
    with pytest.raises(ValueError, match="compatibility_map"):
        wants_map("sometimes", {})


def test_a_filter_is_published_in_the_promoted_space_and_a_first_version_as_fitted():
    users, items = torch.randn(30, 10), torch.randn(40, 10)
    mapped_users, mapped_items, learned = candidate_vectors(CandidateConfig(), "gf_cf_factors", {"rank": 8}, users,
                                                            items, _promoted(4), _old)
    assert learned.kind == "least_squares" and mapped_users.shape == (30, 4) and mapped_items.shape == (40, 4)
    first = candidate_vectors(CandidateConfig(), "gf_cf_factors", {"rank": 8}, users, items, None, _old)
    assert first[0] is users and first[2] is None


def test_an_unmapped_candidate_of_another_dimension_names_both_models():
    users, items = torch.randn(30, 10), torch.randn(40, 10)
    with pytest.raises(IncomparableCandidateError, match="switch from lightgcn to gf_cf_factors"):
        candidate_vectors(CandidateConfig(compatibility_map="never"), "gf_cf_factors", {}, users, items, _promoted(4),
                          _old)
