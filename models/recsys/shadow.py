"""shaDow-GNN as a recommender: every user and item is embedded from its own PPR scope (center + pooled readout), a
pair scores the sum of the Hadamard product of its two vectors, and training is BPR on (user, positive, negative)
triples whose three scopes form one isolated batch. Users have no id embedding, so an unseen user is embedded from
its scope alone, with no retraining (:func:`recommend_for_new_user`).

shaDow-GNN's link variant (Zeng et al., NeurIPS 2021) joins the two scopes of a pair into one subgraph; here each
node keeps its own scope so that full ranking is one dot product per (user, item) pair, exactly as LightGCN is
evaluated.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.eval.ranking import evaluate_full_ranking
from models.graph.bipartite import BipartiteGraph, to_homogeneous_edge_index
from models.graph.ppr import DAMPING, forward_push
from models.graph.scopes import GraphIndex, Scopes, ScopeSubgraphs, SubgraphBatch, ppr_scopes
from models.graph.shadow_gnn import ShadowGNN
from models.graph.sparse import binary_adjacency
from models.recsys.compat import compatibility_hook
from models.recsys.sampling import BPRSampler
from models.runtime.loop import BatchVectors, Schedule, TrainingRecord, train_loop


class ShadowRecError(ValueError):
    """A shaDow recommender request that cannot be served (scopes of another graph, unknown items)."""


@dataclass(frozen=True)
class ShadowRecConfig:
    """Model and training settings; the scopes themselves come from :func:`models.graph.ppr.forward_push`."""

    embedding_dim: int = 64
    num_layers: int = 3
    conv: str = "sage"
    readout: str = "center+mean"
    lr: float = 0.005
    l2: float = 1e-4  # λ on ½‖z‖² of the batch's output vectors, divided by the batch size
    batch_size: int = 512  # BPR triples per step (three scopes each)
    epochs: int = 5  # passes over as many triples as training edges
    eval_every: int = 0  # epochs between validation evaluations; 0: only after the last
    patience: int = 10  # evaluations without improvement before stopping
    eval_k: int = 20
    eval_batch_size: int = 1024  # scopes per inference batch
    max_train_seconds: float = 0.0  # wall-clock budget; 0 means none
    seed: int = 2020
    # Compatibility with the deployed version (models.recsys.compat): none | bct | hyperbolic, and the loss weight.
    compatibility: str = "none"
    compatibility_weight: float | None = None


@dataclass
class ShadowRecResult:
    """Embeddings of every user and item, the trained model's state and the training record."""

    user_emb: Tensor
    item_emb: Tensor
    state_dict: dict[str, Tensor]
    record: TrainingRecord


class ShadowRecommender(nn.Module):
    """Item id embeddings plus one shared user vector as inputs, then :class:`ShadowGNN` on each node's scope.

    Node ids follow :func:`models.graph.bipartite.to_homogeneous_edge_index`: users ``[0, U)``, items ``[U, U + I)``; any other
    id (an unseen user added after training) is a user too.
    """

    def __init__(self, num_users: int, num_items: int, config: ShadowRecConfig) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        d = config.embedding_dim
        self.item = nn.Embedding(num_items, d)
        nn.init.normal_(self.item.weight, std=0.1)
        self.user = nn.Parameter(torch.zeros(1, d))
        self.gnn = ShadowGNN(d, d, d, config.num_layers, config.conv, config.readout)

    def forward(self, sub: SubgraphBatch) -> Tensor:
        """One vector per scope of the batch, ``(B, d)``."""
        item = sub.node_id - self.num_users
        is_item = (item >= 0) & (item < self.num_items)
        x = torch.where(is_item[:, None], self.item(item.clamp(0, self.num_items - 1)), self.user)
        return self.gnn(x, sub.edge_index, sub.batch, sub.center)


def _check_scopes(scopes: Scopes, num_nodes: int) -> None:
    if not torch.equal(scopes.targets, torch.arange(num_nodes)):
        raise ShadowRecError(f"the recommender needs one scope per node of the graph in node order (0..{num_nodes - 1}); "
                             f"got {len(scopes)} scopes: recompute them for this training graph.")


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def embed_nodes(model: ShadowRecommender, subgraphs: ScopeSubgraphs, nodes: Tensor, batch_size: int) -> Tensor:
    """Vectors of ``nodes`` (scope rows), ``(len(nodes), d)`` on the CPU, in batches of ``batch_size`` scopes run on
    the model's device."""
    model.eval()
    device = _device_of(model)
    return torch.cat([model(subgraphs.batch(nodes[i:i + batch_size]).to(device)).cpu()
                      for i in range(0, nodes.numel(), batch_size)])


class ShadowRecTask:
    """The shaDow recommender for the training loop: BPR triples sampled an epoch at a time, each batch's three
    scopes gathered on the CPU as one isolated batch (every scope's subgraph is extracted once, at the start) and run
    on ``device``; validation Recall@``eval_k`` by full ranking of every node's vector."""

    def __init__(self, graph: BipartiteGraph, scopes: Scopes, config: ShadowRecConfig, valid_edge_index: Tensor | None,
                 device: torch.device | str) -> None:
        self.graph, self.config, self.device = graph, config, device
        self.num_nodes = graph.num_users + graph.num_items
        self.subgraphs = ScopeSubgraphs.extract(scopes, GraphIndex(binary_adjacency(to_homogeneous_edge_index(graph),
                                                                                   self.num_nodes)))
        self.model = ShadowRecommender(graph.num_users, graph.num_items, config).to(device)
        self.sampler = BPRSampler(graph, seed=config.seed)
        self.generator = self.sampler.generator
        self.steps_per_epoch = -(-graph.num_edges // config.batch_size)
        self.valid = valid_edge_index
        self.validate = self._validate if valid_edge_index is not None and valid_edge_index.numel() else None
        self.metric = f"valid_recall@{config.eval_k}"
        self.validated: tuple[Tensor, Tensor] | None = None  # the vectors of the last validation

    def batches(self):
        """``batch_size`` triples per step, as many steps as cover the training edges; each step weighs the same."""
        users, pos, neg = self.sampler.sample(self.steps_per_epoch * self.config.batch_size)
        for step in range(self.steps_per_epoch):
            batch = slice(step * self.config.batch_size, (step + 1) * self.config.batch_size)
            yield (users[batch], pos[batch], neg[batch]), 1.0

    def loss(self, batch: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, BatchVectors]:
        """BPR on ``⟨z_u, z_i⟩`` plus ``l2 · ½‖z‖² / B`` on the batch's output vectors."""
        users, pos, neg = batch
        rows = torch.cat([users, self.graph.num_users + pos, self.graph.num_users + neg])
        z_u, z_p, z_n = self.model(self.subgraphs.batch(rows).to(self.device)).chunk(3)
        loss = F.softplus((z_u * z_n).sum(1) - (z_u * z_p).sum(1)).mean()
        loss = loss + self.config.l2 * 0.5 * (z_u.square().sum() + z_p.square().sum() + z_n.square().sum()) / z_u.size(0)
        device = z_u.device
        return loss, (users.to(device), z_u, torch.cat([pos, neg]).to(device), torch.cat([z_p, z_n]))

    def vectors(self) -> tuple[Tensor, Tensor]:
        """User and item vectors of every node's scope, on the CPU."""
        z = embed_nodes(self.model, self.subgraphs, torch.arange(self.num_nodes), self.config.eval_batch_size)
        return z[:self.graph.num_users], z[self.graph.num_users:]

    def _validate(self) -> float:
        self.validated = self.vectors()
        k = self.config.eval_k
        return evaluate_full_ranking(*self.validated, self.graph, self.valid, ks=(k,)).summary()[f"recall@{k}"]


def train_shadow_recommender(graph: BipartiteGraph, scopes: Scopes, config: ShadowRecConfig,
                             valid_edge_index: Tensor | None = None, log: Callable[[str], None] = print,
                             device: torch.device | str = "cpu", checkpoint_path: str | Path | None = None,
                             fingerprint: str = "", code_version: str = "",
                             old_version: tuple[Tensor, Tensor] | None = None) -> ShadowRecResult:
    """BPR training of a :class:`ShadowRecommender` on the PPR scopes of every node of ``graph``, in
    :func:`models.runtime.loop.train_loop`.

    Each step samples ``batch_size`` triples (models.recsys.sampling), extracts the user's, the positive's and the
    negative's scopes as one isolated batch and scores ``⟨z_u, z_i⟩``. With ``valid_edge_index``, validation
    Recall@``eval_k`` is measured every ``eval_every`` epochs (0: after the last) and the best weights are kept.
    Checkpoints, ``old_version`` (the compatibility loss) and the time budget work as in
    :func:`models.recsys.training.train_lightgcn`. Deterministic for ``config.seed`` on a given device.

    Shapes:
        scopes: one per node, node ``v``'s scope at row ``v`` (``targets == arange(U + I)``).
    """
    _check_scopes(scopes, graph.num_users + graph.num_items)
    auxiliary_loss = compatibility_hook(config.compatibility, config.compatibility_weight, old_version)
    resolved = asdict(config)
    task, record = train_loop(lambda: ShadowRecTask(graph, scopes, config, valid_edge_index, device),
                              Schedule.of(config), identity={"config": resolved, "fingerprint": fingerprint},
                              checkpoint=checkpoint_path, log=log, auxiliary_loss=auxiliary_loss,
                              code_version=code_version)
    # Inference over every scope is the costly part: the best weights' vectors are reused when they are the last.
    fresh = task.validated is not None and record.best_epoch == record.epochs_run
    user_emb, item_emb = task.validated if fresh else task.vectors()
    state = {name: tensor.cpu() for name, tensor in task.model.state_dict().items()}
    return ShadowRecResult(user_emb, item_emb, state, record)


def recommend_for_new_user(model: ShadowRecommender, graph: BipartiteGraph, item_emb: Tensor, items: Tensor,
                           k: int = 20, top_k: int = 200, threshold: float = 0.0, damping: float = DAMPING,
                           epsilon: float = 1e-5) -> Tensor:
    """Top-``k`` items for a user absent at training time who interacted with ``items`` (1–3 item ids), no retraining.

    The user joins the training graph as a new node linked to ``items``; its PPR scope is computed in that graph, the
    trained model embeds it from the scope, and every item not in ``items`` is ranked by ``⟨z_user, item_emb⟩``.
    """
    items = torch.as_tensor(items, dtype=torch.long).flatten()
    if items.numel() == 0 or items.min() < 0 or items.max() >= graph.num_items:
        raise ShadowRecError(f"a new user needs 1 or more known item ids in [0, {graph.num_items}); got {items.tolist()}.")
    n = graph.num_users + graph.num_items
    base = binary_adjacency(to_homogeneous_edge_index(graph), n)
    link = sp.csr_matrix((np.ones(items.numel(), dtype=np.float32), (np.zeros(items.numel(), dtype=np.int64),
                                                                       (graph.num_users + items).numpy())), shape=(1, n))
    augmented = sp.bmat([[base, link.T], [link, None]], format="csr")
    augmented.sum_duplicates()
    augmented.data[:] = 1.0
    new_user = torch.tensor([n])
    scope = ppr_scopes(forward_push(augmented, new_user, damping, epsilon, top_k), threshold)
    z = embed_nodes(model, ScopeSubgraphs.extract(scope, GraphIndex(augmented)), torch.tensor([0]), 1)[0]
    scores = item_emb @ z.to(item_emb.device)
    scores[items] = float("-inf")
    return scores.topk(min(k, graph.num_items - items.unique().numel())).indices
