"""The fixed-basis re-solve of the per-task step (lorsa.solvers.task_resolve) that scores LRSRegressorCV's ridges."""

from __future__ import annotations

import numpy as np
import pytest

from lorsa import LRSRegressor, make_lrs_regression
from lorsa.solvers.task_resolve import solve_normals, support_normals, task_ridges


@pytest.fixture(scope="module")
def fitted():
    P = make_lrs_regression(n_tasks=40, n_samples=30, n_features=10, rank=2, sparsity=2, row_sparsity=None,
                            noise=0.1, random_state=3)
    est = LRSRegressor(rank=2, sparsity=2, ridge=0.5, tol=1e-12, max_iter=300, random_state=0).fit(P.X, P.y, P.tasks)
    return P, est


def test_own_ridge_returns_the_fit(fitted):
    """At the fit's own ridge the re-solve on its U and supports is the fit's converged per-task step."""
    P, est = fitted
    normals = support_normals(P.X, P.y, P.tasks, 40, est.U_, est.B_, 2)
    W, B = solve_normals(normals, np.full(40, 0.5), 10)
    # tolerance: the fit stops at tol = 1e-12 on the objective, so its (w_i, b_i) solve the normal equations to ~1e-7
    np.testing.assert_allclose(W, est.W_, atol=1e-6)
    np.testing.assert_allclose(B.toarray(), est.B_.toarray(), atol=1e-6)


def test_task_ridges_match_a_per_task_solve(fitted):
    """Task i's solution is the ridge least squares on [X_i U, X_{i,S_i}] with lambda_i = lam (m_i / m_med)^alpha
    (written here task by task, the reference the batched solve must match)."""
    P, est = fitted
    keep = np.ones(P.X.shape[0], dtype=bool)
    keep[P.tasks == 0] = np.arange((P.tasks == 0).sum()) < 8          # task sizes differ: 8 rows for task 0
    X, y, tasks = P.X[keep], P.y[keep], P.tasks[keep]
    counts = np.bincount(tasks, minlength=40)
    lam = task_ridges(counts, 2.0, 1.0, float(np.median(counts)))
    assert lam[0] == pytest.approx(2.0 * 8 / 30) and lam[1] == pytest.approx(2.0)
    W, B = solve_normals(support_normals(X, y, tasks, 40, est.U_, est.B_, 2), lam, 10)
    Bd = est.B_.toarray()
    for i in (0, 1, 7):
        S = np.flatnonzero(Bd[:, i])
        Xi, yi = X[tasks == i], y[tasks == i]
        F = np.hstack([Xi @ est.U_, Xi[:, S]])
        theta = np.linalg.solve(F.T @ F + lam[i] * np.eye(F.shape[1]), F.T @ yi)
        np.testing.assert_allclose(W[i], theta[:2], rtol=1e-9, atol=1e-12)     # same normal equations, round-off
        np.testing.assert_allclose(B.toarray()[S, i], theta[2:], rtol=1e-9, atol=1e-12)
    assert task_ridges(counts, 2.0, 0.0, 30.0).tolist() == [2.0] * 40
