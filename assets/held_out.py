"""Each fitted model's full-ranking evaluation on the held-out sets, validation and test from one pass of scoring.

A model's step evaluates its own fit right after fitting it (on the step's device, with the fit still in memory) and
keeps the per-user results with the run's files, so that the ranking report reads them instead of scoring every
model again: a model that did not retrain is not re-scored, and the evaluation of a model fitted on a GPU runs there
rather than in the report's step. The report evaluates a run itself only when the stored results are for other
held-out data or another cut-off.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from assets.common import fingerprint_tensor, load_tensors, save_tensors
from models.eval.ranking import HeldOut, RankingResult, evaluate_held_out
from models.graph.bipartite import BipartiteGraph
from models.recsys.contract import Fitted

# The cut-offs of every quality figure, and the default one of the report (its beyond-accuracy figures: coverage,
# average popularity and personalization of the top K).
KS = (10, 20, 50)
DEFAULT_K = 20
PARTS = ("valid", "test")


def evaluate_fitted(fitted: Fitted, graph: BipartiteGraph, valid: torch.Tensor, test: torch.Tensor, k: int,
                    device: torch.device) -> dict[str, RankingResult]:
    """Validation and test results of ``fitted`` (vectors moved to ``device``; a scorer scores on ``device``).

    Validation interactions happened before the test period: at test, only items the user has not seen are ranked.
    """
    if fitted.has_vectors:
        fitted.user_emb, fitted.item_emb = fitted.user_emb.to(device), fitted.item_emb.to(device)
    return evaluate_held_out(fitted.score, graph, {
        "valid": HeldOut(valid),
        "test": HeldOut(test, also_masked=valid, item_popularity=graph.item_degree(), beyond_accuracy_k=k)},
        ks=KS, device=device)


def save_evaluation(path: Path, results: dict[str, RankingResult], data_fingerprint: str, k: int,
                    seconds: float) -> None:
    """Keep ``results`` with what they were measured on: the training data's fingerprint (held-out sets included),
    the cut-off of the beyond-accuracy figures and the seconds they took."""
    save_tensors(path, fingerprint=fingerprint_tensor(data_fingerprint), k=torch.tensor(k),
                 seconds=torch.tensor(seconds, dtype=torch.float64),
                 **{key: value for part in PARTS for key, value in results[part].tensors(part).items()})


def load_evaluation(path: Path, data_fingerprint: str, k: int) -> tuple[dict[str, RankingResult], float] | None:
    """The results and seconds saved at ``path`` when they were measured on ``data_fingerprint`` at cut-off ``k``,
    else None."""
    if not path.exists():
        return None
    tensors = load_tensors(path)
    if int(tensors["k"]) != k or not torch.equal(tensors["fingerprint"], fingerprint_tensor(data_fingerprint)):
        return None
    return {part: RankingResult.from_tensors(tensors, part) for part in PARTS}, float(tensors["seconds"])


def timed_evaluation(fitted: Fitted, graph: BipartiteGraph, valid: torch.Tensor, test: torch.Tensor, k: int,
                     device: torch.device) -> tuple[dict[str, RankingResult], float]:
    """:func:`evaluate_fitted` and its seconds."""
    started = time.perf_counter()
    results = evaluate_fitted(fitted, graph, valid, test, k, device)
    return results, time.perf_counter() - started
