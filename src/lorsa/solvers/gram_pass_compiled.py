"""The per-task pass over a Gram block compiled with numba: subspace pursuit and U-step statistics fused.

This is the ``engine="numba"`` twin of :func:`lorsa.solvers.amht.block_pass` for the case it is made for: a
:class:`lorsa.data.GramBlock` (``G_i = X_i^T X_i``, ``c_i = X_i^T y_i``, ``||y_i||^2``), the default per-task solver
``"sp"`` with ``w_i`` fitted, and the exact or CG statistics of the U step (SPEC §2, §3). It computes exactly what
the numpy path computes (:mod:`.task_step` ``_pursuit`` over a :class:`.task_systems.GramSystem`, then
:func:`.shared_step.block_exact_statistics`), in one compiled loop over the tasks of the block:

    for every group of 8 tasks:
        G_i U, U^T G_i U, U^T c_i for the 8 tasks         (one sequential stream over their G_i)
        for each task: subspace pursuit on (w_i, b_i) for ``n_steps`` steps at most, the task stopping when its
                       support is stable (same support merge, prune, masks, ridge and solves as the numpy path);
                       V += (c_i - G_i b_i) w_i^T          (right side of the U step)
        T_ab += sum_i w_ia w_ib G_i  for a <= b            (the Kronecker blocks of A, SPEC §2)

so that an iteration reads each ``G_i`` from memory once, where the numpy path makes about 60 numpy calls per step
over (n, p, p) stacks of tiny systems and reads ``G`` three times (``G U``, gathers, the statistics GEMM).
:func:`gram_normal_matvec` is the CG operator of the U step (used when the exact ``(dr)^3`` solve is too large),
one read of each ``G_i`` per product.

The small systems (``p = r + 2k`` unknowns) are solved by Cholesky; a system whose Cholesky fails or whose pivots
bound its condition number above ``1e10`` is solved by the eigenvalue pseudo-inverse with cut-off ``1e-13``, the
rule of :func:`lorsa.kernels.batched_solve` applied per task rather than per batch. Results agree with the numpy
path to round-off (tested); the same input gives the same output bit for bit.

Importing this module imports numba (an optional dependency: ``pip install "lorsa[fast]"``); the compiled code is
cached on disk next to this file after the first use. The functions release the GIL, so the thread backend runs
blocks in parallel.
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

__all__ = ["gram_sp_pass", "gram_normal_matvec"]

_GROUP = 8  # tasks whose G_i are summed into the statistics together (one read of T per 8 tasks)


@JIT
def _accumulate_statistics(G, w, start, stop, pair_a, pair_b, T):  # pragma: no cover - compiled
    """``T[pair] += sum_{i in [start, stop)} w_ia w_ib G_i`` (flattened ``G_i``), 8 tasks per read of ``T``."""
    n_pairs = pair_a.shape[0]
    dd = T.shape[1]
    i = start
    while i + 8 <= stop:
        G0, G1, G2, G3, G4, G5, G6, G7 = G[i], G[i + 1], G[i + 2], G[i + 3], G[i + 4], G[i + 5], G[i + 6], G[i + 7]
        for pp in range(n_pairs):
            a = pair_a[pp]
            b = pair_b[pp]
            c0 = w[i, a] * w[i, b]
            c1 = w[i + 1, a] * w[i + 1, b]
            c2 = w[i + 2, a] * w[i + 2, b]
            c3 = w[i + 3, a] * w[i + 3, b]
            c4 = w[i + 4, a] * w[i + 4, b]
            c5 = w[i + 5, a] * w[i + 5, b]
            c6 = w[i + 6, a] * w[i + 6, b]
            c7 = w[i + 7, a] * w[i + 7, b]
            Tp = T[pp]
            for e in range(dd):
                Tp[e] += ((c0 * G0[e] + c1 * G1[e]) + (c2 * G2[e] + c3 * G3[e])
                          + ((c4 * G4[e] + c5 * G5[e]) + (c6 * G6[e] + c7 * G7[e])))
        i += 8
    while i < stop:
        Gi = G[i]
        for pp in range(n_pairs):
            c0 = w[i, pair_a[pp]] * w[i, pair_b[pp]]
            Tp = T[pp]
            for e in range(dd):
                Tp[e] += c0 * Gi[e]
        i += 1


@JIT
def _add_rhs(Gi, ci, wi, idxi, vali, sign, target, V):  # pragma: no cover - compiled
    """``V^T += sign w_i (c_i - G_i b_i)^T``: a task's share of the U step's right side."""
    d = ci.shape[0]
    for j in range(d):
        target[j] = ci[j]
    for q in range(idxi.shape[0]):
        v = vali[q]
        if v != 0.0:
            row = Gi[idxi[q]]
            for j in range(d):
                target[j] -= row[j] * v
    if sign == 1.0:
        add_outer(V, target, wi)
    else:
        add_outer(V, target, sign * wi)


@JIT
def _add_task_statistics(Gi_flat, wi, sign, pair_a, pair_b, T):  # pragma: no cover - compiled
    """``T[pair] += sign w_ia w_ib G_i`` for one task (a restarted task's correction)."""
    for pp in range(pair_a.shape[0]):
        c0 = sign * wi[pair_a[pp]] * wi[pair_b[pp]]
        Tp = T[pp]
        for e in range(Gi_flat.shape[0]):
            Tp[e] += c0 * Gi_flat[e]


@JIT
def _gram_sp_pass(G, Gflat, c, yy, U, w, idx, val, active, ridge, n_steps, swap_rtol, swap_floor, restart_floor, stats,
                  pair_a, pair_b, loss, V, T):  # pragma: no cover - compiled
    n, d, _ = G.shape
    r = U.shape[1]
    k = idx.shape[1]
    Ut = np.ascontiguousarray(U.T)
    GUt = np.empty((_GROUP, r, d))
    UGU = np.empty((_GROUP, r, r))
    cU = np.empty((_GROUP, r))
    vectors = np.empty((3, d))
    space = workspace(r, k, 0, d)
    no_rows = np.zeros((1, 1), dtype=G.dtype)
    no_y = np.zeros(1)
    for start in range(0, n, _GROUP):
        stop = min(start + _GROUP, n)
        # G_i U for the group first: one sequential stream over the group's G_i (memory prefetch friendly),
        # which then stay cache resident for the pursuit and the statistics
        for i in range(start, stop):
            Gi = G[i]
            g = i - start
            for j in range(d):  # (G_i U)^T, one dot product per entry along contiguous rows
                for a in range(r):
                    GUt[g, a, j] = dot(Gi[j], Ut[a])
            for a in range(r):
                cU[g, a] = dot(c[i], Ut[a])
                for b in range(r):
                    UGU[g, a, b] = dot(Ut[a], GUt[g, b])
        for i in range(start, stop):
            Gi = G[i]
            ci = c[i]
            g = i - start
            pursuit_task(False, Gi, ci, no_rows, no_y, 0, no_y.reshape(1, 1), Ut, GUt[g], UGU[g], cU[g], w[i],
                         idx[i], val[i], active[i], ridge, n_steps, swap_rtol, swap_floor, yy[i], vectors, space)
            loss[i] = task_objective(False, ci, yy[i], 0, w[i], val[i], ridge, vectors, no_y)
            if stats > 0:
                _add_rhs(Gi, ci, w[i], idx[i], val[i], 1.0, vectors[2], V)
        if stats > 1:
            _accumulate_statistics(Gflat, w, start, stop, pair_a, pair_b, T)
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
        Gi = G[i]
        ci = c[i]
        for j in range(d):
            for a in range(r):
                GUt[0, a, j] = dot(Gi[j], Ut[a])
        for a in range(r):
            cU[0, a] = dot(ci, Ut[a])
            for b in range(r):
                UGU[0, a, b] = dot(Ut[a], GUt[0, b])
        new_loss = restart_task(False, Gi, ci, no_rows, no_y, 0, no_y.reshape(1, 1), Ut, GUt[0], UGU[0], cU[0], w[i],
                                idx[i], val[i], active[i], ridge, n_steps, swap_rtol, swap_floor, yy[i], vectors, space,
                                w1, idx1, val1)
        if not new_loss < loss[i]:
            continue
        if stats > 0:
            _add_rhs(Gi, ci, w[i], idx[i], val[i], -1.0, vectors[2], V)
            _add_rhs(Gi, ci, w1, idx1, val1, 1.0, vectors[2], V)
        if stats > 1:
            _add_task_statistics(Gflat[i], w[i], -1.0, pair_a, pair_b, T)
            _add_task_statistics(Gflat[i], w1, 1.0, pair_a, pair_b, T)
        loss[i] = new_loss
        w[i] = w1
        idx[i] = idx1
        val[i] = val1


@JIT
def _gram_normal_matvec(G, w, D, out):  # pragma: no cover - compiled
    n, d, _ = G.shape
    v = np.empty(d)
    s = np.empty(d)
    for i in range(n):
        Gi = G[i]
        combine_columns(D, w[i], v)
        for p in range(d):
            s[p] = dot(Gi[p], v)
        add_outer(out, s, w[i])


def gram_normal_matvec(G: np.ndarray, w: np.ndarray, D: np.ndarray) -> np.ndarray:
    """The CG operator of the U step over a Gram block, ``sum_i G_i D w_i w_i^T``, reading each ``G_i`` once:
    (d, r) -> (d, r) float64 (:func:`.shared_step.gram_normal_matvec` is the numpy twin)."""
    out = np.zeros((w.shape[1], G.shape[1]))
    _gram_normal_matvec(np.ascontiguousarray(G), np.ascontiguousarray(w, dtype=np.float64),
                        np.ascontiguousarray(D, dtype=np.float64), out)
    return out.T.copy()


def gram_sp_pass(G: np.ndarray, c: np.ndarray, yy: np.ndarray, U: np.ndarray, w: np.ndarray, idx: np.ndarray,
                 val: np.ndarray, active: np.ndarray, ridge: float, n_steps: int, stats: str | None,
                 swap_rtol: float = -1.0, swap_floor: float = 0.0, restart_floor: float = np.inf
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray | None, np.ndarray | None]:
    """Subspace pursuit over a Gram block and, optionally, its U-step statistics, compiled.

    Parameters
    ----------
    G : ndarray of shape (n, d, d), float64 or float32
        Per-task ``X_i^T X_i`` (read in its dtype, all arithmetic in float64).
    c : ndarray of shape (n, d)
        Per-task ``X_i^T y_i``.
    yy : ndarray of shape (n,)
        Per-task ``||y_i||^2``.
    U : ndarray of shape (d, r)
    w : ndarray of shape (n, r)
    idx, val : ndarrays of shape (n, k)
        Slots of ``b_i`` at entry.
    active : ndarray of shape (n, k), bool
        Slot ``q`` of task ``i`` may be non-zero.
    ridge : float
    n_steps : int
        Subspace pursuit steps at most (a task stops earlier when its support is stable).
    stats : {"exact", "cg", None}
        ``"exact"``: return ``V`` and the Kronecker matrix ``A``; ``"cg"``: ``V`` only; None: neither.
    swap_rtol : float
        The exchange step of a task whose support is stable (``>= 0``: its relative gain threshold; negative: off).
    swap_floor : float
        Only tasks whose objective exceeds it try the exchange step (:func:`.task_step.escape_floors`).
    restart_floor : float
        Restart from ``b_i = 0`` tasks whose objective ends above it (inf: off; :func:`.task_step.escape_floors`).

    Returns
    -------
    w, idx, val : updated per-task parameters (new arrays)
    loss : float
        ``sum_i 1/2 ||y_i - X_i theta_i||^2`` (+ the ridge penalty) after the step.
    A : ndarray of shape (dr, dr) or None
        ``sum_i (w_i w_i^T) ⊗ G_i`` in column-major vec order (as :func:`.shared_step.block_exact_statistics`).
    V : ndarray of shape (d, r) or None
        ``sum_i (c_i - G_i b_i) w_i^T``.
    """
    n, d, _ = G.shape
    r = U.shape[1]
    w = np.array(w, dtype=np.float64, order="C")
    idx = np.array(idx, dtype=np.int64, order="C")
    val = np.array(val, dtype=np.float64, order="C")
    code = {None: 0, "cg": 1, "exact": 2}[stats]
    pair_a, pair_b = (np.asarray(p, dtype=np.int64) for p in np.triu_indices(r))
    loss = np.zeros(n)
    V = np.zeros((r, d))  # V^T, filled along contiguous rows
    T = np.zeros((pair_a.shape[0] if code == 2 else 0, d * d))
    G = np.ascontiguousarray(G)
    _gram_sp_pass(G, G.reshape(n, d * d), np.ascontiguousarray(c, dtype=np.float64),
                  np.ascontiguousarray(yy, dtype=np.float64), np.ascontiguousarray(U, dtype=np.float64), w, idx, val,
                  np.ascontiguousarray(active, dtype=np.bool_), float(ridge), int(n_steps), float(swap_rtol),
                  float(swap_floor), float(restart_floor), code, pair_a, pair_b, loss, V, T)
    A = None
    if code == 2:
        blocks = np.empty((r, d, r, d))
        for pair, (a, b) in enumerate(zip(pair_a, pair_b, strict=True)):
            Tp = T[pair].reshape(d, d)
            blocks[a, :, b, :] = Tp
            blocks[b, :, a, :] = Tp.T
        A = blocks.reshape(r * d, r * d)
    return w, idx, val, float(loss.sum()), A, (V.T.copy() if code else None)
