"""The paired lead of one model's per-user figures over another's (mean and standard error of the differences), and
how many standard errors the largest of several leads reaches by the users' noise alone."""
import math

import pytest
import torch

from models.eval.paired import noise_threshold, paired_lead


def test_the_lead_and_its_standard_error_are_those_of_the_per_user_differences():
    theirs, ours = torch.tensor([1.0, 0.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 1.0, 0.0])
    lead, error = paired_lead(theirs, ours)  # differences 1, 0, 0, 1
    assert lead == pytest.approx(0.5) and error == pytest.approx(math.sqrt(1 / 3) / 2)
    lead, error = paired_lead(theirs, ours, scale=2.0)  # differences 2, 0, 1, 2
    assert lead == pytest.approx(1.25) and error == pytest.approx(math.sqrt(2.75 / 3) / 2)
    # What the users share cancels: a model one better for every user leads by exactly 1, with no noise.
    assert paired_lead(ours + 1, ours) == pytest.approx((1.0, 0.0))
    assert paired_lead(torch.tensor([0.3]), torch.tensor([0.1])) == pytest.approx((0.2, 0.0))


def test_unaligned_or_empty_figures_are_refused():
    with pytest.raises(ValueError, match=r"aligned, non-empty per-user vectors; got shapes \(3,\) and \(2,\)"):
        paired_lead(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="non-empty"):
        paired_lead(torch.zeros(0), torch.zeros(0))



def _normal_users(users: int, leads: int, seed: int) -> torch.Tensor:
    return torch.randn(users, leads, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_one_lead_s_threshold_is_the_normal_quantile():
    # A mean of 2,000 users' differences is close to normal: 5% of resamples lie 1.645 standard errors above it.
    assert noise_threshold(_normal_users(2000, 1, 0), 0.05) == pytest.approx(1.645, abs=0.08)
    assert noise_threshold(_normal_users(2000, 1, 0), 0.01) == pytest.approx(2.326, abs=0.12)


def test_the_largest_of_independent_leads_needs_more_standard_errors():
    # The largest of ten independent normal leads passes c with chance 1 - Φ(c)^10 = 5% at c = 2.57.
    assert noise_threshold(_normal_users(2000, 10, 1), 0.05) == pytest.approx(2.568, abs=0.12)


def test_a_copied_lead_costs_nothing_and_a_lead_without_noise_is_left_out():
    one = _normal_users(500, 1, 2)
    alone = noise_threshold(one, 0.05)
    # The same resamples (same seed): the largest of three copies (one scaled and shifted, which standard errors
    # undo) is the copy itself, to rounding.
    assert noise_threshold(torch.cat([one, one, 2 * one + 0.3], 1), 0.05) == pytest.approx(alone, rel=1e-12)
    assert noise_threshold(torch.cat([one, torch.full((500, 1), 0.2)], 1), 0.05) == pytest.approx(alone, rel=1e-12)
    assert noise_threshold(torch.full((500, 2), 0.2), 0.05) == 0.0  # nothing noisy at all
    assert noise_threshold(torch.tensor([[0.3, -0.1]]), 0.05) == 0.0  # one user: no spread


def test_bad_differences_or_levels_are_refused():
    with pytest.raises(ValueError, match=r"shape \(users, leads\) with users ≥ 1; got \(5,\)"):
        noise_threshold(torch.zeros(5), 0.05)
    with pytest.raises(ValueError, match=r"level in \(0, 1\); got 1.0"):
        noise_threshold(torch.zeros(5, 2), 1.0)
