"""The shared training loop on a tiny regression task: early stopping keeps the best weights, a crashed run
resumes to the same result as an uninterrupted one, the time budget stops mid-epoch, and the auxiliary loss hook
adds its term."""
import time

import pytest
import torch
from torch import nn

from models.runtime.loop import Schedule, train_loop

WEIGHTS = torch.tensor([1.0, -2.0, 0.5, 3.0])


class Regression:
    """y = x·w with noise; batches in a random order from the task's generator; dropout draws from torch's
    global generator, so that resume has both streams to restore."""

    metric = "valid_score"

    def __init__(self, scores=None, crash_at_epoch=0, sleep=0.0, vectors=False, validation_sleep=0.0):
        data = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 4, generator=data)
        self.y = self.x @ WEIGHTS + 0.1 * torch.randn(64, generator=data)
        self.model = nn.Sequential(nn.Dropout(0.2), nn.Linear(4, 1))
        self.generator = torch.Generator().manual_seed(1)
        self.scores, self.crash_at_epoch, self.sleep, self.vectors = scores, crash_at_epoch, sleep, vectors
        self.validation_sleep = validation_sleep
        self.epochs_started, self.evaluated = 0, []
        self.validate = self._validate

    def batches(self):
        self.epochs_started += 1
        if self.epochs_started == self.crash_at_epoch:
            raise RuntimeError("simulated crash")
        order = torch.randperm(64, generator=self.generator)
        for start in range(0, 64, 16):
            yield order[start:start + 16], 16

    def loss(self, rows):
        time.sleep(self.sleep)
        prediction = self.model(self.x[rows]).squeeze(1)
        loss = nn.functional.mse_loss(prediction, self.y[rows])
        return loss, ((rows, prediction[:, None], rows, prediction[:, None]) if self.vectors else None)

    def _validate(self):
        time.sleep(self.validation_sleep)
        self.evaluated.append(self.model[1].weight.detach().clone())
        if self.scores is not None:
            return self.scores[len(self.evaluated) - 1]
        return -float(nn.functional.mse_loss(self.model(self.x).squeeze(1), self.y))


def quiet(_):
    pass


def test_early_stopping_keeps_the_best_validated_weights():
    scores = [0.1, 0.5, 0.4, 0.3, 0.2, 0.9]  # best at the second evaluation, then three without gain
    task, record = train_loop(lambda: Regression(scores), Schedule(epochs=6, lr=0.05, seed=0, eval_every=1,
                                                                   patience=3), log=quiet)
    assert record.epochs_run == 5 and record.best_epoch == 2 and record.best_score == 0.5
    assert [row.get("valid_score") for row in record.history] == [0.1, 0.5, 0.4, 0.3, 0.2]
    assert torch.equal(task.model[1].weight, task.evaluated[1])  # the weights validated at epoch 2
    assert record.steps == 5 * 4 and record.metric == "valid_score"


def test_eval_every_zero_validates_after_the_last_epoch_only_and_learns():
    _, record = train_loop(lambda: Regression(), Schedule(epochs=20, lr=0.05, seed=0), log=quiet)
    assert [row["epoch"] for row in record.history if "valid_score" in row] == [20]
    assert record.history[-1]["loss"] < record.history[0]["loss"] / 4
    assert record.best_epoch == 20 and record.best_score > -1.0  # from a mean squared error of about 15


def test_a_crashed_run_resumes_to_the_same_result_as_an_uninterrupted_one(tmp_path):
    # Learning-rate decay and early stopping are in play, so their state must survive the crash too.
    schedule = Schedule(epochs=12, lr=0.05, seed=0, eval_every=2, patience=4, lr_decay=0.5, lr_decay_patience=0)
    full_task, full = train_loop(lambda: Regression(), schedule, identity={"fingerprint": "a"},
                                 checkpoint=tmp_path / "full.pt", log=quiet)

    checkpoint = tmp_path / "crashed.pt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_loop(lambda: Regression(crash_at_epoch=6), schedule, identity={"fingerprint": "a"},
                   checkpoint=checkpoint, log=quiet)
    lines = []
    task, resumed = train_loop(lambda: Regression(), schedule, identity={"fingerprint": "a"}, checkpoint=checkpoint,
                               log=lines.append)
    assert resumed.resumed_from_epoch == 5 and any("resumed from" in line for line in lines)
    assert [row["loss"] for row in resumed.history] == [row["loss"] for row in full.history]
    assert [row.get("lr") for row in resumed.history] == [row.get("lr") for row in full.history]
    assert (resumed.best_epoch, resumed.epochs_run) == (full.best_epoch, full.epochs_run)
    assert torch.equal(task.model[1].weight, full_task.model[1].weight)

    # A checkpoint written for other data is not resumed.
    lines = []
    _, fresh = train_loop(lambda: Regression(), schedule, identity={"fingerprint": "b"}, checkpoint=checkpoint,
                          log=lines.append)
    assert fresh.resumed_from_epoch == 0 and any("ignoring checkpoint" in line for line in lines)


def test_the_time_budget_stops_mid_epoch_and_validates_what_it_has():
    _, record = train_loop(lambda: Regression(sleep=0.02), Schedule(epochs=50, lr=0.05, seed=0,
                                                                      max_train_seconds=0.05), log=quiet)
    assert record.epochs_run == 1 and 1 <= record.steps < 4  # four batches an epoch; the budget ends the first
    assert "valid_score" in record.history[-1] and record.best_epoch == 1


def test_validations_count_against_the_time_budget():
    # Each validation takes longer than the budget: the first one spends it, and the run stops after it, where a
    # budget of training steps alone would run all ten epochs (their 40 steps take well under 0.5 s).
    task, record = train_loop(lambda: Regression(validation_sleep=0.6),
                              Schedule(epochs=10, lr=0.05, seed=0, eval_every=1, max_train_seconds=0.5), log=quiet)
    assert record.epochs_run == 1 and record.steps == 4 and len(task.evaluated) == 1
    assert record.best_epoch == 1 and record.seconds < 0.5
    # Without validations the same budget lets all ten epochs run.
    _, unvalidated = train_loop(lambda: Regression(validation_sleep=0.6),
                                Schedule(epochs=10, lr=0.05, seed=0, eval_every=20, max_train_seconds=0.5), log=quiet)
    assert unvalidated.epochs_run == 10 and unvalidated.steps == 40


def test_the_auxiliary_loss_is_added_to_each_batch_loss_of_tasks_that_give_vectors():
    schedule = Schedule(epochs=1, lr=0.0, seed=0)  # lr 0: the same weights with and without the hook
    _, plain = train_loop(lambda: Regression(vectors=True), schedule, log=quiet)
    _, hooked = train_loop(lambda: Regression(vectors=True), schedule, log=quiet,
                           auxiliary_loss=lambda users, user_vec, items, item_vec: torch.tensor(5.0))
    assert hooked.history[0]["loss"] == pytest.approx(plain.history[0]["loss"] + 5.0)
    _, ignored = train_loop(lambda: Regression(vectors=False), schedule, log=quiet,
                            auxiliary_loss=lambda *vectors: torch.tensor(5.0))
    assert ignored.history[0]["loss"] == pytest.approx(plain.history[0]["loss"])


def test_schedule_reads_the_fields_a_family_config_names_alike():
    from models.recsys.shadow import ShadowRecConfig

    schedule = Schedule.of(ShadowRecConfig(epochs=3, lr=0.1, seed=4, max_train_seconds=9.0))
    assert schedule == Schedule(epochs=3, lr=0.1, seed=4, eval_every=0, patience=10, max_train_seconds=9.0)
    assert schedule.evaluates(3, False) and not schedule.evaluates(2, False) and schedule.evaluates(2, True)
