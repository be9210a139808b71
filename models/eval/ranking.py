"""Ranking metrics (full-ranking Recall/NDCG@K with training items masked) and degree-group fairness figures.

Hit matching uses PyG's ``LinkPredMetricData``; per-user values are kept (not only the mean) because the
per-degree-group report and the bias figure need them.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch_geometric.metrics import LinkPredAveragePopularity, LinkPredCoverage
from torch_geometric.metrics.link_pred import LinkPredMetricData

from models.eval.personalization import Personalization
from models.graph.bipartite import BipartiteGraph


@dataclass
class RankingResult:
    """Per-user metrics of one full-ranking evaluation.

    ``users`` are the evaluated user indices; ``recall[k]`` and ``ndcg[k]`` are aligned with them.
    """

    users: Tensor
    recall: dict[int, Tensor]
    ndcg: dict[int, Tensor]
    beyond_accuracy: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """Mean metrics as flat keys ``recall@K`` and ``ndcg@K``, plus the beyond-accuracy figures if measured."""
        out = {f"recall@{k}": float(v.mean()) for k, v in self.recall.items()}
        out.update({f"ndcg@{k}": float(v.mean()) for k, v in self.ndcg.items()})
        return {**out, **self.beyond_accuracy}

    def tensors(self, prefix: str) -> dict[str, Tensor]:
        """Plain tensors under ``<prefix>.`` (users, per-user recall and NDCG per K, beyond-accuracy figures) for a
        ``weights_only`` file; :meth:`from_tensors` reads them back."""
        return {f"{prefix}.users": self.users,
                **{f"{prefix}.recall@{k}": values for k, values in self.recall.items()},
                **{f"{prefix}.ndcg@{k}": values for k, values in self.ndcg.items()},
                **{f"{prefix}.beyond.{name}": torch.tensor(value, dtype=torch.float64)
                   for name, value in self.beyond_accuracy.items()}}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Tensor], prefix: str) -> RankingResult:
        """The result that :meth:`tensors` saved under ``prefix``."""
        def under(kind: str) -> dict[str, Tensor]:
            start = f"{prefix}.{kind}"
            return {key.removeprefix(start): value for key, value in tensors.items() if key.startswith(start)}

        return cls(users=tensors[f"{prefix}.users"],
                   recall={int(k): values for k, values in sorted(under("recall@").items(), key=lambda kv: int(kv[0]))},
                   ndcg={int(k): values for k, values in sorted(under("ndcg@").items(), key=lambda kv: int(kv[0]))},
                   beyond_accuracy={name: float(value) for name, value in under("beyond.").items()})


def recall_ndcg_from_topk(
    topk_items: Tensor, label_index: Tensor, ks: tuple[int, ...]
) -> tuple[dict[int, Tensor], dict[int, Tensor]]:
    """Per-row Recall@K and NDCG@K (binary relevance) from a ranked top-k matrix.

    Args:
        topk_items: ``(B, K_max)`` item indices, best first.
        label_index: ``(2, L)`` ground truth as (row in ``[0, B)``, item).
        ks: cut-offs, each ``<= K_max``.
    """
    data = LinkPredMetricData(pred_index_mat=topk_items, edge_label_index=label_index)
    relevant = data.pred_rel_mat.float()
    label_count = data.label_count
    discount = torch.arange(2, topk_items.size(1) + 2, device=topk_items.device).float().log2()
    ideal = torch.cumsum(1.0 / discount, 0)
    recall, ndcg = {}, {}
    for k in ks:
        hits = relevant[:, :k]
        recall[k] = hits.sum(1) / label_count.clamp(min=1)
        dcg = (hits / discount[:k]).sum(1)
        ndcg[k] = dcg / ideal[(label_count.clamp(min=1, max=k) - 1)]
    return recall, ndcg


def _rows_to_mask(graph_user_ptr: Tensor, graph_items: Tensor, users: Tensor) -> tuple[Tensor, Tensor]:
    """(row, item) pairs of the training items of ``users`` (row = position in ``users``), from CSR arrays."""
    starts, ends = graph_user_ptr[users], graph_user_ptr[users + 1]
    counts = ends - starts
    rows = torch.repeat_interleave(torch.arange(users.numel(), device=users.device), counts)
    offsets = torch.arange(int(counts.sum()), device=users.device) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    return rows, graph_items[torch.repeat_interleave(starts, counts) + offsets]


def user_csr(edge_index: Tensor, num_users: int) -> tuple[Tensor, Tensor]:
    """CSR arrays ``(indptr, items)`` of a (user, item) edge list, grouped by user."""
    order = torch.argsort(edge_index[0], stable=True)
    indptr = torch.zeros(num_users + 1, dtype=torch.long, device=edge_index.device)
    indptr[1:] = torch.cumsum(torch.bincount(edge_index[0], minlength=num_users), 0)
    return indptr, edge_index[1][order]


# Users per score block when the caller does not say: as many as keep one block of float32 scores near 128 MiB,
# at most 4,096. A scorer holds a few such blocks at once (BSPM's Runge-Kutta stage holds about eight), so the
# block is sized by the item count rather than fixed: 4,096 Gowalla users x 41k items is 670 MB per block.
BLOCK_SCORES = 2**25
MAX_BLOCK_USERS = 4096


def block_users(num_items: int) -> int:
    """Users per score block for ``num_items`` items (see :data:`BLOCK_SCORES`)."""
    return max(1, min(MAX_BLOCK_USERS, BLOCK_SCORES // max(num_items, 1)))


@dataclass(frozen=True)
class HeldOut:
    """One set of held-out interactions to rank every item against.

    ``edges`` ``(2, T)`` (user, item) are the labels; the training items and ``also_masked`` (further known
    interactions, such as the validation part when ranking the test part) are masked. With ``item_popularity``
    (``(num_items,)``, e.g. training degrees) the top lists also give PyG's beyond-accuracy figures at
    ``beyond_accuracy_k`` (default: the largest cut-off).
    """

    edges: Tensor
    also_masked: Tensor | None = None
    item_popularity: Tensor | None = None
    beyond_accuracy_k: int | None = None


@torch.no_grad()
def evaluate_full_ranking(
    user_emb: Tensor,
    item_emb: Tensor,
    train: BipartiteGraph,
    test_edge_index: Tensor,
    ks: tuple[int, ...] = (10, 20, 50),
    batch_size: int | None = None,
    also_masked: Tensor | None = None,
) -> RankingResult:
    """Full-ranking Recall@K / NDCG@K of dot-product scores ``user_emb @ item_emb.T`` (see :func:`evaluate_scores`).

    Shapes:
        user_emb: ``(num_users, d)``; item_emb: ``(num_items, d)``; test_edge_index: ``(2, T)`` (user, item).
    """
    return evaluate_scores(lambda users: user_emb[users] @ item_emb.T, train, test_edge_index, ks, batch_size,
                           also_masked, user_emb.device)


@torch.no_grad()
def evaluate_scores(
    score: Callable[[Tensor], Tensor],
    train: BipartiteGraph,
    test_edge_index: Tensor,
    ks: tuple[int, ...] = (10, 20, 50),
    batch_size: int | None = None,
    also_masked: Tensor | None = None,
    device: torch.device | str = "cpu",
    item_popularity: Tensor | None = None,
    beyond_accuracy_k: int | None = None,
) -> RankingResult:
    """Full-ranking Recall@K / NDCG@K over every item of one held-out set (see :class:`HeldOut` and
    :func:`evaluate_held_out`)."""
    held_out = HeldOut(test_edge_index, also_masked, item_popularity, beyond_accuracy_k)
    return evaluate_held_out(score, train, {"test": held_out}, ks, batch_size, device)["test"]


class _Ranking:
    """The running state of one held-out set while the user blocks go by: masks, labels and metric sums."""

    def __init__(self, held_out: HeldOut, train: BipartiteGraph, ks: tuple[int, ...], device: torch.device | str):
        known = train.edge_index if held_out.also_masked is None else torch.cat(
            [train.edge_index, held_out.also_masked.to(train.edge_index.device)], 1)
        self.known_ptr, self.known_items = (t.to(device) for t in user_csr(known, train.num_users))
        self.label_ptr, self.label_items = (t.to(device) for t in user_csr(held_out.edges.to(device),
                                                                             train.num_users))
        self.has_labels = self.label_ptr[1:] > self.label_ptr[:-1]
        self.ks, self.users = ks, []
        self.recall, self.ndcg = {k: [] for k in ks}, {k: [] for k in ks}
        top = held_out.beyond_accuracy_k or max(ks)
        self.beyond = {} if held_out.item_popularity is None else {
            f"coverage@{top}": LinkPredCoverage(top, train.num_items),
            f"avg_popularity@{top}": LinkPredAveragePopularity(top, held_out.item_popularity.float().to(device)),
            f"personalization@{top}": Personalization(top)}

    def add(self, batch: Tensor, scores: Tensor, last: bool) -> None:
        """Rank the block's users that have labels here. ``scores`` ``(B, I)`` is masked in place only when this
        set is the ``last`` to read it; otherwise a copy is masked, so the next set sees the block unmasked."""
        rows_here = self.has_labels[batch]
        if not bool(rows_here.any()):
            return
        users = batch[rows_here]
        if not (last and bool(rows_here.all())):
            scores = scores[rows_here]
        rows, items = _rows_to_mask(self.known_ptr, self.known_items, users)
        scores[rows, items] = float("-inf")
        topk = scores.topk(max(self.ks), dim=1).indices
        labels = torch.stack(_rows_to_mask(self.label_ptr, self.label_items, users))
        recall, ndcg = recall_ndcg_from_topk(topk, labels, self.ks)
        self.users.append(users)
        for k in self.ks:
            self.recall[k].append(recall[k])
            self.ndcg[k].append(ndcg[k])
        for metric in self.beyond.values():
            metric.update(topk, labels)

    def result(self) -> RankingResult:
        def joined(parts: list[Tensor]) -> Tensor:
            return torch.cat(parts).cpu() if parts else torch.zeros(0)

        return RankingResult(
            users=joined(self.users).long(),
            recall={k: joined(v) for k, v in self.recall.items()},
            ndcg={k: joined(v) for k, v in self.ndcg.items()},
            beyond_accuracy={name: float(metric.compute()) for name, metric in self.beyond.items()},
        )


@torch.no_grad()
def evaluate_held_out(
    score: Callable[[Tensor], Tensor],
    train: BipartiteGraph,
    held_out: Mapping[str, HeldOut],
    ks: tuple[int, ...] = (10, 20, 50),
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, RankingResult]:
    """Full-ranking Recall@K / NDCG@K over every item, with each user's training items masked, for several
    held-out sets from one pass of scoring (validation and test alike: one fit scores each user once).

    ``score(users)`` gives every item's score for a batch of user indices, ``(B,) → (B, num_items)`` on
    ``device``. Each held-out set masks its own known interactions (:class:`HeldOut`); the standard protocol
    ranks, at test, only items the user had not interacted with before the test period. No users × items matrix
    is ever materialized beyond one block (``batch_size`` users, by default :func:`block_users`). Users without
    labels in a set are skipped there. Recall divides by the user's number of held-out items (LightGCN's
    convention); ``coverage@K``, ``avg_popularity@K`` and ``personalization@K`` (mean pairwise dissimilarity of
    users' lists, on PyG's default sample of 4,096 users) come with a set's ``item_popularity``.
    """
    rankings = {name: _Ranking(one, train, ks, device) for name, one in held_out.items()}
    has_labels = torch.stack([ranking.has_labels for ranking in rankings.values()]).any(0)
    for batch in _user_blocks(has_labels, batch_size or block_users(train.num_items)):
        scores = score(batch)
        for position, ranking in enumerate(rankings.values(), 1):
            ranking.add(batch, scores, last=position == len(rankings))
    return {name: ranking.result() for name, ranking in rankings.items()}


@torch.no_grad()
def evaluate_candidates(
    scorers: Sequence[Callable[[Tensor], Tensor]],
    train: BipartiteGraph,
    held_out: HeldOut,
    ks: tuple[int, ...] = (10, 20, 50),
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
) -> list[RankingResult]:
    """One held-out set ranked for several scorers (the candidates of a choice) in one pass over the users: each
    block of users goes to every scorer in turn, so scorers that share work on a block (the same filtered rows under
    other weights) can do it once per block. Each scorer's result equals :func:`evaluate_scores` on its own; the
    score blocks are masked in place, so a scorer must return a block of its own, not one it keeps."""
    rankings = [_Ranking(held_out, train, ks, device) for _ in scorers]
    for batch in _user_blocks(rankings[0].has_labels, batch_size or block_users(train.num_items)):
        for ranking, score in zip(rankings, scorers, strict=True):
            ranking.add(batch, score(batch), last=True)
    return [ranking.result() for ranking in rankings]


def _user_blocks(has_labels: Tensor, batch_size: int) -> list[Tensor]:
    """The users with labels, ``(num_users,)`` bool, in blocks of ``batch_size``."""
    users = torch.nonzero(has_labels).flatten()
    return [users[start:start + batch_size] for start in range(0, users.numel(), batch_size)]


def degree_groups(degree: Tensor, num_groups: int = 5) -> Tensor:
    """Quantile bucket (0 = lowest degree) of each entry of ``degree``: group ``g`` holds ``q_g < d ≤ q_{g+1}``, so
    ties share a bucket and a degree equal to a quantile goes below it. Where many users share the lowest degree
    (the new users of a temporal split, with none), the lowest group is theirs rather than merged into the next."""
    if degree.numel() == 0:
        return degree.long()
    qs = torch.quantile(degree.double(), torch.linspace(0, 1, num_groups + 1, dtype=torch.double)[1:-1])
    return torch.bucketize(degree.double(), torch.unique(qs), right=False)


def group_means(values: Tensor, groups: Tensor) -> dict[int, float]:
    """Mean of ``values`` per group id, for the groups present."""
    return {int(g): float(values[groups == g].mean()) for g in torch.unique(groups)}


def group_variance(values: Tensor, groups: Tensor) -> float:
    """Sample variance (n−1) of the per-group means: the bias figure across degree groups (0.0 for < 2 groups)."""
    means = list(group_means(values, groups).values())
    return statistics.variance(means) if len(means) >= 2 else 0.0


def degree_group_metrics(result: RankingResult, groups: Tensor, k: int = 20) -> dict[str, float]:
    """One model's flat figures: ``recall@K``/``ndcg@K``, ``bias`` (variance of the groups' mean Recall@k) and
    ``group<g>.recall@k`` per degree group.

    ``groups`` holds the degree group of each evaluated user, aligned with ``result.users``.
    """
    per_group = group_means(result.recall[k], groups)
    return {**result.summary(), "bias": group_variance(result.recall[k], groups),
            **{f"group{g}.recall@{k}": value for g, value in per_group.items()}}


def heldout_item_degree(graph: BipartiteGraph, edges: Tensor) -> dict[str, float]:
    """``mean_item_degree`` and ``median_item_degree``: the training degree in ``graph`` of the item of each
    held-out pair in ``edges`` ``(2, E)`` (NaN for no pairs). Validation carved at random from the training pairs has their profile; a
    test set whose items are more (or less) popular is one that validation cannot mimic, and models that lean
    towards popular items then rank higher on test than on validation."""
    degree = graph.item_degree().double()[edges[1]]
    return {"mean_item_degree": float(degree.mean()), "median_item_degree": float(degree.median())}


def rawls_bias(per_node_loss: Tensor, degree: Tensor) -> float:
    """RawlsGCN's Bias: sample variance over raw-degree groups of the mean per-node loss (Kang et al., WWW 2022).

    Every distinct integer degree is its own group, exactly as the authors' ``Evaluator._get_bias``.
    """
    return group_variance(per_node_loss, degree.long())
