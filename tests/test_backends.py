"""The thread backend runs the blocks of a pass concurrently and reduces them in block order: the same fit as the
serial backend, and the same bits for the same ``n_jobs`` and seed (both engines)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from lorsa import LRSRegressor
from lorsa.backends import SerialBackend, ThreadBackend, make_backend
from lorsa.data import RaggedTasks

ENGINES = ["numpy"] + (["numba"] if importlib.util.find_spec("numba") else [])


def _ragged_problem(seed: int = 0, t: int = 240, d: int = 12, r: int = 2, k: int = 2):
    """Noiseless LRS data whose tasks have 6 to 80 rows: several size buckets, both layouts, many blocks."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((d, r)))
    theta = rng.standard_normal((t, r)) @ U.T
    for i in range(t):
        theta[i, rng.choice(d, k, replace=False)] += rng.standard_normal(k)
    sizes = rng.integers(6, 81, size=t)
    tasks = np.repeat(np.arange(t), sizes)
    X = rng.standard_normal((tasks.size, d))
    y = np.einsum("nd,nd->n", X, theta[tasks])
    return X, y, tasks


def test_problem_has_several_blocks_of_both_layouts():
    X, y, tasks = _ragged_problem()
    data = RaggedTasks.from_arrays(X, y, tasks, int(tasks.max()) + 1, layout="auto")  # as LRSRegressor builds it
    kinds = {type(b).__name__ for b in data.blocks}
    assert len(data.blocks) >= 4 and kinds == {"TaskBlock", "GramBlock"}


@pytest.mark.parametrize("engine", ENGINES)
def test_threads_match_serial(engine):
    X, y, tasks = _ragged_problem()
    fits = {n_jobs: LRSRegressor(rank=2, sparsity=2, engine=engine, n_jobs=n_jobs, max_iter=8, tol=0.0,
                                 random_state=0).fit(X, y, tasks=tasks) for n_jobs in (1, 2)}
    one, two = fits[1], fits[2]
    # serial BLAS may use several threads where the pool pins it to one: summation order, hence round-off only
    np.testing.assert_allclose(two.U_, one.U_, atol=1e-10)
    np.testing.assert_allclose(two.W_, one.W_, atol=1e-9)
    np.testing.assert_allclose(two.loss_history_, one.loss_history_, rtol=1e-9)
    assert (two.B_ != one.B_).nnz == 0 or np.abs((two.B_ - one.B_).toarray()).max() <= 1e-9


@pytest.mark.parametrize("engine", ENGINES)
def test_same_n_jobs_same_bits(engine):
    X, y, tasks = _ragged_problem(1)
    a, b = (LRSRegressor(rank=2, sparsity=2, engine=engine, n_jobs=2, max_iter=6, random_state=0)
            .fit(X, y, tasks=tasks) for _ in range(2))
    np.testing.assert_array_equal(a.U_, b.U_)
    np.testing.assert_array_equal(a.W_, b.W_)
    np.testing.assert_array_equal(a.B_.toarray(), b.B_.toarray())


def test_make_backend_and_map_order():
    assert isinstance(make_backend(1), SerialBackend) and isinstance(make_backend(3), ThreadBackend)
    pool = ThreadBackend(3)
    try:
        assert pool.map(lambda a, b: a * b, [(i, i + 1) for i in range(50)]) == [i * (i + 1) for i in range(50)]
    finally:
        pool.close()
