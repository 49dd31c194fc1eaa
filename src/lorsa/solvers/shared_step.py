"""The shared step of AMHT-LRS: ``U <- argmin_U sum_i ||X_i U w_i - (y_i - X_i b_i)||^2``, then QR (SPEC §2 step 2).

With column-major ``vec`` (``vec(U)[a d + p] = U[p, a]``) the normal equations are ``A vec(U) = vec(V)`` with

    A = sum_i (w_i w_i^T) ⊗ (X_i^T X_i)        (dr × dr)
    V = sum_i X_i^T (y_i - X_i b_i) w_i^T       (d × r)

Two solvers share the per-block statistics:

``"exact"`` forms ``A`` (O(N d^2 + t d^2 r^2) per iteration, O((dr)^2) memory; the per-task Gram matrices are
    cached across iterations where they are no larger than the data) and solves it by Cholesky.
``"cg"`` never forms ``A``: conjugate gradients on the operator ``U -> sum_i X_i^T X_i U w_i w_i^T`` (two passes over
    X per step, O(N d r)), Jacobi-preconditioned by ``diag(A)``, warm-started from the previous ``U``.

Each block contributes additive statistics, reduced by a sum: the shape a distributed engine runs as it is.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator, cg

__all__ = [
    "vec",
    "unvec",
    "block_gram",
    "block_exact_statistics",
    "block_rhs",
    "block_jacobi_diagonal",
    "block_normal_matvec",
    "gram_normal_matvec",
    "gram_jacobi_diagonal",
    "solve_exact",
    "solve_cg",
    "orthonormalize",
]


def vec(U: np.ndarray) -> np.ndarray:
    """Column-major vectorisation: stacks the columns of ``U (d, r)`` into a vector of length ``d r``."""
    return np.asarray(U).reshape(-1, order="F")


def unvec(u: np.ndarray, d: int, r: int) -> np.ndarray:
    """Inverse of :func:`vec`."""
    return np.asarray(u).reshape((d, r), order="F")


def block_gram(X: np.ndarray) -> np.ndarray:
    """Per-task Gram matrices ``X_i^T X_i`` of a block, (n, m, d) -> (n, d, d), in float64."""
    G = np.matmul(np.swapaxes(X, 1, 2), X)
    return G.astype(np.float64, copy=False)


def block_rhs(X: np.ndarray, target: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_i X_i^T (y_i - X_i b_i) w_i^T`` over a block: (n, m, d), (n, m), (n, r) -> (d, r) float64."""
    c = np.matmul(target[:, None, :].astype(X.dtype, copy=False), X)[:, 0, :]
    return c.astype(np.float64, copy=False).T @ w


def block_exact_statistics(gram: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_i (w_i w_i^T) ⊗ G_i`` over a block as a (dr, dr) matrix in column-major vec order.

    Entry ``[a d + p, b d + q] = sum_i w_ia w_ib G_i[p, q]``. Only the ``r (r + 1) / 2`` pairs ``a <= b`` are
    computed (one GEMM of (pairs, n) by (n, d^2)); the others follow by symmetry (``G_i`` is symmetric).
    """
    n, d, _ = gram.shape
    r = w.shape[1]
    a_idx, b_idx = np.triu_indices(r)
    weights = w[:, a_idx] * w[:, b_idx]
    T = (weights.T @ gram.reshape(n, d * d)).reshape(-1, d, d)
    A = np.empty((r, d, r, d))
    for pair, (a, b) in enumerate(zip(a_idx, b_idx, strict=True)):
        A[a, :, b, :] = T[pair]
        A[b, :, a, :] = T[pair].T
    return A.reshape(r * d, r * d)


def block_jacobi_diagonal(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``diag(A)`` restricted to a block, as a (d, r) array: ``sum_i w_ia^2 sum_j x_ijp^2``."""
    colsq = np.einsum("nmd,nmd->nd", X, X).astype(np.float64, copy=False)
    return colsq.T @ (w * w)


def block_normal_matvec(X: np.ndarray, w: np.ndarray, D: np.ndarray) -> np.ndarray:
    """``sum_i X_i^T X_i D w_i w_i^T`` over a block, for a direction ``D (d, r)``: the CG operator."""
    n, m, d = X.shape
    XD = (X.reshape(n * m, d) @ D.astype(X.dtype, copy=False)).reshape(n, m, -1)
    s = np.matmul(XD, w.astype(X.dtype, copy=False)[:, :, None])
    c = np.matmul(np.swapaxes(s, 1, 2), X)[:, 0, :]
    return c.astype(np.float64, copy=False).T @ w


def gram_normal_matvec(G: np.ndarray, w: np.ndarray, D: np.ndarray) -> np.ndarray:
    """:func:`block_normal_matvec` for a Gram block: ``sum_i G_i D w_i w_i^T`` (one pass over ``G``)."""
    n, d, _ = G.shape
    GD = (G.reshape(n * d, d) @ D.astype(G.dtype, copy=False)).reshape(n, d, -1)
    s = np.matmul(GD, w.astype(G.dtype, copy=False)[:, :, None])[:, :, 0]
    return s.astype(np.float64, copy=False).T @ w


def gram_jacobi_diagonal(G: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`block_jacobi_diagonal` for a Gram block: ``sum_i w_ia^2 G_i[p, p]``."""
    return np.diagonal(G, axis1=1, axis2=2).astype(np.float64, copy=False).T @ (w * w)


def solve_exact(A: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Solve ``A vec(U) = vec(V)`` for ``U (d, r)``.

    Cholesky when ``A`` is positive definite; otherwise (some direction of ``U`` not determined by the data, e.g.
    a ``w`` coordinate that is zero for every task) the minimum-norm solution through ``eigh``.
    """
    d, r = V.shape
    A = 0.5 * (A + A.T)
    b = vec(V)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            factor = scipy.linalg.cho_factor(A, lower=True, check_finite=False)
            u = scipy.linalg.cho_solve(factor, b, check_finite=False)
        if np.all(np.isfinite(u)):
            return unvec(u, d, r)
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError, scipy.linalg.LinAlgWarning):
        pass
    vals, vecs = np.linalg.eigh(A)
    keep = vals > 1e-12 * max(vals[-1], 1e-300)
    u = vecs[:, keep] @ ((vecs[:, keep].T @ b) / vals[keep])
    return unvec(u, d, r)


def solve_cg(matvec: Callable[[np.ndarray], np.ndarray], V: np.ndarray, diagonal: np.ndarray,
             U0: np.ndarray, rtol: float = 1e-10, maxiter: int | None = None) -> tuple[np.ndarray, int]:
    """Matrix-free conjugate gradients for ``A vec(U) = vec(V)``.

    Parameters
    ----------
    matvec : callable
        ``D (d, r) -> sum_i X_i^T X_i D w_i w_i^T (d, r)``.
    V : ndarray of shape (d, r)
    diagonal : ndarray of shape (d, r)
        ``diag(A)`` for the Jacobi preconditioner.
    U0 : ndarray of shape (d, r)
        Warm start (the previous ``U``).
    rtol : float
        Relative residual tolerance.
    maxiter : int, optional
        Default ``max(50, min(2 d r, 500))`` (warm-started steps late in a fit need a handful).

    Returns
    -------
    U : ndarray of shape (d, r)
    n_iter : int
        CG iterations run.
    """
    d, r = V.shape
    n = d * r
    op = LinearOperator((n, n), matvec=lambda u: vec(matvec(unvec(u, d, r))), dtype=np.float64)
    diag = vec(diagonal)
    inv = np.where(diag > 0, 1.0 / np.where(diag > 0, diag, 1.0), 1.0)
    precond = LinearOperator((n, n), matvec=lambda u: inv * u, dtype=np.float64)
    count = [0]

    def _count(_xk: np.ndarray) -> None:
        count[0] += 1

    b = vec(V)
    if not np.any(b):
        return np.zeros((d, r)), 0
    u, _info = cg(op, b, x0=vec(U0), rtol=rtol, atol=0.0, maxiter=maxiter or max(50, min(2 * n, 500)),
                  M=precond, callback=_count)
    return unvec(u, d, r), count[0]


def orthonormalize(U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thin QR ``U = Q R`` with ``diag(R) >= 0`` (a unique, deterministic sign convention).

    Returns ``Q (d, r)`` with orthonormal columns and ``R (r, r)``; callers map ``w_i <- R w_i`` so that
    ``U w_i = Q (R w_i)`` is unchanged.
    """
    Q, R = np.linalg.qr(U)
    signs = np.where(np.diagonal(R) < 0, -1.0, 1.0)
    return Q * signs, R * signs[:, None]
