"""LightGCN training: BPR with vectorized sampling (or the alignment + uniformity loss) as a task of the shared
training loop (models.runtime.loop), which early-stops on validation Recall@K and resumes from checkpoints holding
the resolved config, seed, data fingerprint and code version. The same task runs under torchrun with
DistributedDataParallel (see models.runtime.distributed and models.runtime.train_entry).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import Tensor

from models.eval.ranking import evaluate_full_ranking
from models.graph.bipartite import BipartiteGraph
from models.graph.propagation import propagation_matrix
from models.recsys.align_uniformity import align_uniformity_loss
from models.recsys.compat import compatibility_hook
from models.recsys.lightgcn import build_lightgcn, split_embeddings
from models.recsys.prism import check_strength, prism_magnitudes
from models.recsys.sampling import BPRSampler
from models.runtime import distributed
from models.runtime.loop import AuxiliaryLoss, BatchVectors, Schedule, train_loop

Init = Literal["normal", "prism"]
Loss = Literal["bpr", "align_uniformity"]


@dataclass
class LightGCNConfig:
    """Training settings; defaults are the LightGCN authors' (He et al., SIGIR 2020) except where noted."""

    embedding_dim: int = 64
    num_layers: int = 3
    lr: float = 1e-3
    batch_size: int = 2048  # BPR triples per step; 0 picks it from the training graph's size (batch_for_edges)
    l2: float = 1e-4  # λ on ½‖e⁽⁰⁾‖² of the batch rows, divided by the batch size
    epochs: int = 1000
    eval_every: int = 1  # epochs between validation evaluations
    patience: int = 10  # evaluations without improvement before stopping
    # On a plateau of lr_decay_patience evaluations, multiply lr by lr_decay (at most lr_decays times; patience
    # restarts after each); lr_decay = 1.0 keeps the rate constant, as the authors do.
    lr_decay: float = 1.0
    lr_decay_patience: int = 2
    lr_decays: int = 2
    init_std: float = 0.1  # Normal(0, 0.1) as the reference PyTorch code
    # Layer-0 initialization: "normal" (init_std above) or "prism" (Loveland et al., KDD 2025, see
    # models.recsys.prism): norms prism_strength·ln(d + 2) + 1 − prism_strength from the training degrees, trained
    # without weight decay as the authors do (train_lightgcn sets l2 to 0 and says so); init_std is then unused.
    init: Init = "normal"
    prism_strength: float = 1.0  # the authors' default; 0 gives every node the norm 1
    # "bpr" (the LightGCN authors') or "align_uniformity" (DirectAU, the PRISM authors' default; see
    # models.recsys.align_uniformity) with uniformity_weight γ (their default 1.0). The latter samples no negatives,
    # and its cost per batch grows with the square of the batch's distinct users and items (their batch: 4,096).
    loss: Loss = "bpr"
    uniformity_weight: float = 1.0
    eval_k: int = 20
    seed: int = 2020
    propagation: str = "symmetric"  # or "doubly_stochastic" (RawlsGCN-Graph for recommendation)
    balance_strength: float = 1.0  # β of the doubly stochastic mix, see models.graph.propagation
    max_train_seconds: float = 0.0  # wall-clock budget; 0 means none
    # Compatibility with the deployed version (models.recsys.compat), applied when train_lightgcn gets its vectors:
    # none | bct | hyperbolic, and the loss weight (None: the method's default).
    compatibility: str = "none"
    compatibility_weight: float | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 0:
            raise ValueError(f"batch_size must be ≥ 1, or 0 to pick it from the graph's size; got {self.batch_size}.")
        if self.init not in get_args(Init):
            raise ValueError(f"init must be one of {get_args(Init)}, got {self.init!r}.")
        if self.loss not in get_args(Loss):
            raise ValueError(f"loss must be one of {get_args(Loss)}, got {self.loss!r}.")
        if self.uniformity_weight < 0:
            raise ValueError(f"uniformity_weight must be ≥ 0, got {self.uniformity_weight}.")
        check_strength(self.prism_strength)


@dataclass
class TrainResult:
    """Best (by validation Recall@K) final embeddings and the training record."""

    user_emb: Tensor
    item_emb: Tensor
    history: list[dict[str, float]]
    best_epoch: int
    best_valid_recall: float
    epochs_run: int
    train_seconds: float
    resumed_from_epoch: int = 0
    config: dict = field(default_factory=dict)
    # The best layer-0 table (users first, then items): what fold-in propagates for users unseen in training.
    layer0: Tensor | None = None


def _propagated(model: torch.nn.Module, adj: Tensor, num_users: int) -> tuple[Tensor, Tensor]:
    return split_embeddings(model.get_embedding(adj), num_users)


def bpr_terms(model, adj: Tensor, num_users: int, users: Tensor, pos: Tensor, neg: Tensor, l2: float
              ) -> tuple[Tensor, BatchVectors]:
    """Mean BPR loss ``softplus(ŷ_uj − ŷ_ui)`` of a batch plus ``l2 · ½‖e⁽⁰⁾‖² / B`` on the batch's layer-0 rows,
    and the batch's final vectors ``(users, user_emb, cat(pos, neg), item_emb)`` for an auxiliary loss."""
    node_emb = model.get_embedding(adj)
    user_e, pos_e, neg_e = node_emb[users], node_emb[num_users + pos], node_emb[num_users + neg]
    pos_rank, neg_rank = (user_e * pos_e).sum(-1), (user_e * neg_e).sum(-1)
    node_id = torch.cat([users, num_users + pos, num_users + neg])
    # PyG's BPRLoss regularizes λ‖e‖²/B; the reference uses λ·½‖e‖²/B, hence l2 / 2.
    loss = model.recommendation_loss(pos_rank, neg_rank, node_id=node_id, lambda_reg=l2 / 2)
    return loss, (users, user_e, torch.cat([pos, neg]), torch.cat([pos_e, neg_e]))


def bpr_loss(model, adj: Tensor, num_users: int, users: Tensor, pos: Tensor, neg: Tensor, l2: float) -> Tensor:
    """The loss of :func:`bpr_terms` alone."""
    return bpr_terms(model, adj, num_users, users, pos, neg, l2)[0]


def align_uniformity_terms(model, adj: Tensor, num_users: int, users: Tensor, pos: Tensor, l2: float,
                           uniformity_weight: float) -> tuple[Tensor, BatchVectors]:
    """Alignment of the batch's (user, positive) pairs plus ``uniformity_weight`` times the uniformity of its
    distinct users and items (:func:`models.recsys.align_uniformity.align_uniformity_loss`), plus the same
    ``l2 · ½‖e⁽⁰⁾‖² / B`` on the batch's layer-0 rows as BPR's; and the batch's final vectors."""
    node_emb = model.get_embedding(adj)
    user_e, pos_e = node_emb[users], node_emb[num_users + pos]
    loss = align_uniformity_loss(user_e, pos_e, node_emb[users.unique()], node_emb[num_users + pos.unique()],
                                 uniformity_weight)
    if l2 > 0:
        layer0 = model.embedding.weight[torch.cat([users, num_users + pos])]
        loss = loss + l2 / 2 * layer0.pow(2).sum() / users.numel()
    return loss, (users, user_e, pos, pos_e)


class Objective(torch.nn.Module):
    """A batch's loss (``config.loss``) as a module over a fixed adjacency, so that DistributedDataParallel sees the
    batch's whole computation in ``forward`` and all-reduces the gradients in backward."""

    def __init__(self, model: torch.nn.Module, adj: Tensor, num_users: int, config: LightGCNConfig) -> None:
        super().__init__()
        self.model, self.adj, self.num_users, self.config = model, adj, num_users, config

    def forward(self, users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, BatchVectors]:
        if self.config.loss == "align_uniformity":
            return align_uniformity_terms(self.model, self.adj, self.num_users, users, pos, self.config.l2,
                                          self.config.uniformity_weight)
        return bpr_terms(self.model, self.adj, self.num_users, users, pos, neg, self.config.l2)


class LightGCNTask:
    """LightGCN for the training loop: batches of triples sampled an epoch at a time (the alignment loss uses
    their (user, positive) pairs), this rank's share of each, and validation Recall@``eval_k`` by full ranking."""

    def __init__(self, graph: BipartiteGraph, valid_edge_index: Tensor, config: LightGCNConfig,
                 ctx: distributed.DistContext) -> None:
        self.graph, self.valid, self.config, self.ctx = graph, valid_edge_index.to(ctx.device), config, ctx
        magnitudes = (prism_magnitudes(torch.cat([graph.user_degree(), graph.item_degree()]), config.prism_strength)
                      if config.init == "prism" else None)
        self.model = build_lightgcn(graph.num_users, graph.num_items, config.embedding_dim, config.num_layers,
                                    config.init_std, magnitudes).to(ctx.device)
        self.adj = propagation_matrix(graph, config.propagation, config.balance_strength).to(ctx.device)
        self.sampler = BPRSampler(graph, seed=distributed.rank_seed(config.seed, ctx.rank))
        self.generator = self.sampler.generator
        self.objective = distributed.wrap(Objective(self.model, self.adj, graph.num_users, config), ctx)
        self.local_sizes = distributed.local_batch_sizes(graph.num_edges, config.batch_size, ctx.world_size)
        self.metric = f"valid_recall@{config.eval_k}"

    def batches(self):
        """This rank's share of every batch of the epoch (all of it with one process), weighted by size."""
        users, pos, neg = (t.to(self.ctx.device) for t in self.sampler.sample(sum(self.local_sizes)))
        start = 0
        for size in self.local_sizes:
            yield (users[start:start + size], pos[start:start + size], neg[start:start + size]), size
            start += size

    def loss(self, batch: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, BatchVectors]:
        """The configured loss with L2 on the batch, through the (DDP-wrapped) objective."""
        return self.objective(*batch)

    def validate(self) -> float:
        """Recall@``eval_k`` of the propagated vectors on the validation edges."""
        user_emb, item_emb = self.vectors()
        return evaluate_full_ranking(user_emb, item_emb, self.graph, self.valid,
                                     ks=(self.config.eval_k,)).summary()[f"recall@{self.config.eval_k}"]

    def vectors(self) -> tuple[Tensor, Tensor]:
        """Final user and item vectors of the model's current weights."""
        with torch.no_grad():
            return _propagated(self.model, self.adj, self.graph.num_users)


# An epoch costs its steps times one propagation over the whole graph, forward and backward, whatever the batch,
# so on a large graph a small batch spends a wall-clock budget on few epochs. On Gowalla (756,243 training edges),
# lr 0.01, a 10-minute budget, one thread (the pipeline's step), two runs at a time, one run each, validation
# Recall@20: batch 4,096 0.1487 after 11 epochs, 16,384 0.1631 after 35, 32,768 0.1682 after 59, 65,536 0.1676 after
# 84. The demo's batch of 4,096 (about a dozen steps an epoch there) stays the floor.
STEPS_PER_EPOCH = 24
MIN_BATCH = 4096


def batch_for_edges(num_edges: int) -> int:
    """The power of two nearest ``num_edges`` / :data:`STEPS_PER_EPOCH`, at least :data:`MIN_BATCH`."""
    return max(MIN_BATCH, 2 ** round(math.log2(max(num_edges, 1) / STEPS_PER_EPOCH)))


def with_batch_for_graph(config: LightGCNConfig, num_edges: int, log: Callable[[str], None]) -> LightGCNConfig:
    """``config`` with ``batch_size`` 0 resolved by :func:`batch_for_edges` (logged); else ``config`` as it is."""
    if config.batch_size:
        return config
    batch = batch_for_edges(num_edges)
    log(f"batch_size 0: {batch} for {num_edges} training edges (about {STEPS_PER_EPOCH} steps an epoch)")
    return replace(config, batch_size=batch)


def without_weight_decay_under_prism(config: LightGCNConfig, log: Callable[[str], None]) -> LightGCNConfig:
    """``config`` with ``l2`` = 0 when it initializes with PRISM, logging the change; else ``config`` as it is.

    PRISM replaces weight decay: its norms already carry popularity, and decay would shrink them back (Loveland
    et al., KDD 2025; the authors' run script sets the decay to 0 whenever PRISM is on).
    """
    if config.init != "prism" or config.l2 == 0:
        return config
    log(f"PRISM initialization trains without weight decay: l2 {config.l2:g} -> 0")
    return replace(config, l2=0.0)


def train_lightgcn(
    graph: BipartiteGraph,
    valid_edge_index: Tensor,
    config: LightGCNConfig,
    device: str | torch.device = "cpu",
    checkpoint_path: str | Path | None = None,
    log: Callable[[str], None] = print,
    fingerprint: str = "",
    code_version: str = "",
    auxiliary_loss: AuxiliaryLoss | None = None,
    dist_ctx: distributed.DistContext | None = None,
    old_version: tuple[Tensor, Tensor] | None = None,
) -> TrainResult:
    """Train LightGCN on ``graph`` with ``config.loss`` in :func:`models.runtime.loop.train_loop`, evaluating
    Recall@``eval_k`` on ``valid_edge_index``.

    With ``checkpoint_path``, the state is saved after every epoch, and an existing checkpoint with the
    same config and fingerprint is resumed (a crashed run continues where it stopped). ``auxiliary_loss`` adds a
    term on each batch's final embeddings (see :data:`models.runtime.loop.AuxiliaryLoss`). ``old_version``, the
    deployed version's final ``(user_emb, item_emb)`` (rows by dense id), adds ``config.compatibility``'s loss
    against it; without it (nothing deployed yet) the model trains on its loss alone. With ``config.init`` "prism" the
    run trains without weight decay: a positive ``config.l2`` is set to 0 (logged), and the resolved config says so.

    Under torchrun, pass ``dist_ctx`` (:func:`models.runtime.distributed.init_distributed`; it overrides ``device``):
    each rank samples its share of every batch with its own generator, DDP all-reduces the gradients, rank 0
    evaluates and writes the checkpoint, and every rank ends with the same result.

    Shapes:
        graph.edge_index: ``(2, E)`` training (user, item); valid_edge_index: ``(2, V)`` (user, item).
    """
    auxiliary_loss = compatibility_hook(config.compatibility, config.compatibility_weight, old_version,
                                        auxiliary_loss)
    ctx = dist_ctx or distributed.DistContext(device=torch.device(device))
    config = with_batch_for_graph(without_weight_decay_under_prism(config, log), graph.num_edges, log)
    resolved = asdict(config)
    task, record = train_loop(lambda: LightGCNTask(graph, valid_edge_index, config, ctx), Schedule.of(config),
                              identity={"config": resolved, "fingerprint": fingerprint}, checkpoint=checkpoint_path,
                              log=log, auxiliary_loss=auxiliary_loss, ctx=ctx, code_version=code_version)
    user_emb, item_emb = task.vectors()
    layer0 = task.model.embedding.weight.detach().clone()
    return TrainResult(user_emb.cpu(), item_emb.cpu(), record.history, record.best_epoch, record.best_score,
                       record.epochs_run, record.seconds, record.resumed_from_epoch, resolved, layer0.cpu())
