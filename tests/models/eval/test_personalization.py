"""Personalization@K from item counts equals PyG's pairwise computation, sampling included."""
import math

import pytest
import torch
from torch_geometric.metrics import LinkPredPersonalization

from models.eval.personalization import Personalization


@pytest.mark.parametrize(("users", "items", "k", "updates"), [(50, 30, 10, 1), (300, 40, 20, 3), (500, 200, 5, 4)])
def test_equals_pyg_on_random_top_lists(users, items, k, updates):
    """Random top-k lists of distinct items, fed in several updates, with the users kept cut at 400 (PyG's
    default is 4,096, whose pairwise computation alone takes seconds): 500 users check that both keep the same
    first 400."""
    gen = torch.Generator().manual_seed(users)
    ours, theirs = Personalization(k, max_src_nodes=400), LinkPredPersonalization(k, max_src_nodes=400)
    for block in torch.arange(users).chunk(updates):
        lists = torch.stack([torch.randperm(items, generator=gen)[:k + 3] for _ in block])
        labels = torch.stack([torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long)])
        ours.update(lists, labels)
        theirs.update(lists, labels)
    assert float(ours.compute()) == pytest.approx(float(theirs.compute()), abs=1e-6)


def test_hand_made_lists_and_a_single_user():
    metric = Personalization(2)
    labels = torch.zeros(2, 1, dtype=torch.long)
    metric.update(torch.tensor([[0, 1], [1, 0], [2, 3]]), labels)
    assert float(metric.compute()) == pytest.approx(2 / 3)  # pairs: identical, disjoint, disjoint
    single = Personalization(2)
    single.update(torch.tensor([[0, 1]]), labels)
    assert math.isnan(float(single.compute()))
    assert float(Personalization(2).compute()) == 0.0
