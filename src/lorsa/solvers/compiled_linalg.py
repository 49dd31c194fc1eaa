"""Compiled (numba) linear-algebra primitives of the per-task passes: dot products, small symmetric solves
(Cholesky with the eigenvalue fallback of :func:`lorsa.kernels.batched_solve`), top-k selection and slot masks,
shared by :mod:`.compiled_pursuit`, :mod:`.gram_pass_compiled` and :mod:`.row_pass_compiled`.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np

__all__ = ["JIT", "dot", "combine_columns", "add_outer", "ridge_penalty", "topk_abs", "cholesky", "cholesky_solve",
           "eigh_lower", "solve_eigh", "solve_psd", "mask_slots", "same_support"]

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
def eigh_lower(M, p, ridge):  # pragma: no cover - compiled
    """Eigendecomposition of ``M[:p, :p] + ridge I`` (lower triangle read) and the cut-off ``1e-13`` of the
    largest eigenvalue below which :func:`lorsa.kernels.batched_solve` drops eigenvalues."""
    A = np.empty((p, p))
    for i in range(p):
        for j in range(p):
            A[i, j] = M[max(i, j), min(i, j)]
        A[i, i] += ridge
    vals, vecs = np.linalg.eigh(A)
    return vals, vecs, 1e-13 * max(vals[p - 1], 1e-300)


@JIT
def solve_eigh(M, rhs, p, ridge, x):  # pragma: no cover - compiled
    """Minimum-norm solution through the eigendecomposition, eigenvalues below ``1e-13`` of the largest dropped
    (the fallback of :func:`lorsa.kernels.batched_solve`)."""
    vals, vecs, cutoff = eigh_lower(M, p, ridge)
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
