"""The per-task pass over a row block compiled with numba: subspace pursuit fused with the U-step statistics, and
the conjugate-gradient operator of the U step in one pass over ``X``.

This is the ``engine="numba"`` twin of :func:`lorsa.solvers.amht.block_pass` for padded row blocks
(:class:`lorsa.data.TaskBlock`, tasks with few rows: ``m_i < d``, the data-starved case), with the default
per-task solver ``"sp"`` and ``w_i`` fitted (SPEC §2, §3). For every task ``i`` of the block, on its ``m_i`` rows
only (padding is skipped):

    X_i U, U^T X_i^T X_i U, U^T X_i^T y_i                       (one read of X_i, then cache resident)
    subspace pursuit on (w_i, b_i) (:func:`.compiled_pursuit.pursuit_task`: the numpy path's support merge,
        prune, masks, ridge and solves; the normal equations on [X_i U, X_{i,T}] from dot products of columns)
    V    += X_i^T (y_i - X_i b_i) w_i^T                          (right side of the U step)
    diag += (w_i * w_i) ⊗ diag(X_i^T X_i)                        (Jacobi preconditioner of the CG U step)

:func:`row_normal_matvec` is the CG operator ``D -> sum_i X_i^T X_i D w_i w_i^T`` of the U step
(:func:`.shared_step.block_normal_matvec`) reading each ``X_i`` once (``z = X_i (D w_i)``, then ``X_i^T z`` from
cache) where numpy reads ``X`` twice. The exact U step's Kronecker statistics need ``X_i^T X_i``; for row blocks
they stay with numpy (:func:`.shared_step.block_exact_statistics`), which the U-solver choice avoids for rows.

Results agree with the numpy path to round-off (tested). Importing this module imports numba.
"""

from __future__ import annotations

import numpy as np

from .compiled_pursuit import (
    JIT,
    add_outer,
    combine_columns,
    dot,
    is_stuck,
    pursuit_task,
    restart_task,
    task_objective,
    workspace,
)

__all__ = ["row_sp_pass", "row_normal_matvec"]


@JIT
def _row_sp_pass(X, y, sizes, U, w, idx, val, active, ridge, n_steps, swap_rtol, swap_floor, restart_floor, stats,
                 loss, V, diag):  # pragma: no cover - compiled
    n, m, d = X.shape
    r = U.shape[1]
    k = idx.shape[1]
    Ut = np.ascontiguousarray(U.T)
    XUt = np.empty((r, m))
    UGU = np.empty((r, r))
    cU = np.empty(r)
    vectors = np.empty((3, d))
    space = workspace(r, k, m, d)
    res = space[5]
    target = np.empty(m)
    Xt = np.empty(d)
    colsq = np.empty(d)
    w2 = np.empty(r)
    no_gram = np.zeros((1, 1), dtype=X.dtype)
    yy = np.empty(n)
    for i in range(n):
        Xi = X[i]
        yi = y[i]
        mi = sizes[i]
        yy[i] = dot(yi[:mi], yi[:mi])
        _task_products(Xi, yi, mi, Ut, XUt, UGU, cU)
        pursuit_task(True, no_gram, cU, Xi, yi, mi, XUt, Ut, XUt, UGU, cU, w[i], idx[i], val[i], active[i], ridge,
                     n_steps, swap_rtol, swap_floor, yy[i], vectors, space)
        loss[i] = task_objective(True, cU, yy[i], mi, w[i], val[i], ridge, vectors, res)
        _add_task_statistics(Xi, yi, mi, w[i], idx[i], val[i], 1.0, stats, target, Xt, colsq, w2, V, diag)
    if not restart_floor < np.inf or n == 0:
        return
    # restart from b_i = 0 the tasks whose objective ends above restart_floor (a multiple of the previous pass's
    # mean per-task objective, the same for every block), keep what is lower, and correct their share of the
    # statistics (task_step._restart_stuck)
    w1 = np.empty(r)
    idx1 = np.empty(k, dtype=np.int64)
    val1 = np.empty(k)
    for i in range(n):
        if not is_stuck(loss[i], restart_floor, yy[i], active[i]):
            continue
        Xi = X[i]
        yi = y[i]
        mi = sizes[i]
        _task_products(Xi, yi, mi, Ut, XUt, UGU, cU)
        new_loss = restart_task(True, no_gram, cU, Xi, yi, mi, XUt, Ut, XUt, UGU, cU, w[i], idx[i], val[i],
                                active[i], ridge, n_steps, swap_rtol, swap_floor, yy[i], vectors, space, w1, idx1,
                                val1)
        if not new_loss < loss[i]:
            continue
        _add_task_statistics(Xi, yi, mi, w[i], idx[i], val[i], -1.0, stats, target, Xt, colsq, w2, V, diag)
        _add_task_statistics(Xi, yi, mi, w1, idx1, val1, 1.0, stats, target, Xt, colsq, w2, V, diag)
        loss[i] = new_loss
        w[i] = w1
        idx[i] = idx1
        val[i] = val1


@JIT
def _task_products(Xi, yi, mi, Ut, XUt, UGU, cU):  # pragma: no cover - compiled
    """``(X_i U)^T``, ``U^T X_i^T X_i U`` and ``U^T X_i^T y_i`` over the task's ``mi`` rows."""
    r = Ut.shape[0]
    for j in range(mi):
        row = Xi[j]
        for a in range(r):
            XUt[a, j] = dot(row, Ut[a])
    for a in range(r):
        cU[a] = dot(XUt[a, :mi], yi[:mi])
        for b in range(r):
            UGU[a, b] = dot(XUt[a, :mi], XUt[b, :mi])


@JIT
def _add_task_statistics(Xi, yi, mi, wi, idxi, vali, sign, stats, target, Xt, colsq, w2, V, diag):
    # pragma: no cover - compiled
    """A task's share (times ``sign``) of ``V`` (``stats > 0``) and of the Jacobi diagonal (``stats == 1``)."""
    d = Xi.shape[1]
    r = wi.shape[0]
    k = idxi.shape[0]
    if stats > 0:
        for j in range(mi):  # y_i - X_i b_i
            s = yi[j]
            for q in range(k):
                if vali[q] != 0.0:
                    s -= Xi[j, idxi[q]] * vali[q]
            target[j] = s
        Xt[:] = 0.0
        for j in range(mi):
            row = Xi[j]
            tj = target[j]
            for p in range(d):
                Xt[p] += row[p] * tj
        for a in range(r):
            w2[a] = sign * wi[a]
        add_outer(V, Xt, w2)
    if stats == 1:  # the Jacobi diagonal, for the CG U step only
        colsq[:] = 0.0
        for j in range(mi):
            row = Xi[j]
            for p in range(d):
                colsq[p] += row[p] * row[p]
        for a in range(r):
            w2[a] = sign * wi[a] * wi[a]
        add_outer(diag, colsq, w2)


@JIT
def _row_normal_matvec(X, sizes, w, D, out):  # pragma: no cover - compiled
    n, m, d = X.shape
    v = np.empty(d)
    s = np.empty(d)
    for i in range(n):
        Xi = X[i]
        combine_columns(D, w[i], v)
        s[:] = 0.0
        for j in range(sizes[i]):
            row = Xi[j]
            z = dot(row, v)
            for p in range(d):
                s[p] += row[p] * z
        add_outer(out, s, w[i])


def row_sp_pass(X: np.ndarray, y: np.ndarray, sizes: np.ndarray, U: np.ndarray, w: np.ndarray, idx: np.ndarray,
                val: np.ndarray, active: np.ndarray, ridge: float, n_steps: int, stats: str | None,
                swap_rtol: float = -1.0, swap_floor: float = 0.0, restart_floor: float = np.inf
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray | None, np.ndarray | None]:
    """Subspace pursuit over a row block and, optionally, the U step's right side and Jacobi diagonal, compiled.

    Parameters
    ----------
    X : ndarray of shape (n, m, d), float64 or float32
        Padded rows; task ``i`` owns the first ``sizes[i]`` (read in their dtype, arithmetic in float64).
    y : ndarray of shape (n, m)
    sizes : ndarray of shape (n,)
    U : ndarray of shape (d, r)
    w : ndarray of shape (n, r)
    idx, val : ndarrays of shape (n, k)
    active : ndarray of shape (n, k), bool
    ridge : float
    n_steps : int
    stats : {"exact", "cg", None}
        ``"exact"`` or ``"cg"``: return ``V``; ``"cg"`` also ``diag(A)``.
    swap_rtol, swap_floor, restart_floor : float
        The escapes, as in :func:`.gram_pass_compiled.gram_sp_pass`.

    Returns
    -------
    w, idx, val : updated per-task parameters (new arrays)
    loss : float
        Objective after the step (ridge penalty included).
    V : ndarray of shape (d, r) or None
        ``sum_i X_i^T (y_i - X_i b_i) w_i^T``.
    diag : ndarray of shape (d, r) or None
        ``diag(A)`` (``"cg"`` only).
    """
    n, m, d = X.shape
    r = U.shape[1]
    w = np.array(w, dtype=np.float64, order="C")
    idx = np.array(idx, dtype=np.int64, order="C")
    val = np.array(val, dtype=np.float64, order="C")
    code = {None: 0, "cg": 1, "exact": 2}[stats]
    loss = np.zeros(n)
    V = np.zeros((r, d))  # transposed: filled along contiguous rows
    diag = np.zeros((r, d))
    _row_sp_pass(np.ascontiguousarray(X), np.ascontiguousarray(y), np.ascontiguousarray(sizes, dtype=np.int64),
                 np.ascontiguousarray(U, dtype=np.float64), w, idx, val, np.ascontiguousarray(active, dtype=np.bool_),
                 float(ridge), int(n_steps), float(swap_rtol), float(swap_floor), float(restart_floor), code, loss, V,
                 diag)
    return (w, idx, val, float(loss.sum()), V.T.copy() if code else None, diag.T.copy() if code == 1 else None)


def row_normal_matvec(X: np.ndarray, sizes: np.ndarray, w: np.ndarray, D: np.ndarray) -> np.ndarray:
    """``sum_i X_i^T X_i D w_i w_i^T`` over a row block, reading each ``X_i`` once: (d, r) -> (d, r) float64."""
    r = w.shape[1]
    out = np.zeros((r, X.shape[2]))
    _row_normal_matvec(np.ascontiguousarray(X), np.ascontiguousarray(sizes, dtype=np.int64),
                       np.ascontiguousarray(w, dtype=np.float64), np.ascontiguousarray(D, dtype=np.float64), out)
    return out.T.copy()
