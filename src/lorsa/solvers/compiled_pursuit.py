"""Compiled (numba) building blocks of subspace pursuit for one task, shared by the compiled passes over Gram
blocks (:mod:`.gram_pass_compiled`) and row blocks (:mod:`.row_pass_compiled`).

:func:`pursuit_task` runs subspace pursuit for one task (SPEC §3; the numpy twin is
:func:`lorsa.solvers.task_step._pursuit`), each step being

    g       = X_i^T (y_i - X_i theta_i) (- ridge b_i on the support)
    T       = S  ∪  top-k |g| off S
    solve   least squares on [X_i U, X_{i,T}]; keep the k largest; solve again on [X_i U, X_{i,S'}]
    S'      replaces S; the task stops when S' = S

on either form of the task's data: Gram (``G_i``, ``c_i``; state ``theta_i, G_i theta_i``) or rows (``X_i``,
``y_i``; state the residual). Masked slots (``k_i < k``, or a candidate already in the support) are decoupled
exactly as in :func:`lorsa.solvers.task_systems._mask_system`; the small systems are solved by Cholesky with the
eigenvalue fallback of :func:`lorsa.kernels.batched_solve`, per task. Scratch space comes from :func:`workspace`
(allocated once per block, reused by every task).
"""

from __future__ import annotations

import warnings

import numba
import numpy as np

__all__ = ["JIT", "dot", "combine_columns", "add_outer", "ridge_penalty", "workspace", "pursuit_task"]

# Re-association and fused multiply-add for vectorised reductions; NaN/inf keep their IEEE meaning.
_OPTIONS = {"nogil": True, "fastmath": {"reassoc", "contract", "arcp", "nsz"}}
_uncached_warned = False


def JIT(function):  # noqa: N802  (used as a decorator like numba.njit)
    """``numba.njit(cache=True, ...)``, or without the disk cache (and one warning) where numba cannot write one
    (a read-only installation without a writable ``NUMBA_CACHE_DIR`` or home folder): numba then refuses
    ``cache=True`` with "cannot cache function ... no locator available", which must not make lorsa unusable."""
    global _uncached_warned
    try:
        return numba.njit(cache=True, **_OPTIONS)(function)
    except RuntimeError as exc:
        if "cannot cache" not in str(exc):
            raise
        if not _uncached_warned:
            _uncached_warned = True
            warnings.warn(f"numba cannot cache lorsa's compiled kernels here ({exc}); they are compiled again in "
                          f"every new process (5-10 s each). Set NUMBA_CACHE_DIR to a writable folder to cache "
                          f"them.", RuntimeWarning, stacklevel=2)
        return numba.njit(cache=False, **_OPTIONS)(function)


@JIT
def dot(x, y):  # pragma: no cover - compiled
    """``sum_j x_j y_j`` (vectorised: re-association allowed)."""
    s = 0.0
    for j in range(x.shape[0]):
        s += x[j] * y[j]
    return s


@JIT
def combine_columns(D, w, v):  # pragma: no cover - compiled
    """``v = D w`` for ``D (d, r)``, ``w (r,)``: a task's direction ``D w_i`` in the CG operator."""
    for p in range(D.shape[0]):
        acc = 0.0
        for a in range(D.shape[1]):
            acc += D[p, a] * w[a]
        v[p] = acc


@JIT
def add_outer(out, x, coef):  # pragma: no cover - compiled
    """``out[a, :] += coef[a] x`` for ``out (r, d)``: a task's share ``x w_i^T`` of a (transposed) statistic."""
    for a in range(out.shape[0]):
        ca = coef[a]
        oa = out[a]
        for p in range(x.shape[0]):
            oa[p] += x[p] * ca


@JIT
def ridge_penalty(w, val, ridge):  # pragma: no cover - compiled
    """``ridge / 2 (||w_i||^2 + ||b_i||^2)``."""
    if ridge == 0.0:
        return 0.0
    return 0.5 * ridge * (dot(w, w) + dot(val, val))


@JIT
def topk_abs(v, k, out, mag):  # pragma: no cover - compiled
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


@JIT
def cholesky(M, p, ridge, L, inv):  # pragma: no cover - compiled
    """Cholesky ``L L^T = M[:p, :p] + ridge I`` (lower triangle of ``M`` read) with ``inv = 1 / diag(L)``; False
    when it fails or its pivots bound the condition number above 1e10 (then use :func:`solve_eigh`)."""
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


@JIT
def cholesky_solve(L, inv, rhs, p, x):  # pragma: no cover - compiled
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


@JIT
def solve_eigh(M, rhs, p, ridge, x):  # pragma: no cover - compiled
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


@JIT
def solve_psd(M, rhs, p, ridge, L, inv, x):  # pragma: no cover - compiled
    """``x[:p]`` solving ``(M[:p, :p] + ridge I) x = rhs[:p]`` for a symmetric PSD ``M`` (lower triangle read);
    returns whether ``L, inv`` hold a usable Cholesky factor."""
    if cholesky(M, p, ridge, L, inv):
        cholesky_solve(L, inv, rhs, p, x)
        return True
    solve_eigh(M, rhs, p, ridge, x)
    return False


@JIT
def mask_slots(M, rhs, offset, p, mask):  # pragma: no cover - compiled
    """Decouple masked slots ``offset + q``: zero row and column, unit diagonal, zero right side."""
    for q in range(mask.shape[0]):
        if not mask[q]:
            j = offset + q
            for i in range(p):
                M[i, j] = 0.0
                M[j, i] = 0.0
            M[j, j] = 1.0
            rhs[j] = 0.0


@JIT
def same_support(old, new, act):  # pragma: no cover - compiled
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


@JIT
def workspace(r, k, m):  # pragma: no cover - compiled
    """Scratch for :func:`pursuit_task`: integer slots, the small systems and vectors, masks, and for row data
    the gathered columns ``(2k, m)`` and the residual ``(m,)``."""
    p = r + 2 * k
    ints = np.zeros((4, max(2 * k, 1)), dtype=np.int64)
    floats = np.zeros((4, max(p, 6), p))
    return (ints, floats, np.zeros(2 * k, dtype=np.bool_), np.zeros(k, dtype=np.bool_),
            np.zeros((max(2 * k, 1), max(m, 1))), np.zeros(max(m, 1)))


@JIT
def _gram_state(Gi, GUt, Ut, w, idx, val, theta, Gtheta):  # pragma: no cover - compiled
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


@JIT
def _row_state(Xi, yi, mi, XUt, w, idx, val, res):  # pragma: no cover - compiled
    """``res = y_i - X_i U w - X_{i,S} b_S`` over the task's ``mi`` rows (``XUt = (X_i U)^T``)."""
    r = XUt.shape[0]
    for j in range(mi):
        s = yi[j]
        for a in range(r):
            s -= XUt[a, j] * w[a]
        row = Xi[j]
        for q in range(idx.shape[0]):
            if val[q] != 0.0:
                s -= row[idx[q]] * val[q]
        res[j] = s


@JIT
def _row_gradient(Xi, res, mi, g):  # pragma: no cover - compiled
    """``g = X_i^T res`` over the task's ``mi`` rows."""
    g[:] = 0.0
    for j in range(mi):
        rj = res[j]
        row = Xi[j]
        for p in range(g.shape[0]):
            g[p] += row[p] * rj


@JIT
def pursuit_task(rows, Gi, ci, Xi, yi, mi, XUt, Ut, GUt, UGU, cU, w, idx, val, act, ridge, n_steps, vectors,
                 space):  # pragma: no cover - compiled
    """Subspace pursuit for one task, in place on ``w, idx, val``.

    Gram data (``rows`` False): ``Gi (d, d)``, ``ci (d,)``, ``GUt = (G_i U)^T``; the final ``theta, G theta``
    are left in ``vectors[0], vectors[1]``. Row data: ``Xi (m, d)``, ``yi (m,)`` of which the first ``mi`` rows
    are the task's, ``XUt = (X_i U)^T``; the final residual is left in ``space[5]``. Both: ``UGU = U^T G_i U``,
    ``cU = U^T c_i``, ``Ut = U^T``; ``vectors (3, d)`` and ``space`` (:func:`workspace`) are scratch.
    """
    r, d = Ut.shape
    k = idx.shape[0]
    pu = r + 2 * k
    pk = r + k
    ints, floats, umask, cur, cols, res = space
    theta, Gtheta, g = vectors[0], vectors[1], vectors[2]
    Mu, Mk, L = floats[0], floats[1], floats[2]
    ru, rk, sol, inv = floats[3, 0], floats[3, 1], floats[3, 2], floats[3, 5]
    uval, mag = floats[3, 3, :2 * k], floats[3, 4, :k]
    union, extra, keep, new_idx = ints[0, :2 * k], ints[1, :k], ints[2, :k], ints[3, :k]
    if rows:
        _row_state(Xi, yi, mi, XUt, w, idx, val, res)
    else:
        _gram_state(Gi, GUt, Ut, w, idx, val, theta, Gtheta)
    for _ in range(n_steps):
        # the gradient, and the merged support T = S + top-k |g| off S
        if rows:
            _row_gradient(Xi, res, mi, g)
        else:
            for p in range(d):
                g[p] = ci[p] - Gtheta[p]
        changed_mask = False
        for q in range(k):
            cur[q] = act[q] and val[q] != 0.0
            if cur[q] != act[q]:
                changed_mask = True
        if ridge != 0.0:
            for q in range(k):
                if cur[q]:
                    g[idx[q]] -= ridge * val[q]
        for q in range(k):
            if cur[q]:
                g[idx[q]] = 0.0
        topk_abs(g, k, extra, mag)
        for q in range(k):
            union[q] = idx[q]
            umask[q] = cur[q]
            taken = False
            for s in range(k):
                if cur[s] and extra[q] == idx[s]:
                    taken = True
            union[k + q] = extra[q]
            umask[k + q] = act[q] and not taken
        # lower triangle of the normal equations on [X_i U, X_{i,T}]
        for a in range(r):
            ru[a] = cU[a]
            for b in range(r):
                Mu[a, b] = UGU[a, b]
        if rows:
            for s in range(2 * k):
                js = union[s]
                for j in range(mi):
                    cols[s, j] = Xi[j, js]
            for s in range(2 * k):
                cs = cols[s, :mi]
                ru[r + s] = dot(cs, yi[:mi])
                for a in range(r):
                    Mu[r + s, a] = dot(cs, XUt[a, :mi])
                for u in range(s + 1):
                    Mu[r + s, r + u] = dot(cs, cols[u, :mi])
        else:
            for s in range(2 * k):
                js = union[s]
                ru[r + s] = ci[js]
                for a in range(r):
                    Mu[r + s, a] = GUt[a, js]
                row = Gi[js]
                for u in range(s + 1):
                    Mu[r + s, r + u] = row[union[u]]
        # solve on T, keep the k largest, solve on them
        mask_slots(Mu, ru, r, pu, umask)
        factored = solve_psd(Mu, ru, pu, ridge, L, inv, sol)
        for s in range(2 * k):
            uval[s] = sol[r + s] if umask[s] else 0.0
        topk_abs(uval, k, keep, mag)
        stable = factored
        for q in range(k):
            stable = stable and cur[q] and keep[q] < k
        if stable:
            # the kept slots are the current support, the leading unknowns of the merged system: its factor's
            # leading block solves the restricted system (the same equations as the gather below)
            cholesky_solve(L, inv, ru, pk, rk)
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
            mask_slots(Mk, rk, r, pk, act)
            solve_psd(Mk, rk, pk, ridge, L, inv, sol)
        # the new support; stop when it did not move
        for q in range(k):
            new_idx[q] = union[keep[q]]
        moved = changed_mask or not same_support(idx, new_idx, act)
        for a in range(r):
            w[a] = sol[a]
        for q in range(k):
            idx[q] = new_idx[q]
            val[q] = sol[r + q] if act[q] else 0.0
        if rows:
            _row_state(Xi, yi, mi, XUt, w, idx, val, res)
        else:
            _gram_state(Gi, GUt, Ut, w, idx, val, theta, Gtheta)
        if not moved:
            break
