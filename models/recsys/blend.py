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
(on Gowalla about 400 s of the run). ``benchmarks.quality`` runs it with the settings its filters chose; the pipeline
runs the blend of the filters' vectors, below.

:class:`FactorBlend` is the same blend of two filters' published vectors, and publishable itself: since ``z`` is
linear per user, ``w · z(U¹_u V¹ᵀ) + (1 − w) · z(U²_u V²ᵀ)`` is, up to a constant per user (which ranks nothing), the
dot product of ``[w U¹_u / σ¹_u, (1 − w) U²_u / σ²_u]`` with ``[V¹_i, V²_i]``, ``σ_u`` the spread of the user's scores.
The pipeline blends the vectors its two filters' steps fitted (``assets.blend``), without fitting either again.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import torch
from torch import Tensor

from models.graph.bipartite import BipartiteGraph
from models.recsys.contract import Fitted, Runtime, TrainingRecord, resolved, restore_vectors
from models.recsys.registry import FAMILIES
from models.recsys.selection import CHOICE_USERS, best_on_validation, choice_users_problems, per_block

# The weights of the first filter that a choosing fit tries, the second filter alone first.
WEIGHT_GRID = tuple(i / 10 for i in range(11))
# The filters a blend may mix: the registry's scorer families that fit without training; a blend of vectors mixes
# their published vectors.
MEMBERS = ("gf_cf", "bspm", "sgfcf")
VECTOR_MEMBERS = ("gf_cf_factors", "bspm_factors", "sgfcf_factors")
# Users (and items) per block when the score spreads are summed: bounds the float64 copies.
SPREAD_BLOCK = 4096


@dataclass
class FilterBlendConfig:
    """The two filters (registry names) at their settings (their config fields, e.g. the ones they chose on
    validation) and the weight of the first; with ``choose_on_validation``, the weight of :data:`WEIGHT_GRID` with
    the best validation Recall@20 instead (recorded as ``weight``)."""

    members: ClassVar[tuple[str, ...]] = MEMBERS
    first: str = "sgfcf"
    second: str = "bspm"
    first_settings: dict[str, Any] = field(default_factory=dict)
    second_settings: dict[str, Any] = field(default_factory=dict)
    weight: float = 0.5  # w, the first filter's weight; 1 − w the second's
    seed: int = 2020  # draws the choice's validation users
    choose_on_validation: bool = False
    choice_users: int = CHOICE_USERS  # validation users the choice ranks (a seeded sample; 0: all)

    def __post_init__(self) -> None:
        problems = [f"{role} must be one of {self.members}, got {name!r}"
                    for role, name in (("first", self.first), ("second", self.second)) if name not in self.members]
        if self.first == self.second:
            problems.append(f"first and second must be two different filters, got {self.first!r} twice")
        if not 0.0 <= self.weight <= 1.0:
            problems.append(f"weight must lie in [0, 1] (the first filter's share), got {self.weight!r}")
        problems += choice_users_problems(self.choice_users)
        if problems:
            raise ValueError(f"{type(self).__name__}: " + "; ".join(problems))


@dataclass
class FactorBlendConfig(FilterBlendConfig):
    """:class:`FilterBlendConfig` for two filters' published vectors (registry names of :data:`VECTOR_MEMBERS`)."""

    members: ClassVar[tuple[str, ...]] = VECTOR_MEMBERS
    first: str = "sgfcf_factors"
    second: str = "bspm_factors"


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
        fitted = self.blend(members, graph, valid, config, runtime)
        fitted.record.seconds = time.perf_counter() - started
        return fitted

    def blend(self, members: list[Fitted], graph: BipartiteGraph, valid: Tensor, config: FilterBlendConfig,
              runtime: Runtime) -> Fitted:
        """The blend of two fits of ``config``'s filters, first then second, fitted on ``graph`` (their resolved
        configs replace the config's settings), at the weight chosen on validation when the config says so."""
        names = (config.first, config.second)
        if tuple(member.family for member in members) != names:
            raise ValueError(f"{self.name} blends fits of {names[0]} and {names[1]}, in that order; got fits of "
                             f"{', '.join(member.family for member in members)}")
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
        fitted.record.history = history
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


class FactorBlend(FilterBlend):
    """Two filters' published vectors blended as :class:`FilterBlend` blends the filters, publishable as the vectors
    of the module's docstring (their dimensions side by side)."""

    name, config_type, publishable, baseline = "filter_blend_factors", FactorBlendConfig, True, False
    version = "1"

    def restore(self, tensors: Mapping[str, Tensor], config: Mapping[str, Any]) -> Fitted:
        """The fit from its saved vectors."""
        return restore_vectors(self.name, tensors, config)

    def _fitted(self, members: list[Fitted], config: FilterBlendConfig) -> Fitted:
        user_emb, item_emb = blended_vectors(*members, config.weight)
        return Fitted(self.name, resolved(config), TrainingRecord(), user_emb=user_emb, item_emb=item_emb)


def blended_vectors(first: Fitted, second: Fitted, weight: float) -> tuple[Tensor, Tensor]:
    """User and item vectors whose dot products rank as the blend at ``weight`` of two vector fits: each fit's user
    vectors times its share over the spread of the user's scores (:func:`score_spread`), the two side by side; a fit
    with no share adds no dimensions (at ``weight`` 1 or 0 the blend is one fit's vectors, each user's scaled)."""
    shared = [(member, share) for member, share in ((first, weight), (second, 1.0 - weight)) if share != 0]
    users = [member.user_emb * (share / score_spread(member.user_emb, member.item_emb))[:, None]
             for member, share in shared]
    return torch.cat(users, 1), torch.cat([member.item_emb for member, _ in shared], 1)


def score_spread(user_emb: Tensor, item_emb: Tensor) -> Tensor:
    """Each user's standard deviation over the items of the scores ``user_emb @ item_emb.T`` (``n − 1`` in the
    denominator, as :func:`standardised`), 1 where it is 0, in ``user_emb``'s dtype.

    By hand because no library gives row spreads of a product without forming it (users × items): the variance of
    ``u · v_i`` over the items is ``u C uᵀ / (n − 1)`` with ``C`` the centred items' Gram matrix, summed in float64 so
    that the centring loses nothing.
    """
    count, mean = item_emb.shape[0], item_emb.double().mean(0)
    gram = sum((block.T @ block for block in (rows.double() - mean for rows in item_emb.split(SPREAD_BLOCK))),
               torch.zeros(item_emb.shape[1], item_emb.shape[1], dtype=torch.float64, device=item_emb.device))
    variance = torch.cat([((rows.double() @ gram) * rows.double()).sum(1) for rows in user_emb.split(SPREAD_BLOCK)])
    spread = (variance.clamp_min(0) / max(count - 1, 1)).sqrt()
    return torch.where(spread > 0, spread, torch.ones_like(spread)).to(user_emb.dtype)


def _mixed(first: Tensor, second: Tensor, weight: float) -> Tensor:
    """``weight · first + (1 − weight) · second``, a new tensor (the ranking masks it in place)."""
    return torch.add(first * weight, second, alpha=1.0 - weight)

