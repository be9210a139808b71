"""The learned map into the promoted version's space: Procrustes recovers a rotation and least squares a linear map
(both up to the positive factor per side that changes no ranking), and on a crafted pair of versions the mapped
vectors pass the gate's criterion where the raw ones fail."""
import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from feature_store.gate import gate_failures
from models.eval.compat_report import compatibility_report
from models.graph.bipartite import BipartiteGraph
from models.recsys.compat_map import choose_kind, fit_compatibility_map


def _vectors(seed: int, n_users: int = 60, n_items: int = 80, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(n_users, dim, generator=generator, dtype=torch.float64),
            torch.randn(n_items, dim, generator=generator, dtype=torch.float64))


def test_procrustes_recovers_a_known_rotation_and_the_side_factors():
    users, items = _vectors(0)
    rotation = torch.from_numpy(ortho_group.rvs(8, random_state=1))
    # Different lengths per side in the old version: a factor per side, no ranking changes.
    learned = fit_compatibility_map(users, items, 3.0 * users @ rotation, 0.5 * items @ rotation)

    assert learned.kind == "procrustes"
    np.testing.assert_allclose(learned.weight, rotation.numpy(), atol=1e-6)
    assert learned.user_scale == pytest.approx(3.0) and learned.item_scale == pytest.approx(0.5)
    assert learned.residual < 1e-6
    mapped_users, mapped_items = learned.apply(users, items)
    torch.testing.assert_close(mapped_users, 3.0 * users @ rotation, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mapped_items, 0.5 * items @ rotation, atol=1e-5, rtol=1e-5)


def test_least_squares_recovers_a_known_linear_map_between_dimensions():
    users, items = _vectors(2, dim=12)
    linear = torch.randn(12, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    # The new version's items are a hundred times shorter than its users, as a graph filter's are.
    learned = fit_compatibility_map(users, items / 100, users @ linear, items @ linear, ridge=0.0)

    assert learned.kind == "least_squares" and learned.weight.shape == (12, 5)
    assert learned.residual < 1e-6
    mapped_users, mapped_items = learned.apply(users, items / 100)
    torch.testing.assert_close(mapped_users, users @ linear, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mapped_items, items @ linear, atol=1e-4, rtol=1e-4)


def test_the_map_is_fitted_on_shared_rows_and_applied_to_every_row():
    users, items = _vectors(4)
    rotation = torch.from_numpy(ortho_group.rvs(8, random_state=5))
    # The old version knew only the first 40 users and 50 items; the rest were appended since.
    learned = fit_compatibility_map(users, items, users[:40] @ rotation, items[:50] @ rotation)
    mapped_users, mapped_items = learned.apply(users, items)

    assert (learned.known_users, learned.known_items) == (40, 50)
    assert mapped_users.shape == (60, 8) and mapped_items.shape == (80, 8)
    torch.testing.assert_close(mapped_users[40:], users[40:] @ rotation, atol=1e-5, rtol=1e-5)


def test_the_kind_follows_the_dimensions_and_a_rotation_needs_equal_ones():
    assert choose_kind(64, 64) == "procrustes" and choose_kind(300, 64) == "least_squares"
    assert choose_kind(64, 64, "least_squares") == "least_squares"
    with pytest.raises(ValueError, match="equal dimensions"):
        choose_kind(300, 64, "procrustes")
    with pytest.raises(ValueError, match="unknown map kind"):
        choose_kind(64, 64, "affine")


def _crafted_pair() -> tuple[BipartiteGraph, torch.Tensor, tuple, tuple]:
    """Two versions of one planted-cluster model: the old one sees each user's cluster blurred by noise, the new one
    sees it clearly but in a rotated basis (as a retrain without a compatibility loss would)."""
    generator = torch.Generator().manual_seed(7)
    clusters, n_users, n_items, dim = 4, 80, 40, 4
    user_cluster, item_cluster = torch.arange(n_users) % clusters, torch.arange(n_items) % clusters
    centres = torch.eye(dim)[:clusters]
    train = torch.stack([torch.arange(n_users), (torch.arange(n_users) + clusters) % n_items])
    # Held-out items: two per user from its own cluster (other than the training item).
    valid = torch.cat([torch.stack([torch.arange(n_users), (torch.arange(n_users) + k * clusters) % n_items])
                       for k in (2, 3)], dim=1)
    items = centres[item_cluster] + 0.05 * torch.randn(n_items, dim, generator=generator)
    new_users = centres[user_cluster] + 0.05 * torch.randn(n_users, dim, generator=generator)
    old_users = centres[user_cluster] + 0.9 * torch.randn(n_users, dim, generator=generator)
    rotation = torch.from_numpy(ortho_group.rvs(dim, random_state=8)).float()
    graph = BipartiteGraph(train, n_users, n_items)
    assert bool((item_cluster[valid[1]] == user_cluster[valid[0]]).all())
    return graph, valid, (old_users, items), (new_users @ rotation, items @ rotation)


def test_the_mapped_candidate_passes_the_gate_where_the_raw_one_fails():
    graph, valid, old, new = _crafted_pair()

    def failures(candidate: tuple) -> list[str]:
        report = compatibility_report(candidate, {"v1": old}, graph, valid, ks=(20,), criterion_metric="recall@20")
        return gate_failures(report, "v1")

    learned = fit_compatibility_map(*new, *old)
    assert failures(new), "the crafted raw candidate should fail the criterion"
    assert failures(learned.apply(*new)) == []
