"""How far one model leads another on the same users, and how far leads go by the noise of the users drawn.

The lead is the mean of the per-user differences and its noise their standard error (a paired comparison, which
cancels what the users share: two models that both fail on the hard users differ by less than their separate
spreads suggest). When several leads are tested at once, :func:`noise_threshold` says how many standard errors the
largest of them reaches by noise alone, so that the chance of any lead counting by noise stays at the level asked
for, not that level per lead.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

# Resamples of the validation users behind a threshold, and their seed (a check must give the same verdict twice).
RESAMPLES = 2000
SEED = 0


def paired_lead(theirs: Tensor, ours: Tensor, scale: float = 1.0) -> tuple[float, float]:
    """Mean and standard error of ``scale · theirs − ours`` over users (both ``(U,)``, aligned; U ≥ 1).

    The mean is ``scale`` times their figure minus ours; the standard error is the per-user differences' sample
    standard deviation over ``√U`` (0 for a single user). Raises ``ValueError`` for unaligned or empty inputs.
    """
    if theirs.shape != ours.shape or theirs.dim() != 1 or theirs.numel() == 0:
        raise ValueError(f"paired_lead needs two aligned, non-empty per-user vectors; got shapes "
                         f"{tuple(theirs.shape)} and {tuple(ours.shape)}")
    difference = scale * theirs.double() - ours.double()
    users = difference.numel()
    spread = float(difference.std(correction=1)) if users > 1 else 0.0
    return float(difference.mean()), spread / math.sqrt(users)


def noise_threshold(differences: Tensor, level: float, resamples: int = RESAMPLES, seed: int = SEED) -> float:
    """How many standard errors the largest of several leads reaches by the users' noise alone, with chance
    ``level``: the ``1 − level`` quantile, over resamples of the users with replacement, of the largest column's
    mean of ``differences`` (``(U, T)``: per-user differences, one column per lead) less its observed mean, over
    its standard error.

    A lead above this many of its standard errors counts, and then the chance that any lead with nothing behind it
    counts is at most about ``level`` (Westfall and Young's single-step max-T), whatever the columns share: a
    duplicated column costs nothing, and Recall@K and NDCG@K of one model, which move together, cost less than two
    independent leads. A column without spread (beyond rounding) has no noise and is left out; with none left the
    threshold is 0.
    Written here because scipy's ``bootstrap`` gives one statistic's interval, not the maximum over correlated
    ones, and a correction that ignores the correlation (Bonferroni, Holm) would demand as much of seventeen copies
    of one lead as of seventeen models.
    """
    if differences.dim() != 2 or differences.shape[0] == 0:
        raise ValueError(f"noise_threshold needs per-user differences of shape (users, leads) with users ≥ 1; "
                         f"got {tuple(differences.shape)}")
    if not 0 < level < 1:
        raise ValueError(f"noise_threshold needs a level in (0, 1); got {level}")
    users = differences.shape[0]
    values = differences.double()
    spread = values.std(0, correction=1) if users > 1 else torch.zeros(values.shape[1], dtype=torch.float64)
    # A spread within float32 rounding of the figures (per-user figures are saved as float32) is a constant
    # difference: noiseless, where dividing by it would blow rounding up into standard errors.
    noisy = spread > 1e-6 * values.abs().amax(0)
    errors = spread / math.sqrt(users)
    if not noisy.any():
        return 0.0
    # Each user's centred difference in standard errors of the mean: a resample's mean of these is its statistic.
    centred = (values[:, noisy] - values[:, noisy].mean(0)) / errors[noisy]
    generator = torch.Generator().manual_seed(seed)
    chunk = max(1, 2 ** 22 // users)  # resamples at a time: their counts take 32 MiB
    maxima = []
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        picks = torch.randint(users, (rows, users), generator=generator)
        counts = torch.zeros(rows, users, dtype=torch.float64).scatter_add_(
            1, picks, torch.ones(rows, users, dtype=torch.float64))
        maxima.append((counts @ centred / users).amax(1))
    return float(torch.quantile(torch.cat(maxima), 1 - level))
