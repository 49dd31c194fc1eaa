"""The U step: column-major Kronecker normal equations, and agreement of the exact and CG solvers (SPEC §2)."""

from __future__ import annotations

import numpy as np
import pytest

from lorsa.data import RaggedTasks
from lorsa.solvers.shared_step import (
    block_exact_statistics,
    block_gram,
    block_jacobi_diagonal,
    block_normal_matvec,
    block_rhs,
    orthonormalize,
    solve_cg,
    solve_exact,
    unvec,
    vec,
)


@pytest.fixture
def blocks():
    rng = np.random.default_rng(0)
    d, r, t = 7, 3, 25
    sizes = rng.integers(1, 30, size=t)
    task = np.repeat(np.arange(t), sizes)
    X = rng.standard_normal((task.size, d))
    y = rng.standard_normal(task.size)
    data = RaggedTasks.from_arrays(X, y, task, t, block_elements=300)
    W = rng.standard_normal((t, r))
    return data, W, X, y, task, rng


def _A_V(data, W):
    d, r = data.n_features, W.shape[1]
    A = np.zeros((d * r, d * r))
    V = np.zeros((d, r))
    for b in data.blocks:
        A += block_exact_statistics(block_gram(b.X), W[b.task_ids])
        V += block_rhs(b.X, b.y, W[b.task_ids])
    return A, V


def test_kronecker_is_column_major(blocks):
    """A vec(U) must equal vec(sum_i X_i^T X_i U w_i w_i^T) with column-major vec.

    The row-major mistake (A built as sum G_i ⊗ w_i w_i^T, or vec taken by rows) gives a different product;
    this test fails on it.
    """
    data, W, X, y, task, rng = blocks
    d, r = data.n_features, W.shape[1]
    A, _ = _A_V(data, W)
    U = rng.standard_normal((d, r))
    direct = sum(X[task == i].T @ X[task == i] @ U @ np.outer(W[i], W[i]) for i in range(W.shape[0]))
    np.testing.assert_allclose(A @ vec(U), vec(direct), rtol=1e-12, atol=1e-10)
    row_major = sum(np.kron(X[task == i].T @ X[task == i], np.outer(W[i], W[i])) for i in range(W.shape[0]))
    assert not np.allclose(row_major @ vec(U), vec(direct))
    # and the block-wise A equals the textbook kron sum with column-major vec
    textbook = sum(np.kron(np.outer(W[i], W[i]), X[task == i].T @ X[task == i]) for i in range(W.shape[0]))
    np.testing.assert_allclose(A, textbook, rtol=1e-12, atol=1e-10)


def test_vec_unvec_inverse():
    U = np.arange(12.0).reshape(4, 3)
    assert np.array_equal(vec(U)[:4], U[:, 0])
    assert np.array_equal(unvec(vec(U), 4, 3), U)


def test_exact_and_cg_agree(blocks):
    data, W, X, y, task, rng = blocks
    d, r = data.n_features, W.shape[1]
    A, V = _A_V(data, W)
    U_exact = solve_exact(A, V)

    def matvec(D):
        return sum(block_normal_matvec(b.X, W[b.task_ids], D) for b in data.blocks)

    diag = sum(block_jacobi_diagonal(b.X, W[b.task_ids]) for b in data.blocks)
    np.testing.assert_allclose(vec(diag), np.diag(A), rtol=1e-12)
    U_cg, n_iter = solve_cg(matvec, V, diag, np.zeros((d, r)), rtol=1e-13)
    # CG to a 1e-13 relative residual on a well-conditioned system: solutions agree to ~1e-10.
    np.testing.assert_allclose(U_cg, U_exact, rtol=1e-9, atol=1e-10)
    assert 0 < n_iter <= d * r


def test_exact_solver_handles_singular_system():
    d, r = 4, 2
    W = np.array([[1.0, 0.0], [2.0, 0.0]])  # second coordinate never used: A singular
    G = np.stack([np.eye(d), 2 * np.eye(d)])
    A = block_exact_statistics(G, W)
    V = np.ones((d, r))
    V[:, 1] = 0
    U = solve_exact(A, V)
    assert np.all(np.isfinite(U)) and np.allclose(U[:, 1], 0)


def test_orthonormalize_sign_convention():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((6, 3))
    Q, R = orthonormalize(M)
    np.testing.assert_allclose(Q.T @ Q, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(Q @ R, M, atol=1e-12)
    assert np.all(np.diagonal(R) >= 0)
