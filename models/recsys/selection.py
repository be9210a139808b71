"""Choosing a training-free family's setting on validation: every candidate's scores ranked against the validation
interactions (training items masked), the best Recall@20 kept, the first on ties, every candidate's figure recorded."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

from models.eval.ranking import evaluate_scores
from models.graph.bipartite import BipartiteGraph

Setting = TypeVar("Setting")
K = 20


def best_on_validation(candidates: Sequence[Setting], scorer: Callable[[Setting], Callable[[Tensor], Tensor]],
                       graph: BipartiteGraph, valid: Tensor, family: str,
                       describe: Callable[[Setting], Mapping[str, Any]], device: torch.device | str = "cpu",
                       ) -> tuple[Setting, list[dict[str, Any]]]:
    """The candidate whose ``scorer(candidate)`` has the best validation Recall@20 (@ the item count if smaller),
    and one history row per candidate: ``describe(candidate)`` and its ``valid_recall``.

    Raises ``ValueError`` when there are no validation interactions to choose on.
    """
    if valid.numel() == 0:
        raise ValueError(f"{family} chooses its setting on validation, but there are no validation interactions; "
                         "give validation edges or fix the setting in its config")
    k = min(K, graph.num_items)
    history = [{**describe(candidate), "valid_recall": evaluate_scores(
        scorer(candidate), graph, valid, ks=(k,), device=device).summary()[f"recall@{k}"]} for candidate in candidates]
    best = max(range(len(candidates)), key=lambda i: history[i]["valid_recall"])  # max keeps the first of equals
    return candidates[best], history
