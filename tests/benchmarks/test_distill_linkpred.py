"""The link-prediction benchmark: one seed gives one edge split (PyG's negative sampling reads Python's ``random``,
so a torch seed alone is not enough), in the advertised 85/5/10 shares with no test edge in training and ten true
negatives per validation edge; the summary's means, paired differences and time ratio, and the timed parts of a
seed's run. The splits run on the Cora slice in tests/fixtures; the full Cora's counts when the shared folder is there."""
import random

import pytest
import torch

from benchmarks.distill_linkpred import METHODS, edge_split, run_seed, summarize
from models.linkpred.students import LinkConfig
from models.nodeclf.npz_graphs import NPZ_FOLDER, load_npz_graph
from warehouse.paths import shared_dir

SHARED_NPZ = shared_dir() / NPZ_FOLDER


def _pairs(edges: torch.Tensor) -> set[tuple[int, int]]:
    return {(min(u, v), max(u, v)) for u, v in edges.t().tolist()}


def test_a_seed_gives_the_same_split_whatever_the_global_random_state(cora_slice):
    first = edge_split(str(cora_slice), 3)
    random.random(), torch.rand(5)  # disturb the global generators between the two calls
    second = edge_split(str(cora_slice), 3)
    for part in ("train_edges", "valid_pos", "valid_neg", "test_pos", "test_neg"):
        assert torch.equal(getattr(first, part), getattr(second, part)), part
    assert not torch.equal(first.test_neg, edge_split(str(cora_slice), 4).test_neg)


def _assert_split_shares(split, total_edges: int) -> None:
    """85/5/10 of the undirected edges within 0.2 points, the parts disjoint, one negative per test edge."""
    train, valid, test = (_pairs(e) for e in (split.train_edges, split.valid_pos, split.test_pos))
    total = len(train) + len(valid) + len(test)
    assert total == total_edges
    assert abs(len(valid) / total - 0.05) < 0.002 and abs(len(test) / total - 0.10) < 0.002
    assert not train & test and not train & valid and not valid & test
    assert split.test_neg.size(1) == split.test_pos.size(1)


def _assert_true_negatives(split, graph, valid_negatives: int, test_negatives: int, valid_k: int) -> None:
    """Ten validation negatives per edge, none of them an edge of the graph or a test negative, and the K that
    gives validation the same share of negatives as test's K = 20."""
    negatives = _pairs(split.valid_neg)
    assert split.valid_neg.size(1) == len(negatives) == 10 * split.valid_pos.size(1) == valid_negatives
    assert not negatives & _pairs(graph.edge_index) and not negatives & _pairs(split.test_neg)
    assert split.test_neg.size(1) == test_negatives and split.valid_hits_k(20) == valid_k


def test_split_shares_and_no_held_out_edge_in_training(cora_slice):
    _assert_split_shares(edge_split(str(cora_slice), 0), 3598)  # the slice's undirected edges (fixtures README)


def test_validation_has_ten_true_negatives_per_edge_and_a_matching_k(cora_slice):
    # 20 of 359 test negatives is the same share as 100 of 1790 validation negatives (99.7, rounded).
    _assert_true_negatives(edge_split(str(cora_slice), 0), load_npz_graph(cora_slice), 1790, 359, 100)


@pytest.mark.skipif(not (SHARED_NPZ / "cora.npz").is_file(), reason="full-size Cora: shared cora.npz not found")
def test_full_cora_split_counts():
    split = edge_split("cora", 0)
    _assert_split_shares(split, 5278)  # Planetoid Cora: 5,429 stored entries, 5,278 undirected edges after symmetrizing
    # 20 of 527 test negatives is the same share as 100 of 2630 validation negatives.
    _assert_true_negatives(split, load_npz_graph("cora", folder=SHARED_NPZ), 2630, 527, 100)


def test_summary_pairs_methods_seed_by_seed():
    hits = {"gnn_teacher": [0.6, 0.6], "mlp": [0.5, 0.4], "glnn": [0.45, 0.5], "glnn_context": [0.65, 0.6],
            "llp_gnn": [0.6, 0.7], "ehdm": [0.7, 0.7], "ehdm_features": [0.65, 0.7]}
    seconds = {"gnn_teacher": 10.0, "mlp": 10.0, "glnn": 12.0, "glnn_context": 14.0, "llp_gnn": 25.0, "ehdm": 20.0,
               "ehdm_features": 19.0}
    runs = {"cora": [{m: {"hits": hits[m][seed], "train_seconds": seconds[m]} for m in METHODS} for seed in (0, 1)]}
    for seed, run in enumerate(runs["cora"]):
        run["llp_gnn"]["student_seconds"] = 15.0 + 2 * seed  # the teacher took the other 10 (or 8) seconds
        run["ehdm"]["students_seconds"] = 18.0
    results, rows, paired, timing = summarize(runs)
    assert results["cora.ehdm.hits@20_mean"] == pytest.approx(0.7)
    assert results["cora.mlp.hits@20_std"] == pytest.approx(0.0707107, abs=1e-6)
    assert results["cora.glnn.hits@20_per_seed"] == [0.45, 0.5]
    assert results["cora.ehdm_over_llp_gnn.train_seconds"] == pytest.approx(0.8)
    assert rows[1] == ["cora", "mlp", "45.00 ± 7.07", 10.0]
    # ehdm − llp: +10 and 0; llp − glnn: +15 and +20; glnn − mlp: −5 and +10; llp − glnn_context: −5 and +10;
    # ehdm_features − llp: +5 and 0; ehdm − ehdm_features: +5 and 0.
    assert paired == [["cora", "ehdm − llp_gnn", "+5.00 ± 7.07", "2/2"],
                      ["cora", "llp_gnn − glnn", "+17.50 ± 3.54", "2/2"],
                      ["cora", "glnn − mlp", "+2.50 ± 10.61", "1/2"],
                      ["cora", "llp_gnn − glnn_context", "+2.50 ± 10.61", "1/2"],
                      ["cora", "ehdm_features − llp_gnn", "+2.50 ± 3.54", "2/2"],
                      ["cora", "ehdm − ehdm_features", "+2.50 ± 3.54", "2/2"]]
    # teacher 10, LLP student 16 (mean of 15 and 17), pipeline 25; EHDM 20 of which its students 18.
    assert timing == [["cora", 10.0, 16.0, 25.0, 18.0, 2.0, 20.0, pytest.approx(0.8), 10.0]]


def test_a_seed_times_the_pipeline_parts_it_compares(cora_slice):
    out = run_seed(edge_split(str(cora_slice), 0), LinkConfig(steps=5, seed=0), ("cn", "aa"))
    assert set(out) == set(METHODS)
    llp, ehdm = out["llp_gnn"], out["ehdm"]
    assert llp["train_seconds"] == pytest.approx(out["gnn_teacher"]["train_seconds"] + llp["student_seconds"])
    # EHDM's two students run at least the five steps a plain MLP runs; the gate and heuristics come on top.
    assert out["mlp"]["train_seconds"] < ehdm["students_seconds"] < ehdm["train_seconds"]
    # The feature-only gate sits over the same students: their seconds, plus its own gate's.
    features = out["ehdm_features"]
    assert features["students_seconds"] == ehdm["students_seconds"] < features["train_seconds"]
