"""LLP's relational distillation (Guo et al., ICML 2023; EHDM reuses them): context sets around anchor nodes,
distribution matching (LLP-D) and rank matching (LLP-R) of student scores against teacher scores.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def random_walk_context(indptr: Tensor, indices: Tensor, anchors: Tensor, walks: int = 3, hops: int = 2,
                        num_random: int = 6, num_nodes: int | None = None,
                        generator: torch.Generator | None = None) -> Tensor:
    """Context nodes of each anchor: the nodes visited by ``walks`` random walks of ``hops`` steps ("nearby") and
    ``num_random`` uniform nodes, from a CSR graph (``indptr``, ``indices``).

    A walk that reaches a node without neighbours stays there. Vectorized over anchors (no per-node loop).

    Shapes:
        anchors: ``(A,)``; output: ``(A, walks * hops + num_random)`` node indices.
    """
    num_nodes = num_nodes or indptr.numel() - 1
    degree = indptr[1:] - indptr[:-1]
    current = anchors.repeat_interleave(walks)
    visited = []
    for _ in range(hops):
        offsets = (torch.rand(current.numel(), generator=generator) * degree[current]).long()
        step = indices[(indptr[current] + offsets).clamp(max=max(indices.numel() - 1, 0))]
        current = torch.where(degree[current] > 0, step, current)
        visited.append(current.view(-1, walks))
    nearby = torch.cat(visited, dim=1)
    negatives = torch.randint(num_nodes, (anchors.numel(), num_random), generator=generator)
    return torch.cat([nearby, negatives], dim=1)


def llp_distribution_loss(student: Tensor, teacher: Tensor, temperature: float = 1.0) -> Tensor:
    """LLP-D: ``KL(softmax(t/T) ‖ softmax(s/T)) · T²`` over each anchor's context set, averaged over anchors.

    Shapes:
        student, teacher: ``(A, C)`` scores of each anchor's ``C`` context nodes.
    """
    log_student = F.log_softmax(student / temperature, dim=1)
    log_teacher = F.log_softmax(teacher / temperature, dim=1)
    return F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean") * temperature ** 2


def llp_rank_loss(student: Tensor, teacher: Tensor, margin: float = 0.1) -> Tensor:
    """LLP-R: for every pair (i, j) of an anchor's context, ``r = sign(t_i − t_j)`` when ``|t_i − t_j| > margin``
    (else 0) and the loss ``max(0, −r (s_i − s_j) + margin)`` on pairs with ``r ≠ 0``, averaged.

    Shapes:
        student, teacher: ``(A, C)``.
    """
    teacher_gap = teacher.unsqueeze(2) - teacher.unsqueeze(1)
    target = torch.where(teacher_gap > margin, 1.0, torch.where(teacher_gap < -margin, -1.0, 0.0))
    student_gap = student.unsqueeze(2) - student.unsqueeze(1)
    losses = torch.relu(-target * student_gap + margin)
    ranked = target != 0
    return losses[ranked].mean() if ranked.any() else student.sum() * 0.0
