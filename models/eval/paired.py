"""How far one model leads another on the same users, and the noise of that lead: the mean and standard error of
their per-user differences (a paired comparison, which cancels what the users share: two models that both fail
on the hard users differ by less than their separate spreads suggest)."""
from __future__ import annotations

import math

from torch import Tensor


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
