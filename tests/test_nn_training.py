"""lorsa.nn training at MovieLens scale: per-row coordinate scales, size-grouped mini-batches, early stopping."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lorsa.nn import NetworkLRS, ParameterSpace, make_mlp  # noqa: E402
from lorsa.nn.baselines import FullFineTuning  # noqa: E402
from lorsa.nn.pursuit import _coordinate_scales  # noqa: E402
from lorsa.nn.training import task_batches  # noqa: E402

# torch pinned to one thread in every test here (same float path on any machine): the fixture in conftest.py
pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("outputs", [1, 3])
def test_coordinate_scales_equal_a_loop_over_tasks_and_rows(outputs):
    """The batched per-row Jacobians give, for every task, the RMS over its real rows of d f / d theta_j summed
    over outputs, as a loop over tasks taking the full Jacobian of each task's outputs does (float64); row chunks
    (a small ``max_elements``) change nothing but the summation order."""
    net = make_mlp(4, (5, 3), n_outputs=outputs, seed=0, dtype="float64")
    space = ParameterSpace.from_module(net)
    n, m = 4, 9
    gen = torch.Generator().manual_seed(1)
    thetas = space.flatten(net) + 0.2 * torch.randn(n, space.size, generator=gen, dtype=torch.float64)
    X = torch.randn(n, m, 4, generator=gen, dtype=torch.float64)
    mask = torch.ones(n, m, dtype=torch.bool)
    mask[0, 5:] = False
    mask[2, 1:] = False
    X = X * mask[..., None]
    counts = mask.sum(1).to(torch.float64)
    loss = "mse" if outputs == 1 else "cross_entropy"
    batched = _coordinate_scales(net, space, thetas, X, mask, counts, loss)
    chunked = _coordinate_scales(net, space, thetas, X, mask, counts, loss, max_elements=2 * n * space.size)
    for i in range(n):
        rows = X[i, mask[i]]
        jac = torch.autograd.functional.jacobian(
            lambda th, rows=rows: torch.func.functional_call(net, space.unflatten(th), (rows,)), thetas[i])
        expected = (jac.reshape(-1, space.size) ** 2).sum(0).div(rows.shape[0]).sqrt().clamp(min=1e-12)
        # the same products summed in another order: float64 round-off only
        torch.testing.assert_close(batched[i], expected, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(chunked[i], expected, rtol=1e-12, atol=1e-14)


def test_size_grouped_batches_cover_every_task_once_with_little_padding():
    rng = np.random.default_rng(0)
    counts = np.exp(rng.normal(4.5, 1.0, size=200)).astype(int) + 20     # skewed, as MovieLens tasks are
    batches = task_batches(200, 16, np.random.default_rng(1), counts)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(200))
    padded = sum(len(b) * counts[b].max() for b in batches)
    plain = sum(len(b) * counts[b].max() for b in task_batches(200, 16, np.random.default_rng(1)))
    assert padded < 0.5 * plain            # measured 0.38 of the plain random batches' padded rows here
    assert padded < 1.25 * counts.sum()    # sorted groups: padding 16 % of the real rows here (the largest
    #                                        tasks are few and far apart, so their batch pads most)
    # equal row counts: exactly the plain random order (so equal-size experiments are unchanged)
    same = task_batches(50, 8, np.random.default_rng(3), np.full(50, 7))
    plain_same = task_batches(50, 8, np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(same, plain_same, strict=True))


def _tasks(t=16, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(4, 30, size=t)
    tasks = np.repeat(np.arange(t), counts)
    X = rng.normal(size=(tasks.size, 3))
    y = np.tanh(X @ rng.normal(size=3)) + rng.normal(size=t)[tasks] + 0.3 * rng.normal(size=tasks.size)
    hold = rng.random(tasks.size) < 0.25
    return (X[~hold], y[~hold], tasks[~hold]), (X[hold], y[hold], tasks[hold])


def _held_out_mse(est, held):
    return 0.5 * float(np.mean((est.predict(held[0], held[2]) - held[1]) ** 2))


@pytest.mark.parametrize("cls", [NetworkLRS, FullFineTuning])
def test_early_stopping_keeps_the_best_epoch(cls):
    train, held = _tasks()
    kw = dict(n_epochs=8, pretrain_epochs=3, task_batch_size=4, random_state=0, dtype="float64")
    est = cls(make_mlp(3, (6, 6), seed=0, dtype="float64"), **kw).fit(*train, eval_set=held)
    assert len(est.eval_history_) == 8 + 1                       # after pre-training, then every epoch
    assert est.best_epoch_ == int(np.argmin(est.eval_history_))
    # the kept model is the best epoch's: its held-out loss is the minimum recorded (float64 round-off only)
    assert _held_out_mse(est, held) == pytest.approx(min(est.eval_history_), rel=1e-10)
    stopped = cls(make_mlp(3, (6, 6), seed=0, dtype="float64"), **kw).fit(*train, eval_set=held, patience=1)
    assert len(stopped.eval_history_) <= len(est.eval_history_)
    assert stopped.eval_history_ == est.eval_history_[:len(stopped.eval_history_)]   # same seed, same path
    assert len(stopped.eval_history_) - 1 - stopped.best_epoch_ <= 1
    again = cls(make_mlp(3, (6, 6), seed=0, dtype="float64"), **kw).fit(*train, eval_set=held, patience=1)
    assert torch.equal(again.theta0_, stopped.theta0_)
    np.testing.assert_array_equal(again.predict(held[0], held[2]), stopped.predict(held[0], held[2]))


def test_early_stopping_bad_input_names_the_argument():
    train, held = _tasks()
    est = NetworkLRS(make_mlp(3, (4, 4), seed=0), n_epochs=1, pretrain_epochs=1)
    with pytest.raises(ValueError, match="patience needs eval_set"):
        est.fit(*train, patience=2)
    with pytest.raises(ValueError, match="patience"):
        est.fit(*train, eval_set=held, patience=0)
    with pytest.raises(ValueError, match="eval_set must be a tuple"):
        est.fit(*train, eval_set=held[:2])
    with pytest.raises(ValueError, match="eval_set tasks"):
        est.fit(*train, eval_set=(held[0], held[1], held[2] + 1000))
