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

The small systems (``p = r + 2k`` unknowns) are solved by Cholesky; a system whose Cholesky fails or whose pivots
bound its condition number above ``1e10`` is solved by the eigenvalue pseudo-inverse with cut-off ``1e-13``, the
rule of :func:`lorsa.kernels.batched_solve` applied per task rather than per batch. Results agree with the numpy
path to round-off (tested); the same input gives the same output bit for bit.

Importing this module imports numba (an optional dependency: ``pip install "lorsa[fast]"``); the compiled code is
cached on disk next to this file after the first use. The functions release the GIL, so the thread backend runs
blocks in parallel.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["gram_sp_pass"]

# Re-association and fused multiply-add for vectorised reductions; NaN/inf keep their IEEE meaning.
_JIT = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "arcp", "nsz"})

_GROUP = 8  # tasks whose G_i are summed into the statistics together (one read of T per 8 tasks)


@_JIT
def _dot(x, y):  # pragma: no cover - compiled
    """``sum_j x_j y_j`` (vectorised: re-association allowed)."""
    s = 0.0
    for j in range(x.shape[0]):
        s += x[j] * y[j]
    return s


@_JIT
def _topk_abs(v, k, out, mag):  # pragma: no cover - compiled
    """``out[:k]`` = indices of the ``k`` largest ``|v|``, by decreasing magnitude, ties by lower index (one scan
    keeping a sorted list; ``mag`` is scratch of length ``k``)."""
    if k == 0:
        return
    count = 0
    for p in range(v.shape[0]):
        a = abs(v[p])
        if count == k and not a > mag[k - 1]:
            continue
        j = count if count < k else k - 1  # slot freed for the new entry
        while j > 0 and a > mag[j - 1]:  # strict: equal magnitudes keep the lower index first
            mag[j] = mag[j - 1]
            out[j] = out[j - 1]
            j -= 1
        mag[j] = a
        out[j] = p
        if count < k:
            count += 1


@_JIT
def _cholesky(M, p, ridge, L, inv):  # pragma: no cover - compiled
    """Cholesky ``L L^T = M[:p, :p] + ridge I`` (lower triangle of ``M`` read) with ``inv = 1 / diag(L)``; False
    when it fails or its pivots bound the condition number above 1e10 (then use :func:`_solve_eigh`)."""
    for j in range(p):
        s = M[j, j] + ridge
        for q in range(j):
            s -= L[j, q] * L[j, q]
        if not s > 0.0:
            return False
        L[j, j] = np.sqrt(s)
        inv[j] = 1.0 / L[j, j]
        for i in range(j + 1, p):
            s2 = M[i, j]
            for q in range(j):
                s2 -= L[i, q] * L[j, q]
            L[i, j] = s2 * inv[j]
    if p == 0:
        return True
    lo = L[0, 0]
    hi = L[0, 0]
    for j in range(1, p):
        lo = min(lo, L[j, j])
        hi = max(hi, L[j, j])
    return lo > 1e-5 * max(hi, 1e-300)


@_JIT
def _cholesky_solve(L, inv, rhs, p, x):  # pragma: no cover - compiled
    """``x[:p]`` solving ``L L^T x = rhs[:p]`` (the leading ``p`` rows of a factor solve the leading system)."""
    for i in range(p):
        s = rhs[i]
        for q in range(i):
            s -= L[i, q] * x[q]
        x[i] = s * inv[i]
    for i in range(p - 1, -1, -1):
        s = x[i]
        for q in range(i + 1, p):
            s -= L[q, i] * x[q]
        x[i] = s * inv[i]


@_JIT
def _solve_eigh(M, rhs, p, ridge, x):  # pragma: no cover - compiled
    """Minimum-norm solution through the eigendecomposition, eigenvalues below ``1e-13`` of the largest dropped
    (the fallback of :func:`lorsa.kernels.batched_solve`)."""
    A = np.empty((p, p))
    for i in range(p):
        for j in range(p):
            A[i, j] = M[max(i, j), min(i, j)]
        A[i, i] += ridge
    vals, vecs = np.linalg.eigh(A)
    cutoff = 1e-13 * max(vals[p - 1], 1e-300)
    for j in range(p):
        x[j] = 0.0
    for q in range(p):
        if vals[q] > cutoff:
            s = 0.0
            for i in range(p):
                s += vecs[i, q] * rhs[i]
            s /= vals[q]
            for j in range(p):
                x[j] += vecs[j, q] * s


@_JIT
def _solve_psd(M, rhs, p, ridge, L, inv, x):  # pragma: no cover - compiled
    """``x[:p]`` solving ``(M[:p, :p] + ridge I) x = rhs[:p]`` for a symmetric PSD ``M`` (lower triangle read);
    returns whether ``L, inv`` hold a usable Cholesky factor."""
    if _cholesky(M, p, ridge, L, inv):
        _cholesky_solve(L, inv, rhs, p, x)
        return True
    _solve_eigh(M, rhs, p, ridge, x)
    return False


@_JIT
def _state(Gi, GUt, Ut, w, idx, val, theta, Gtheta):  # pragma: no cover - compiled
    """``theta = U w + b`` and ``G_i theta = (G_i U) w + sum_q G_i[idx_q, :] val_q`` (``G_i`` symmetric;
    ``Ut = U^T``, ``GUt = (G_i U)^T``, both (r, d))."""
    r, d = Ut.shape
    theta[:] = 0.0
    Gtheta[:] = 0.0
    for a in range(r):
        wa = w[a]
        u = Ut[a]
        gu = GUt[a]
        for p in range(d):
            theta[p] += u[p] * wa
            Gtheta[p] += gu[p] * wa
    for q in range(idx.shape[0]):
        v = val[q]
        if v != 0.0:
            j = idx[q]
            theta[j] += v
            row = Gi[j]
            for p in range(d):
                Gtheta[p] += row[p] * v


@_JIT
def _mask(M, rhs, offset, p, mask):  # pragma: no cover - compiled
    """Decouple masked slots ``offset + q``: zero row and column, unit diagonal, zero right side."""
    for q in range(mask.shape[0]):
        if not mask[q]:
            j = offset + q
            for i in range(p):
                M[i, j] = 0.0
                M[j, i] = 0.0
            M[j, j] = 1.0
            rhs[j] = 0.0


@_JIT
def _same_support(old, new, act):  # pragma: no cover - compiled
    """Whether the active slots of ``old`` and ``new`` hold the same multiset of indices."""
    k = act.shape[0]
    for q in range(k):
        if act[q]:
            n_new = 0
            n_old = 0
            for s in range(k):
                if act[s]:
                    n_new += new[s] == new[q]
                    n_old += old[s] == new[q]
            if n_new != n_old:
                return False
    return True  # equal counts of every index of new, and both hold sum(act) entries


@_JIT
def _pursuit_task(Gi, ci, Ut, GUt, UGU, cU, w, idx, val, act, ridge, n_steps, scratch_f, scratch_i, scratch_m,
                  umask, cur):  # pragma: no cover - compiled
    """Subspace pursuit for one task, in place on ``w, idx, val`` (see :func:`lorsa.solvers.task_step._pursuit`).
    Leaves ``theta, G theta`` of the final iterate in ``scratch_f[0], scratch_f[1]``."""
    r, d = Ut.shape
    k = idx.shape[0]
    pu = r + 2 * k
    pk = r + k
    theta = scratch_f[0]
    Gtheta = scratch_f[1]
    g = scratch_f[2]
    Mu = scratch_m[0]
    Mk = scratch_m[1]
    L = scratch_m[2]
    ru = scratch_m[3, 0]
    rk = scratch_m[3, 1]
    sol = scratch_m[3, 2]
    uval = scratch_m[3, 3, :2 * k]
    inv = scratch_m[3, 5]
    union = scratch_i[0, :2 * k]
    extra = scratch_i[1, :k]
    keep = scratch_i[2, :k]
    new_idx = scratch_i[3, :k]
    mag = scratch_m[3, 4, :k]
    _state(Gi, GUt, Ut, w, idx, val, theta, Gtheta)
    for _ in range(n_steps):
        changed_mask = False
        for q in range(k):
            cur[q] = act[q] and val[q] != 0.0
            if cur[q] != act[q]:
                changed_mask = True
        for p in range(d):
            g[p] = ci[p] - Gtheta[p]
        if ridge != 0.0:
            for q in range(k):
                if cur[q]:
                    g[idx[q]] -= ridge * val[q]
        for q in range(k):
            if cur[q]:
                g[idx[q]] = 0.0
        _topk_abs(g, k, extra, mag)
        for q in range(k):
            union[q] = idx[q]
            umask[q] = cur[q]
            taken = False
            for s in range(k):
                if cur[s] and extra[q] == idx[s]:
                    taken = True
            union[k + q] = extra[q]
            umask[k + q] = act[q] and not taken
        for a in range(r):
            ru[a] = cU[a]
            for b in range(r):
                Mu[a, b] = UGU[a, b]
        for s in range(2 * k):  # lower triangle of [[U^T G U, .], [G_{T,:} U, G_{T,T}]] (T = union)
            js = union[s]
            ru[r + s] = ci[js]
            for a in range(r):
                Mu[r + s, a] = GUt[a, js]
            row = Gi[js]
            for u in range(s + 1):
                Mu[r + s, r + u] = row[union[u]]
        _mask(Mu, ru, r, pu, umask)
        factored = _solve_psd(Mu, ru, pu, ridge, L, inv, sol)
        for s in range(2 * k):
            uval[s] = sol[r + s] if umask[s] else 0.0
        _topk_abs(uval, k, keep, mag)
        stable = factored
        for q in range(k):
            stable = stable and cur[q] and keep[q] < k
        if stable:
            # the kept slots are the current support, the leading unknowns of the union system: its factor's
            # leading block solves the restricted system (same equations as the gather below)
            _cholesky_solve(L, inv, ru, pk, rk)
            for a in range(r):
                sol[a] = rk[a]
            for q in range(k):
                sol[r + q] = rk[r + keep[q]]
        else:
            for x in range(pk):
                sx = x if x < r else r + keep[x - r]
                rk[x] = ru[sx]
                for y in range(x + 1):
                    sy = y if y < r else r + keep[y - r]
                    Mk[x, y] = Mu[max(sx, sy), min(sx, sy)]
            _mask(Mk, rk, r, pk, act)
            _solve_psd(Mk, rk, pk, ridge, L, inv, sol)
        for q in range(k):
            new_idx[q] = union[keep[q]]
        moved = changed_mask or not _same_support(idx, new_idx, act)
        for a in range(r):
            w[a] = sol[a]
        for q in range(k):
            idx[q] = new_idx[q]
            val[q] = sol[r + q] if act[q] else 0.0
        _state(Gi, GUt, Ut, w, idx, val, theta, Gtheta)
        if not moved:
            break


@_JIT
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


@_JIT
def _gram_sp_pass(G, Gflat, c, yy, U, w, idx, val, active, ridge, n_steps, stats, pair_a, pair_b, loss, V, T):
    # pragma: no cover - compiled
    n, d, _ = G.shape
    r = U.shape[1]
    k = idx.shape[1]
    Ut = np.ascontiguousarray(U.T)
    GUt = np.empty((_GROUP, r, d))
    UGU = np.empty((_GROUP, r, r))
    cU = np.empty((_GROUP, r))
    p = r + 2 * k
    scratch_f = np.empty((3, d))
    scratch_i = np.empty((4, max(2 * k, 1)), dtype=np.int64)
    scratch_m = np.empty((4, max(p, 6), p))
    umask = np.empty(2 * k, dtype=np.bool_)
    cur = np.empty(k, dtype=np.bool_)
    for start in range(0, n, _GROUP):
        stop = min(start + _GROUP, n)
        # G_i U for the group first: one sequential stream over the group's G_i (memory prefetch friendly),
        # which then stay cache resident for the pursuit and the statistics
        for i in range(start, stop):
            Gi = G[i]
            g = i - start
            for j in range(d):  # (G_i U)^T, one dot product per entry along contiguous rows
                for a in range(r):
                    GUt[g, a, j] = _dot(Gi[j], Ut[a])
            for a in range(r):
                cU[g, a] = _dot(c[i], Ut[a])
                for b in range(r):
                    UGU[g, a, b] = _dot(Ut[a], GUt[g, b])
        for i in range(start, stop):
            Gi = G[i]
            ci = c[i]
            g = i - start
            _pursuit_task(Gi, ci, Ut, GUt[g], UGU[g], cU[g], w[i], idx[i], val[i], active[i], ridge, n_steps,
                          scratch_f, scratch_i, scratch_m, umask, cur)
            theta = scratch_f[0]
            Gtheta = scratch_f[1]
            obj = yy[i]
            for j in range(d):
                obj += theta[j] * Gtheta[j] - 2.0 * ci[j] * theta[j]
            obj = 0.5 * max(obj, 0.0)
            if ridge != 0.0:
                pen = 0.0
                for a in range(r):
                    pen += w[i, a] * w[i, a]
                for q in range(k):
                    pen += val[i, q] * val[i, q]
                obj += 0.5 * ridge * pen
            loss[i] = obj
            if stats > 0:
                target = scratch_f[2]
                for j in range(d):
                    target[j] = ci[j]
                for q in range(k):
                    v = val[i, q]
                    if v != 0.0:
                        row = Gi[idx[i, q]]
                        for j in range(d):
                            target[j] -= row[j] * v
                for a in range(r):
                    wa = w[i, a]
                    Va = V[a]
                    for j in range(d):
                        Va[j] += target[j] * wa
        if stats > 1:
            _accumulate_statistics(Gflat, w, start, stop, pair_a, pair_b, T)


def gram_sp_pass(G: np.ndarray, c: np.ndarray, yy: np.ndarray, U: np.ndarray, w: np.ndarray, idx: np.ndarray,
                 val: np.ndarray, active: np.ndarray, ridge: float, n_steps: int, stats: str | None
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
                  np.ascontiguousarray(active, dtype=np.bool_), float(ridge), int(n_steps), code, pair_a, pair_b,
                  loss, V, T)
    A = None
    if code == 2:
        blocks = np.empty((r, d, r, d))
        for pair, (a, b) in enumerate(zip(pair_a, pair_b, strict=True)):
            Tp = T[pair].reshape(d, d)
            blocks[a, :, b, :] = Tp
            blocks[b, :, a, :] = Tp.T
        A = blocks.reshape(r * d, r * d)
    return w, idx, val, float(loss.sum()), A, (V.T.copy() if code else None)
