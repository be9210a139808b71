"""A model's stored evaluation round-trips exactly and is read back only for the data and cut-off it was measured
on."""
import pytest
import torch

from assets.held_out import evaluate_fitted, load_evaluation, save_evaluation
from models.graph.bipartite import BipartiteGraph
from models.recsys.contract import Fitted, TrainingRecord

# 7 users × 60 items (more than the largest cut-off): user u trained on items 8u..8u+3, validation 8u+4, and
# test 8u+5 for five of them.
GRAPH = BipartiteGraph(torch.tensor([[u for u in range(7) for _ in range(4)],
                                     [8 * u + j for u in range(7) for j in range(4)]]), 7, 60)
VALID = torch.tensor([[0, 1, 2, 3], [4, 12, 20, 28]])
TEST = torch.tensor([[0, 1, 4, 5, 6], [5, 13, 37, 45, 53]])


def _results():
    torch.manual_seed(0)
    fitted = Fitted("random", {}, TrainingRecord(), user_emb=torch.randn(7, 3), item_emb=torch.randn(60, 3))
    return evaluate_fitted(fitted, GRAPH, VALID, TEST, 10, torch.device("cpu"))


def test_a_stored_evaluation_round_trips_exactly(tmp_path):
    results = _results()
    save_evaluation(tmp_path / "evaluation.pt", results, "data-a", 10, 1.5)
    loaded, seconds = load_evaluation(tmp_path / "evaluation.pt", "data-a", 10)
    assert seconds == 1.5
    for part in ("valid", "test"):
        assert torch.equal(loaded[part].users, results[part].users)
        assert list(loaded[part].recall) == [10, 20, 50]
        for k in (10, 20, 50):
            assert torch.equal(loaded[part].recall[k], results[part].recall[k])
            assert torch.equal(loaded[part].ndcg[k], results[part].ndcg[k])
        assert loaded[part].beyond_accuracy == pytest.approx(results[part].beyond_accuracy)
    assert set(loaded["test"].beyond_accuracy) == {"coverage@10", "avg_popularity@10", "personalization@10"}
    assert loaded["test"].users.tolist() == [0, 1, 4, 5, 6] and loaded["valid"].users.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("fingerprint, k", [("data-b", 10), ("data-a", 20)])
def test_a_stored_evaluation_of_other_data_or_another_cut_off_is_not_read(tmp_path, fingerprint, k):
    save_evaluation(tmp_path / "evaluation.pt", _results(), "data-a", 10, 1.5)
    assert load_evaluation(tmp_path / "evaluation.pt", fingerprint, k) is None
    assert load_evaluation(tmp_path / "missing.pt", "data-a", 10) is None
