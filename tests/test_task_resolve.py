"""The fixed-basis re-solve of the per-task step (lorsa.solvers.task_resolve) that scores LRSRegressorCV's ridges."""

from __future__ import annotations

import numpy as np
import pytest

from lorsa import LRSRegressor, make_lrs_regression
from lorsa.baselines import SingleModel
from lorsa.baselines.single import pooled_ridge
from lorsa.model import predict_rows
from lorsa.solvers.random_effects import task_gram_blocks
from lorsa.solvers.task_resolve import (
    TaskMoments,
    _rows_normals,
    moments_normals,
    moments_residual_block,
    solve_coefficients,
    solve_normals,
    support_features,
    support_normals,
    task_ridges,
)


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


@pytest.fixture(scope="module")
def uneven(fitted):
    """The fitted problem with uneven task sizes (task 0: 3 rows, fewer than r + k = 4) and one task without rows."""
    P, est = fitted
    keep = np.ones(P.X.shape[0], dtype=bool)
    keep[P.tasks == 0] = np.arange((P.tasks == 0).sum()) < 3
    keep[P.tasks == 5] = False
    return P.X[keep], P.y[keep], P.tasks[keep], est


@pytest.mark.parametrize("with_offset", [False, True])
def test_normals_from_moments_match_the_rows(uneven, with_offset):
    """The normal equations read from the per-task moments (with a shared offset theta_0 shifting the targets) are
    those accumulated over the rows of y - X theta_0; both are sums of the same products (tolerance: round-off of
    sums of ~30 terms of size ~10)."""
    X, y, tasks, est = uneven
    theta0 = np.linspace(-1.0, 1.0, 10) if with_offset else None
    target = y - X @ theta0 if with_offset else y
    rows = _rows_normals(X, target, tasks, 40, est.U_, est.B_, 2)
    mom = moments_normals(TaskMoments.from_rows(X, y, tasks, 40), theta0, est.U_, est.B_, 2)
    np.testing.assert_allclose(mom.G, rows.G, rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(mom.c, rows.c, rtol=1e-11, atol=1e-10)
    assert (mom.mask == rows.mask).all() and (mom.idx == rows.idx).all()
    assert not mom.G[5].any() and not mom.c[5].any()     # a task without rows has empty normal equations


def test_residual_block_from_moments_matches_the_rows(uneven):
    """The empirical-Bayes statistics of Z = X U against y - X theta_0 - X b_i, from the moments, equal
    task_gram_blocks of the explicit residuals (tasks without rows left out)."""
    X, y, tasks, est = uneven
    theta0 = np.full(10, 0.3)
    block = moments_residual_block(TaskMoments.from_rows(X, y, tasks, 40), theta0, est.U_, est.B_)
    zero = np.zeros((40, 1))
    resid = y - X @ theta0 - predict_rows(X, tasks, np.zeros((10, 1)), zero, est.B_)
    ref = task_gram_blocks(X @ est.U_, resid, tasks, 40)
    ids = np.concatenate([b.task_ids for b in ref])
    order = np.argsort(ids)
    assert block.task_ids.tolist() == sorted(set(range(40)) - {5})
    for name in ("G", "c", "yy", "sizes"):
        stacked = np.concatenate([getattr(b, name) for b in ref])[order]
        np.testing.assert_allclose(getattr(block, name), stacked, rtol=1e-10, atol=1e-9)


def test_support_features_predict_like_the_model(uneven):
    """sum(F * theta[index]) with F from support_features is predict_rows of the re-solved (W, B)."""
    X, y, tasks, est = uneven
    normals = support_normals(X, y, tasks, 40, est.U_, est.B_, 2)
    lam = np.full(40, 0.7)
    W, B = solve_normals(normals, lam, 10)
    pred = np.einsum("np,np->n", support_features(X, tasks, est.U_, normals), solve_coefficients(normals, lam)[tasks])
    np.testing.assert_allclose(pred, predict_rows(X, tasks, est.U_, W, B), rtol=1e-12, atol=1e-12)


def test_single_model_ridge_path_is_pooled_ridge(fitted):
    """SingleModel's shared-Gram ridge path chooses and fits exactly what one pooled_ridge per candidate does."""
    P, _ = fitted
    est = SingleModel((0.0, 1.0, 100.0), random_state=0).fit(P.X, P.y, P.tasks)
    ref = pooled_ridge(P.X, P.y, est.best_params_["ridge"])
    np.testing.assert_allclose(est.coef_, ref, rtol=1e-12, atol=1e-12)
    scores = [s["rmse"] for s in est.validation_scores_]
    assert est.best_params_["ridge"] == (0.0, 1.0, 100.0)[int(np.argmin(scores))]
