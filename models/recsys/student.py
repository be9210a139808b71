"""A graph-free recommendation student in its GNN teacher's embedding space: an item tower (item features plus a
learned id vector) and a user tower (the user's mean item features, log degree and the mean learned vector of their
items), trained by embedding regression, LLP-D/LLP-R on the teacher's scores and a BPR label loss.

Serving needs only an item's features and a user's own interactions, so the student also scores users (and items)
that arrived after training; its vectors go to the feature store like the teacher's.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.eval.ranking import user_csr
from models.graph.bipartite import BipartiteGraph
from models.linkpred.llp_losses import llp_distribution_loss, llp_rank_loss
from models.linkpred.students import Dropout
from models.runtime.loop import Schedule, TrainingRecord, train_loop


@dataclass
class RecStudentConfig:
    """Student training settings."""

    hidden: int = 256
    dropout: float = 0.1
    lr: float = 0.005
    epochs: int = 40  # passes over the users with training items
    batch_size: int = 256  # users per step
    regression_weight: float = 1.0  # MSE to the teacher's user and item vectors
    distribution_weight: float = 1.0  # λ_D of LLP-D on the teacher's scores of each user's context items
    rank_weight: float = 1.0  # λ_R of LLP-R
    label_weight: float = 0.1  # BPR on (user, training item, random item)
    heuristic_weight: float = 0.1  # LLP-R against a heuristic teacher's context scores, when given
    margin: float = 0.1
    context_positives: int = 6  # the user's own training items ("nearby") in each context set
    context_random: int = 6  # uniform items in each context set
    max_train_seconds: float = 0.0  # wall-clock budget; 0 means none
    seed: int = 0


class FeatureStudent(nn.Module):
    """Two feature towers emitting ``dim``-vectors in the teacher's space.

    Args:
        item_features: ``(num_items, F)`` serving-time item features (fixed, not trained).
        user_feature_dim: width of the user features (``F + 1``: mean item features and log degree).
        dim: the teacher's embedding size.
        known_items: items with a learned id vector (those seen in training); later items use features only.

    Shapes:
        :meth:`users`: bags as CSR ``(indptr (B+1,), items)`` and user features ``(B, F + 1)`` -> ``(B, dim)``;
        :meth:`items`: -> ``(num_items, dim)``.
    """

    def __init__(self, item_features: Tensor, user_feature_dim: int, dim: int, known_items: int,
                 hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.register_buffer("item_features", item_features)
        self.known_items = known_items
        self.item_mlp = nn.Sequential(nn.Linear(item_features.size(1), hidden), nn.ReLU(), Dropout(dropout),
                                      nn.Linear(hidden, dim))
        self.item_id = nn.Embedding(known_items, dim)
        self.item_context = nn.EmbeddingBag(known_items, dim, mode="mean")
        self.user_mlp = nn.Sequential(nn.Linear(user_feature_dim + dim, hidden), nn.ReLU(), Dropout(dropout),
                                      nn.Linear(hidden, dim))
        nn.init.normal_(self.item_id.weight, std=0.01)
        nn.init.normal_(self.item_context.weight, std=0.01)

    def items(self, index: Tensor | None = None) -> Tensor:
        """Vectors of the items ``index`` (default: all): features through the MLP, plus the learned id vector of
        known items."""
        index = torch.arange(self.item_features.size(0), device=self.item_features.device) if index is None else index
        vectors = self.item_mlp(self.item_features[index])
        known = (index < self.known_items).unsqueeze(1)
        return vectors + torch.where(known, self.item_id(index.clamp(max=self.known_items - 1)), 0.0)

    def users(self, indptr: Tensor, bag_items: Tensor, user_features: Tensor) -> Tensor:
        """Vectors of users given their interacted items (a CSR bag per user) and their features."""
        known = bag_items < self.known_items
        if bool(known.all()):  # the common case; a serving request's cost is mostly small ops like the ones below
            context = self.item_context(bag_items, indptr[:-1])
        else:
            # Unknown (newer) items carry no learned vector; they still count in the user features.
            kept_per_user = torch.segment_reduce(known.float(), "sum", offsets=indptr).long()
            kept_indptr = torch.zeros_like(indptr)
            kept_indptr[1:] = torch.cumsum(kept_per_user, 0)
            context = self.item_context(bag_items[known], kept_indptr[:-1])
        return self.user_mlp(torch.cat([user_features, context], dim=1))


def bags_of(indptr: Tensor, items: Tensor, users: Tensor) -> tuple[Tensor, Tensor]:
    """The CSR sub-bags ``(indptr, items)`` of ``users`` from the full user→items CSR arrays."""
    starts, counts = indptr[users], indptr[users + 1] - indptr[users]
    sub_indptr = torch.zeros(users.numel() + 1, dtype=torch.long)
    sub_indptr[1:] = torch.cumsum(counts, 0)
    offsets = torch.arange(int(sub_indptr[-1])) - torch.repeat_interleave(sub_indptr[:-1], counts)
    return sub_indptr, items[torch.repeat_interleave(starts, counts) + offsets]


def user_context(indptr: Tensor, bag_items: Tensor, users: Tensor, num_items: int, positives: int, random: int,
                 generator: torch.Generator) -> Tensor:
    """LLP context sets of users: ``positives`` of their own items drawn with replacement ("nearby"; a user without
    items gets random ones there too) and ``random`` uniform items.

    Shapes:
        output: ``(len(users), positives + random)`` item indices.
    """
    degree = (indptr[users + 1] - indptr[users]).unsqueeze(1)
    offsets = (torch.rand(users.numel(), positives, generator=generator) * degree).long()
    own = bag_items[(indptr[users].unsqueeze(1) + offsets).clamp(max=max(bag_items.numel() - 1, 0))]
    nearby = torch.where(degree > 0, own, torch.randint(num_items, own.shape, generator=generator))
    return torch.cat([nearby, torch.randint(num_items, (users.numel(), random), generator=generator)], dim=1)


def teacher_contexts(graph: BipartiteGraph, seed: int, users: Tensor | None = None) -> Tensor:
    """The context items that heuristic teachers score: for each of ``users`` (default: all), as many of its own and
    random items as the student's default context holds, drawn with ``seed``.

    Shapes:
        output: ``(len(users), context_positives + context_random)`` item indices.
    """
    indptr, items = user_csr(graph.edge_index, graph.num_users)
    users = torch.arange(graph.num_users) if users is None else users
    defaults = RecStudentConfig()
    return user_context(indptr, items, users, graph.num_items, defaults.context_positives, defaults.context_random,
                        torch.Generator().manual_seed(seed))


@dataclass
class StudentResult:
    """The trained student and its training record."""

    model: FeatureStudent
    record: TrainingRecord


class StudentTask:
    """The student for the training loop: shuffled users with training items in batches of ``batch_size``, each
    batch's loss over its LLP context items (no validation: it trains for its epochs). Batches and context sets
    are drawn on the CPU; the towers and the loss run on ``device``."""

    validate = None
    metric = ""

    def __init__(self, item_features: Tensor, user_features: Tensor, indptr: Tensor, bag_items: Tensor,
                 teacher_user: Tensor, teacher_item: Tensor, config: RecStudentConfig,
                 heuristic_context: tuple[Tensor, Tensor] | None, device: torch.device | str = "cpu") -> None:
        self.device = device
        self.user_features, self.indptr, self.bag_items = user_features, indptr, bag_items
        self.teacher_user, self.teacher_item, self.config = teacher_user, teacher_item, config
        self.heuristic_context = heuristic_context
        self.generator = torch.Generator().manual_seed(config.seed)
        self.num_items, dim = teacher_item.shape
        self.model = FeatureStudent(item_features, user_features.size(1), dim, self.num_items, config.hidden,
                                    config.dropout).to(device)
        self.active = torch.nonzero(indptr[1:] - indptr[:-1] > 0).flatten()

    def batches(self):
        """The users with training items in a new order each epoch, weighted by their number."""
        order = self.active[torch.randperm(self.active.numel(), generator=self.generator)]
        for start in range(0, order.numel(), self.config.batch_size):
            users = order[start:start + self.config.batch_size]
            yield users, users.numel()

    def loss(self, users: Tensor) -> tuple[Tensor, None]:
        """Embedding regression, LLP-D and LLP-R on the teacher's context scores, BPR on the labels and, with a
        heuristic teacher, LLP-R on its scores."""
        config, heuristic_context, device = self.config, self.heuristic_context, self.device
        sub_indptr, sub_items = bags_of(self.indptr, self.bag_items, users)
        user_vec = self.model.users(sub_indptr.to(device), sub_items.to(device), self.user_features[users].to(device))
        context = user_context(self.indptr, self.bag_items, users, self.num_items, config.context_positives,
                               config.context_random, self.generator)
        scored = context if heuristic_context is None else torch.cat([context, heuristic_context[0][users]], 1)
        # Only the items this step scores go through the item tower (not all items every step).
        batch_items, local = torch.unique(scored, return_inverse=True)
        item_vec = self.model.items(batch_items.to(device))
        scores = (user_vec.unsqueeze(1) * item_vec[local.to(device)]).sum(-1)
        student = scores[:, :context.size(1)]
        teacher_user, teacher_item = self.teacher_user[users].to(device), self.teacher_item[batch_items].to(device)
        with torch.no_grad():
            teacher = (teacher_user.unsqueeze(1) * self.teacher_item[context].to(device)).sum(-1)
        loss = config.regression_weight * (F.mse_loss(user_vec, teacher_user, reduction="sum")
                                           / users.numel() + F.mse_loss(item_vec, teacher_item,
                                                                        reduction="sum") / batch_items.numel())
        loss = loss + config.distribution_weight * llp_distribution_loss(student, teacher)
        loss = loss + config.rank_weight * llp_rank_loss(student, teacher, config.margin)
        loss = loss + config.label_weight * F.softplus(student[:, config.context_positives] - student[:, 0]).mean()
        if heuristic_context is not None:
            loss = loss + config.heuristic_weight * llp_rank_loss(scores[:, context.size(1):],
                                                                  heuristic_context[1][users].to(device), config.margin)
        return loss, None


def train_feature_student(item_features: Tensor, user_features: Tensor, indptr: Tensor, bag_items: Tensor,
                          teacher_user: Tensor, teacher_item: Tensor, config: RecStudentConfig,
                          heuristic_context: tuple[Tensor, Tensor] | None = None,
                          log: Callable[[str], None] = lambda _: None, checkpoint_path: str | Path | None = None,
                          fingerprint: str = "", code_version: str = "",
                          device: torch.device | str = "cpu") -> StudentResult:
    """Distil the teacher's vectors into feature towers, on the users with training items, in
    :func:`models.runtime.loop.train_loop` (checkpoints and the time budget as there), on ``device``; the trained
    model comes back on the CPU, where serving runs.

    Args:
        item_features: ``(I, F)``; user_features: ``(U, F + 1)`` from :mod:`warehouse.features`.
        indptr, bag_items: user→items CSR of the training graph.
        teacher_user, teacher_item: ``(U, d)`` and ``(I, d)`` teacher vectors (the target space).
        heuristic_context: optional second teacher, a heuristic's ``(U, C)`` context items per user and their
            ``(U, C)`` scores (``models.graph.heuristics.bipartite_heuristic_scores``), matched by LLP-R with weight
            ``heuristic_weight``.
    """
    task, record = train_loop(
        lambda: StudentTask(item_features, user_features, indptr, bag_items, teacher_user, teacher_item, config,
                            heuristic_context, device),
        Schedule.of(config), identity={"config": asdict(config), "fingerprint": fingerprint},
        checkpoint=checkpoint_path, log=log, code_version=code_version)
    return StudentResult(task.model.cpu(), record)


@torch.no_grad()
def student_vectors(model: FeatureStudent, indptr: Tensor, bag_items: Tensor,
                    user_features: Tensor, batch_size: int = 8192) -> tuple[Tensor, Tensor]:
    """``(user_vectors, item_vectors)`` of every user in the CSR bags (users without items get the vector of their
    zero features: a popularity-like default) and every item."""
    model.eval()
    num_users = indptr.numel() - 1
    users = []
    for start in range(0, num_users, batch_size):
        batch = torch.arange(start, min(start + batch_size, num_users))
        sub_indptr, sub_items = bags_of(indptr, bag_items, batch)
        users.append(model.users(sub_indptr, sub_items, user_features[batch]))
    return torch.cat(users), model.items()
