"""Choosing a training-free family's setting on validation: every candidate's scores ranked against the validation
interactions (training items masked), the best Recall@20 kept, the first on ties, every candidate's figure recorded.
All candidates are ranked in one pass over the users, so what they share on a block of users is computed once
(:func:`per_block`). A choice may rank a seeded sample of the validation users (:func:`validation_sample`): its cost
grows with the users it ranks, its noise shrinks only as their square root."""
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
# Validation users a filter's choice ranks by default (a seeded sample; 0 ranks all): the choice's cost grows with
# them. On Gowalla (about 29,000 users with validation items in the pipeline's carve, so a third of them) the best
# and second-best settings were 0.0026 apart in validation Recall@20 for SGFCF, 0.010 for BSPM and 0.0005 for GF-CF
# (its α settings as good as each other), all users ranked.
CHOICE_USERS = 10_000


def best_on_validation(candidates: Sequence[Setting], scorer: Callable[[Setting], Callable[[Tensor], Tensor]],
                       graph: BipartiteGraph, valid: Tensor, family: str,
                       describe: Callable[[Setting], Mapping[str, Any]], device: torch.device | str = "cpu",
                       sample_users: int = 0, seed: int = 0) -> tuple[Setting, list[dict[str, Any]]]:
    """The candidate whose ``scorer(candidate)`` has the best validation Recall@20 (@ the item count if smaller),
    and one history row per candidate: ``describe(candidate)``, its ``valid_recall`` and ``valid_users``, the
    users it was measured on (``sample_users`` of them drawn with ``seed``, see :func:`validation_sample`). Every
    ``scorer(candidate)`` is made first, then each block of users is scored by all of them in turn.

    Raises ``ValueError`` when there are no validation interactions to choose on.
    """
    if valid.numel() == 0:
        raise ValueError(f"{family} chooses its setting on validation, but there are no validation interactions; "
                         "give validation edges or fix the setting in its config")
    k = min(K, graph.num_items)
    valid = validation_sample(valid, sample_users, seed)
    results = evaluate_candidates([scorer(candidate) for candidate in candidates], graph, HeldOut(valid), ks=(k,),
                                  device=device)
    history = [{**describe(candidate), "valid_recall": result.summary()[f"recall@{k}"],
                "valid_users": int(result.users.numel())}
               for candidate, result in zip(candidates, results, strict=True)]
    best = max(range(len(candidates)), key=lambda i: history[i]["valid_recall"])  # max keeps the first of equals
    return candidates[best], history


def choice_users_problems(users: object) -> list[str]:
    """What is wrong with a config's ``choice_users`` (empty when nothing is), for its error message."""
    if isinstance(users, bool) or not isinstance(users, int) or users < 0:
        return [f"choice_users must be an integer >= 0 (validation users the choice ranks; 0: all), got {users!r}"]
    return []


def validation_sample(valid: Tensor, users: int, seed: int) -> Tensor:
    """The validation interactions ``(2, V)`` of ``users`` users drawn without replacement, with ``seed``, from those
    that have any; all of them when ``users`` is 0 or at least their number."""
    if users < 0:
        raise ValueError(f"a validation sample needs users >= 0 (0: every user), got {users}")
    present = torch.unique(valid[0])
    if users == 0 or users >= present.numel():
        return valid
    generator = torch.Generator().manual_seed(seed)
    drawn = present[torch.randperm(present.numel(), generator=generator)[:users]]
    return valid[:, torch.isin(valid[0], drawn)]


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
