"""The compiled passes (engine="numba", Gram and row blocks) compute what the numpy passes compute.

Agreement is asserted on well-posed tasks: ``r + 2k < d`` and ``m_i >= r + 2 k_i`` rows (a few more in the
random-shape property, so that no system is nearly singular by chance), so that every least-squares solve of
subspace pursuit, including the one on the merged support, has a unique, well-conditioned solution. A task with
fewer rows has many exact fits; which one a pursuit step lands on is decided by round-off, in either engine, so for
those the test asserts what is guaranteed instead: finite, k_i-sparse, and an exact fit when ``m_i <= r + k_i``.

Tolerances: the two engines solve the same small normal equations with different factorisations (per-task
Cholesky vs batched LU, different summation order), so parameters agree to round-off amplified by the condition
number of the per-task systems (about 1e4 here): 1e-9 relative is two orders of margin above what we measure
(~1e-14) and far below any real disagreement (a different support moves a coefficient by O(1)).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lorsa import LRSRegressor, make_lrs_regression
from lorsa.data import GramBlock, RaggedTasks, TaskBlock
from lorsa.solvers.amht import _normal_matvec, block_pass
from lorsa.solvers.task_step import TaskStepConfig, allowed_nonzeros

pytest.importorskip("numba", reason="the compiled engine needs numba (pip install 'lorsa[fast]')")

REL = 1e-9


LAYOUTS = ["gram", "rows"]


def _block(seed: int, n: int = 40, d: int = 10, low: int = 8, high: int = 30, dtype=np.float64,
                layout: str = "gram"):
    """One block (Gram or padded rows) of ``n`` tasks with ``low..high`` rows each (``m_i < d``: a singular
    ``G_i``, whose pursuit systems are still regular when ``m_i >= r + 2k``)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(low, high + 1, size=n)
    task = np.repeat(np.arange(n), sizes)
    X = rng.standard_normal((task.size, d)).astype(dtype)
    y = rng.standard_normal(task.size).astype(dtype)
    data = RaggedTasks.from_arrays(X, y, task, n, layout=layout, growth=100.0, block_elements=10**9)
    assert len(data.blocks) == 1
    assert isinstance(data.blocks[0], GramBlock if layout == "gram" else TaskBlock)
    return data.blocks[0], rng


def _state(block, rng: np.random.Generator, r: int, k: int, warm: bool):
    n, d = block.sizes.shape[0], (block.c.shape[1] if isinstance(block, GramBlock) else block.X.shape[2])
    U, _ = np.linalg.qr(rng.standard_normal((d, r)))
    active = np.arange(k)[None, :] < allowed_nonzeros(block.sizes, r, k)[:, None]
    if warm:
        w = rng.standard_normal((n, r))
        idx = np.stack([rng.choice(d, k, replace=False) for _ in range(n)]).astype(np.int64)
        val = rng.standard_normal((n, k)) * active
    else:  # the initial pass: b_i = 0
        w, idx, val = np.zeros((n, r)), np.zeros((n, k), dtype=np.int64), np.zeros((n, k))
    return U, w, idx, val, active


def _run(engine, block, U, w, idx, val, active, ridge, stats, n_steps=5):
    cfg = TaskStepConfig(ridge=ridge, n_steps=n_steps)
    return block_pass(block, U, w, idx, val, active, cfg, True, stats, None, False, engine)


def _close(a, b, rel=REL):
    assert a.shape == b.shape
    if a.size == 0:
        return
    scale = max(float(np.max(np.abs(b))), 1.0)
    assert np.max(np.abs(a - b)) <= rel * scale


def _same_slots(out_a, out_b):
    """Same support and values up to the order of slots (slot order only differs on exact ties)."""
    key_a = np.sort(np.where(out_a.val != 0, out_a.idx, -1), axis=1)
    key_b = np.sort(np.where(out_b.val != 0, out_b.idx, -1), axis=1)
    assert np.array_equal(key_a, key_b)
    _close(np.sort(out_a.val, axis=1), np.sort(out_b.val, axis=1))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("ridge", [0.0, 0.5])
@pytest.mark.parametrize("stats", ["exact", "cg", None])
@pytest.mark.parametrize("warm", [False, True])
def test_compiled_pass_matches_numpy(layout, ridge, stats, warm):
    block, rng = _block(1, layout=layout)
    U, w, idx, val, active = _state(block, rng, r=2, k=3, warm=warm)
    ref = _run("numpy", block, U, w, idx, val, active, ridge, stats)
    out = _run("numba", block, U, w, idx, val, active, ridge, stats)
    _close(out.w, ref.w)
    _same_slots(out, ref)
    assert out.loss == pytest.approx(ref.loss, rel=REL)
    for name in ("A", "V", "diag"):
        a, b = getattr(out, name), getattr(ref, name)
        assert (a is None) == (b is None), name
        if a is not None:
            _close(a, b)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_compiled_pass_float32_storage(layout):
    """float32 data are read as stored; the kernel accumulates in float64 where numpy forms G U or X U and the
    small normal equations in float32 (BLAS), so the two agree to float32 round-off times the conditioning of the
    per-task systems."""
    block, rng = _block(2, dtype=np.float32, low=15, layout=layout)  # well-posed in float32 too
    assert (block.G if layout == "gram" else block.X).dtype == np.float32
    U, w, idx, val, active = _state(block, rng, r=2, k=2, warm=True)
    ref = _run("numpy", block, U, w, idx, val, active, 0.0, "exact")
    out = _run("numba", block, U, w, idx, val, active, 0.0, "exact")
    _close(out.w, ref.w, rel=1e-4)  # float32 eps 6e-8 times condition numbers ~1e2-1e3
    _close(out.A, ref.A, rel=1e-4)  # A = sum (w_i w_i^T) ⊗ G_i inherits the float32-level differences of w_i


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("k", [0, 1])
def test_compiled_pass_without_sparse_part(layout, k):
    """k = 0 (pure representation learning) and tasks with no allowed non-zero (m_i <= r, G_i of rank m_i < r
    included: the minimum-norm w_i through the eigenvalue fallback, as in numpy)."""
    block, rng = _block(3, low=1, high=2, layout=layout)
    U, w, idx, val, active = _state(block, rng, r=2, k=k, warm=False)
    ref = _run("numpy", block, U, w, idx, val, active, 0.0, "exact")
    out = _run("numba", block, U, w, idx, val, active, 0.0, "exact")
    _close(out.w, ref.w)
    assert np.all(out.val[~active] == 0)


def test_compiled_pass_on_ill_posed_tasks():
    """Tasks with fewer rows than r + 2k: finite, k_i-sparse, and an exact fit where m_i <= r + k_i."""
    block, rng = _block(5, low=1, high=7)  # (Gram: the residual is read from G_i, c_i, ||y_i||^2)
    r, k = 2, 3
    U, w, idx, val, active = _state(block, rng, r=r, k=k, warm=False)
    out = _run("numba", block, U, w, idx, val, active, 0.0, "exact")
    assert np.all(np.isfinite(out.w)) and np.all(np.isfinite(out.val)) and np.isfinite(out.loss)
    assert np.all(np.count_nonzero(out.val, axis=1) <= active.sum(axis=1))
    theta = out.w @ U.T
    np.add.at(theta, (np.arange(theta.shape[0])[:, None], out.idx), out.val)
    G = block.G.astype(np.float64)
    residual = block.yy - 2 * np.einsum("nd,nd->n", block.c, theta) + np.einsum("nd,nde,ne->n", theta, G, theta)
    exact = block.sizes <= r + active.sum(axis=1)
    assert exact.sum() >= 5
    assert np.all(np.abs(residual[exact]) <= 1e-8 * np.maximum(block.yy[exact], 1.0))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_compiled_pass_is_deterministic(layout):
    block, rng = _block(4, layout=layout)
    U, w, idx, val, active = _state(block, rng, r=3, k=2, warm=True)
    a = _run("numba", block, U, w, idx, val, active, 0.0, "exact")
    b = _run("numba", block, U, w, idx, val, active, 0.0, "exact")
    for name in ("w", "idx", "val", "A", "V"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    if layout == "rows":
        D = rng.standard_normal((block.X.shape[2], 3))
        assert np.array_equal(_normal_matvec(block, a.w, D, "numba"), _normal_matvec(block, a.w, D, "numba"))
    assert a.loss == b.loss


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), r=st.integers(1, 3), k=st.integers(0, 4), d=st.integers(6, 14),
       ridge=st.sampled_from([0.0, 0.1]), n_steps=st.integers(1, 5), layout=st.sampled_from(LAYOUTS))
def test_compiled_pass_matches_numpy_property(seed, r, k, d, ridge, n_steps, layout):
    """Random shapes (r, k, d, steps, layout): same parameters and statistics; supports are k_i-sparse."""
    # r + 2k >= d: the merged columns [X_i U, X_{i,T}] are dependent whatever m_i (many exact solutions); and
    # m_i = r + 2k exactly can give a nearly singular system (measured: condition 6e8 with m_i = r = 3)
    assume(r + 2 * k < d)
    block, rng = _block(seed, n=12, d=d, low=r + 2 * k + 4, high=3 * d, layout=layout)
    U, w, idx, val, active = _state(block, rng, r=r, k=k, warm=bool(seed % 2))
    ref = _run("numpy", block, U, w, idx, val, active, ridge, "exact", n_steps)
    out = _run("numba", block, U, w, idx, val, active, ridge, "exact", n_steps)
    _close(out.w, ref.w)
    _same_slots(out, ref)
    _close(out.A, ref.A)
    assert np.all(np.count_nonzero(out.val, axis=1) <= active.sum(axis=1))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_normal_matvec_matches_numpy(layout):
    """The CG operator of the U step, compiled (one read of each task's data) and numpy."""
    block, rng = _block(6, layout=layout, low=1)
    n, d = block.sizes.shape[0], (block.c.shape[1] if layout == "gram" else block.X.shape[2])
    w, D = rng.standard_normal((n, 3)), rng.standard_normal((d, 3))
    _close(_normal_matvec(block, w, D, "numba"), _normal_matvec(block, w, D, "numpy"), rel=1e-12)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("u_solver", ["exact", "cg"])
def test_estimator_engines_agree_and_recover(layout, u_solver):
    """Whole fits: numba and numpy engines give the same model, both recovering Theta* (noiseless)."""
    P = make_lrs_regression(n_tasks=300, n_samples=40, n_features=20, rank=2, sparsity=2, row_sparsity=None,
                            random_state=0)
    truth = P.U @ P.W.T + P.B.toarray()
    fits = {}
    for engine in ("numpy", "numba"):
        est = LRSRegressor(rank=2, sparsity=2, engine=engine, u_solver=u_solver, layout=layout, n_jobs=1,
                           random_state=0).fit(P.X, P.y, tasks=P.tasks)
        fits[engine] = (est, est.U_ @ est.W_.T + est.B_.toarray())
        assert np.linalg.norm(fits[engine][1] - truth) <= 1e-6 * np.linalg.norm(truth)  # exact recovery
    (a, theta_a), (b, theta_b) = fits["numpy"], fits["numba"]
    assert a.n_iter_ == b.n_iter_
    assert np.linalg.norm(theta_a - theta_b) <= 1e-8 * np.linalg.norm(theta_a)


def test_estimator_engines_agree_on_data_starved_tasks():
    """Fewer rows than features (the row layout chosen by "auto"), noise, a ridge: the same fit from both engines
    (in every iteration: same number of iterations and loss history)."""
    P = make_lrs_regression(n_tasks=400, n_samples=12, n_features=20, rank=2, sparsity=2, row_sparsity=None,
                            noise=0.1, random_state=1)
    fits = [LRSRegressor(rank=2, sparsity=2, ridge=0.1, engine=engine, n_jobs=1, max_iter=15,
                         random_state=0).fit(P.X, P.y, tasks=P.tasks) for engine in ("numpy", "numba")]
    assert fits[0].n_iter_ == fits[1].n_iter_
    np.testing.assert_allclose(fits[1].loss_history_, fits[0].loss_history_, rtol=1e-9)
    theta = [f.U_ @ f.W_.T + f.B_.toarray() for f in fits]
    assert np.linalg.norm(theta[1] - theta[0]) <= 1e-7 * np.linalg.norm(theta[0])


@pytest.mark.parametrize("m", [14, 25])
def test_estimator_engines_agree_with_exchanges_and_restarts(m):
    """Noiseless fits near the sample-complexity boundary, where tasks take exchange steps and restarts (row
    layout at m = 14 < d, Gram layout at m = 25): the same iterations and model from both engines."""
    P = make_lrs_regression(n_tasks=300, n_samples=m, n_features=20, rank=2, sparsity=2, row_sparsity=None,
                            random_state=2)
    fits = [LRSRegressor(rank=2, sparsity=2, engine=engine, n_jobs=1, random_state=0).fit(P.X, P.y, tasks=P.tasks)
            for engine in ("numpy", "numba")]
    assert fits[0].n_iter_ == fits[1].n_iter_
    theta = [f.U_ @ f.W_.T + f.B_.toarray() for f in fits]
    assert np.linalg.norm(theta[1] - theta[0]) <= 1e-8 * np.linalg.norm(theta[0])


def test_engine_parameter_checked(monkeypatch):
    P = make_lrs_regression(n_tasks=20, n_samples=15, n_features=8, rank=1, sparsity=1, row_sparsity=None,
                            random_state=0)
    with pytest.raises(ValueError, match="engine"):
        LRSRegressor(engine="fortran").fit(P.X, P.y, tasks=P.tasks)
    monkeypatch.setitem(sys.modules, "numba", None)  # as if numba were absent: importing it raises ImportError
    with pytest.raises(ImportError, match=r"lorsa\[fast\]"):
        LRSRegressor(engine="numba").fit(P.X, P.y, tasks=P.tasks)
    est = LRSRegressor(rank=1, sparsity=1, engine="auto").fit(P.X, P.y, tasks=P.tasks)  # falls back to numpy
    assert est.engine_ == "numpy" and np.isfinite(est.loss_history_).all()
