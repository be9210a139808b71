"""The paired lead of one model's per-user figures over another's: mean and standard error of the differences."""
import math

import pytest
import torch

from models.eval.paired import paired_lead


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
