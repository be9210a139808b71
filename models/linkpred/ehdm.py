"""EHDM end to end (Qin et al., LoG 2025): one MLP student per heuristic teacher (LLP-D + LLP-R + label loss), no GNN
teacher trained at all, then a learned gate over the frozen students; heuristics come from the training edges only.
The gate reads the pair's features and its overlap heuristics, or (``GateConfig.inputs = "features"``) the features
alone, which keeps inference graph-free.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import scipy.sparse as sp
import torch
from torch import Tensor

from models.graph.heuristics import heuristic_scores
from models.graph.sparse import binary_adjacency
from models.linkpred.ensemble import (
    GATE_INPUTS,
    GateConfig,
    GateInputs,
    PairGate,
    gate_probability,
    train_gate,
)
from models.linkpred.students import (
    LinkConfig,
    LinkModel,
    LinkSplit,
    PairScorer,
    build_link_model,
    model_scorer,
    train_link_model,
)

# Gate inputs: the overlap heuristics only. PPR (like shortest path) of a training edge is computed with that very
# edge in the graph, so on training pairs it would leak the label the gate is trained on.
GATE_HEURISTICS = ("cn", "aa", "ra")


def heuristic_teacher(adj: sp.csr_array, name: str) -> PairScorer:
    """A heuristic as an LLP teacher, its scores divided by their standard deviation on the scored pairs, so that
    LLP-R's margin (0.1) and LLP-D's temperature (1) mean the same for counts (CN) and probabilities (PPR)."""

    def score(pairs: Tensor) -> Tensor:
        values = heuristic_scores(adj, pairs, (name,))[name]
        return values / values.std().clamp(min=1e-12)

    return score


def gate_inputs(x_dense: Tensor, adj: sp.csr_array | None, pairs: Tensor, students: list[PairScorer]) -> GateInputs:
    """The gate's view of ``pairs``: ``x_u ⊙ x_v``, ``log1p`` of the overlap heuristics (``(P, 0)`` and no graph
    read when ``adj`` is None: the feature-only gate), and the students' logits."""
    if adj is None:
        heuristics = x_dense.new_zeros(pairs.size(1), 0)
    else:
        scores = heuristic_scores(adj, pairs, GATE_HEURISTICS)
        heuristics = torch.log1p(torch.stack([scores[n] for n in GATE_HEURISTICS], dim=1))
    return GateInputs(pair_features=x_dense[pairs[0]] * x_dense[pairs[1]], heuristics=heuristics,
                      student_logits=torch.stack([student(pairs) for student in students], dim=1))


@dataclass
class EHDMResult:
    """The trained ensemble as a pair scorer, with its parts and timings."""

    scorer: PairScorer
    gate: PairGate
    students: dict[str, LinkModel]
    train_seconds: float
    seconds: dict[str, float]


def train_ehdm(split: LinkSplit, teachers: tuple[str, ...], student_config: LinkConfig, gate_config: GateConfig,
               log: Callable[[str], None] = lambda _: None) -> EHDMResult:
    """Distil one MLP student from each heuristic in ``teachers`` (``cn``, ``aa``, ``ra``, ``ppr``) and train the
    gate (``gate_config.inputs``) on the training edges with the students frozen. ``train_seconds`` counts
    everything (heuristics too)."""
    started = time.perf_counter()
    adj = binary_adjacency(split.train_edges, split.num_nodes)
    students, seconds = {}, {}
    for name in teachers:
        student = build_link_model(split.x.size(1), student_config)
        record = train_link_model(student, split, student_config, heuristic_teacher(adj, name), log)
        students[name], seconds[f"student_{name}"] = student, record["train_seconds"]
    result = train_ehdm_gate(split, students, gate_config)
    result.seconds.update(seconds)
    result.train_seconds = time.perf_counter() - started
    return result


def train_ehdm_gate(split: LinkSplit, students: dict[str, LinkModel], gate_config: GateConfig) -> EHDMResult:
    """A gate over already distilled, frozen ``students``, reading ``gate_config.inputs``; ``train_seconds`` counts
    the gate alone (and the heuristics it reads). With ``features`` inputs the scorer reads no graph."""
    if gate_config.inputs not in GATE_INPUTS:
        raise ValueError(f"unknown gate inputs {gate_config.inputs!r}; use one of {GATE_INPUTS}")
    started = time.perf_counter()
    adj = binary_adjacency(split.train_edges, split.num_nodes) if gate_config.inputs == "heuristics" else None
    scorers = [model_scorer(student, split.x) for student in students.values()]
    x_dense = split.x.to_dense() if split.x.layout != torch.strided else split.x
    generator = torch.Generator().manual_seed(gate_config.seed)
    positives = split.train_edges
    negatives = torch.randint(split.num_nodes, positives.shape, generator=generator)
    train_pairs = torch.cat([positives, negatives], dim=1)
    labels = torch.cat([torch.ones(positives.size(1)), torch.zeros(negatives.size(1))])
    gate = PairGate(x_dense.size(1), len(GATE_HEURISTICS) if adj is not None else 0, len(students),
                    gate_config.hidden)
    train_gate(gate, gate_inputs(x_dense, adj, train_pairs, scorers), labels,
               gate_inputs(x_dense, adj, split.valid_pos, scorers), gate_inputs(x_dense, adj, split.valid_neg, scorers),
               dataclasses.replace(gate_config, hits_k=split.valid_hits_k(gate_config.hits_k)))

    def score(pairs: Tensor) -> Tensor:
        return gate_probability(gate, gate_inputs(x_dense, adj, pairs, scorers))

    seconds = time.perf_counter() - started
    return EHDMResult(score, gate, students, seconds, {"gate": seconds})


def llp_config(base: LinkConfig) -> LinkConfig:
    """``base`` with LLP's loss weights (README example: λ_label = 1, λ_D = 0.01, λ_R = 1)."""
    return dataclasses.replace(base, label_weight=1.0, distribution_weight=0.01, rank_weight=1.0)
