"""LightGCN training: BPR with vectorized sampling, early stopping on validation Recall@K, resumable checkpoints.

Reads like nanoGPT's train loop: one config with visible defaults, the resolved config, seed, data
fingerprint and code version saved in every checkpoint, and ``resume`` that continues exactly. The same loop runs
under torchrun with DistributedDataParallel (see models.runtime.distributed and models.runtime.train_entry).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from models.eval.ranking import evaluate_full_ranking
from models.graph.bipartite import BipartiteGraph
from models.graph.propagation import propagation_matrix
from models.recsys.compat import METHODS as COMPATIBILITY_METHODS
from models.recsys.compat import make_compatibility_loss
from models.recsys.lightgcn import build_lightgcn, split_embeddings
from models.recsys.sampling import BPRSampler
from models.runtime import distributed
from models.runtime.checkpoint import load_checkpoint, save_checkpoint


@dataclass
class LightGCNConfig:
    """Training settings; defaults are the LightGCN authors' (He et al., SIGIR 2020) except where noted."""

    embedding_dim: int = 64
    num_layers: int = 3
    lr: float = 1e-3
    batch_size: int = 2048
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
    eval_k: int = 20
    seed: int = 2020
    propagation: str = "symmetric"  # or "doubly_stochastic" (RawlsGCN-Graph for recommendation)
    balance_strength: float = 1.0  # β of the doubly stochastic mix, see models.graph.propagation
    max_train_seconds: float = 0.0  # wall-clock budget; 0 means none
    # Compatibility with the deployed version (models.recsys.compat), applied when train_lightgcn gets its vectors:
    # none | bct | hyperbolic, and the loss weight (None: the method's default).
    compatibility: str = "none"
    compatibility_weight: float | None = None


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


# An extra training term on the batch's final embeddings, e.g. a compatibility loss against a deployed version:
# auxiliary_loss(users, user_emb, items, item_emb) with items = cat(positives, negatives).
AuxiliaryLoss = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def bpr_loss(model, adj: Tensor, num_users: int, users: Tensor, pos: Tensor, neg: Tensor, l2: float,
             auxiliary_loss: AuxiliaryLoss | None = None) -> Tensor:
    """Mean BPR loss ``softplus(ŷ_uj − ŷ_ui)`` of a batch plus ``l2 · ½‖e⁽⁰⁾‖² / B`` on the batch's layer-0 rows,
    plus ``auxiliary_loss`` on the batch's final embeddings when given."""
    node_emb = model.get_embedding(adj)
    user_e, pos_e, neg_e = node_emb[users], node_emb[num_users + pos], node_emb[num_users + neg]
    pos_rank, neg_rank = (user_e * pos_e).sum(-1), (user_e * neg_e).sum(-1)
    node_id = torch.cat([users, num_users + pos, num_users + neg])
    # PyG's BPRLoss regularizes λ‖e‖²/B; the reference uses λ·½‖e‖²/B, hence l2 / 2.
    loss = model.recommendation_loss(pos_rank, neg_rank, node_id=node_id, lambda_reg=l2 / 2)
    if auxiliary_loss is not None:
        loss = loss + auxiliary_loss(users, user_e, torch.cat([pos, neg]), torch.cat([pos_e, neg_e]))
    return loss


class BPRObjective(torch.nn.Module):
    """:func:`bpr_loss` as a module over a fixed adjacency, so that DistributedDataParallel sees a batch's whole
    computation in ``forward`` and all-reduces the gradients in backward."""

    def __init__(self, model: torch.nn.Module, adj: Tensor, num_users: int, l2: float,
                 auxiliary_loss: AuxiliaryLoss | None = None) -> None:
        super().__init__()
        self.model, self.adj, self.num_users, self.l2 = model, adj, num_users, l2
        self.auxiliary_loss = auxiliary_loss

    def forward(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        return bpr_loss(self.model, self.adj, self.num_users, users, pos, neg, self.l2, self.auxiliary_loss)


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
    """Train LightGCN on ``graph`` with BPR, evaluating Recall@``eval_k`` on ``valid_edge_index``.

    With ``checkpoint_path``, the state is saved after every evaluation, and an existing checkpoint with the
    same config and fingerprint is resumed (a crashed run continues where it stopped). ``auxiliary_loss`` adds a
    term on each batch's final embeddings (see :data:`AuxiliaryLoss`). ``old_version``, the deployed version's
    final ``(user_emb, item_emb)`` (rows by dense id), adds ``config.compatibility``'s loss against it; without it
    (nothing deployed yet) the model trains on BPR alone.

    Under torchrun, pass ``dist_ctx`` (:func:`models.runtime.distributed.init_distributed`; it overrides ``device``):
    each rank samples its share of every batch with its own generator, DDP all-reduces the gradients, rank 0
    evaluates and writes the checkpoint, and every rank ends with the same result.

    Shapes:
        graph.edge_index: ``(2, E)`` training (user, item); valid_edge_index: ``(2, V)`` (user, item).
    """
    if config.compatibility not in COMPATIBILITY_METHODS:
        raise ValueError(f"LightGCNConfig.compatibility is {config.compatibility!r}; use one of {COMPATIBILITY_METHODS}")
    if old_version is not None:
        if auxiliary_loss is not None:
            raise ValueError("pass either old_version (config.compatibility's loss) or auxiliary_loss, not both")
        auxiliary_loss = make_compatibility_loss(config.compatibility, *old_version, weight=config.compatibility_weight)
    ctx = dist_ctx or distributed.DistContext(device=torch.device(device))
    device = ctx.device
    torch.manual_seed(config.seed)
    model = build_lightgcn(graph.num_users, graph.num_items, config.embedding_dim, config.num_layers, config.init_std)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = None
    if config.lr_decay < 1.0:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=config.lr_decay, patience=config.lr_decay_patience,
            min_lr=config.lr * config.lr_decay ** config.lr_decays)
    adj = propagation_matrix(graph, config.propagation, config.balance_strength).to(device)
    sampler = BPRSampler(graph, seed=distributed.rank_seed(config.seed, ctx.rank))
    objective = distributed.wrap(BPRObjective(model, adj, graph.num_users, config.l2, auxiliary_loss), ctx)
    resolved = asdict(config)

    state = {"epoch": 0, "history": [], "best_recall": -1.0, "best_epoch": 0,
             "best_weight": model.embedding.weight.detach().clone(), "train_seconds": 0.0}
    resumed_from = 0
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        saved = load_checkpoint(checkpoint_path, map_location=device)
        # One sampler state per rank (checkpoints of single-process runs before DDP held one flat state).
        sampler_states = torch.atleast_2d(saved["sampler_rng"])
        if (saved["config"] == resolved and saved["fingerprint"] == fingerprint
                and len(sampler_states) == ctx.world_size):
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(saved["scheduler"])
            sampler.generator.set_state(sampler_states[ctx.rank])
            state = {k: saved[k] for k in state}
            resumed_from = state["epoch"]
            log(f"resumed from {checkpoint_path} at epoch {resumed_from}")
        else:
            log(f"ignoring checkpoint {checkpoint_path}: written for another config, data fingerprint or "
                f"number of processes ({len(sampler_states)}, now {ctx.world_size})")

    evals_without_gain = 0
    num_train = graph.num_edges
    local_sizes = distributed.local_batch_sizes(num_train, config.batch_size, ctx.world_size)
    epoch = state["epoch"]
    while epoch < config.epochs:
        epoch += 1
        started = time.perf_counter()
        model.train()
        # This rank's share of every batch of the epoch (all of it with one process).
        users, pos, neg = (t.to(device) for t in sampler.sample(sum(local_sizes)))
        total, start = 0.0, 0
        for size in local_sizes:
            batch = slice(start, start + size)
            loss = objective(users[batch], pos[batch], neg[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * size
            start += size
        epoch_seconds = time.perf_counter() - started
        state["train_seconds"] += epoch_seconds
        loss_mean = distributed.sum_float(total, ctx) / (start * ctx.world_size)
        record = {"epoch": epoch, "loss": loss_mean, "epoch_seconds": epoch_seconds,
                  "elapsed_seconds": state["train_seconds"]}

        # Rank 0's clock decides, so that every rank evaluates and stops at the same epoch.
        out_of_time = bool(distributed.broadcast_float(
            float(0 < config.max_train_seconds <= state["train_seconds"]), ctx))
        if epoch % config.eval_every == 0 or epoch == config.epochs or out_of_time:
            recall = 0.0
            if ctx.is_main:
                model.eval()
                with torch.no_grad():
                    user_emb, item_emb = _propagated(model, adj, graph.num_users)
                    recall = evaluate_full_ranking(user_emb, item_emb, graph, valid_edge_index.to(device),
                                                   ks=(config.eval_k,)).summary()[f"recall@{config.eval_k}"]
            # Every rank holds the same weights (DDP), so with rank 0's recall each keeps the same best state.
            recall = distributed.broadcast_float(recall, ctx)
            record[f"valid_recall@{config.eval_k}"] = recall
            if recall > state["best_recall"]:
                state.update(best_recall=recall, best_epoch=epoch, best_weight=model.embedding.weight.detach().clone())
                evals_without_gain = 0
            else:
                evals_without_gain += 1
            if scheduler is not None:
                lr_before = optimizer.param_groups[0]["lr"]
                scheduler.step(recall)
                if optimizer.param_groups[0]["lr"] < lr_before:
                    evals_without_gain = 0  # the lower rate gets its own patience
                    log(f"epoch {epoch}: validation plateau, learning rate {lr_before:g} → "
                        f"{optimizer.param_groups[0]['lr']:g}")
            record["lr"] = optimizer.param_groups[0]["lr"]
            state["epoch"] = epoch
            state["history"].append(record)
            if checkpoint_path is not None:
                # Every rank takes part in the gather, so that rank 0's checkpoint resumes every sampling stream.
                rng_states = distributed.gather_generator_states(sampler.generator, ctx)
                if ctx.is_main:
                    save_checkpoint(checkpoint_path, {
                        **state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        **({"scheduler": scheduler.state_dict()} if scheduler is not None else {}),
                        "sampler_rng": rng_states, "config": resolved,
                        "seed": config.seed, "fingerprint": fingerprint, "code_version": code_version})
            log(f"epoch {epoch}: loss {record['loss']:.4f}, valid recall@{config.eval_k} {recall:.4f}, "
                f"{epoch_seconds:.1f} s/epoch")
            if evals_without_gain >= config.patience or out_of_time:
                log(f"stopping at epoch {epoch}: " + ("time budget reached" if out_of_time else
                    f"no gain in {config.patience} evaluations (best epoch {state['best_epoch']})"))
                break
        else:
            state["history"].append(record)

    with torch.no_grad():
        model.embedding.weight.copy_(state["best_weight"])
        model.eval()
        user_emb, item_emb = _propagated(model, adj, graph.num_users)
    return TrainResult(user_emb.cpu(), item_emb.cpu(), state["history"], state["best_epoch"], state["best_recall"],
                       epoch, state["train_seconds"], resumed_from, resolved, state["best_weight"].cpu())
