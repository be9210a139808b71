"""GF-CF (Shen et al., CIKM 2021, https://arxiv.org/abs/2108.07567): a training-free graph filter.

Each user's binary training row ``r_u`` is filtered over the normalised item–item graph ``P̃ = R̃ᵀR̃``:

    s_u = r_u R̃ᵀ R̃  +  α · r_u D_I^-1/2 V_k V_kᵀ D_I^1/2

a linear low-pass filter plus ``α`` times an ideal low-pass filter that projects on the top-``k`` right
singular vectors ``V_k`` of ``R̃ = D_U^-1/2 R D_I^-1/2``. ``P̃`` is never materialised: each user block goes
through two sparse products with ``R̃`` (torch, so the same code runs on a GPU). Both filters live in
:class:`ItemFilters`, which BSPM (:mod:`models.recsys.bspm`) builds on too.

:class:`GFCFFactors` publishes the same filter as user and item vectors, so that it can be versioned and served by a
dot product like any embedding model: with ``R̃ = U Σ Vᵀ``, ``P̃ = V Σ² Vᵀ``, and keeping the top ``m`` singular
triplets gives

    s_u ≈ [r_u V_m Σ_m²,  α r_u D_I^-1/2 V_k] · [V_m,  D_I^1/2 V_k]ᵀ

vectors of ``m + k`` dimensions whose only loss against the full filter is the linear part's spectrum below the
``m``-th singular value (the ideal part is exact).
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
from models.recsys.contract import Fitted, Runtime, TrainingRecord, resolved, restore_vectors
from models.recsys.interactions import (
    interaction_matrix,
    inverse_sqrt,
    normalized_interactions,
    sparse_from_state,
    sparse_rows,
    sparse_state,
    through_item_graph,
    to_torch_csr,
)
from models.recsys.selection import CHOICE_USERS, best_on_validation, choice_users_problems, per_block
from models.recsys.spectrum import top_triplets

# Ideal low-pass weights tried on validation when a fit chooses its own (the pipeline's filters do): the authors'
# 0.3 and either side of it.
ALPHA_GRID = (0.1, 0.3, 0.5)


@dataclass
class GFCFConfig:
    """The authors' Gowalla and Yelp2018 setting: 256 singular vectors, ideal low-pass weight 0.3; with
    ``choose_on_validation``, the weight of :data:`ALPHA_GRID` with the best validation Recall@20 instead (recorded
    as ``alpha``)."""

    rank: int = 256  # k, the number of singular vectors of the ideal low-pass filter
    alpha: float = 0.3  # weight of the ideal low-pass term; 0 keeps the linear filter alone
    seed: int = 2020  # start vector of the Lanczos iteration; also draws the choice's validation users
    choose_on_validation: bool = False  # the pipeline sets it; benchmarks and tests keep the given alpha
    choice_users: int = CHOICE_USERS  # validation users the choice ranks (a seeded sample; 0: all)

    def __post_init__(self) -> None:
        problems = choice_users_problems(self.choice_users)
        if problems:
            raise ValueError(f"{type(self).__name__}: " + "; ".join(problems))


class ItemFilters:
    """The two item–item filters GF-CF and BSPM are built from, on ``device``: the linear low-pass
    ``x P̃ = x R̃ᵀ R̃`` of dense rows ``x`` ``(B, I)`` and the ideal low-pass ``r_u Π = r_u D_I^-1/2 V_k V_kᵀ D_I^1/2``
    of users' training rows.

    ``P̃`` is never materialised: ``x P̃`` is two sparse products with ``R̃``, right to left. ``Π`` has rank
    ``k``: its user side ``r_u D_I^-1/2 V_k`` is computed for every user at once, its item side is
    :meth:`spectral_items`.
    """

    def __init__(self, matrix: sp.csr_matrix, vectors: Tensor | None, device: torch.device) -> None:
        self.matrix, self.device = matrix, device
        normalized = normalized_interactions(matrix)
        self._forward, self._backward = to_torch_csr(normalized, device), to_torch_csr(normalized.T, device)
        item_degree = np.asarray(matrix.sum(0)).ravel()
        self._to_spectral = torch.from_numpy(inverse_sqrt(item_degree)).to(device)
        self._from_spectral = torch.from_numpy(np.sqrt(item_degree).astype(np.float32)).to(device)
        self._vectors = vectors.to(device) if vectors is not None else None
        # Every user's r_u D_I^-1/2 V_k, once from the sparse rows: from a block's dense rows it would cost B·I·k
        # multiply-adds for rows that hold a few dozen ones (on Gowalla, k 448: 0.36 s per block of 800, one thread).
        self._projected = (to_torch_csr(matrix, device) @ (self._vectors * self._to_spectral[:, None])
                           if vectors is not None else None)

    @classmethod
    def fit(cls, graph: BipartiteGraph, rank: int, seed: int, ideal: bool, runtime: Runtime
            ) -> tuple[ItemFilters, dict[str, Tensor]]:
        """The filters of the training graph on ``runtime``'s device and the state that :meth:`restore` rebuilds
        them from; the singular vectors (taken from ``runtime.spectra`` when one covers them) only when the ideal
        filter is used."""
        matrix = interaction_matrix(graph)
        state = sparse_state("interactions", matrix)
        if ideal:
            state["singular_vectors"] = torch.from_numpy(top_triplets(matrix, rank, seed, shared=runtime.spectra)[1])
        return cls(matrix, state.get("singular_vectors"), runtime.device), state

    @classmethod
    def restore(cls, state: Mapping[str, Tensor], device: torch.device) -> ItemFilters:
        """The filters that :meth:`fit` saved as ``state``."""
        return cls(sparse_from_state("interactions", state), state.get("singular_vectors"), device)

    def rows(self, users: Tensor) -> Tensor:
        """The binary training rows ``r_u`` of ``users`` ``(B,)``, sparse CSR ``(B, I)``."""
        return sparse_rows(self.matrix, users, self.device)

    def linear(self, x: Tensor) -> Tensor:
        """``x P̃`` of rows ``x`` ``(B, I)`` (dense or sparse CSR), dense."""
        return through_item_graph(x, self._forward, self._backward)

    def ideal(self, users: Tensor) -> Tensor:
        """``r_u Π`` of ``users``' training rows ``(B, I)``; needs the singular vectors."""
        return self.project(users) @ self.spectral_items()

    def project(self, users: Tensor) -> Tensor:
        """``r_u D_I^-1/2 V_k`` ``(B, k)`` of ``users``' training rows, the user side of ``r_u Π``; needs the
        singular vectors."""
        return self._projected[users.to(self.device)]

    def spectral_items(self) -> Tensor:
        """``V_kᵀ D_I^1/2`` ``(k, I)``, the item side of ``r_u Π``; needs the singular vectors."""
        return (self._vectors * self._from_spectral[:, None]).T.contiguous()


def alpha_scorers(parts: Callable[[Tensor], tuple[Tensor, Tensor]]) -> Callable[[float], Callable[[Tensor], Tensor]]:
    """For each α, the scorer ``linear + α · ideal`` from a block's two parts (``parts(users)``, e.g. kept per block
    by :func:`models.recsys.selection.per_block`); a new block on each call."""
    def scorer(alpha: float) -> Callable[[Tensor], Tensor]:
        def score(users: Tensor) -> Tensor:
            linear, ideal = parts(users)
            return linear + alpha * ideal

        return score

    return scorer


class GFCF:
    """GF-CF as a recommender family: training-free, scored per user block."""

    name, config_type, publishable, baseline = "gf_cf", GFCFConfig, False, True
    version = "2"  # 2: α chosen on a seeded sample of the validation users
    spectral = True  # fits from the truncated SVD of the normalised training matrix (models.recsys.spectrum)

    def fit(self, graph: BipartiteGraph, valid: Tensor, config: GFCFConfig, runtime: Runtime) -> Fitted:
        """The singular vectors of the normalised training matrix; everything else is computed when scoring."""
        started = time.perf_counter()
        filters, state = ItemFilters.fit(graph, config.rank, config.seed,
                                         config.alpha != 0 or config.choose_on_validation, runtime)
        history = []
        if config.choose_on_validation:
            # The candidates differ in α only: each block's two filtered parts are computed once for all of them.
            def filtered(users: Tensor) -> tuple[Tensor, Tensor]:
                return filters.linear(filters.rows(users)), filters.ideal(users)

            alpha, history = best_on_validation(ALPHA_GRID, alpha_scorers(per_block(filtered)), graph, valid, self.name,
                                                lambda a: {"alpha": a}, runtime.device, config.choice_users,
                                                config.seed)
            config = replace(config, alpha=alpha)
        fitted = self._fitted(filters, resolved(config), state)
        fitted.record.history, fitted.record.seconds = history, time.perf_counter() - started
        return fitted

    def restore(self, tensors: Mapping[str, Tensor], config: Mapping[str, Any]) -> Fitted:
        """The scorer from the saved interactions and singular vectors."""
        return self._fitted(ItemFilters.restore(tensors, torch.device("cpu")), dict(config), dict(tensors))

    def _fitted(self, filters: ItemFilters, config: dict, state: dict[str, Tensor]) -> Fitted:
        return Fitted(self.name, config, TrainingRecord(), scorer=self._scorer(filters, float(config["alpha"])),
                      state=state)

    @staticmethod
    def _scorer(filters: ItemFilters, alpha: float) -> Callable[[Tensor], Tensor]:
        def score(users: Tensor) -> Tensor:
            scores = filters.linear(filters.rows(users))  # (B, I)
            if alpha != 0:
                scores += alpha * filters.ideal(users)
            return scores

        return score


@dataclass
class GFCFFactorsConfig(GFCFConfig):
    """GF-CF's setting plus ``factor_rank``, the singular triplets that carry the linear filter into the vectors.

    The linear filter is high-rank, so the vectors cost quality. On Gowalla (``benchmarks.baselines``, α 0.1
    chosen on validation): validation Recall@20 0.1698 at m = 1024 against the full filter's 0.1868, and test
    0.1760 against 0.1811 (−2.8%); a one-off fit at m = 512 gave 0.1606 on validation. The SVD's time grows about
    linearly in m; 1024 is the default as the largest m whose SVD stays within minutes on 2 cores there.
    """

    factor_rank: int = 1024  # m; the published vectors have m + rank dimensions (m alone when alpha is 0)


class GFCFFactors:
    """GF-CF as user and item vectors (publishable): one truncated SVD, no scoring-time graph."""

    name, config_type, publishable, baseline = "gf_cf_factors", GFCFFactorsConfig, True, True
    version = "2"  # 2: α chosen on a seeded sample of the validation users
    spectral = True  # fits from the truncated SVD of the normalised training matrix (models.recsys.spectrum)
    vectors_of = "gf_cf"

    def fit(self, graph: BipartiteGraph, valid: Tensor, config: GFCFFactorsConfig, runtime: Runtime) -> Fitted:
        """``[r_u V_m Σ_m², α r_u D_I^-1/2 V_k]`` per user and ``[V_m, D_I^1/2 V_k]`` per item, from one SVD
        (also when ``α`` is chosen on validation: the candidates differ in the ideal part's weight only)."""
        started = time.perf_counter()
        matrix = interaction_matrix(graph)
        values, vectors = top_triplets(matrix, max(config.factor_rank, config.rank), config.seed,
                                       shared=runtime.spectra)

        linear = vectors[:, :config.factor_rank]
        ideal = vectors[:, :config.rank]
        item_degree = np.asarray(matrix.sum(0)).ravel()
        # (user, item) halves of the linear part and of the ideal part at α = 1.
        halves = {"linear": (matrix @ (linear * values[:config.factor_rank] ** 2), linear),
                  "ideal": (matrix @ (ideal * inverse_sqrt(item_degree)[:, None]),
                            ideal * np.sqrt(item_degree).astype(np.float32)[:, None])}
        halves = {part: tuple(torch.from_numpy(np.ascontiguousarray(side, dtype=np.float32)) for side in pair)
                  for part, pair in halves.items()}

        history = []
        if config.choose_on_validation:
            # The candidates differ in the ideal part's weight only: each block's two partial scores are computed
            # once for all of them.
            on_device = {part: tuple(side.to(runtime.device) for side in pair) for part, pair in halves.items()}
            parts = per_block(lambda users: tuple(users_side[users] @ items_side.T
                                                  for users_side, items_side in on_device.values()))
            alpha, history = best_on_validation(ALPHA_GRID, alpha_scorers(parts), graph, valid, self.name,
                                                lambda a: {"alpha": a}, runtime.device, config.choice_users,
                                                config.seed)
            config = replace(config, alpha=alpha)
        users_parts, items_parts = [halves["linear"][0]], [halves["linear"][1]]
        if config.alpha != 0:
            users_parts.append(config.alpha * halves["ideal"][0])
            items_parts.append(halves["ideal"][1])
        user_emb, item_emb = torch.cat(users_parts, 1), torch.cat(items_parts, 1)
        fitted = Fitted(self.name, resolved(config), TrainingRecord(history=history), user_emb=user_emb,
                        item_emb=item_emb)
        fitted.record.seconds = time.perf_counter() - started
        return fitted

    def restore(self, tensors: Mapping[str, Tensor], config: Mapping[str, Any]) -> Fitted:
        """The fit from its saved vectors."""
        return restore_vectors(self.name, tensors, config)

