"""Aggregation of the protocol's per-seed results: the mean test loss per raw degree over seeds."""

import pytest

from models.nodeclf.rawls_protocol import RunResult, mean_group_loss


def _run(seed: int, group_loss: dict[int, float]) -> RunResult:
    return RunResult(seed=seed, accuracy=80.0, bias=0.1, group_loss=group_loss, seconds=1.0)


def test_mean_group_loss_averages_each_degree_over_the_seeds_that_have_it():
    runs = [_run(0, {3: 0.5, 1: 1.0}), _run(1, {1: 2.0, 3: 0.25}), _run(2, {1: 3.0, 7: 0.1})]
    curve = mean_group_loss(runs)
    assert list(curve) == [1, 3, 7]  # degrees ascending, ready to plot
    assert curve == pytest.approx({1: 2.0, 3: 0.375, 7: 0.1})
    assert mean_group_loss([]) == {}
