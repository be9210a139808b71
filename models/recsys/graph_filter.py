"""GF-CF (Shen et al., CIKM 2021, https://arxiv.org/abs/2108.07567): a training-free graph filter.

Each user's binary training row ``r_u`` is filtered over the normalised item–item graph ``P̃ = R̃ᵀR̃``:

    s_u = r_u R̃ᵀ R̃  +  α · r_u D_I^-1/2 V_k V_kᵀ D_I^1/2

a linear low-pass filter plus ``α`` times an ideal low-pass filter that projects on the top-``k`` right
singular vectors ``V_k`` of ``R̃ = D_U^-1/2 R D_I^-1/2``. ``P̃`` is never materialised: each user block goes
through two sparse × dense products with ``R̃`` (torch, so the same code runs on a GPU).
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import svds
from torch import Tensor

from models.graph.bipartite import BipartiteGraph
from models.recsys.contract import Fitted, Runtime, TrainingRecord, resolved
from models.recsys.interactions import (
    dense_rows,
    interaction_matrix,
    inverse_sqrt,
    normalized_interactions,
    sparse_from_state,
    sparse_state,
    to_torch_csr,
)


@dataclass
class GFCFConfig:
    """The authors' Gowalla and Yelp2018 setting: 256 singular vectors, ideal low-pass weight 0.3."""

    rank: int = 256  # k, the number of singular vectors of the ideal low-pass filter
    alpha: float = 0.3  # weight of the ideal low-pass term; 0 keeps the linear filter alone
    seed: int = 2020  # start vector of the Lanczos iteration


def top_singular_vectors(normalized: sp.csr_matrix, rank: int, seed: int) -> np.ndarray:
    """The top-``rank`` right singular vectors of ``normalized`` as ``(num_items, rank)`` float32.

    scipy's ``svds`` (ARPACK) replaces the authors' SVDLIBC: ``V_k V_kᵀ`` depends neither on the vectors' order
    nor on their signs. ``rank`` is capped below the matrix's smaller side, as ARPACK requires.
    """
    rank = min(rank, min(normalized.shape) - 1)
    _, _, vt = svds(normalized, k=rank, random_state=seed)
    return np.ascontiguousarray(vt.T, dtype=np.float32)


class GFCF:
    """GF-CF as a recommender family: training-free, scored per user block."""

    name, config_type, publishable, baseline = "gf_cf", GFCFConfig, False, True

    def fit(self, graph: BipartiteGraph, valid: Tensor, config: GFCFConfig, runtime: Runtime) -> Fitted:
        """The singular vectors of the normalised training matrix; everything else is computed when scoring."""
        started = time.perf_counter()
        matrix = interaction_matrix(graph)
        state = sparse_state("interactions", matrix)
        if config.alpha != 0:
            state["singular_vectors"] = torch.from_numpy(
                top_singular_vectors(normalized_interactions(matrix), config.rank, config.seed))
        fitted = self._fitted(matrix, resolved(config), state, runtime.device)
        fitted.record.seconds = time.perf_counter() - started
        return fitted

    def restore(self, tensors: Mapping[str, Tensor], config: Mapping[str, Any]) -> Fitted:
        """The scorer from the saved interactions and singular vectors."""
        return self._fitted(sparse_from_state("interactions", tensors), dict(config), dict(tensors),
                            torch.device("cpu"))

    def _fitted(self, matrix: sp.csr_matrix, config: dict, state: dict[str, Tensor], device: torch.device) -> Fitted:
        normalized = normalized_interactions(matrix)
        forward, backward = to_torch_csr(normalized, device), to_torch_csr(normalized.T, device)
        alpha = float(config["alpha"])
        item_degree = np.asarray(matrix.sum(0)).ravel()
        to_spectral = torch.from_numpy(inverse_sqrt(item_degree)).to(device)
        from_spectral = torch.from_numpy(np.sqrt(item_degree).astype(np.float32)).to(device)
        vectors = state["singular_vectors"].to(device) if alpha != 0 else None

        def score(users: Tensor) -> Tensor:
            rows = dense_rows(matrix, users, device)  # (B, I)
            scores = (backward @ (forward @ rows.T)).T  # r_u R̃ᵀ R̃, right to left
            if vectors is not None:
                scores += alpha * ((rows * to_spectral) @ vectors) @ vectors.T * from_spectral
            return scores

        return Fitted(self.name, config, TrainingRecord(), scorer=score, state=state)
