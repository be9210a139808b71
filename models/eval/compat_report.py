"""Cross-version retrieval report of an embedding candidate against its ancestor versions: new users on old
items, old users on new items, each version on itself, BCT's empirical criterion and update gain (Shen et al.,
CVPR 2020).

The report is a JSON-able dict (what the feature-store gate consumes and the registry stores); a markdown
rendering of the matrix is for the UI.
"""
from __future__ import annotations

from torch import Tensor

from models.eval.ranking import evaluate_full_ranking
from models.graph.bipartite import BipartiteGraph

Embeddings = tuple[Tensor, Tensor]  # (user_emb (U, d), item_emb (I, d)) of one version, rows by dense index


def _in_scope(edge_index: Tensor, num_users: int, num_items: int) -> Tensor:
    return edge_index[:, (edge_index[0] < num_users) & (edge_index[1] < num_items)]


def _retrieval(users: Tensor, items: Tensor, train_graph: BipartiteGraph, heldout_edge_index: Tensor,
               ks: tuple[int, ...], num_users: int, num_items: int, also_masked: Tensor | None) -> dict[str, float]:
    """Recall@K and NDCG@K of ``users`` ranking ``items`` over the first ``num_users`` users and ``num_items`` items."""
    graph = BipartiteGraph(_in_scope(train_graph.edge_index, num_users, num_items), num_users, num_items)
    masked = None if also_masked is None else _in_scope(also_masked, num_users, num_items)
    heldout = _in_scope(heldout_edge_index, num_users, num_items)
    return evaluate_full_ranking(users[:num_users], items[:num_items], graph, heldout, ks,
                                 also_masked=masked).summary()


def _update_gain(new_old: float, old_old: float, reference_new: float) -> float | None:
    """BCT's update gain (M(new, old) − M(old, old)) / (M(new*, new*) − M(old, old)); None when undefined."""
    span = reference_new - old_old
    return (new_old - old_old) / span if span > 0 else None


def compatibility_report(new: Embeddings, olds: dict[str, Embeddings], train_graph: BipartiteGraph,
                         heldout_edge_index: Tensor, ks: tuple[int, ...] = (20,), criterion_metric: str = "recall@20",
                         independent: Embeddings | None = None, also_masked: Tensor | None = None,
                         new_new: dict[str, float] | None = None) -> dict:
    """Cross-version retrieval of ``new`` against every version in ``olds`` on held-out interactions.

    Each ordered pair ranks every item for every held-out user, with the user's training items masked
    (:func:`models.eval.ranking.evaluate_full_ranking`). Per ancestor: ``old_old`` (M(old, old)), ``new_old`` (new
    users → old items, the BCT cross-test: new queries on the old gallery), ``old_new`` (old users → new items),
    ``criterion`` (M(new, old) > M(old, old) on ``criterion_metric``), ``reverse_criterion`` (M(old, new) >
    M(old, old), reported, not required) and ``update_gain`` per metric. The gain's reference new* is the
    ``independent`` model (trained without a compatibility loss) when given, else the candidate itself.

    Args:
        new: the candidate's ``(user_emb, item_emb)``.
        olds: ancestor version id → its ``(user_emb, item_emb)``; rows are dense ids of the append-only maps, so a
            version made before some ids existed simply has fewer rows.
        train_graph: the training interactions to mask.
        heldout_edge_index: ``(2, T)`` held-out (user, item) pairs.
        ks: cut-offs; ``criterion_metric`` must be one of the ``recall@K`` / ``ndcg@K`` they produce.
        also_masked: further known interactions to mask, e.g. the validation pairs when ``heldout_edge_index`` is
            the test split (the gate itself decides on validation, with the training pairs masked).
        new_new: ``new``'s own figures on these held-out interactions when they were already measured (the same
            vectors ranked with the same masks); measured here when None.

    Returns:
        ``{"metric", "ks", "new_new", "independent_new" (or None), "ancestors": {id: {...}}, "compatible"}``, where
        ``compatible`` is true when the criterion holds against every ancestor. Each ancestor's pairs are measured
        on the ``users`` and ``items`` it holds (the first rows of the id maps), so all three compare the same
        queries on the same gallery; ``new_new`` covers everyone.
    """
    def measure(users: Tensor, items: Tensor, scope: tuple[int, int]) -> dict[str, float]:
        return _retrieval(users, items, train_graph, heldout_edge_index, ks, *scope, also_masked)

    everyone = (train_graph.num_users, train_graph.num_items)
    if new_new is None:
        new_new = measure(*new, everyone)
    if criterion_metric not in new_new:
        raise ValueError(f"criterion_metric {criterion_metric!r} is not among the measured {sorted(new_new)}; "
                         "add its cut-off to ks")
    independent_new = measure(*independent, everyone) if independent is not None else None
    reference = independent_new or new_new
    ancestors = {}
    for version_id, (old_users, old_items) in olds.items():
        # Ids appended after the ancestor have no vector in it: all three pairs are measured on the users and
        # items it holds, so the criterion compares the same queries on the same gallery.
        scope = (min(old_users.size(0), everyone[0]), min(old_items.size(0), everyone[1]))
        old_old = measure(old_users, old_items, scope)
        new_old, old_new = measure(new[0], old_items, scope), measure(old_users, new[1], scope)
        ancestors[version_id] = {
            "users": scope[0], "items": scope[1], "old_old": old_old, "new_old": new_old, "old_new": old_new,
            "criterion": new_old[criterion_metric] > old_old[criterion_metric],
            "reverse_criterion": old_new[criterion_metric] > old_old[criterion_metric],
            "update_gain": {m: _update_gain(new_old[m], old_old[m], reference[m]) for m in new_old},
        }
    return {"metric": criterion_metric, "ks": list(ks), "new_new": new_new, "independent_new": independent_new,
            "ancestors": ancestors, "compatible": all(a["criterion"] for a in ancestors.values())}


def report_markdown(report: dict, new_label: str = "new") -> str:
    """The report's cross-version matrix as a markdown table: rows are the user (query) version, columns the
    item (gallery) version, cells the criterion metric; then one line per ancestor with criterion and gain."""
    metric = report["metric"]
    versions = list(report["ancestors"])
    columns = [new_label, *versions]
    lines = [f"| users \\ items ({metric}) | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    row = [report["new_new"][metric]] + [report["ancestors"][v]["new_old"][metric] for v in versions]
    lines.append(f"| {new_label} | " + " | ".join(f"{x:.4f}" for x in row) + " |")
    for v in versions:
        entry = report["ancestors"][v]
        cells = [f"{entry['old_new'][metric]:.4f}"] + [f"{entry['old_old'][metric]:.4f}" if w == v else "—"
                                                        for w in versions]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    lines.append("")
    for v in versions:
        entry = report["ancestors"][v]
        gain = entry["update_gain"][metric]
        lines.append(f"- {new_label} vs {v}: M(new, old) {'>' if entry['criterion'] else '≤'} M(old, old) "
                     f"({entry['new_old'][metric]:.4f} vs {entry['old_old'][metric]:.4f}), update gain "
                     + ("—" if gain is None else f"{gain:.3f}"))
    lines.append(f"- compatible with every ancestor: {'yes' if report['compatible'] else 'no'}")
    return "\n".join(lines)
