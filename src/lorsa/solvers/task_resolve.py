"""Re-solve every task's ``(w_i, b_i)`` with a fitted ``U`` and support held fixed, under other ridges.

Used by :class:`lorsa.LRSRegressorCV` to score a whole ridge grid on one AMHT-LRS fit: the ridge acts on the
per-task solve, so a candidate ridge is scored by re-solving the per-task least squares ``[X_i U, X_{i,S_i}]
(w_i; b_{i,S_i}) ~ y_i`` (``S_i`` the fitted support of ``b_i``) with that ridge: one pass over the rows builds every
task's ``(r + k) x (r + k)`` normal equations, then each ridge is one batched solve (no ``U`` iterations, no
pursuit; at the fit's own ridge it returns the fit's converged ``(w_i, b_i)``). Only the winner is refitted in full.

A *task-size-adapted* ridge ``lambda_i = lambda * (m_i / m_med) ** alpha`` (``m_i`` the task's training rows,
``m_med`` their median) is the same solve with ``lambda_i`` on the diagonal of task ``i``. Everything is batched over
tasks: no loop over tasks.

When a task's Gram matrix is no larger than its rows, the normal equations of *every* candidate come from the
per-task moments ``G_i = X_i^T X_i``, ``c_i = X_i^T y_i``, ``||y_i||^2`` (:class:`TaskMoments`, one pass over the
rows per data set): ``[X_i U, X_{i,S}]^T [X_i U, X_{i,S}] = [[U^T G_i U, (G_i U)_S^T], [(G_i U)_S, G_{i,SS}]]`` and
a shared offset ``theta_0`` only shifts ``c_i`` to ``c_i - G_i theta_0``: O(t d^2 r) per candidate instead of
O(N (r + k)^2).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..data import GramBlock, RaggedTasks
from ..kernels import batched_solve

__all__ = ["TaskMoments", "TaskNormals", "support_normals", "moments_normals", "moments_residual_block",
           "task_ridges", "solve_coefficients", "solve_normals", "support_features"]

_CHUNK_ROWS = 8192


class TaskNormals:
    """Every task's normal equations on ``[X_i U, X_{i,S_i}]``: ``G (t, p, p)``, ``c (t, p)``, ``mask (t, p)``
    (slots without a support coordinate are pinned to 0), ``idx (t, k)`` the support, ``rank``."""

    def __init__(self, G: np.ndarray, c: np.ndarray, mask: np.ndarray, idx: np.ndarray, rank: int) -> None:
        self.G, self.c, self.mask, self.idx, self.rank = G, c, mask, idx, rank


def _support_slots(B: sp.spmatrix, n_tasks: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``idx (t, k)`` and ``mask (t, k)`` of the non-zeros of every column of ``B`` (d, t)."""
    B = sp.csc_matrix(B)
    nnz = np.diff(B.indptr)
    if k == 0 or B.nnz == 0:
        return np.zeros((n_tasks, k), dtype=np.int64), np.zeros((n_tasks, k), dtype=bool)
    if nnz.max() > k:
        raise ValueError(f"B has a column with {int(nnz.max())} non-zeros, more than sparsity k={k}")
    cols = np.repeat(np.arange(n_tasks), nnz)
    slot = np.arange(B.nnz) - np.repeat(B.indptr[:-1], nnz)
    idx = np.zeros((n_tasks, k), dtype=np.int64)
    mask = np.zeros((n_tasks, k), dtype=bool)
    idx[cols, slot] = B.indices
    mask[cols, slot] = True
    return idx, mask


def support_normals(X: np.ndarray, y: np.ndarray, index: np.ndarray, n_tasks: int, U: np.ndarray,
                    B: sp.spmatrix, sparsity: int) -> TaskNormals:
    """The normal equations of every task's ``(w_i, b_{i,S_i})`` with ``U`` and the support of ``B`` fixed.

    Parameters
    ----------
    X, y : ndarray of shape (N, d), (N,)
    index : ndarray of int, shape (N,)
        Task of every row, ``0 .. n_tasks - 1``.
    n_tasks : int
    U : ndarray of shape (d, r)
    B : sparse matrix of shape (d, n_tasks)
        The fitted ``b_i`` (at most ``sparsity`` non-zeros per column).
    sparsity : int

    Read from the per-task moments (:class:`TaskMoments`, one pass over the rows) where they are no larger than
    the rows, else accumulated over chunks of rows.
    """
    if TaskMoments.worthwhile(X.shape[0], n_tasks, X.shape[1]):
        return moments_normals(TaskMoments.from_rows(X, y, index, n_tasks), None, U, B, sparsity)
    return _rows_normals(X, y, index, n_tasks, U, B, sparsity)


def _rows_normals(X: np.ndarray, y: np.ndarray, index: np.ndarray, n_tasks: int, U: np.ndarray,
                  B: sp.spmatrix, sparsity: int) -> TaskNormals:
    """:func:`support_normals` accumulated over chunks of rows (``T @ (F_j F_j^T)``, ``T`` the row-to-task map)."""
    r = U.shape[1]
    idx, smask = _support_slots(B, n_tasks, sparsity)
    p = r + sparsity
    G = np.zeros((n_tasks, p, p))
    c = np.zeros((n_tasks, p))
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        Xc, yc, ic = X[start:start + _CHUNK_ROWS], y[start:start + _CHUNK_ROWS], index[start:start + _CHUNK_ROWS]
        F = np.empty((Xc.shape[0], p))
        F[:, :r] = Xc @ U
        if sparsity:
            F[:, r:] = np.take_along_axis(Xc, idx[ic], axis=1) * smask[ic]
        T = sp.csr_matrix((np.ones(ic.shape[0]), (ic, np.arange(ic.shape[0]))), shape=(n_tasks, ic.shape[0]))
        G += (T @ (F[:, :, None] * F[:, None, :]).reshape(ic.shape[0], p * p)).reshape(n_tasks, p, p)
        c += T @ (F * yc[:, None])
    mask = np.hstack([np.ones((n_tasks, r), dtype=bool), smask])
    return TaskNormals(G, c, mask, idx, r)


class TaskMoments:
    """Every task's ``G_i = X_i^T X_i`` (t, d, d), ``c_i = X_i^T y_i`` (t, d), ``||y_i||^2`` (t,) and ``m_i`` (t,).

    Built once per data set (the Gram layout of :mod:`lorsa.data`, blocks of similar-size tasks scattered into one
    stack), then every candidate of a search reads its normal equations from it (:func:`moments_normals`).
    """

    #: The moments are used when their ``t d^2`` numbers are at most this many times the ``N d`` of the rows.
    max_size_ratio = 2.0
    max_bytes = 2**30

    def __init__(self, G: np.ndarray, c: np.ndarray, yy: np.ndarray, counts: np.ndarray) -> None:
        self.G, self.c, self.yy, self.counts = G, c, yy, counts

    @classmethod
    def worthwhile(cls, n_rows: int, n_tasks: int, d: int) -> bool:
        """Whether the moments are no larger than ``max_size_ratio`` times the rows (and below ``max_bytes``)."""
        size = n_tasks * d * d
        return size <= cls.max_size_ratio * n_rows * d and 8 * size <= cls.max_bytes

    @classmethod
    def from_rows(cls, X: np.ndarray, y: np.ndarray, index: np.ndarray, n_tasks: int) -> TaskMoments:
        """One pass over the rows: ``X (N, d)``, ``y (N,)``, ``index (N,)`` in ``0 .. n_tasks - 1``."""
        d = X.shape[1]
        G, c, yy = np.zeros((n_tasks, d, d)), np.zeros((n_tasks, d)), np.zeros(n_tasks)
        data = RaggedTasks.from_arrays(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64), index,
                                       n_tasks, layout="gram")
        for block in data.blocks:  # a loop over blocks of tasks, each a batched scatter
            G[block.task_ids], c[block.task_ids], yy[block.task_ids] = block.G, block.c, block.yy
        return cls(G, c, yy, np.bincount(index, minlength=n_tasks))

    def shifted(self, theta0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``c_i`` and ``||y_i||^2`` of the targets ``y - X theta_0`` (``theta_0`` (d,) or None for 0)."""
        if theta0 is None or not np.any(theta0):
            return self.c, self.yy
        G0 = self.G @ theta0
        return self.c - G0, self.yy - 2.0 * self.c @ theta0 + G0 @ theta0


def moments_normals(moments: TaskMoments, theta0: np.ndarray | None, U: np.ndarray, B: sp.spmatrix,
                    sparsity: int) -> TaskNormals:
    """:func:`support_normals` of the targets ``y - X theta_0`` from the per-task moments (same numbers up to
    round-off, no pass over the rows)."""
    t, r = moments.G.shape[0], U.shape[1]
    c, _ = moments.shifted(theta0)
    idx, smask = _support_slots(B, t, sparsity)
    GU = moments.G @ U                                                      # (t, d, r)
    p = r + sparsity
    G = np.zeros((t, p, p))
    G[:, :r, :r] = np.matmul(U.T, GU)
    rhs = np.zeros((t, p))
    rhs[:, :r] = c @ U
    if sparsity:
        m = smask.astype(np.float64)
        cross = np.take_along_axis(GU, idx[:, :, None], axis=1) * m[:, :, None]  # (t, k, r)
        G[:, r:, :r] = cross
        G[:, :r, r:] = np.swapaxes(cross, 1, 2)
        rows = np.take_along_axis(moments.G, idx[:, :, None], axis=1)           # (t, k, d)
        G[:, r:, r:] = np.take_along_axis(rows, idx[:, None, :], axis=2) * m[:, :, None] * m[:, None, :]
        rhs[:, r:] = np.take_along_axis(c, idx, axis=1) * m
    mask = np.hstack([np.ones((t, r), dtype=bool), smask])
    return TaskNormals(G, rhs, mask, idx, r)


def moments_residual_block(moments: TaskMoments, theta0: np.ndarray | None, U: np.ndarray, B: sp.spmatrix
                           ) -> GramBlock:
    """The Gram block of ``Z = X U`` against ``y - X theta_0 - X b_i`` (the empirical-Bayes fit of ``w_i``,
    :mod:`lorsa.solvers.random_effects`) from the moments: ``U^T G_i U``, ``U^T (c_i - G_i b_i)``,
    ``||y_i||^2 - 2 b_i^T c_i + b_i^T G_i b_i`` for every task with rows."""
    c, yy = moments.shifted(theta0)
    Bd = np.asarray(sp.csc_matrix(B).toarray().T)                              # (t, d): b_i, dense
    Gb = np.einsum("tij,tj->ti", moments.G, Bd)
    keep = np.flatnonzero(moments.counts > 0)
    GU = moments.G[keep] @ U
    return GramBlock(task_ids=keep, sizes=moments.counts[keep].astype(np.int64), G=np.matmul(U.T, GU),
                     c=(c[keep] - Gb[keep]) @ U,
                     yy=yy[keep] - 2.0 * np.einsum("ti,ti->t", Bd[keep], c[keep])
                     + np.einsum("ti,ti->t", Bd[keep], Gb[keep]))


def support_features(X: np.ndarray, index: np.ndarray, U: np.ndarray, normals: TaskNormals) -> np.ndarray:
    """``F (N, r + k)``: every row's ``[x_j^T U, x_{j,S_i}]`` (pinned slots 0), so that the prediction of the
    coefficients ``theta (t, r + k)`` of :func:`solve_coefficients` is ``sum(F * theta[index], axis=1)``."""
    r, k = normals.rank, normals.idx.shape[1]
    F = np.empty((X.shape[0], r + k))
    F[:, :r] = X @ U
    if k:
        F[:, r:] = np.take_along_axis(X, normals.idx[index], axis=1) * normals.mask[index, r:]
    return F


def task_ridges(counts: np.ndarray, ridge: float, exponent: float, median_rows: float) -> np.ndarray:
    """``lambda_i = ridge * (m_i / m_med) ** exponent`` (``ridge`` for every task when ``exponent = 0``)."""
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    if exponent == 0.0:
        return np.full(counts.shape[0], float(ridge))
    return float(ridge) * (counts / max(float(median_rows), 1e-300)) ** float(exponent)


def solve_coefficients(normals: TaskNormals, ridges: np.ndarray) -> np.ndarray:
    """``theta (t, r + k)``: every task's ``(w_i, b_{i,S_i})`` with its own ridge ``ridges[i]`` on the diagonal
    (pinned slots 0)."""
    p = normals.G.shape[1]
    eye = np.eye(p)
    off = ~normals.mask
    G = normals.G + ridges[:, None, None] * eye
    # pinned slots: identity row and column, zero right-hand side -> coefficient 0
    G = np.where((off[:, :, None] | off[:, None, :]), 0.0, G) + off[:, :, None] * eye
    c = np.where(off, 0.0, normals.c)
    return np.where(off, 0.0, batched_solve(G, c))


def solve_normals(normals: TaskNormals, ridges: np.ndarray, d: int) -> tuple[np.ndarray, sp.csc_matrix]:
    """``(W (t, r), B (d, t))`` solving every task's system with its own ridge ``ridges[i]`` on the diagonal."""
    t, r = normals.G.shape[0], normals.rank
    theta = solve_coefficients(normals, ridges)
    W = theta[:, :r]
    vals = theta[:, r:]
    k = vals.shape[1]
    B = sp.csc_matrix((vals.reshape(-1), (normals.idx.reshape(-1), np.repeat(np.arange(t), k))), shape=(d, t))
    B.eliminate_zeros()
    B.sort_indices()
    return W, B
