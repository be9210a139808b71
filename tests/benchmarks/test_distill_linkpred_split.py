"""The link-prediction benchmark's edge split: one seed gives one split (PyG's negative sampling reads Python's
``random``, so a torch seed alone is not enough), in the advertised 85/5/10 shares, with no test edge in training."""
import random

import torch

from benchmarks.distill_linkpred import edge_split


def _pairs(edges: torch.Tensor) -> set[tuple[int, int]]:
    return {(min(u, v), max(u, v)) for u, v in edges.t().tolist()}


def test_a_seed_gives_the_same_split_whatever_the_global_random_state():
    first = edge_split("cora", 3)
    random.random(), torch.rand(5)  # disturb the global generators between the two calls
    second = edge_split("cora", 3)
    for part in ("train_edges", "valid_pos", "valid_neg", "test_pos", "test_neg"):
        assert torch.equal(getattr(first, part), getattr(second, part)), part
    assert not torch.equal(first.test_neg, edge_split("cora", 4).test_neg)


def test_split_shares_and_no_held_out_edge_in_training():
    split = edge_split("cora", 0)
    train, valid, test = (_pairs(e) for e in (split.train_edges, split.valid_pos, split.test_pos))
    total = len(train) + len(valid) + len(test)
    assert total == 5278  # Planetoid Cora: undirected edges after symmetrizing (SOURCE.md)
    assert abs(len(valid) / total - 0.05) < 0.002 and abs(len(test) / total - 0.10) < 0.002
    assert not train & test and not train & valid and not valid & test
    assert split.test_neg.size(1) == split.test_pos.size(1)
