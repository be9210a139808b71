"""Choosing a training-free family's setting on validation: every candidate's scores ranked against the validation
interactions (training items masked), the best Recall@20 kept, the first on ties, every candidate's figure recorded.
All candidates are ranked in one pass over the users, so what they share on a block of users is computed once
(:func:`per_block`)."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

from models.eval.ranking import HeldOut, evaluate_candidates
from models.graph.bipartite import BipartiteGraph

Setting = TypeVar("Setting")
Shared = TypeVar("Shared")
K = 20


def best_on_validation(candidates: Sequence[Setting], scorer: Callable[[Setting], Callable[[Tensor], Tensor]],
                       graph: BipartiteGraph, valid: Tensor, family: str,
                       describe: Callable[[Setting], Mapping[str, Any]], device: torch.device | str = "cpu",
                       ) -> tuple[Setting, list[dict[str, Any]]]:
    """The candidate whose ``scorer(candidate)`` has the best validation Recall@20 (@ the item count if smaller),
    and one history row per candidate: ``describe(candidate)`` and its ``valid_recall``. Every ``scorer(candidate)``
    is made first, then each block of users is scored by all of them in turn.

    Raises ``ValueError`` when there are no validation interactions to choose on.
    """
    if valid.numel() == 0:
        raise ValueError(f"{family} chooses its setting on validation, but there are no validation interactions; "
                         "give validation edges or fix the setting in its config")
    k = min(K, graph.num_items)
    results = evaluate_candidates([scorer(candidate) for candidate in candidates], graph, HeldOut(valid), ks=(k,),
                                  device=device)
    history = [{**describe(candidate), "valid_recall": result.summary()[f"recall@{k}"]}
               for candidate, result in zip(candidates, results, strict=True)]
    best = max(range(len(candidates)), key=lambda i: history[i]["valid_recall"])  # max keeps the first of equals
    return candidates[best], history


def per_block(compute: Callable[[Tensor], Shared]) -> Callable[[Tensor], Shared]:
    """``compute(users)``, kept for the block of users it last saw (the same tensor): in a choice, the candidates
    score each block one after another, so the part of their scores that does not depend on the setting is
    computed once per block. Build each candidate's returned block anew from it: the ranking masks blocks in place.
    """
    last: list[Any] = [None, None]

    def cached(users: Tensor) -> Shared:
        if last[0] is not users:
            last[:] = [users, compute(users)]
        return last[1]

    return cached
