"""Link prediction with graph-free students (EHDM, Qin et al., LoG 2025): a node encoder (an MLP, or the same
layers with GCN propagation for the teacher), an MLP pair predictor on ``h_u ⊙ h_v``, and one full-batch training loop
that takes a label loss plus optional logit distillation (GLNN-style) and LLP-D/LLP-R against a teacher's scores.
"""
from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_torch_csr_tensor

from models.linkpred.llp_losses import (
    llp_distribution_loss,
    llp_rank_loss,
    random_walk_context,
)

# A scorer maps node pairs (2, P) to scores (P,): logits for a model under evaluation; for a teacher, probabilities
# (a GNN, see ``model_scorer(..., probability=True)``) or heuristic values.
PairScorer = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class LinkSplit:
    """One edge split of a graph; every method is trained and evaluated on the same one.

    ``train_edges`` hold each undirected training edge once; the graph a teacher or heuristic may read is built from
    them alone. ``valid_*``/``test_*`` are ``(2, P)`` positive and negative pairs.
    """

    x: Tensor
    train_edges: Tensor
    valid_pos: Tensor
    valid_neg: Tensor
    test_pos: Tensor
    test_neg: Tensor

    @property
    def num_nodes(self) -> int:
        return self.x.size(0)

    def train_csr(self) -> tuple[Tensor, Tensor]:
        """CSR arrays ``(indptr, indices)`` of the undirected training graph."""
        both = torch.cat([self.train_edges, self.train_edges.flip(0)], dim=1)
        order = torch.argsort(both[0] * self.num_nodes + both[1])
        indptr = torch.zeros(self.num_nodes + 1, dtype=torch.long)
        indptr[1:] = torch.cumsum(torch.bincount(both[0], minlength=self.num_nodes), 0)
        return indptr, both[1][order]

    def valid_hits_k(self, k: int) -> int:
        """The validation K whose share of the validation negatives equals K's share of the test negatives.

        Early stopping on validation Hits@K then estimates the same point of the ranking as the test metric; with
        more validation negatives than test negatives it does so with less noise from the K-th negative's score.
        """
        return max(1, round(k * self.valid_neg.size(1) / self.test_neg.size(1)))

    def gcn_adjacency(self) -> Tensor:
        """GCN's ``D̃^-1/2 (A + I) D̃^-1/2`` of the training graph as a sparse CSR tensor."""
        both = torch.cat([self.train_edges, self.train_edges.flip(0)], dim=1)
        edge_index, weight = gcn_norm(both, num_nodes=self.num_nodes, add_self_loops=True)
        return to_torch_csr_tensor(edge_index, weight, size=(self.num_nodes, self.num_nodes))


@dataclass
class LinkConfig:
    """Training settings of a link model; defaults follow the authors' EHDM/LLP code except where noted."""

    hidden: int = 256
    layers: int = 2
    dropout: float = 0.5
    lr: float = 0.01
    steps: int = 400  # full-batch steps (every training edge once per step); Cora's students still gain at 300
    eval_every: int = 5
    patience: int = 20  # evaluations without a validation gain; 10 (the code's) stopped some runs at step 55 on noise
    label_weight: float = 1.0
    soft_weight: float = 0.0  # GLNN-style matching of the teacher's probabilities on the label pairs (0: off)
    soft_on_context: bool = False  # the soft targets also cover the teacher-scored context pairs
    distribution_weight: float = 0.0  # λ_D of LLP-D (0: off)
    rank_weight: float = 0.0  # λ_R of LLP-R (0: off)
    margin: float = 0.1
    max_grad_norm: float = 1.0  # the LLP/EHDM code clips every step's gradient norm to 1
    anchors_per_step: int = 256  # anchors whose context sets enter each step's LLP losses
    context_rounds: int = 8  # context sets drawn (and scored by the teacher) once, reused round-robin
    hits_k: int = 20
    seed: int = 0


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout from a uniform mask: on CPU about 3× faster than ``F.dropout``'s Bernoulli sampling,
    which was half of a training step's time here."""
    if not training or p == 0.0:
        return x
    return x * (torch.rand_like(x) >= p) / (1.0 - p)


class Dropout(nn.Module):
    """:func:`dropout` as a module."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)


class LinkModel(nn.Module):
    """Node encoder (``layers`` linear layers; with ``adj``, each followed by GCN propagation ``Â H``) and an MLP
    predictor ``s(u, v) = MLP(h_u ⊙ h_v)`` returning logits.

    With ``adj = None`` it is the graph-free student (an MLP on node features); with the GCN adjacency of the
    training graph it is the GNN teacher, with the same parameters otherwise.

    Shapes:
        x: ``(N, F)`` dense or sparse CSR; pairs: ``(2, P)``; output of :meth:`forward`: ``(P,)`` logits.
    """

    def __init__(self, in_dim: int, hidden: int = 256, layers: int = 2, dropout: float = 0.5,
                 adj: Tensor | None = None) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.predictor = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), Dropout(dropout), nn.Linear(hidden, 1))
        self.dropout = dropout
        self.adj = adj

    def encode(self, x: Tensor) -> Tensor:
        """Node embeddings ``(N, hidden)``."""
        h = x
        for layer, lin in enumerate(self.lins):
            # Bag-of-words features are ~1% dense: a sparse product is far cheaper than densifying them.
            h = torch.sparse.mm(h, lin.weight.T) + lin.bias if h.layout != torch.strided else lin(h)
            if self.adj is not None:
                h = self.adj @ h
            if layer < len(self.lins) - 1:
                h = dropout(F.relu(h), self.dropout, self.training)
        return h

    def score(self, h: Tensor, pairs: Tensor) -> Tensor:
        """Logits of ``pairs`` from node embeddings ``h``."""
        return self.predictor(h[pairs[0]] * h[pairs[1]]).squeeze(-1)

    def forward(self, x: Tensor, pairs: Tensor) -> Tensor:
        return self.score(self.encode(x), pairs)


def build_link_model(in_dim: int, config: LinkConfig, adj: Tensor | None = None) -> LinkModel:
    """A :class:`LinkModel` of ``config``'s shape, its initial weights drawn from ``config.seed`` alone, so that a
    method's result does not depend on which models were built or trained before it."""
    torch.manual_seed(config.seed)
    return LinkModel(in_dim, config.hidden, config.layers, config.dropout, adj=adj)


def hits_at_k(pos_scores: Tensor, neg_scores: Tensor, k: int = 20) -> float:
    """OGB's Hits@K: the share of positive pairs scored above the K-th best negative pair."""
    if neg_scores.numel() < k:
        return 1.0
    threshold = neg_scores.topk(k).values[-1]
    return float((pos_scores > threshold).float().mean())


@torch.no_grad()
def pair_scores(model: LinkModel, x: Tensor, pairs: Tensor) -> Tensor:
    """Logits of ``pairs`` in evaluation mode."""
    model.eval()
    return model(x, pairs)


def evaluate_hits(scorer: PairScorer, split: LinkSplit, part: str, k: int = 20) -> float:
    """Hits@K of a pair scorer on the ``valid`` or ``test`` pairs of ``split``."""
    pos, neg = getattr(split, f"{part}_pos"), getattr(split, f"{part}_neg")
    return hits_at_k(scorer(pos), scorer(neg), k)


@dataclass
class ContextPool:
    """Teacher-scored context sets for LLP: ``rounds`` draws of ``(N, C)`` context nodes per anchor, with scores."""

    nodes: Tensor
    scores: Tensor

    @classmethod
    def draw(cls, split: LinkSplit, teacher: PairScorer, rounds: int, seed: int) -> ContextPool:
        """Draw ``rounds`` context sets for every node (random walks on the training graph plus random nodes) and
        score them with ``teacher`` once, so that training never calls the teacher again."""
        generator = torch.Generator().manual_seed(seed)
        indptr, indices = split.train_csr()
        anchors = torch.arange(split.num_nodes)
        nodes = torch.stack([random_walk_context(indptr, indices, anchors, num_nodes=split.num_nodes,
                                                 generator=generator) for _ in range(rounds)])
        pairs = torch.stack([anchors.view(1, -1, 1).expand_as(nodes).reshape(-1), nodes.reshape(-1)])
        return cls(nodes, teacher(pairs).view(nodes.shape).float())


def _negative_pairs(num_nodes: int, count: int, generator: torch.Generator) -> Tensor:
    """Uniform random node pairs as negatives (the rare true edge among them is noise, as in the EHDM code)."""
    return torch.randint(num_nodes, (2, count), generator=generator)


def train_link_model(model: LinkModel, split: LinkSplit, config: LinkConfig, teacher: PairScorer | None = None,
                     log: Callable[[str], None] = lambda _: None) -> dict[str, float]:
    """Train ``model`` full-batch: BCE on the training edges and as many random negatives, plus GLNN-style soft
    targets (``soft_weight``) and LLP-D/LLP-R (``distribution_weight``/``rank_weight``) against ``teacher``.

    As in the LLP code, the relational losses compare the student's probabilities ``σ(s)`` with the teacher's
    scores: LLP-R's margin (0.1) is a gap in probability, which a logit gap would meet almost for free. GLNN-style
    soft targets need a probability teacher. They cover the label pairs, as the logit matching (KD-LM) of the LLP
    code does; with ``soft_on_context`` also the unlabelled context pairs, like GLNN's soft labels on unlabelled
    nodes, so that GLNN and LLP see the same pairs and differ only in pointwise against relational matching.

    Early-stops on validation Hits@K' (K scaled to the validation negatives, :meth:`LinkSplit.valid_hits_k`); the
    best state is loaded back. Returns the best validation Hits@K', the steps run and the training seconds (teacher
    scoring of the context pool included).
    """
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    uses_llp = config.distribution_weight > 0 or config.rank_weight > 0
    if (uses_llp or config.soft_weight > 0) and teacher is None:
        raise ValueError("soft_weight, distribution_weight and rank_weight need a teacher; pass teacher=...")
    uses_context = uses_llp or (config.soft_weight > 0 and config.soft_on_context)
    pool = ContextPool.draw(split, teacher, config.context_rounds, config.seed) if uses_context else None
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    positives = split.train_edges
    valid_k = split.valid_hits_k(config.hits_k)
    best, best_state, evals_without_gain, step = -1.0, copy.deepcopy(model.state_dict()), 0, 0
    for step in range(1, config.steps + 1):
        model.train()
        h = model.encode(split.x)
        pairs = torch.cat([positives, _negative_pairs(split.num_nodes, positives.size(1), generator)], dim=1)
        labels = torch.cat([torch.ones(positives.size(1)), torch.zeros(positives.size(1))])
        logits = model.score(h, pairs)
        loss = config.label_weight * F.binary_cross_entropy_with_logits(logits, labels)
        soft_logits, soft_targets = (logits, teacher(pairs)) if config.soft_weight > 0 else (None, None)
        if pool is not None:
            round_ = step % pool.nodes.size(0)
            anchors = torch.randperm(split.num_nodes, generator=generator)[:config.anchors_per_step]
            context = pool.nodes[round_, anchors]
            context_pairs = torch.stack([anchors.unsqueeze(1).expand_as(context).reshape(-1), context.reshape(-1)])
            context_logits = model.score(h, context_pairs).view(context.shape)
            target = pool.scores[round_, anchors]
            if soft_logits is not None and config.soft_on_context:
                soft_logits = torch.cat([soft_logits, context_logits.flatten()])
                soft_targets = torch.cat([soft_targets, target.flatten()])
            if uses_llp:
                student = torch.sigmoid(context_logits)
                loss = loss + config.distribution_weight * llp_distribution_loss(student, target)
                loss = loss + config.rank_weight * llp_rank_loss(student, target, config.margin)
        if soft_logits is not None:
            loss = loss + config.soft_weight * F.binary_cross_entropy_with_logits(soft_logits, soft_targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        if step % config.eval_every == 0:
            valid = evaluate_hits(lambda p: pair_scores(model, split.x, p), split, "valid", valid_k)
            if valid > best:
                best, best_state, evals_without_gain = valid, copy.deepcopy(model.state_dict()), 0
            else:
                evals_without_gain += 1
            log(f"step {step}: loss {loss.item():.4f}, valid hits@{valid_k} {valid:.4f}")
            if evals_without_gain >= config.patience:
                break
    model.load_state_dict(best_state)
    return {f"valid_hits@{valid_k}": best, "steps": step, "train_seconds": time.perf_counter() - started}


def model_scorer(model: LinkModel, x: Tensor, probability: bool = False) -> PairScorer:
    """A frozen model as a pair scorer (logits, or probabilities to serve as a teacher), its node embeddings
    computed once."""
    model.eval()
    with torch.no_grad():
        h = model.encode(x)

    def score(pairs: Tensor) -> Tensor:
        with torch.no_grad():
            logits = torch.cat([model.score(h, chunk) for chunk in pairs.split(65536, dim=1)])
            return torch.sigmoid(logits) if probability else logits

    return score
