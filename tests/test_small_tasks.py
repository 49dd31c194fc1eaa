"""Tasks with fewer rows than r + k, and adaptation to new tasks (SPEC §5)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lorsa import LRSRegressor, make_lrs_regression


def test_tiny_tasks_fit_with_warning_and_no_nan():
    P = make_lrs_regression(n_tasks=30, n_samples=np.r_[np.full(25, 40), [1, 2, 3, 4, 5]], n_features=20,
                            rank=3, sparsity=4, row_sparsity=None, noise=0.1, random_state=0)
    with pytest.warns(UserWarning, match=r"5 task\(s\) have fewer rows than rank \+ sparsity = 7"):
        est = LRSRegressor(rank=3, sparsity=4, max_iter=10, random_state=0).fit(P.X, P.y, tasks=P.tasks)
    assert np.all(np.isfinite(est.W_)) and np.all(np.isfinite(est.B_.data))
    nnz = est.B_.getnnz(axis=0)
    # a task of m_i rows gets at most max(0, m_i - r) non-zeros
    assert np.all(nnz[25:] <= np.maximum(0, np.array([1, 2, 3, 4, 5]) - 3))
    assert np.all(np.isfinite(est.predict(P.X, P.tasks)))


def test_adapt_new_task_exactly(small_problem):
    P = small_problem
    est = LRSRegressor(rank=2, sparsity=2, random_state=0).fit(P.X, P.y, tasks=P.tasks)
    rng = np.random.default_rng(11)
    theta = P.U @ rng.standard_normal(2)
    theta[[1, 13]] += rng.standard_normal(2)
    X = rng.standard_normal((12, 20))  # m = 12 < d = 20: least squares alone cannot recover theta
    w, b = est.adapt(X, X @ theta)
    assert w.shape == (2,) and b.shape == (20,) and np.count_nonzero(b) <= 2
    # noiseless: the new task's parameters are recovered to round-off (1e-8 leaves room for conditioning)
    np.testing.assert_allclose(est.U_ @ w + b, theta, atol=1e-8)


def test_adapt_tiny_task_warns_but_is_finite(small_problem):
    P = small_problem
    est = LRSRegressor(rank=2, sparsity=2, random_state=0).fit(P.X, P.y, tasks=P.tasks)
    with pytest.warns(UserWarning, match="fewer rows"):
        w, b = est.adapt(P.X[:1], P.y[:1])
    assert np.all(np.isfinite(w)) and np.count_nonzero(b) == 0


def test_adapt_tasks_batched_matches_single(small_problem):
    P = small_problem
    est = LRSRegressor(rank=2, sparsity=2, random_state=0).fit(P.X, P.y, tasks=P.tasks)
    X, y, tasks = P.sample(15, random_state=3)
    labels, W, B = est.adapt_tasks(X, y, tasks)
    w0, b0 = est.adapt(X[tasks == 4], y[tasks == 4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(W[4], w0, atol=1e-10)
        np.testing.assert_allclose(B[:, 4].toarray().ravel(), b0, atol=1e-10)
    assert list(labels) == list(range(40))
