"""SGFCF (Peng et al., KDD 2024, https://arxiv.org/abs/2406.08827): a training-free graph filter on a generalised
degree normalisation, without the authors' individualised filter (their ``sgfcf_wo_igf.py``).

With G²N ``R̃ = D_U R D_I``, ``D = (d + offset)^-ε`` (0 where the degree is 0), its top-``K`` singular triplets
``R̃ ≈ U Σ Vᵀ`` and ``σ̂ = σ / σ_1``, a user's scores are

    low_u = U_u diag(σ̂^2β) Vᵀ,          row-normalised: low_u / (low_u · 1)
    high_u = r̃_u R̃ᵀ R̃,                row-normalised: high_u / (high_u · 1)
    s_u = low_u + γ · high_u  (+ λ · p)

(the authors pass the sum through a sigmoid, which leaves the ranking alone, and mask training items afterwards).
``λ · p`` is ours, not the authors': a popularity prior, ``p_i`` item ``i``'s share of the training interactions,
each interaction weighted by ``0.5 ** (age / half-life)`` when a half-life is set and the graph has interaction times
(the recency-weighted popularity of :mod:`models.recsys.baselines`, as shares). Both parts are distributions over the
items, so the prior mixes in on their scale, as a language model is smoothed with the collection's term frequencies;
with ``λ = 0`` (the default) it is the authors' filter. A choosing fit tries the prior's weights of
:data:`PRIOR_GRID`, with every half-life of :data:`PRIOR_HALF_LIVES` when the graph has times, after its setting, on
validation: on temporal splits, where the next items are often the popular (and the recently popular) ones, it is
what lets a filter rank them.
Since ``U_u = r̃_u V Σ^-1`` and both parts are row-normalised, the user's own scale ``D_U`` cancels: every score is
computed from ``x_u = r_u D_I``, so any user row can be scored, training user or not.

On Gowalla's given split (``benchmarks.quality``: a 5% validation carve of its training part) the choice on
validation is the authors' CiteULike setting (K 1,000, β 0.95, γ 1.5): validation Recall@20 0.2315 against BSPM's
0.2214 and GF-CF's 0.2164, test 0.1834 against BSPM's 0.1870; then the prior's λ 0.3 (0.2337 against 0.2332 on the
choice's 10,000 users, a difference within their noise), test 0.1854. The individualised filter (per-user and per-item
exponents from a homophily ratio) is not offered: at the authors' Gowalla setting it gave 0.1916 on an earlier carve
(each user's share rounded down), below the filter without it (0.1947; both measured once by a one-off script).

:class:`SGFCFFactors` publishes the filter as ``K``-dimensional vectors: the low part is a factor model already, and
the high part's ``R̃ᵀR̃ = V Σ² Vᵀ`` keeps the same ``K`` triplets, so the only loss is its spectrum below ``σ_K``.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from models.graph.bipartite import BipartiteGraph
from models.recsys.baselines import HALF_LIVES_DAYS, recency_weighted_counts
from models.recsys.contract import Fitted, Runtime, TrainingRecord, resolved, restore_vectors
from models.recsys.interactions import (
    degree_scale,
    interaction_matrix,
    normalized_interactions,
    sparse_from_state,
    sparse_rows,
    sparse_state,
    through_item_graph,
    to_torch_csr,
)
from models.recsys.selection import CHOICE_USERS, best_on_validation, choice_users_problems, per_block
from models.recsys.spectrum import top_triplets

# The authors' settings (their README) for their dense (80% training) and sparse (20% training) splits of Gowalla,
# Yelp, Pinterest and CiteULike, tried on validation when a fit chooses its own (the pipeline's filters do): the
# sparse ones keep few triplets, which suits a small catalogue. One SVD, at the largest K, serves them all (each K
# takes its top triplets), so the normalisation (ε, offset) stays the config's.
SETTING_GRID = ({}, {"rank": 250, "beta": 1.0, "gamma": 0.5}, {"rank": 300, "beta": 1.0, "gamma": 0.3},
                {"rank": 1000, "beta": 0.95, "gamma": 1.5},
                {"rank": 110, "beta": 3.1, "gamma": 0.02}, {"rank": 50, "beta": 2.0, "gamma": 0.025},
                {"rank": 60, "beta": 2.0, "gamma": 0.07}, {"rank": 110, "beta": 4.6, "gamma": 0.05})
# The popularity prior's weights a choosing fit tries after its setting (0 first: the filter alone). The parts sum
# to 1 + γ per user, the prior to λ.
PRIOR_GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)
# The prior's half-lives tried with every weight when the graph has interaction times (0 first: no decay).
PRIOR_HALF_LIVES = (0.0, *HALF_LIVES_DAYS)
CHOSEN_FIELDS = ("rank", "beta", "gamma", "prior", "prior_half_life_days")


@dataclass
class SGFCFConfig:
    """The authors' Gowalla setting for their 80% training split (README: K 650, β 1.3, ε 0.34, γ 1.6); with
    ``choose_on_validation``, the setting of :data:`SETTING_GRID` with the best validation Recall@20 instead, then
    the prior's weight of :data:`PRIOR_GRID` and half-life of :data:`PRIOR_HALF_LIVES` with the best (recorded in
    place of these fields)."""

    rank: int = 650  # K, the singular triplets of the low-pass part
    beta: float = 1.3  # β, the power of the normalised singular values: σ̂^2β weighs each triplet
    exponent: float = 0.34  # ε of G²N, D = (d + offset)^-ε; 0.5 is GF-CF's and LightGCN's normalisation
    offset: float = 0.0  # α of G²N, added to every degree before the power
    gamma: float = 1.6  # γ, the weight of the row-normalised high part r̃_u R̃ᵀR̃; 0 leaves it out
    prior: float = 0.0  # λ, the weight of the popularity prior (each item's share of the training interactions)
    prior_half_life_days: float = 0.0  # an interaction of age a counts 0.5 ** (a / this) in the prior; 0: no decay
    seed: int = 2020  # start vector of the Lanczos iteration; also draws the choice's validation users
    choose_on_validation: bool = False  # the pipeline sets it; benchmarks and tests keep the given setting
    choice_users: int = CHOICE_USERS  # validation users the choice ranks (a seeded sample; 0: all)

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            problems.append(f"rank must be an integer >= 1 (singular triplets), got {self.rank!r}")
        if not self.exponent >= 0:
            problems.append(f"exponent must be >= 0 (ε of the degree normalisation), got {self.exponent!r}")
        if not self.offset >= 0:
            problems.append(f"offset must be >= 0 (added to every degree), got {self.offset!r}")
        if not self.gamma >= 0:
            problems.append(f"gamma must be >= 0 (the high part's weight), got {self.gamma!r}")
        if not self.prior >= 0:
            problems.append(f"prior must be >= 0 (the popularity prior's weight), got {self.prior!r}")
        if not self.prior_half_life_days >= 0:
            problems.append("prior_half_life_days must be >= 0 (0: no decay), got "
                            f"{self.prior_half_life_days!r}")
        problems += choice_users_problems(self.choice_users)
        if problems:
            raise ValueError("SGFCFConfig: " + "; ".join(problems))


class SpectralParts:
    """What SGFCF's scores are made of, for one training matrix and normalisation, on ``device``.

    ``rows(users)`` gives ``x_u = r_u D_I`` ``(B, I)`` and ``projected(users)`` gives ``x_u V``; ``low(projected,
    rank, beta)`` and ``high(users)`` are the two row-normalised parts. A row whose sum is 0 (a user with no
    training item) stays 0 instead of NaN.
    """

    def __init__(self, matrix: sp.csr_matrix, values: Tensor, vectors: Tensor, exponent: float, offset: float,
                 device: torch.device) -> None:
        self.device = device
        normalized = normalized_interactions(matrix, exponent, offset)
        item_scale = degree_scale(np.asarray(matrix.sum(0)).ravel(), exponent, offset)
        self._forward, self._backward = to_torch_csr(normalized, device), to_torch_csr(normalized.T, device)
        self.values, self.vectors = values.to(device), vectors.to(device)
        self._scaled = (matrix @ sp.diags(item_scale)).tocsr()  # every x_u
        # Every user's x_u V and high-part row sum x_u R̃ᵀR̃ 1 at once, from the sparse rows: from a block's dense rows
        # x V would cost B·I·K multiply-adds for rows of a few dozen nonzeros (33 billion per block of 800 Gowalla
        # users at K 1,000).
        scaled_rows = to_torch_csr(self._scaled, device)
        item_sums = np.asarray(normalized.T @ (normalized @ np.ones(matrix.shape[1], np.float32))).ravel()
        self._projected = scaled_rows @ self.vectors
        self._high_sums = scaled_rows @ torch.from_numpy(item_sums).to(device)

    def rows(self, users: Tensor) -> Tensor:
        """``x_u = r_u D_I`` of ``users`` ``(B,)``, sparse CSR ``(B, I)``."""
        return sparse_rows(self._scaled, users, self.device)

    def spectral_weights(self, rank: int, beta: float) -> Tensor:
        """``Σ^-1 σ̂^2β`` of the top ``rank`` triplets ``(rank,)``: ``x V_K`` times it is ``U_u σ̂^2β``."""
        values = self.values[:rank]
        return (values / self.values[0]) ** (2 * beta) / values

    def low(self, projected: Tensor, rank: int, beta: float) -> Tensor:
        """The row-normalised low part from ``projected = x V`` ``(B, ≥ rank)``."""
        return row_normalized((projected[:, :rank] * self.spectral_weights(rank, beta)) @ self.vectors[:, :rank].T)

    def high(self, users: Tensor) -> Tensor:
        """The row-normalised high part ``x_u R̃ᵀR̃ / (x_u R̃ᵀR̃ 1)`` of ``users`` ``(B, I)``."""
        return _divided(through_item_graph(self.rows(users), self._forward, self._backward),
                        self._high_sums[users.to(self.device)])

    def projected(self, users: Tensor) -> Tensor:
        """``x_u V`` ``(B, K)`` of ``users``, what :meth:`low` takes."""
        return self._projected[users.to(self.device)]

    def every_user(self) -> tuple[Tensor, Tensor]:
        """``x V`` ``(U, K)`` and the high part's row sums ``(U,)`` (what :meth:`high` divides by) of every user,
        from the sparse rows."""
        return self._projected, self._high_sums


def popularity_prior(graph: BipartiteGraph, half_life_days: float) -> Tensor:
    """Each item's share of ``graph``'s interactions ``(I,)``, each weighted by ``0.5 ** (age / half_life_days)``
    (age from the latest interaction) when the half-life is above 0 and the graph has times; all 0 without edges."""
    counts = recency_weighted_counts(graph, half_life_days) if half_life_days > 0 else graph.item_degree().double()
    return _shares(counts)


def _shares(counts: Tensor) -> Tensor:
    return (counts / max(float(counts.sum()), 1.0)).float()


def row_normalized(scores: Tensor) -> Tensor:
    """Each row over its sum; a row summing to 0 stays as it is."""
    return _divided(scores, scores.sum(1))


def _divided(scores: Tensor, sums: Tensor) -> Tensor:
    return scores / torch.where(sums == 0, torch.ones_like(sums), sums)[:, None]


def fit_parts(graph: BipartiteGraph, config: SGFCFConfig, runtime: Runtime
              ) -> tuple[SpectralParts, dict[str, Tensor]]:
    """The parts of the training graph at ``config``'s normalisation on ``runtime``'s device, and the state that
    :func:`restore_parts` rebuilds them from; with ``choose_on_validation`` the triplets of the largest rank of the
    grid, else the config's (from ``runtime.spectra`` when one covers them)."""
    rank = max(config.rank, *(setting.get("rank", 0) for setting in SETTING_GRID)) if config.choose_on_validation \
        else config.rank
    matrix = interaction_matrix(graph)
    values, vectors = top_triplets(matrix, rank, config.seed, config.exponent, config.offset, runtime.spectra)
    values, vectors = torch.from_numpy(values), torch.from_numpy(vectors)
    state = {**sparse_state("interactions", matrix), "singular_values": values, "singular_vectors": vectors}
    return SpectralParts(matrix, values, vectors, config.exponent, config.offset, runtime.device), state


def restore_parts(state: Mapping[str, Tensor], config: SGFCFConfig, device: torch.device) -> SpectralParts:
    """The parts that :func:`fit_parts` saved as ``state``."""
    return SpectralParts(sparse_from_state("interactions", state), state["singular_values"],
                         state["singular_vectors"], config.exponent, config.offset, device)


def choose_setting(config: SGFCFConfig, scorer: Callable[[SGFCFConfig], Callable[[Tensor], Tensor]],
                   graph: BipartiteGraph, valid: Tensor, family: str, runtime: Runtime,
                   svd_rank: int) -> tuple[SGFCFConfig, list[dict[str, Any]]]:
    """``config`` at the setting of :data:`SETTING_GRID` whose ``scorer`` (without the prior) has the best validation
    Recall@20, then at the prior (weight of :data:`PRIOR_GRID`, and half-life of :data:`PRIOR_HALF_LIVES` when
    ``graph`` has times) whose addition to those scores has the best; every candidate's figure, the settings' first.
    Ranks are capped at ``svd_rank`` (the triplets a small matrix has)."""
    def describe(candidate: SGFCFConfig) -> dict[str, Any]:
        return {name: getattr(candidate, name) for name in CHOSEN_FIELDS}

    capped = (replace(config, **{**setting, "rank": min(setting.get("rank", config.rank), svd_rank), "prior": 0.0,
                                 "prior_half_life_days": 0.0}) for setting in SETTING_GRID)
    # Two settings capped to the same one are tried once.
    candidates = list({tuple(describe(candidate).values()): candidate for candidate in capped}.values())
    config, history = best_on_validation(candidates, scorer, graph, valid, family, describe, runtime.device,
                                         config.choice_users, config.seed)
    # Then the prior at that setting: every weight and half-life adds its multiple of its prior to the same scores,
    # computed once per block of users.
    chosen = per_block(scorer(config))
    half_lives = PRIOR_HALF_LIVES if graph.edge_time is not None else (0.0,)
    priors = {days: popularity_prior(graph, days).to(runtime.device) for days in half_lives}
    weights = [config] + [replace(config, prior=weight, prior_half_life_days=days)
                          for days in half_lives for weight in PRIOR_GRID if weight > 0]
    config, weighed = best_on_validation(
        weights, lambda candidate: _with_prior(chosen, candidate, priors[candidate.prior_half_life_days]), graph,
        valid, family, describe, runtime.device, config.choice_users, config.seed)
    return config, history + weighed


def _with_prior(scores: Callable[[Tensor], Tensor], config: SGFCFConfig, prior: Tensor
                ) -> Callable[[Tensor], Tensor]:
    """``scores`` plus ``config.prior`` times ``prior``, a new block each call."""
    return lambda users: scores(users) + config.prior * prior


class SGFCF:
    """SGFCF as a recommender family: one truncated SVD at fit time, two parts per user block when scoring."""

    name, config_type, publishable, baseline = "sgfcf", SGFCFConfig, False, True
    version = "3"  # 2: the popularity prior, its weight chosen on validation; 3: its half-life too
    spectral = True  # fits from the truncated SVD of the normalised training matrix (models.recsys.spectrum)

    def fit(self, graph: BipartiteGraph, valid: Tensor, config: SGFCFConfig, runtime: Runtime) -> Fitted:
        """The top singular triplets of the G²N-normalised training matrix; the rest is computed when scoring."""
        started = time.perf_counter()
        parts, state = fit_parts(graph, config, runtime)
        history = []
        if config.choose_on_validation:
            # The settings share a block's projection x V and its high part: once per block for all of them.
            shared = per_block(lambda users: _projected_and_high(parts, users))
            config, history = choose_setting(config, lambda candidate: _scorer(parts, candidate, shared=shared),
                                             graph, valid, self.name, runtime, parts.values.numel())
            # Keep the chosen setting's triplets only.
            state = {**state, "singular_values": state["singular_values"][:config.rank],
                     "singular_vectors": state["singular_vectors"][:, :config.rank].contiguous()}
        state["prior"] = popularity_prior(graph, config.prior_half_life_days)
        fitted = self._fitted(parts, config, state)
        fitted.record.history, fitted.record.seconds = history, time.perf_counter() - started
        return fitted

    def restore(self, tensors: Mapping[str, Tensor], config: Mapping[str, Any]) -> Fitted:
        """The scorer from the saved interactions, singular triplets and prior."""
        settings, state = SGFCFConfig(**config), dict(tensors)
        if "prior" not in state:  # saved before the prior was: the plain shares, which it then was
            state["prior"] = _shares(torch.from_numpy(
                np.asarray(sparse_from_state("interactions", state).sum(0), dtype=np.float64).ravel()))
        return self._fitted(restore_parts(state, settings, torch.device("cpu")), settings, state)

    def _fitted(self, parts: SpectralParts, config: SGFCFConfig, state: dict[str, Tensor]) -> Fitted:
        scorer = _scorer(parts, config, state["prior"].to(parts.device))
        return Fitted(self.name, resolved(config), TrainingRecord(), scorer=scorer, state=state)


def _projected_and_high(parts: SpectralParts, users: Tensor) -> tuple[Tensor, Tensor]:
    return parts.projected(users), parts.high(users)


def _scorer(parts: SpectralParts, config: SGFCFConfig, prior: Tensor | None = None,
            shared: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None) -> Callable[[Tensor], Tensor]:
    """SGFCF's scores at ``config`` (with ``config.prior`` times ``prior``, which a config with a prior needs) from
    a block's projection and high part (by default computed here); a new block each call, whatever ``shared``
    keeps."""
    if config.prior != 0 and prior is None:
        raise ValueError("SGFCF: a config with a prior weight needs the prior's item shares")
    def score(users: Tensor) -> Tensor:
        if shared is not None:
            projected, high = shared(users)
        else:
            projected = parts.projected(users)
            high = parts.high(users) if config.gamma != 0 else None
        scores = parts.low(projected, config.rank, config.beta)
        if config.gamma != 0:
            scores = scores + config.gamma * high
        return scores + config.prior * prior if config.prior != 0 else scores

    return score


class SGFCFFactors:
    """SGFCF as ``K``-dimensional user and item vectors (publishable), from the same SVD:

        user: x_u V_K ∘ (Σ^-1 σ̂^2β / low-sum_u  +  γ Σ² / high-sum_u),     item: V_K

    with ``x_u = r_u D_I`` and the two row sums of the full filter (``low-sum_u`` exact, since the low part has rank
    ``K``; ``high-sum_u = x_u R̃ᵀR̃ 1`` exact too), and with a prior one more dimension, ``λ`` for every user and
    ``p_i`` for item ``i`` (recency-weighted with the prior's half-life). Against the full filter the vectors lose only the high part's spectrum below the ``K``-th
    singular value; at ``γ = 0`` they are the full filter exactly.
    """

    name, config_type, publishable, baseline = "sgfcf_factors", SGFCFConfig, True, True
    version = "3"  # 2: the popularity prior as one more dimension; 3: its half-life chosen too
    spectral = True  # fits from the truncated SVD of the normalised training matrix (models.recsys.spectrum)
    vectors_of = "sgfcf"

    def fit(self, graph: BipartiteGraph, valid: Tensor, config: SGFCFConfig, runtime: Runtime) -> Fitted:
        """The vectors above, at ``config``'s setting or the one chosen on validation."""
        started = time.perf_counter()
        parts, _ = fit_parts(graph, config, runtime)
        projected, high_sums = parts.every_user()  # shared by every setting

        def vectors(setting: SGFCFConfig) -> tuple[Tensor, Tensor]:
            """The vectors at ``setting`` without its prior."""
            k, values = setting.rank, parts.values[:setting.rank]
            low_weights = parts.spectral_weights(k, setting.beta)
            low_sums = projected[:, :k] @ (low_weights * parts.vectors[:, :k].sum(0))
            user_emb = projected[:, :k] * (_inverse(low_sums)[:, None] * low_weights
                                           + setting.gamma * _inverse(high_sums)[:, None] * values ** 2)
            return user_emb, parts.vectors[:, :k]

        history = []
        if config.choose_on_validation:
            def scorer(setting: SGFCFConfig) -> Callable[[Tensor], Tensor]:
                user_emb, item_emb = vectors(setting)
                return lambda block: user_emb[block] @ item_emb.T

            config, history = choose_setting(config, scorer, graph, valid, self.name, runtime, parts.values.numel())
        user_emb, item_emb = vectors(config)
        if config.prior != 0:  # one more dimension: λ for every user, the item's share for every item
            prior = popularity_prior(graph, config.prior_half_life_days).to(item_emb)
            user_emb = torch.cat([user_emb, torch.full_like(user_emb[:, :1], config.prior)], 1)
            item_emb = torch.cat([item_emb, prior[:, None]], 1)
        fitted = Fitted(self.name, resolved(config), TrainingRecord(history=history), user_emb=user_emb.cpu(),
                        item_emb=item_emb.cpu().contiguous())
        fitted.record.seconds = time.perf_counter() - started
        return fitted

    def restore(self, tensors: Mapping[str, Tensor], config: Mapping[str, Any]) -> Fitted:
        """The fit from its saved vectors."""
        return restore_vectors(self.name, tensors, config)


def _inverse(sums: Tensor) -> Tensor:
    return 1 / torch.where(sums == 0, torch.ones_like(sums), sums)
