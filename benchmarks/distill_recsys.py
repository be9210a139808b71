"""A graph-free student against its LightGCN teacher: Recall@20 on warm, cold-start (≤ 3 training interactions) and
new users (whom the teacher never saw), and users scored per second, on the same CPU.

    python -m benchmarks.distill_recsys --dataset {gowalla,movielens} [--teacher-minutes M] [--json FILE]

Protocol (seeded, see ``hold_out_users``): new users have no edge in the graph both models train on, and
``--cold-items`` of their interactions are known at serving time, from which the student embeds them and LightGCN
folds them in (``models.recsys.foldin``: the trained layer-0 table propagated over the training graph plus the new
users' known edges, no gradient step; ``--fold-in-init`` sets their layer-0 vector): a ``--new-share`` of the users
with training items, and the users a temporal split leaves without training items. ``--cold-share`` of the users
become cold users (training edges cut to ``--cold-items``). Cold users are all users with 1–3 training interactions
after that (MovieLens' temporal split has some of its own). Every figure comes from
``models.eval.ranking.evaluate_full_ranking`` with the known interactions and the validation interactions masked.
Nothing is chosen on test: the teacher stops early on validation Recall@20; the other settings are fixed in advance.
MovieLens is split leave-last-out by default (every user's last rating is a test item), so that every user is
evaluated; ``--split temporal`` cuts at a global time instead, which leaves few warm test users in ml-latest-small.

Speed, for requests of ``--request-sizes`` users, each path from what it stores to the top 20 items, the same thread
count, ``--repeats`` timings of at least ``--min-seconds`` each in this process (min, median, max): known users are
served by LightGCN from precomputed vectors and by the student's user tower on their interactions; new users by
LightGCN fold-in (an exact fold-in re-propagates the augmented graph per request) and by the student's tower. A
separate row times LightGCN re-propagating the whole graph per request, the path of no real deployment, kept for
comparison with earlier figures. The keys without a prefix are requests of one user (online serving).
"""
from __future__ import annotations

import argparse

import torch

from benchmarks.common import (
    SMOKE_DATASET,
    add_smoke_argument,
    apply_smoke,
    format_spread,
    load_dataset_with_items,
    peak_rss_mb,
    print_table,
    spread,
    write_json,
)
from models.eval.ranking import evaluate_full_ranking, user_csr
from models.graph.bipartite import BipartiteGraph
from models.recsys.foldin import FOLD_IN_INITS, fold_in_users
from models.recsys.serving import (
    fold_in_scorer,
    precomputed_scorer,
    propagation_scorer,
    student_scorer,
    users_per_second,
)
from models.recsys.student import (
    RecStudentConfig,
    student_vectors,
    train_feature_student,
)
from models.recsys.training import LightGCNConfig, train_lightgcn
from warehouse.features import interaction_matrix, serving_features

COLD_MAX = 3


def _first_per_user(users: torch.Tensor, count: int, num_users: int, generator: torch.Generator) -> torch.Tensor:
    """A mask over edges that keeps a random ``count`` edges of each user (edges given by their user)."""
    order = torch.argsort(users * users.numel() + torch.randperm(users.numel(), generator=generator))
    degree = torch.bincount(users, minlength=num_users)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(users.numel()) - (torch.cumsum(degree, 0) - degree)[users[order]]
    return rank < count


def hold_out_users(graph: BipartiteGraph, test: torch.Tensor, new_share: float, cold_share: float, cold_items: int,
                   seed: int) -> tuple[BipartiteGraph, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(training graph, test edges, new users' serving edges, new users) of the cold-start protocol.

    New users have no edge in the training graph; a random ``cold_items`` of their interactions are known at
    serving time: ``new_share`` of the users with more than ``cold_items`` training edges (their other training
    edges are dropped), and every user without training edges but with more than ``cold_items`` test edges (those
    move from test to serving). ``cold_share`` of the users keep only ``cold_items`` training edges.
    """
    generator = torch.Generator().manual_seed(seed)
    degree = graph.user_degree()
    active = torch.nonzero(degree > cold_items).flatten()
    shuffled = active[torch.randperm(active.numel(), generator=generator)]
    num_new, num_cold = int(new_share * active.numel()), int(cold_share * active.numel())
    held, cut = (torch.zeros(graph.num_users, dtype=torch.bool) for _ in range(2))
    held[shuffled[:num_new]], cut[shuffled[num_new:num_new + num_cold]] = True, True
    users = graph.edge_index[0]
    kept = _first_per_user(users, cold_items, graph.num_users, generator)
    train = graph.edge_index[:, ~held[users] & (~cut[users] | kept)]
    arrived = (degree == 0) & (torch.bincount(test[0], minlength=graph.num_users) > cold_items)
    known_test = arrived[test[0]] & _first_per_user(test[0], cold_items, graph.num_users, generator)
    serving = torch.cat([graph.edge_index[:, held[users] & kept], test[:, known_test]], dim=1)
    new_users = torch.nonzero(held | arrived).flatten()
    return BipartiteGraph(train, graph.num_users, graph.num_items), test[:, ~known_test], serving, new_users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["gowalla", "movielens"], default="movielens")
    parser.add_argument("--teacher-minutes", type=float, default=10.0, help="wall-clock budget of teacher training")
    parser.add_argument("--teacher-batch", type=int, default=8192)
    parser.add_argument("--teacher-lr", type=float, default=0.01)
    parser.add_argument("--teacher-epochs", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--student-epochs", type=int, default=RecStudentConfig.epochs)
    parser.add_argument("--student-batch", type=int, default=RecStudentConfig.batch_size, help="users per step")
    parser.add_argument("--new-share", type=float, default=0.05)
    parser.add_argument("--cold-share", type=float, default=0.10)
    parser.add_argument("--cold-items", type=int, default=COLD_MAX)
    parser.add_argument("--fold-in-init", choices=FOLD_IN_INITS, default="mean",
                        help="new users' layer-0 vector in LightGCN fold-in (see models.recsys.foldin)")
    parser.add_argument("--request-sizes", nargs="+", type=int, default=[1, 16, 256], help="users per timed request")
    parser.add_argument("--repeats", type=int, default=3, help="timings per path and request size (at least 3)")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="each timing spans at least this long")
    parser.add_argument("--split", choices=["leave_last_out", "temporal"], default="leave_last_out",
                        help="split of a timestamped source (MovieLens); Gowalla keeps its given split")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--json", default=None)
    add_smoke_argument(parser)
    args = apply_smoke(parser.parse_args(), dataset=SMOKE_DATASET, teacher_minutes=1.0, teacher_epochs=2,
                       teacher_batch=1024, eval_every=1, student_epochs=2, request_sizes=[1],
                       min_seconds=0.05)
    torch.set_num_threads(args.threads)

    full, valid, test, items = load_dataset_with_items(args.dataset, valid_fraction=0.1, seed=args.seed,
                                                     mode=args.split)
    graph, test, serving_edges, new_users = hold_out_users(full, test, args.new_share, args.cold_share,
                                                         args.cold_items, args.seed)
    is_new = torch.zeros(full.num_users, dtype=torch.bool)
    is_new[new_users] = True
    # Every user's validation interactions precede the test period: masked at test like the training ones.
    valid_masked = valid
    valid = valid[:, ~is_new[valid[0]]]
    print(f"{args.dataset}: {graph.num_users} users, {graph.num_items} items, {graph.num_edges} training edges, "
          f"{new_users.numel()} new users", flush=True)

    teacher_config = LightGCNConfig(batch_size=args.teacher_batch, lr=args.teacher_lr, epochs=args.teacher_epochs,
                                    eval_every=args.eval_every, seed=args.seed,
                                    max_train_seconds=60 * args.teacher_minutes)
    teacher = train_lightgcn(graph, valid, teacher_config, "cpu", log=lambda m: print(m, flush=True))

    # Serving-time inputs: the training graph plus the new users' few interactions (the teacher never saw them).
    known = torch.cat([graph.edge_index, serving_edges], dim=1)
    train_matrix = interaction_matrix(*graph.edge_index.numpy(), graph.num_users, graph.num_items)
    known_matrix = interaction_matrix(*known.numpy(), graph.num_users, graph.num_items)
    item_x, user_x = (torch.from_numpy(a) for a in serving_features(items, train_matrix, known_matrix))
    indptr, bag_items = user_csr(graph.edge_index, graph.num_users)
    student_config = RecStudentConfig(epochs=args.student_epochs, batch_size=args.student_batch, seed=args.seed)
    student = train_feature_student(item_x, user_x, indptr, bag_items, teacher.user_emb, teacher.item_emb,
                                    student_config, log=lambda m: print(m, flush=True))
    known_indptr, known_items = user_csr(known, graph.num_users)
    student_user, student_item = student_vectors(student.model, known_indptr, known_items, user_x)

    # The teacher never saw the new users: their rows are folded in from their known interactions.
    teacher_user = teacher.user_emb.clone()
    teacher_user[new_users] = fold_in_users(teacher.layer0, graph, serving_edges, new_users,
                                            teacher_config.num_layers, args.fold_in_init)

    known_graph = BipartiteGraph(known, graph.num_users, graph.num_items)
    degree = graph.user_degree()
    results: dict[str, float] = {}
    rows = []
    for model, (user_emb, item_emb) in {"teacher": (teacher_user, teacher.item_emb),
                                        "student": (student_user, student_item)}.items():
        ranking = evaluate_full_ranking(user_emb, item_emb, known_graph, test, ks=(20,), also_masked=valid_masked)
        recall, users = ranking.recall[20], ranking.users
        groups = {"": (degree[users] > COLD_MAX) & ~is_new[users],
                  "cold.": (degree[users] >= 1) & (degree[users] <= COLD_MAX),
                  "new.": is_new[users]}
        for prefix, mask in groups.items():
            results[f"{prefix}{model}.recall@20"] = float(recall[mask].mean())
            results[f"{prefix}users"] = int(mask.sum())
    results["student_over_teacher"] = results["student.recall@20"] / results["teacher.recall@20"]

    # Speed: each path from what it stores to the top 20 items, for requests of several sizes.
    test_users = torch.unique(test[0])
    known_users, new_test_users = test_users[~is_new[test_users]], test_users[is_new[test_users]]
    serving_indptr, serving_items = user_csr(serving_edges, graph.num_users)
    student_batch = student_scorer(student.model, known_indptr, known_items, user_x, student_item)
    paths = {  # path: (users, {model: scorer})
        "known": (known_users, {"teacher": precomputed_scorer(teacher.user_emb, teacher.item_emb),
                                "student": student_batch}),
        "new": (new_test_users, {"teacher": fold_in_scorer(teacher.layer0, graph, serving_indptr, serving_items,
                                                           teacher.item_emb, teacher_config.num_layers,
                                                           init=args.fold_in_init),
                                 "student": student_batch}),
        "repropagate": (known_users, {"teacher": propagation_scorer(known_graph, teacher_config.embedding_dim,
                                                                    teacher_config.num_layers),
                                      "student": student_batch}),
    }
    labels = {"known": "known users: LightGCN precomputed vectors vs student tower",
              "new": f"new users: LightGCN fold-in ({args.fold_in_init} init) vs student tower",
              "repropagate": "separate: LightGCN full re-propagation per request (no deployment serves this way)"}
    speed_rows = []
    for path, (users, scorers) in paths.items():
        for size in args.request_sizes:
            if users.numel() < size:
                continue
            prefix = ("" if path == "known" else f"{path}.") + ("" if size == 1 else f"batch{size}.")
            runs = {model: [users_per_second(scorer, users, size, min_seconds=args.min_seconds)
                            for _ in range(args.repeats)] for model, scorer in scorers.items()}
            for model, rates in runs.items():
                results.update({f"{prefix}{model}.users_per_second.{stat}": value
                                for stat, value in spread(rates).items()})
                results[f"{prefix}{model}.users_per_second"] = spread(rates)["median"]
            results[f"{prefix}speedup"] = (results[f"{prefix}student.users_per_second"]
                                           / results[f"{prefix}teacher.users_per_second"])
            speed_rows.append([labels[path], size, format_spread(runs["teacher"]), format_spread(runs["student"]),
                               results[f"{prefix}speedup"]])
    results.update({"teacher.train_seconds": teacher.train_seconds, "teacher.epochs": teacher.epochs_run,
                    "teacher.best_epoch": teacher.best_epoch, "student.train_seconds": student.record.seconds,
                    "threads": torch.get_num_threads(), "peak_rss_mb": peak_rss_mb()})
    for group, label in (("", "warm"), ("cold.", f"cold (1–{COLD_MAX} training items)"), ("new.", "new (unseen)")):
        rows.append([label, results[f"{group}users"], results[f"{group}teacher.recall@20"],
                     results[f"{group}student.recall@20"]])
    print_table(f"{args.dataset}: test Recall@20 by user group", ["users", "count", "teacher", "student"], rows)
    print_table(f"{args.dataset}: users scored per second (all items, top 20; {torch.get_num_threads()} threads; "
                f"median (min–max) of {args.repeats} timings in this process)",
                ["path", "users per request", "teacher (LightGCN)", "student (feature MLP)",
                 "student / teacher (medians)"], speed_rows)
    print_table("training seconds", ["teacher", "student"],
                [[results["teacher.train_seconds"], results["student.train_seconds"]]])
    print(f"\nstudent/teacher warm Recall@20: {results['student_over_teacher']:.3f}; one-user requests of known users: "
          f"student/teacher {results.get('speedup', float('nan')):.2f}× (medians)")
    results["protocol"] = vars(args)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
