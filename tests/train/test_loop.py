"""The loop's basics on LeNet: a step changes the weights, the loss falls on a fixed batch, batches
follow the seed, eval does not disturb the training RNG."""
import torch

from fastcnn.train import loop
from fastcnn.train.distributed import World
from fastcnn.train.recipes.classify import LeNetTask
from fastcnn.train.task import Settings


def _task(**kw):
    torch.manual_seed(0)
    return LeNetTask(Settings(batch_size=32, steps=20, **kw))


def test_one_step_changes_every_parameter():
    task = _task()
    before = {k: v.clone() for k, v in task.nets["model"].state_dict().items()}
    x, y = task.train_set[:32]
    task.train_mode(True)
    task.step([x, y], 0)
    after = task.nets["model"].state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)


def test_loss_goes_down_on_a_fixed_batch():
    torch.manual_seed(0)
    task = LeNetTask(Settings(batch_size=32, steps=200, dropout=0.0))
    x, y = task.train_set[:32]
    task.train_mode(True)
    losses = [task.step([x, y], i)["loss"] for i in range(28)]
    assert all(b < a for a, b in zip(losses[:20], losses[1:20])) and losses[-1] < 0.7 * losses[0]


def test_batches_are_a_function_of_seed_and_epoch():
    a = loop.epoch_batches(100, 10, seed=1, epoch=2, world=World())
    assert a == loop.epoch_batches(100, 10, seed=1, epoch=2, world=World())
    assert a != loop.epoch_batches(100, 10, seed=1, epoch=3, world=World())
    assert sorted(i for b in a for i in b) == list(range(100))
    halves = [loop.epoch_batches(100, 10, 1, 2, World(r, 2)) for r in range(2)]
    assert [sorted(h0 + h1) for h0, h1 in zip(*halves)] == [sorted(b) for b in a]


def test_evaluation_leaves_the_training_rng_alone():
    task = _task()
    state = torch.get_rng_state()
    loop.evaluate(task)
    assert torch.equal(state, torch.get_rng_state())


def test_the_loss_uses_fastcnn_ops(monkeypatch):
    from fastcnn import ops
    calls = []
    real = ops.cross_entropy
    monkeypatch.setattr(ops, "cross_entropy", lambda *a, **k: calls.append(1) or real(*a, **k))
    task = _task()
    task.step(task.train_set[:8], 0)
    assert calls == [1]
