"""Two training-free filters blended: each user's scores from both, standardised over the items (mean 0, standard
deviation 1 per user) and mixed with one weight, chosen on validation.

    s_u = w · z(s¹_u) + (1 − w) · z(s²_u),      z(x) = (x − mean(x)) / std(x)

The two filters score on scales of their own (SGFCF's parts are distributions over the items, BSPM's are a
polynomial of the item graph), and standardising puts them on one without changing either's ranking, so ``w = 1``
and ``w = 0`` rank as the filters do alone. The filters differ in what they favour: on Gowalla's given split
SGFCF leads on a validation carve of the training pairs and BSPM, which ranks more popular items, on the test
split (README, "Filters, full and as published vectors"); a blend carries some of each. There, with each filter at
the setting it chose, validation chooses ``w = 0.7`` (Recall@20 0.2344 against SGFCF's 0.2322 and BSPM's 0.2214) and
the blend reads 0.1890 on test, against 0.1854 and 0.1870 (``benchmarks.quality``).

The pipeline does not run it: its two filters already fit in their own steps, and a blend step would fit both again
(on Gowalla about 400 s of the run). ``benchmarks.quality`` runs it with the settings its filters chose.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from models.graph.bipartite import BipartiteGraph
from models.recsys.contract import Fitted, Runtime, TrainingRecord, resolved
from models.recsys.registry import FAMILIES
from models.recsys.selection import CHOICE_USERS, best_on_validation, choice_users_problems, per_block

# The weights of the first filter that a choosing fit tries, the second filter alone first.
WEIGHT_GRID = tuple(i / 10 for i in range(11))
# The filters a blend may mix: the registry's scorer families that fit without training.
MEMBERS = ("gf_cf", "bspm", "sgfcf")


@dataclass
class FilterBlendConfig:
    """The two filters (registry names) at their settings (their config fields, e.g. the ones they chose on
    validation) and the weight of the first; with ``choose_on_validation``, the weight of :data:`WEIGHT_GRID` with
    the best validation Recall@20 instead (recorded as ``weight``)."""

    first: str = "sgfcf"
    second: str = "bspm"
    first_settings: dict[str, Any] = field(default_factory=dict)
    second_settings: dict[str, Any] = field(default_factory=dict)
    weight: float = 0.5  # w, the first filter's weight; 1 − w the second's
    seed: int = 2020  # draws the choice's validation users
    choose_on_validation: bool = False
    choice_users: int = CHOICE_USERS  # validation users the choice ranks (a seeded sample; 0: all)

    def __post_init__(self) -> None:
        problems = [f"{role} must be one of {MEMBERS}, got {name!r}"
                    for role, name in (("first", self.first), ("second", self.second)) if name not in MEMBERS]
        if self.first == self.second:
            problems.append(f"first and second must be two different filters, got {self.first!r} twice")
        if not 0.0 <= self.weight <= 1.0:
            problems.append(f"weight must lie in [0, 1] (the first filter's share), got {self.weight!r}")
        problems += choice_users_problems(self.choice_users)
        if problems:
            raise ValueError("FilterBlendConfig: " + "; ".join(problems))


def standardised(scores: Tensor) -> Tensor:
    """Each row of ``scores`` ``(B, I)`` less its mean, over its standard deviation (a constant row becomes 0)."""
    centred = scores - scores.mean(1, keepdim=True)
    spread = centred.std(1, keepdim=True)
    return centred / torch.where(spread > 0, spread, torch.ones_like(spread))


class FilterBlend:
    """Two filters' standardised scores mixed per user (a scorer family; nothing to publish as vectors)."""

    name, config_type, publishable, baseline = "filter_blend", FilterBlendConfig, False, False
    version = "1"

    def fit(self, graph: BipartiteGraph, valid: Tensor, config: FilterBlendConfig, runtime: Runtime) -> Fitted:
        """Both filters at their settings, then the weight (chosen on validation when the config says so)."""
        started = time.perf_counter()
        members = [FAMILIES[name].fit(graph, valid, FAMILIES[name].config_type(**settings), runtime)
                   for name, settings in ((config.first, config.first_settings),
                                          (config.second, config.second_settings))]
        config = replace(config, first_settings=members[0].config, second_settings=members[1].config)
        history = []
        if config.choose_on_validation:
            # Every weight mixes the same two standardised blocks: computed once per block for all of them.
            shared = per_block(lambda users: tuple(standardised(member.score(users)) for member in members))
            config, history = best_on_validation(
                [replace(config, weight=weight) for weight in WEIGHT_GRID],
                lambda candidate: lambda users: _mixed(*shared(users), candidate.weight), graph, valid, self.name,
                lambda candidate: {"weight": candidate.weight}, runtime.device, config.choice_users, config.seed)
        fitted = self._fitted(members, config)
        fitted.record.history, fitted.record.seconds = history, time.perf_counter() - started
        return fitted

    def restore(self, tensors: Mapping[str, Tensor], config: Mapping[str, Any]) -> Fitted:
        """The blend from its two filters' saved states (keys prefixed ``first.`` and ``second.``)."""
        settings = FilterBlendConfig(**config)
        members = [FAMILIES[name].restore({key.removeprefix(f"{role}."): value for key, value in tensors.items()
                                          if key.startswith(f"{role}.")}, member_settings)
                   for role, name, member_settings in (("first", settings.first, settings.first_settings),
                                                       ("second", settings.second, settings.second_settings))]
        return self._fitted(members, settings)

    def _fitted(self, members: list[Fitted], config: FilterBlendConfig) -> Fitted:
        first, second = members
        state = {**{f"first.{key}": value for key, value in first.tensors().items()},
                 **{f"second.{key}": value for key, value in second.tensors().items()}}
        return Fitted(self.name, resolved(config), TrainingRecord(), state=state, scorer=lambda users: _mixed(
            standardised(first.score(users)), standardised(second.score(users)), config.weight))


def _mixed(first: Tensor, second: Tensor, weight: float) -> Tensor:
    """``weight · first + (1 − weight) · second``, a new tensor (the ranking masks it in place)."""
    return torch.add(first * weight, second, alpha=1.0 - weight)

