"""EHDM's ensemble (Qin et al., LoG 2025): a gate that weights frozen distilled students per node pair, from the
pair's features ``x_u ⊙ x_v`` and (optionally) its heuristic values, trained with BCE on training edges.

With heuristic inputs, as the paper's gate, inference reads the graph (CN/AA/RA of each scored pair); a gate on
features alone keeps the whole ensemble graph-free at inference, like its students.

The authors' released ``Gater`` zeroes its logits (a uniform average); this gate is trained, as the paper describes.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.linkpred.students import Dropout, hits_at_k


class PairGate(nn.Module):
    """``w = softmax(GateMLP([FeatMLP(x_u ⊙ x_v), HeurMLP(heuristics)]))`` over ``num_students`` students; with
    ``num_heuristics = 0``, ``w = softmax(GateMLP(FeatMLP(x_u ⊙ x_v)))`` (a feature-only, graph-free gate).

    Shapes:
        pair_features: ``(P, F)``; heuristics: ``(P, H)`` (``(P, 0)`` without heuristics); output:
        ``(P, num_students)`` rows summing to 1.
    """

    def __init__(self, feature_dim: int, num_heuristics: int, num_students: int, hidden: int = 64,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), Dropout(dropout))
        self.heuristics = nn.Sequential(nn.Linear(num_heuristics, hidden), nn.ReLU()) if num_heuristics else None
        width = 2 * hidden if num_heuristics else hidden
        self.gate = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, num_students))

    def forward(self, pair_features: Tensor, heuristics: Tensor) -> Tensor:
        hidden = self.features(pair_features)
        if self.heuristics is not None:
            hidden = torch.cat([hidden, self.heuristics(heuristics)], dim=1)
        return torch.softmax(self.gate(hidden), dim=1)


def ensemble_probability(weights: Tensor, student_logits: Tensor) -> Tensor:
    """``ŷ = Σ_m w_m σ(s_m)``; shapes ``(P, M)`` and ``(P, M)`` -> ``(P,)``."""
    return (weights * torch.sigmoid(student_logits)).sum(dim=1)


@dataclass(frozen=True)
class GateInputs:
    """What the gate sees for a set of pairs, with the frozen students' logits: ``(P, F)``, ``(P, H)``, ``(P, M)``."""

    pair_features: Tensor
    heuristics: Tensor
    student_logits: Tensor


GATE_INPUTS = ("heuristics", "features")


@dataclass
class GateConfig:
    """Gate training settings (students frozen). ``inputs``: ``heuristics`` (pair features and the graph's overlap
    heuristics, the paper's gate) or ``features`` (pair features only: no graph read at inference)."""

    inputs: str = "heuristics"
    hidden: int = 64
    lr: float = 0.005
    steps: int = 200
    batch_size: int = 2048
    eval_every: int = 5
    patience: int = 10
    hits_k: int = 20
    seed: int = 0


def gate_probability(gate: PairGate, inputs: GateInputs) -> Tensor:
    """Ensemble probability of every pair under ``gate`` (evaluation mode, no gradients)."""
    gate.eval()
    with torch.no_grad():
        return ensemble_probability(gate(inputs.pair_features, inputs.heuristics), inputs.student_logits)


def _validation_loss(gate: PairGate, valid_pos: GateInputs, valid_neg: GateInputs) -> float:
    """Class-balanced BCE of the ensemble on validation pairs: unlike Hits@K it keeps improving once the ranking is
    right, so model selection does not freeze the gate at its first evaluation. Balanced (the mean of the positives'
    and the negatives' BCE) like the gate's training pairs, however many validation negatives there are."""
    positive = gate_probability(gate, valid_pos).clamp(1e-6, 1 - 1e-6)
    negative = gate_probability(gate, valid_neg).clamp(1e-6, 1 - 1e-6)
    return float(F.binary_cross_entropy(positive, torch.ones_like(positive))
                 + F.binary_cross_entropy(negative, torch.zeros_like(negative))) / 2


def train_gate(gate: PairGate, train: GateInputs, labels: Tensor, valid_pos: GateInputs, valid_neg: GateInputs,
               config: GateConfig) -> dict[str, float]:
    """Train the gate with BCE of the ensemble probability on labelled training pairs (students stay frozen: only
    their logits enter), early-stopped on validation BCE; the best state is loaded back."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(gate.parameters(), lr=config.lr)
    best, best_state, evals_without_gain, step = math.inf, copy.deepcopy(gate.state_dict()), 0, 0
    num_pairs = labels.numel()
    for step in range(1, config.steps + 1):
        gate.train()
        batch = torch.randint(num_pairs, (min(config.batch_size, num_pairs),), generator=generator)
        weights = gate(train.pair_features[batch], train.heuristics[batch])
        probability = ensemble_probability(weights, train.student_logits[batch]).clamp(1e-6, 1 - 1e-6)
        loss = F.binary_cross_entropy(probability, labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % config.eval_every == 0:
            valid = _validation_loss(gate, valid_pos, valid_neg)
            if valid < best:
                best, best_state, evals_without_gain = valid, copy.deepcopy(gate.state_dict()), 0
            else:
                evals_without_gain += 1
            if evals_without_gain >= config.patience:
                break
    gate.load_state_dict(best_state)
    hits = hits_at_k(gate_probability(gate, valid_pos), gate_probability(gate, valid_neg), config.hits_k)
    return {"valid_bce": best, f"valid_hits@{config.hits_k}": hits, "steps": step,
            "train_seconds": time.perf_counter() - started}
