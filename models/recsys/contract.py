"""The recommender contract: what every recommendation family provides and returns, trained or not.

A family is a config dataclass plus ``fit(graph, valid, config, runtime) -> Fitted``. ``Fitted`` holds either
user and item vectors (a dot-product model, publishable as an embedding version) or a scorer over item rows (a
family that is not a plain dot product, e.g. an item–item filter), with the training record (the one of
models.runtime.loop, also for families that do not train). What a scorer needs to score again is kept as named
tensors (``state``), so a fitted model is saved and restored without pickles.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from models.graph.bipartite import BipartiteGraph
from models.recsys.spectrum import Spectrum
from models.runtime.loop import TrainingRecord

__all__ = ["Family", "Fitted", "Runtime", "Scorer", "TrainingRecord", "resolved", "restore_vectors", "vectors_scorer"]

# Scores of every item for a batch of users: users ``(B,)`` → ``(B, num_items)``.
Scorer = Callable[[Tensor], Tensor]


@dataclass
class Runtime:
    """Where and how a family runs: device, resumable checkpoint, log, data identity, time budget, the
    deployed version to stay compatible with (``(user_emb, item_emb)`` rows by dense id, or None) and the
    singular triplets already computed for the training matrix (``spectra``, which the graph filters take theirs
    from when one covers them)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    checkpoint: Path | None = None
    log: Callable[[str], None] = print
    fingerprint: str = ""
    code_version: str = ""
    deployed: tuple[Tensor, Tensor] | None = None
    spectra: tuple[Spectrum, ...] = ()


@dataclass
class Fitted:
    """A fitted recommender: vectors (``user_emb`` ``(U, d)``, ``item_emb`` ``(I, d)``) or a ``scorer``.

    ``state`` holds the tensors that :meth:`Family.restore` rebuilds the scorer from; ``config`` is the resolved
    config that produced it.
    """

    family: str
    config: dict[str, Any]
    record: TrainingRecord
    user_emb: Tensor | None = None
    item_emb: Tensor | None = None
    scorer: Scorer | None = None
    state: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.user_emb is None) != (self.item_emb is None) or (self.user_emb is None) == (self.scorer is None):
            raise ValueError(f"{self.family}: a fitted model has either user and item vectors or a scorer")

    @property
    def has_vectors(self) -> bool:
        """True for dot-product models, whose vectors can be published as an embedding version."""
        return self.user_emb is not None

    def score(self, users: Tensor) -> Tensor:
        """Scores of every item for ``users`` ``(B,)``, shape ``(B, num_items)``, on the vectors' device."""
        if self.scorer is not None:
            return self.scorer(users)
        return vectors_scorer(self.user_emb, self.item_emb)(users)

    def tensors(self) -> dict[str, Tensor]:
        """What a saved fit holds: the vectors, else the scorer's state."""
        if self.has_vectors:
            return {"user_emb": self.user_emb.cpu(), "item_emb": self.item_emb.cpu()}
        return {name: tensor.cpu() for name, tensor in self.state.items()}


class Family(Protocol):
    """A recommendation family: its name, config dataclass, ``fit`` and ``restore``.

    ``publishable`` says whether its fits are vectors that the feature store can version; ``baseline`` marks the
    reference families that a champion must beat. A family whose vectors carry another family's scoring-time filter
    (GF-CF's or BSPM's factors) names that family in a ``vectors_of`` attribute; a family that fits from the
    truncated SVD of the normalised training matrix (the graph filters) sets ``spectral``, so that the pipeline hands
    it the shared singular triplets (``Runtime.spectra``). ``version`` is bumped whenever the family's fit gives other
    scores, vectors or choices for the same config and data: it is the family's Dagster code version and the code
    version its embedding versions record, so a changed family shows as such in the UI and in lineage.
    """

    name: str
    config_type: type
    publishable: bool
    baseline: bool
    version: str

    def fit(self, graph: BipartiteGraph, valid: Tensor, config: Any, runtime: Runtime) -> Fitted: ...

    def restore(self, tensors: Mapping[str, Tensor], config: Mapping[str, Any]) -> Fitted: ...


def vectors_scorer(user_emb: Tensor, item_emb: Tensor) -> Scorer:
    """Dot-product scores of every item for ``users`` ``(B,)``, ``(B, num_items)`` on the vectors' device."""
    return lambda users: user_emb[users.to(user_emb.device)] @ item_emb.T


def restore_vectors(family: str, tensors: Mapping[str, Tensor], config: Mapping[str, Any]) -> Fitted:
    """A dot-product family's fit from its saved ``user_emb`` and ``item_emb``."""
    return Fitted(family, dict(config), TrainingRecord(), user_emb=tensors["user_emb"], item_emb=tensors["item_emb"])


def resolved(config: Any) -> dict[str, Any]:
    """A config dataclass as the plain dict saved with every fit and version."""
    return asdict(config)
