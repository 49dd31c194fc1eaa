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

import numpy as np

from .compiled_linalg import (
    JIT,
    add_outer,
    cholesky,
    cholesky_solve,
    combine_columns,
    dot,
    eigh_lower,
    mask_slots,
    ridge_penalty,
    same_support,
    solve_psd,
    topk_abs,
)

__all__ = ["JIT", "dot", "combine_columns", "add_outer", "ridge_penalty", "workspace", "pursuit_task", "restart_task",
           "task_objective", "is_stuck"]


@JIT
def workspace(r, k, m, d):  # pragma: no cover - compiled
    """Scratch for :func:`pursuit_task`: integer slots, the small systems and vectors, masks, for row data the
    gathered columns ``(2k, m)`` and the residual ``(m,)``, and for the exchange step the cross terms ``(d, r + k)``,
    ``diag(G_i)`` and the inverse of the support's normal matrix."""
    p = r + 2 * k
    pk = r + k
    ints = np.zeros((4, max(2 * k, 1)), dtype=np.int64)
    floats = np.zeros((4, max(p, 6), p))
    return (ints, floats, np.zeros(2 * k, dtype=np.bool_), np.zeros(k, dtype=np.bool_),
            np.zeros((max(2 * k, 1), max(m, 1))), np.zeros(max(m, 1)), np.zeros((d, pk)), np.zeros(d),
            np.zeros((pk, pk)), np.zeros((2, pk)))


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
def _support_system(rows, Gi, ci, Xi, yi, mi, XUt, GUt, UGU, cU, idx, act, Mk, rk, cols):
    # pragma: no cover - compiled
    """Lower triangle of the normal equations on ``[X_i U, X_{i,S}]`` for the support ``idx`` (any number of
    slots, masked by ``act``) in ``Mk, rk``; for row data the support's columns are left in ``cols``."""
    r = UGU.shape[0]
    k = idx.shape[0]
    for a in range(r):
        rk[a] = cU[a]
        for b in range(r):
            Mk[a, b] = UGU[a, b]
    if rows:
        for s in range(k):
            js = idx[s]
            for j in range(mi):
                cols[s, j] = Xi[j, js]
        for s in range(k):
            cs = cols[s, :mi]
            rk[r + s] = dot(cs, yi[:mi])
            for a in range(r):
                Mk[r + s, a] = dot(cs, XUt[a, :mi])
            for u in range(s + 1):
                Mk[r + s, r + u] = dot(cs, cols[u, :mi])
    else:
        for s in range(k):
            js = idx[s]
            rk[r + s] = ci[js]
            for a in range(r):
                Mk[r + s, a] = GUt[a, js]
            row = Gi[js]
            for u in range(s + 1):
                Mk[r + s, r + u] = row[idx[u]]
    mask_slots(Mk, rk, r, r + k, act)


@JIT
def psd_inverse(M, p, ridge, L, inv, out, e, x):  # pragma: no cover - compiled
    """``out[:p, :p] = (M[:p, :p] + ridge I)^{-1}`` (lower triangle of ``M`` read) by the rule of
    :func:`solve_psd`: Cholesky when it bounds the condition number, else the eigenvalue pseudo-inverse with
    cut-off ``1e-13`` (:func:`lorsa.kernels.batched_inverse`)."""
    if cholesky(M, p, ridge, L, inv):
        for c in range(p):
            for i in range(p):
                e[i] = 0.0
            e[c] = 1.0
            cholesky_solve(L, inv, e, p, x)
            for i in range(p):
                out[i, c] = x[i]
        return
    vals, vecs, cutoff = eigh_lower(M, p, ridge)
    for i in range(p):
        for j in range(p):
            s = 0.0
            for q in range(p):
                if vals[q] > cutoff:
                    s += vecs[i, q] * vecs[j, q] / vals[q]
            out[i, j] = s


@JIT
def task_objective(rows, ci, yy, mi, w, val, ridge, vectors, res):  # pragma: no cover - compiled
    """The task's objective at the state left by :func:`pursuit_task` (penalty included): ``1/2 ||res||^2`` for
    rows, ``1/2 max(||y||^2 - 2 c^T theta + theta^T G theta, 0)`` for Gram data (``yy = ||y_i||^2``)."""
    obj = 0.0
    if rows:
        for j in range(mi):
            obj += res[j] * res[j]
        obj *= 0.5
    else:
        theta = vectors[0]
        Gtheta = vectors[1]
        obj = yy
        for j in range(theta.shape[0]):
            obj += theta[j] * Gtheta[j] - 2.0 * ci[j] * theta[j]
        obj = 0.5 * max(obj, 0.0)
    return obj + ridge_penalty(w, val, ridge)


@JIT
def _swap_move(rows, Gi, ci, Xi, yi, mi, XUt, GUt, UGU, cU, w, idx, val, act, ridge, rtol, swap_floor, yy, vectors,
               space):  # pragma: no cover - compiled
    """The exchange step of :func:`lorsa.solvers.task_step._swap_table` for one task at a least-squares solution
    on its support: the best exchange of a support slot ``q`` for an outside coordinate ``j`` by its exact gain;
    taken (support changed, least squares solved again, state updated) when the gain exceeds ``rtol`` times the
    objective and round-off of ``||y_i||^2``; tried only when the objective exceeds ``swap_floor`` (the suspect
    gate of :func:`lorsa.solvers.task_step.escape_floors`). Returns whether it was taken."""
    r = UGU.shape[0]
    k = idx.shape[0]
    pk = r + k
    d = ci.shape[0] if not rows else Xi.shape[1]
    ints, floats, umask, cur, cols, res, H, hdiag, Ainv, hx = space
    Mk, L = floats[1], floats[2]
    rk, sol, e, inv = floats[3, 1], floats[3, 2], floats[3, 3], floats[3, 5]
    hv, x = hx[0], hx[1]
    Gtheta, g = vectors[1], vectors[2]
    obj = task_objective(rows, ci, yy, mi, w, val, ridge, vectors, res)
    floor = max(rtol * obj, 1e-13 * 0.5 * yy)
    if not obj > floor or not obj > swap_floor:  # a gain is at most the objective; not suspect: no exchange
        return False
    if rows:
        _row_gradient(Xi, res, mi, g)
    else:
        for p in range(d):
            g[p] = ci[p] - Gtheta[p]
    _support_system(rows, Gi, ci, Xi, yi, mi, XUt, GUt, UGU, cU, idx, act, Mk, rk, cols)
    psd_inverse(Mk, pk, ridge, L, inv, Ainv, e, sol)
    for a in range(r):
        x[a] = w[a]
    for q in range(k):
        x[r + q] = val[q] if act[q] else 0.0
    # cross terms h_j = [X_i U, X_{i,S}]^T x_j and ||x_j||^2 for every coordinate j
    if rows:
        H[:, :] = 0.0
        hdiag[:] = 0.0
        for m in range(mi):
            row = Xi[m]
            for j in range(d):
                xj = row[j]
                hdiag[j] += xj * xj
                for a in range(r):
                    H[j, a] += xj * XUt[a, m]
                for q in range(k):
                    if act[q]:
                        H[j, r + q] += xj * cols[q, m]
    else:
        for j in range(d):
            hdiag[j] = Gi[j, j]
            for a in range(r):
                H[j, a] = GUt[a, j]
        for q in range(k):
            if act[q]:
                row = Gi[idx[q]]
                for j in range(d):
                    H[j, r + q] = row[j]
            else:
                for j in range(d):
                    H[j, r + q] = 0.0
    best = -np.inf
    best_j = -1
    best_q = -1
    for j in range(d):
        inside = False
        for q in range(k):
            if act[q] and idx[q] == j:
                inside = True
        if inside:
            continue
        hj = H[j]
        for c in range(pk):
            acc = 0.0
            for c2 in range(pk):
                acc += Ainv[c, c2] * hj[c2]
            hv[c] = acc
        s = hdiag[j] + ridge - dot(hj, hv)
        if not s > 1e-10 * max(hdiag[j], 1e-300):
            continue
        alpha = g[j] / s
        add_gain = 0.5 * alpha * g[j]
        for q in range(k):
            if act[q]:
                vq = hv[r + q]
                xplus = x[r + q] - vq * alpha
                dinv = Ainv[r + q, r + q] + vq * vq / s
                gain = add_gain - 0.5 * xplus * xplus / (dinv if dinv > 0 else 1.0)
                if gain > best:
                    best = gain
                    best_j = j
                    best_q = q
    if best_j < 0 or not best > floor:
        return False
    idx[best_q] = best_j
    _support_system(rows, Gi, ci, Xi, yi, mi, XUt, GUt, UGU, cU, idx, act, Mk, rk, cols)
    solve_psd(Mk, rk, pk, ridge, L, inv, sol)
    for a in range(r):
        w[a] = sol[a]
    for q in range(k):
        val[q] = sol[r + q] if act[q] else 0.0
    return True


@JIT
def pursuit_task(rows, Gi, ci, Xi, yi, mi, XUt, Ut, GUt, UGU, cU, w, idx, val, act, ridge, n_steps, swap_rtol,
                 swap_floor, yy, vectors, space):  # pragma: no cover - compiled
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
    ints, floats, umask, cur, cols, res = space[0], space[1], space[2], space[3], space[4], space[5]
    theta, Gtheta, g = vectors[0], vectors[1], vectors[2]
    any_act = False
    for q in range(k):
        any_act = any_act or act[q]
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
        # lower triangle of the normal equations on [X_i U, X_{i,T}], masked slots decoupled
        _support_system(rows, Gi, ci, Xi, yi, mi, XUt, GUt, UGU, cU, union, umask, Mu, ru, cols)
        # solve on T, keep the k largest, solve on them
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
        if not moved and any_act and swap_rtol >= 0.0:
            moved = _swap_move(rows, Gi, ci, Xi, yi, mi, XUt, GUt, UGU, cU, w, idx, val, act, ridge, swap_rtol,
                               swap_floor, yy, vectors, space)
            if moved:
                if rows:
                    _row_state(Xi, yi, mi, XUt, w, idx, val, res)
                else:
                    _gram_state(Gi, GUt, Ut, w, idx, val, theta, Gtheta)
        if not moved:
            break


@JIT
def is_stuck(loss, restart_floor, yy, act):  # pragma: no cover - compiled
    """Whether a task is restarted (:func:`lorsa.solvers.task_step._restart_stuck`): it may have non-zeros and its
    objective is above ``restart_floor`` (``restart_factor`` times the mean per-task objective of the previous
    pass, :func:`lorsa.solvers.task_step.escape_floors`) and above round-off of ``||y_i||^2 / 2``."""
    any_act = False
    for q in range(act.shape[0]):
        any_act = any_act or act[q]
    return any_act and loss > restart_floor and loss > 1e-13 * 0.5 * yy


@JIT
def restart_task(rows, Gi, ci, Xi, yi, mi, XUt, Ut, GUt, UGU, cU, w, idx, val, act, ridge, n_steps, swap_rtol,
                 swap_floor, yy, vectors, space, w1, idx1, val1):  # pragma: no cover - compiled
    """Subspace pursuit again from ``b_i = 0`` (``w_i`` least squares on ``X_i U``) into ``w1, idx1, val1``
    (the restart of :func:`lorsa.solvers.task_step._restart_stuck`); returns its objective, and leaves its state
    where :func:`pursuit_task` does."""
    r = UGU.shape[0]
    floats = space[1]
    L, inv, sol = floats[2], floats[3, 5], floats[3, 2]
    solve_psd(UGU, cU, r, ridge, L, inv, sol)
    for a in range(r):
        w1[a] = sol[a]
    for q in range(idx.shape[0]):
        idx1[q] = idx[q]
        val1[q] = 0.0
    pursuit_task(rows, Gi, ci, Xi, yi, mi, XUt, Ut, GUt, UGU, cU, w1, idx1, val1, act, ridge, n_steps, swap_rtol,
                 swap_floor, yy, vectors, space)
    return task_objective(rows, ci, yy, mi, w1, val1, ridge, vectors, space[5])
