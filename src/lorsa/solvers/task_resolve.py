"""Re-solve every task's ``(w_i, b_i)`` with a fitted ``U`` and support held fixed, under other ridges.

Used by :class:`lorsa.LRSRegressorCV` to score a whole ridge grid on one AMHT-LRS fit: the ridge acts on the
per-task solve, so a candidate ridge is scored by re-solving the per-task least squares ``[X_i U, X_{i,S_i}]
(w_i; b_{i,S_i}) ~ y_i`` (``S_i`` the fitted support of ``b_i``) with that ridge: one pass over the rows builds every
task's ``(r + k) x (r + k)`` normal equations, then each ridge is one batched solve (no ``U`` iterations, no
pursuit; at the fit's own ridge it returns the fit's converged ``(w_i, b_i)``). Only the winner is refitted in full.

A *task-size-adapted* ridge ``lambda_i = lambda * (m_i / m_med) ** alpha`` (``m_i`` the task's training rows,
``m_med`` their median) is the same solve with ``lambda_i`` on the diagonal of task ``i``. Everything is batched over
tasks: no loop over tasks.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..kernels import batched_solve

__all__ = ["TaskNormals", "support_normals", "task_ridges", "solve_normals"]

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
    """
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


def task_ridges(counts: np.ndarray, ridge: float, exponent: float, median_rows: float) -> np.ndarray:
    """``lambda_i = ridge * (m_i / m_med) ** exponent`` (``ridge`` for every task when ``exponent = 0``)."""
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    if exponent == 0.0:
        return np.full(counts.shape[0], float(ridge))
    return float(ridge) * (counts / max(float(median_rows), 1e-300)) ** float(exponent)


def solve_normals(normals: TaskNormals, ridges: np.ndarray, d: int) -> tuple[np.ndarray, sp.csc_matrix]:
    """``(W (t, r), B (d, t))`` solving every task's system with its own ridge ``ridges[i]`` on the diagonal."""
    t, p, _ = normals.G.shape
    r = normals.rank
    eye = np.eye(p)
    off = ~normals.mask
    G = normals.G + ridges[:, None, None] * eye
    # pinned slots: identity row and column, zero right-hand side -> coefficient 0
    G = np.where((off[:, :, None] | off[:, None, :]), 0.0, G) + off[:, :, None] * eye
    c = np.where(off, 0.0, normals.c)
    theta = batched_solve(G, c)
    W = theta[:, :r]
    vals = np.where(off[:, r:], 0.0, theta[:, r:])
    k = vals.shape[1]
    B = sp.csc_matrix((vals.reshape(-1), (normals.idx.reshape(-1), np.repeat(np.arange(t), k))), shape=(d, t))
    B.eliminate_zeros()
    B.sort_indices()
    return W, B
