"""lorsa.nn: batched per-task gradients, k-sparsity, determinism, model file, bad input (SPEC §9)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from lorsa import ModelFileError  # noqa: E402
from lorsa.nn import NetworkLRS, ParameterSpace, make_mlp  # noqa: E402
from lorsa.nn.adapter import LRSAdapter, scatter_sparse  # noqa: E402
from lorsa.nn.functional import batched_forward  # noqa: E402
from lorsa.nn.objective import task_losses  # noqa: E402
from lorsa.nn.task_data import TaskRows  # noqa: E402
from lorsa.nn.training import TaskState, TrainConfig, task_step  # noqa: E402

# torch pinned to one thread in every test here (same float path on any machine): the fixture in conftest.py
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _problem(t=12, m=9, d=3, seed=0, classes=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(t * m, d))
    tasks = np.repeat(np.arange(t), m)
    shift = rng.normal(size=t)[tasks]
    if classes:
        y = (X[:, 0] + shift > 0).astype(np.int64)
    else:
        y = np.tanh(X @ rng.normal(size=d)) + shift
    return X, y, tasks


def test_import_lorsa_does_not_import_torch():
    code = "import sys, lorsa, lorsa.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parameter_space_flatten_unflatten_round_trip():
    net = make_mlp(3, (4, 5), seed=0)
    space = ParameterSpace.from_module(net)
    assert space.size == sum(p.numel() for p in net.parameters())
    theta = space.flatten(net)
    for name, value in space.unflatten(theta).items():
        assert torch.equal(value, net.get_parameter(name).detach())
    sub = ParameterSpace.from_module(net, ["4"])          # the last Linear, by prefix
    assert sub.names == ("4.weight", "4.bias") and sub.size == 6


def test_batched_gradients_equal_a_loop_over_tasks():
    """The vmapped forward/backward gives every task exactly the gradient of its own loss (float64)."""
    net = make_mlp(3, (4, 4), seed=1, dtype="float64")
    space = ParameterSpace.from_module(net)
    n, m = 5, 7
    gen = torch.Generator().manual_seed(0)
    thetas = space.flatten(net) + 0.3 * torch.randn(n, space.size, generator=gen, dtype=torch.float64)
    X = torch.randn(n, m, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(n, m, generator=gen, dtype=torch.float64)
    mask = torch.ones(n, m, dtype=torch.bool)
    mask[1, 4:] = False                                   # padded rows must not contribute
    th = thetas.clone().requires_grad_(True)
    losses = task_losses(batched_forward(net, space, th, X)[..., 0], y, mask, "mse")
    (batched,) = torch.autograd.grad(losses.sum(), th)
    for i in range(n):
        ti = thetas[i].clone().requires_grad_(True)
        rows = mask[i]
        out = torch.func.functional_call(net, space.unflatten(ti), (X[i, rows],))[:, 0]
        (g,) = torch.autograd.grad((0.5 * (out - y[i, rows]) ** 2).sum(), ti)
        torch.testing.assert_close(batched[i], g, rtol=1e-12, atol=1e-12)  # same arithmetic, summation order


@pytest.mark.parametrize("solver", ["pursuit", "gradient"])
def test_task_step_batched_equals_one_task_at_a_time(solver):
    """A per-task step (Gauss-Newton pursuit, or Adam on w_i with hard thresholding on b_i) over a mini-batch
    equals the same step run for each task alone: tasks do not interact inside a step."""
    net = make_mlp(3, (4, 4), seed=2, dtype="float64")
    space = ParameterSpace.from_module(net)
    adapter = LRSAdapter(space.size, 2, 3, dtype=torch.float64)
    adapter.set_basis(torch.randn(space.size, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    X, y, tasks = _problem(t=4, m=8)
    data = TaskRows.build(X, y, tasks, 4, torch.float64)
    theta0 = space.flatten(net)
    state = TaskState.empty(adapter, 4, torch.Generator(), torch.float64)
    config = TrainConfig(task_steps=3, solver=solver)
    Xb, yb, mask = data.batch(np.arange(4))
    dense, idx, val, _ = task_step(net, space, adapter, theta0, adapter.shared, *state.take(torch.arange(4)),
                                   Xb, yb, mask, config)
    for i in range(4):
        Xi, yi, mi = data.batch(np.array([i]))
        d1, i1, v1, _ = task_step(net, space, adapter, theta0, adapter.shared,
                                  *state.take(torch.tensor([i])), Xi, yi, mi, config)
        # batched and single solves / einsums sum in another order: round-off (1e-16) amplified by the
        # conditioning of the Gauss-Newton systems, measured up to 2e-8 relative
        torch.testing.assert_close(dense["w"][i], d1["w"][0], rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(scatter_sparse(idx[i:i + 1], val[i:i + 1], space.size),
                                   scatter_sparse(i1, v1, space.size), rtol=1e-6, atol=1e-9)


def _fit(seed=0, **kw):
    X, y, tasks = _problem()
    params = dict(rank=2, sparsity=3, n_epochs=4, pretrain_epochs=3, task_batch_size=5, random_state=seed)
    params.update(kw)
    return NetworkLRS(make_mlp(3, (6, 6), seed=0), **params).fit(X, y, tasks), (X, y, tasks)


def test_b_stays_k_sparse_and_storage_is_reported():
    est, _ = _fit()
    b = scatter_sparse(est.task_state_.b_idx, est.task_state_.b_val, est.n_parameters_)
    assert ((b != 0).sum(1) <= 3).all()
    assert all(len(set(row)) == 3 for row in est.task_state_.b_idx.tolist())   # k distinct indices per task
    assert est.params_per_task_ == 2 + 3 and est.indices_per_task_ == 3
    assert est.bytes_per_task_ == 5 * 4 + 3 * 4
    assert est.adapter_.shared["U"].shape == (est.n_parameters_, 2)
    U = est.adapter_.shared["U"].double()
    torch.testing.assert_close(U.T @ U, torch.eye(2, dtype=torch.float64), atol=1e-5, rtol=0)  # float32 QR


def test_same_seed_same_model_and_other_seed_differs():
    a, data = _fit(seed=3)
    b, _ = _fit(seed=3)
    c, _ = _fit(seed=4, n_epochs=1)
    assert torch.equal(a.theta0_, b.theta0_) and torch.equal(a.adapter_.shared["U"], b.adapter_.shared["U"])
    assert torch.equal(a.task_state_.dense["w"], b.task_state_.dense["w"])
    assert torch.equal(a.task_state_.b_val, b.task_state_.b_val)
    np.testing.assert_array_equal(a.predict(data[0], data[2]), b.predict(data[0], data[2]))
    assert not torch.equal(a.theta0_, c.theta0_)


def test_save_load_round_trip_and_tampered_file_is_refused(tmp_path):
    est, (X, y, tasks) = _fit()
    path = tmp_path / "net.safetensors"
    est.save(path)
    back = NetworkLRS.load(path, make_mlp(3, (6, 6), seed=9))      # any module of the same architecture
    np.testing.assert_array_equal(back.predict(X, tasks), est.predict(X, tasks))
    assert back.get_params(deep=False).keys() == est.get_params(deep=False).keys()
    assert back.params_per_task_ == est.params_per_task_
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF                                                 # one byte of the last tensor's data
    bad = tmp_path / "tampered.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="checksum"):
        NetworkLRS.load(bad, make_mlp(3, (6, 6)))
    (tmp_path / "short.safetensors").write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="safetensors"):
        NetworkLRS.load(tmp_path / "short.safetensors", make_mlp(3, (6, 6)))
    with pytest.raises(ModelFileError, match="Sequential"):
        NetworkLRS.load(path, make_mlp(3, (6, 7)))                  # another architecture
    from lorsa.nn.baselines import SparseFineTuning

    with pytest.raises(ModelFileError, match="NetworkLRS"):
        SparseFineTuning.load(path, make_mlp(3, (6, 6)))


def test_classification_predicts_labels_and_probabilities():
    X, y, tasks = _problem(t=10, m=20, classes=2)
    labels = np.array(["no", "yes"])[y]
    est = NetworkLRS(make_mlp(3, (6, 6), n_outputs=2, seed=0), rank=1, sparsity=2, loss="cross_entropy",
                     n_epochs=8, pretrain_epochs=8, task_batch_size=5, random_state=0).fit(X, labels, tasks)
    proba = est.predict_proba(X, tasks)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert set(est.predict(X, tasks)) <= {"no", "yes"}
    assert est.score(X, labels, tasks) > 0.75                       # a per-task shift of a linear boundary


def test_adapt_new_tasks_with_the_shared_part_frozen():
    est, (X, y, tasks) = _fit()
    theta0, U = est.theta0_.clone(), est.adapter_.shared["U"].clone()
    Xn, yn, tn = _problem(t=3, m=9, seed=5)
    before = np.sqrt(np.mean((est.predict(Xn, np.zeros_like(tn)) - yn) ** 2))
    est.adapt(Xn, yn, tn + 100, n_epochs=5)
    assert torch.equal(est.theta0_, theta0) and torch.equal(est.adapter_.shared["U"], U)
    assert list(est.tasks_[-3:]) == [100, 101, 102]
    after = est.rmse(Xn, yn, tn + 100)
    assert after < before
    with pytest.raises(ValueError, match="already fitted"):
        est.adapt(Xn, yn, tn + 100)


def test_bad_input_errors_name_the_problem():
    est, (X, y, tasks) = _fit()
    with pytest.raises(ValueError, match="X has 4 features, but the model was fitted with 3"):
        est.predict(np.zeros((2, 4)), [0, 1])
    with pytest.raises(ValueError, match="never fitted: 77"):
        est.predict(X[:2], [0, 77])
    with pytest.raises(ValueError, match="X has 5 features, which module Sequential cannot take"):
        NetworkLRS(make_mlp(3, (6, 6)), n_epochs=1).fit(np.zeros((4, 5)), np.zeros(4), [0, 0, 1, 1])
    frozen = make_mlp(3, (6, 6))
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        NetworkLRS(frozen).fit(X, y, tasks)
    with pytest.raises(ValueError, match="'9.weight' is not a parameter"):
        NetworkLRS(make_mlp(3, (6, 6)), parameters=["9.weight"]).fit(X, y, tasks)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        NetworkLRS("mlp").fit(X, y, tasks)
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, "):
        NetworkLRS(make_mlp(3, (6, 6)), sparsity=10**6).fit(X, y, tasks)
    with pytest.raises(ValueError, match="loss must be one of"):
        NetworkLRS(make_mlp(3, (6, 6)), loss="hinge").fit(X, y, tasks)
    with pytest.raises(ValueError, match="y has 3 entries but X has"):
        NetworkLRS(make_mlp(3, (6, 6))).fit(X, y[:3], tasks)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        NetworkLRS(make_mlp(3, (6, 6))).predict(X, tasks)


def test_realizable_lrs_beats_baselines_with_no_more_numbers_per_task():
    """Tasks of a teacher MLP with theta_i = theta_0 + U w_i + b_i (r = 1, k = 3), students personalising the
    teacher's shared network theta_0 (a pre-trained network): LRS with r + k = 4 numbers per task beats every
    baseline that stores at most 4 numbers per task by a clear margin. Measured on the machine this was written on:
    0.053 against 0.072 for representation learning with r = 4 and 0.074 for sparse fine-tuning with k = 4 (the
    single network 0.36); on a later machine (same torch 2.13.0 CPU wheel, another CPU: float reductions in another
    order, so another training path) 0.062 against 0.072 and 0.090 (ratio 0.86). The bar, 10 % below the best
    baseline, holds on both."""
    import copy

    from lorsa.datasets.network_tasks import make_network_lrs_tasks
    from lorsa.nn.baselines import RepresentationLearning, SingleNetwork, SparseFineTuning, TaskEmbedding

    problem = make_network_lrs_tasks(100, 60, 4, (6, 6), rank=1, sparsity=3, w_scale=1.0, b_scale=1.0, noise=0.0,
                                     random_state=0)
    Xt, _, tt, signal = problem.sample(30, 5)
    kw = dict(n_epochs=8, pretrain_epochs=0, task_batch_size=50, task_steps=2, random_state=0)
    lrs = NetworkLRS(copy.deepcopy(problem.teacher), rank=1, sparsity=3, **kw).fit(problem.X, problem.y,
                                                                                     problem.tasks)
    errors = {}
    for est in (RepresentationLearning(copy.deepcopy(problem.teacher), rank=4, **kw),
                SparseFineTuning(copy.deepcopy(problem.teacher), sparsity=4, **kw),
                TaskEmbedding(copy.deepcopy(problem.teacher), embedding_dim=4, **kw),
                SingleNetwork(copy.deepcopy(problem.teacher), **kw)):
        est.fit(problem.X, problem.y, problem.tasks)
        assert est.params_per_task_ <= lrs.params_per_task_ == 4
        errors[type(est).__name__] = est.rmse(Xt, signal, tt)
    best = min(errors.values())
    assert lrs.rmse(Xt, signal, tt) < 0.90 * best, (lrs.rmse(Xt, signal, tt), errors)


def test_readme_network_example_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index("## Neural networks (`lorsa.nn`)\n")
    block = re.search(r"```python\n(.*?)```", text[start:text.index("\n## ", start + 1)], re.S).group(1)
    monkeypatch.chdir(tmp_path)                                     # it saves model.safetensors here
    namespace: dict = {}
    exec(compile(block, "README lorsa.nn", "exec"), namespace)
    est = namespace["est"]
    assert (est.params_per_task_, est.indices_per_task_, est.bytes_per_task_) == (3, 2, 20)
    assert len(est.tasks_) == 55 and (tmp_path / "model.safetensors").exists()
