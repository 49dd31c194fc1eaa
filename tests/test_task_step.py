"""The per-task step: the row and Gram forms agree, masks and ridge behave, supports are k-sparse."""

from __future__ import annotations

import numpy as np
import pytest

from lorsa.data import GramBlock, RaggedTasks
from lorsa.solvers.task_step import TaskStepConfig, allowed_nonzeros, task_step
from lorsa.solvers.task_systems import GramSystem, RowSystem


def _block(seed: int, n: int = 30, m: int = 25, d: int = 12):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, m + 1, size=n)  # some tasks have fewer rows than r + k
    task = np.repeat(np.arange(n), sizes)
    X = rng.standard_normal((task.size, d))
    y = rng.standard_normal(task.size)
    data = RaggedTasks.from_arrays(X, y, task, n, growth=100.0, block_elements=10**9)
    assert len(data.blocks) == 1
    return data.blocks[0], rng


@pytest.mark.parametrize("method", ["sp", "htp", "iht"])
@pytest.mark.parametrize("ridge", [0.0, 0.3])
@pytest.mark.parametrize("fit_w", [True, False])
def test_row_and_gram_forms_agree(method, ridge, fit_w):
    block, rng = _block(0)
    n, _, d = block.X.shape
    r, k = 2, 3
    U, _ = np.linalg.qr(rng.standard_normal((d, r)))
    w = rng.standard_normal((n, r))
    idx = np.stack([rng.choice(d, k, replace=False) for _ in range(n)])
    val = rng.standard_normal((n, k))
    active = np.arange(k)[None, :] < allowed_nonzeros(block.sizes, r, k)[:, None]
    val *= active
    cfg = TaskStepConfig(method=method, ridge=ridge, fit_w=fit_w, n_steps=3)
    rows = task_step(RowSystem(block.X, block.y, U), w, idx, val, active, cfg, sizes=block.sizes)
    gram_block = GramBlock.from_rows(block)
    gram = task_step(GramSystem(gram_block.G, gram_block.c, gram_block.yy, U), w, idx, val, active, cfg,
                     sizes=block.sizes)
    # Same normal equations, assembled differently: round-off level differences only, on every task whose
    # systems are determined (m_i >= r + 2k: SP's union solve). Underdetermined tasks take minimum-norm solutions
    # whose thresholding may break ties differently; there only finiteness and sparsity are required.
    well = block.sizes >= r + 2 * k
    assert well.sum() >= n // 2
    np.testing.assert_allclose(gram.w[well], rows.w[well], atol=1e-8)
    dense = np.zeros((2, n, d))
    for s, res in enumerate((rows, gram)):
        np.put_along_axis(dense[s], res.idx, res.val, axis=1)
    np.testing.assert_allclose(dense[1][well], dense[0][well], atol=1e-8)
    assert np.all(np.isfinite(dense)) and np.all(np.isfinite(gram.w))
    np.testing.assert_allclose(gram.loss_before, rows.loss_before, rtol=1e-8, atol=1e-8)
    assert rows.loss_after <= rows.loss_before + 1e-9 or method == "iht"
    assert np.all((np.abs(dense[0]) > 0).sum(axis=1) <= active.sum(axis=1))
    if not fit_w:
        assert np.array_equal(rows.w, w)


def test_subspace_pursuit_finds_planted_support_in_one_step():
    """Noiseless task with the true U: one SP step from b = 0 recovers (w_i, b_i) exactly."""
    rng = np.random.default_rng(3)
    n, m, d, r, k = 50, 40, 30, 2, 3
    U, _ = np.linalg.qr(rng.standard_normal((d, r)))
    W = rng.standard_normal((n, r))
    B = np.zeros((n, d))
    for a in range(n):
        B[a, rng.choice(d, k, replace=False)] = rng.choice([-1, 1], k) * rng.uniform(1, 2, k)
    X = rng.standard_normal((n, m, d))
    y = np.einsum("nmd,nd->nm", X, W @ U.T + B)
    res = task_step(RowSystem(X, y, U), np.zeros((n, r)), np.zeros((n, k), dtype=np.int64), np.zeros((n, k)),
                    np.ones((n, k), dtype=bool), TaskStepConfig(method="sp", n_steps=3))
    dense = np.zeros((n, d))
    np.put_along_axis(dense, res.idx, res.val, axis=1)
    np.testing.assert_allclose(dense, B, atol=1e-10)
    np.testing.assert_allclose(res.w, W, atol=1e-10)


@pytest.mark.parametrize("layout", ["rows", "gram"])
@pytest.mark.parametrize("ridge", [0.0, 0.5])
def test_swap_table_gains_match_brute_force(layout, ridge):
    """The exchange step's gain (rank-one updates of the support's normal equations) equals the objective
    decrease measured by solving least squares again on every exchanged support (known answer, to round-off)."""
    from lorsa.solvers.task_step import _swap_table, _task_objective

    rng = np.random.default_rng(3)
    n, m, d, r, k = 6, 15, 9, 2, 2
    task = np.repeat(np.arange(n), m)
    X, y = rng.standard_normal((n * m, d)), rng.standard_normal(n * m)
    block = RaggedTasks.from_arrays(X, y, task, n, growth=100.0, block_elements=10**9).blocks[0]
    U, _ = np.linalg.qr(rng.standard_normal((d, r)))
    system = RowSystem(block.X, block.y, U)
    if layout == "gram":
        gb = GramBlock.from_rows(block)
        system = GramSystem(gb.G, gb.c, gb.yy, U)
    idx = np.stack([rng.choice(d, k, replace=False) for _ in range(n)])
    active = np.ones((n, k), dtype=bool)
    normal = system.assemble(idx, active)
    w, vals, state = system.finish(normal, ridge)
    gain, j, q = _swap_table(system, normal, w, vals, state, active, ridge)
    before = _task_objective(system, state, w, vals, ridge)
    for a in range(n):
        best = -np.inf
        for jj in range(d):
            if jj in idx[a]:
                continue
            for qq in range(k):
                sup = idx[a:a + 1].copy()
                sup[0, qq] = jj
                sub = system.subset(np.array([a]))
                w2, v2, st2 = sub.solve(sup, active[a:a + 1], ridge)
                best = max(best, before[a] - _task_objective(sub, st2, w2, v2, ridge)[0])
        # scale: the objective (about 1/2 ||y_i||^2 = 7); round-off of the normal equations ~1e-14
        assert abs(gain[a] - best) <= 1e-10 * max(before[a], 1.0)
        sup = idx[a:a + 1].copy()
        sup[0, q[a]] = j[a]
        sub = system.subset(np.array([a]))
        w2, v2, st2 = sub.solve(sup, active[a:a + 1], ridge)
        assert abs(before[a] - _task_objective(sub, st2, w2, v2, ridge)[0] - gain[a]) <= 1e-10 * max(before[a], 1.0)


def test_restart_and_exchange_free_a_task_from_a_wrong_support():
    """With the true U, a task started on a wholly wrong support is recovered exactly by the default step (exchange
    step + restart of tasks far above the block's median objective), and stays put without them."""
    rng = np.random.default_rng(5)
    n, m, d, r, k = 40, 16, 20, 2, 2
    U, _ = np.linalg.qr(rng.standard_normal((d, r)))
    W = rng.standard_normal((n, r))
    support = np.stack([rng.choice(d, k, replace=False) for _ in range(n)])
    B = np.zeros((n, d))
    np.put_along_axis(B, support, rng.standard_normal((n, k)) + np.sign(rng.standard_normal((n, k))), axis=1)
    theta = W @ U.T + B
    X = rng.standard_normal((n, m, d))
    y = np.einsum("nmd,nd->nm", X, theta)
    task = np.repeat(np.arange(n), m)
    block = RaggedTasks.from_arrays(X.reshape(-1, d), y.reshape(-1), task, n, growth=100.0,
                                    block_elements=10**9).blocks[0]
    system = RowSystem(block.X, block.y, U)
    idx = support.copy()
    wrong = np.setdiff1d(np.arange(d), support[0])[:k]
    idx[0] = wrong  # task 0 starts on a wrong support; the others on their own
    active = np.ones((n, k), dtype=bool)
    w0, val0, _ = system.solve(idx, active, 0.0)
    plain = task_step(system, w0, idx, val0, active, TaskStepConfig(n_steps=1, swap=False, restart_factor=0.0))
    default = task_step(system, w0, idx, val0, active, TaskStepConfig(n_steps=5))

    def error(res):
        est = res.w @ U.T
        np.add.at(est, (np.repeat(np.arange(n), k), res.idx.reshape(-1)), res.val.reshape(-1))
        return np.linalg.norm(est - theta, axis=1) / np.linalg.norm(theta, axis=1)

    assert error(plain)[0] > 1e-2  # one step of plain subspace pursuit does not leave the wrong support
    assert np.all(error(default) <= 1e-10)  # noiseless, true U: exact


def test_private_fits_do_not_restart_tasks(monkeypatch):
    """The restart compares a user's objective with the other users' (a block median): a private fit must not use
    it (one user's data would move another user's contribution to the released statistics)."""
    import lorsa.solvers.task_step as ts
    from lorsa import PrivateLRSRegressor, make_lrs_regression

    def refuse(*args, **kwargs):
        raise AssertionError("restart in a private fit")

    P = make_lrs_regression(n_tasks=40, n_samples=12, n_features=8, rank=1, sparsity=1, row_sparsity=None,
                            noise=0.1, random_state=0)
    monkeypatch.setattr(ts, "_restart_stuck", refuse)
    PrivateLRSRegressor(rank=1, sparsity=1, epsilon=1.0, max_iter=2, random_state=0, reproducible=True).fit(
        P.X, P.y, P.tasks)
    with pytest.raises(AssertionError, match="restart in a private fit"):
        from lorsa import LRSRegressor

        LRSRegressor(rank=1, sparsity=1, engine="numpy", max_iter=2).fit(P.X, P.y, tasks=P.tasks)
