"""When the champion's vectors go through a learned map into the promoted version's space before they become a
candidate (``models.recsys.compat_map``), and the map's record and tensors that go with the candidate.

A family that trains with a compatibility loss (LightGCN, Rawls: their config has a ``compatibility`` setting) was
already made compatible with the promoted version while training and is published as trained. A family that cannot
(graph filters, popularity: no such setting) is mapped by default, which also covers a switch of families, e.g.
LightGCN → filter; the candidate then lives in the promoted version's space and dimension, so the lineage keeps one
space and the next LightGCN retrain can train against it with its loss.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dagster import Config
from pydantic import Field
from torch import Tensor

from feature_store import VersionInfo
from models.recsys.compat_map import DEFAULT_RIDGE, KINDS, CompatibilityMap, fit_compatibility_map

POLICIES = ("auto", "always", "never")


class IncomparableCandidateError(ValueError):
    """The candidate's vectors have another dimension than the promoted version's and no map was applied."""


class CandidateConfig(Config):
    """Whether and how the champion's vectors are mapped into the promoted version's space."""

    compatibility_map: str = Field(
        default="auto", description="auto: map the vectors of a family that trains without a compatibility loss "
                                    "(graph filters, popularity) into the promoted version's space, publish the "
                                    "others as trained; always: map every candidate (e.g. a LightGCN trained with "
                                    "compatibility none); never: publish as trained.")
    map_kind: str = Field(default="auto", description="auto (orthogonal Procrustes when the dimensions match, ridge "
                                                      "least squares otherwise) | procrustes | least_squares")
    map_ridge: float = Field(default=DEFAULT_RIDGE, description="Least squares' ridge, relative to the mean "
                                                                "eigenvalue of the normalised Gram matrix; 0: none.")


def wants_map(policy: str, run_config: dict[str, Any]) -> bool:
    """Whether ``policy`` maps a run whose resolved config is ``run_config`` (``auto``: when it has no
    ``compatibility`` setting, i.e. its family cannot train with a compatibility loss)."""
    if policy not in POLICIES:
        raise ValueError(f"compatibility_map is {policy!r}; use one of {POLICIES}")
    return policy == "always" or (policy == "auto" and "compatibility" not in run_config)


def candidate_vectors(config: CandidateConfig, model: str, run_config: dict[str, Any], users: Tensor, items: Tensor,
                      parent: VersionInfo | None,
                      parent_vectors: Callable[[], tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor,
                                                                                    CompatibilityMap | None]:
    """The vectors to publish for ``model``'s run and the map they went through (None: published as trained).

    ``parent_vectors`` reads the promoted version's ``(user_emb, item_emb)`` by dense id, only when a map is fitted.
    Raises :class:`IncomparableCandidateError` when unmapped vectors could not be compared with the promoted
    version's (other dimension): the gate would have no figures to decide on.
    """
    if config.map_kind not in KINDS:
        raise ValueError(f"map_kind is {config.map_kind!r}; use one of {KINDS}")
    if parent is None:  # nothing deployed: the first version defines the space
        return users, items, None
    if wants_map(config.compatibility_map, run_config):
        learned = fit_compatibility_map(users, items, *parent_vectors(), kind=config.map_kind, ridge=config.map_ridge)
        return *learned.apply(users, items), learned
    if users.size(1) != parent.dim:
        raise IncomparableCandidateError(
            f"{model}'s vectors have dimension {users.size(1)} but the promoted version {parent.version_id!r} "
            f"({parent.model}) has {parent.dim}: new users cannot score its items, so the switch from {parent.model} "
            f"to {model} cannot pass the compatibility gate unmapped. Set embedding_candidate's compatibility_map to "
            "auto or always to publish them through a learned map into its space.")
    return users, items, None
