"""The per-task step of AMHT-LRS over a block: fit ``(w_i, b_i)`` with ``U`` fixed (SPEC §2 step 1, §3, §5).

Three solvers, picked by ``TaskStepConfig.method``, written once against the systems of :mod:`.task_systems`
(rows or Gram statistics):

``"sp"`` (default) — subspace pursuit on the joint problem ``min_{w, ||b||_0 <= k} ||y_i - X_i U w - X_i b||^2``
    (Dai & Milenkovic's support merge, CoSaMP-like): add to the current support ``S`` the ``k`` coordinates where
    the gradient ``X_i^T r_i`` is largest, solve least squares jointly for ``w_i`` and ``b`` on ``[X_i U, X_{i,T}]``
    over that union ``T``, keep the ``k`` largest coefficients as the new ``S`` and solve again on ``[X_i U,
    X_{i,S}]``. No step size is involved, and because ``w_i`` and ``b_i`` are re-fitted together a stale ``w_i``
    cannot lock in a wrong support: on noiseless data it reaches machine precision where the alternation stalls.
    Two escapes from the wrong supports where subspace pursuit stops (its candidates are the k largest gradient
    entries, and a missing coordinate need not be among them when ``X_i^T X_i`` is far from a multiple of I):
    *exchange step* (``swap``) — a suspect task whose support did not move takes the best single exchange of a
    support slot for an outside coordinate, ranked by its exact objective decrease (rank-one updates of the
    support's normal equations for all ``k (d - k)`` exchanges at once, :func:`_swap_table`), if that decrease
    exceeds ``swap_rtol`` of the objective, then continues the pursuit; *restart* (``restart_factor``) — a task
    whose objective ends above ``restart_factor`` times the reference runs the pursuit again from ``b_i = 0`` and
    keeps the result if it is lower. Suspect: objective above ``swap_factor`` times the reference, where the
    reference ``loss_reference`` is the mean per-task objective of the previous pass (set by
    :func:`lorsa.solvers.amht.run_amht`: a scalar reduced with the other statistics, so every block layout, engine
    and backend makes the same decisions; :func:`escape_floors`). Only the few tasks above it pay for the exchange
    table (cost per iteration against plain subspace pursuit: ``benchmarks/escape_overhead.py``). Measured
    (d = 20, r = 2, k = 2, t = 300, noiseless, 5 seeds):
    recovery (relative error <= 1e-6) on 5/5 seeds at m = 20 and 25 where plain subspace pursuit had 0/5 and 1/5.
``"htp"`` — hard thresholding pursuit: ``S`` = top-``k`` of ``|b + mu g|`` with the normalised step measured on the
    top-``k`` of ``|g|`` (after a least-squares solve ``g`` vanishes on ``S``), then the same joint solve.
    Cheaper per step, but it can keep a task on a wrong support when ``mu`` is too small to let new coordinates in.
``"iht"`` — the paper's Algorithm 1 lines 4-5: ``b_i <- OptimizeSparseVector(X_i, y_i, v = U w_i)`` by iterative
    hard thresholding (Algorithm 2) with ``w_i`` fixed, then ``w_i`` by least squares with ``b_i`` fixed. Step
    ``mu = 1/m_i`` (``step="paper"``) or the normalised step of Blumensath & Davies with their step-halving
    safeguard (``"normalized"``); thresholding top-``k`` (``threshold="topk"``) or the paper's shrinking threshold
    (``"schedule"``): keep ``|c_j| > Delta``, ``Delta = alpha + c1 gamma + beta / sqrt(k)``,
    ``gamma <- 2 c1 gamma + 2 (alpha + c1 beta / sqrt(k))``, capped at ``k`` entries. The paper's constants come
    from its analysis and involve unknown quantities: ``gamma`` starts at the largest candidate magnitude, with
    ``alpha = beta = 0`` and ``c1 = 0.25`` unless set.

A ridge ``lambda/2 (||w_i||^2 + ||b_i||^2)`` (default 0, for exactness) regularises data-starved tasks. A task with
fewer rows than ``r + k`` gets at most ``k_i = max(0, m_i - r)`` non-zeros and a minimum-norm ``w_i`` if ``m_i < r``
(:func:`lorsa.kernels.batched_solve`), never NaN. Everything is batched over the block: no loop over tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..kernels import batched_inverse, topk_abs
from .task_systems import GramSystem, Normal, RowSystem, put_state, take_state

__all__ = ["TaskStepConfig", "TaskStepResult", "task_step", "allowed_nonzeros", "escape_floors", "METHODS"]

METHODS = ("sp", "htp", "iht")


@dataclass(frozen=True)
class TaskStepConfig:
    """Settings of the per-task step (see the module docstring)."""

    method: str = "sp"
    n_steps: int = 5
    step: str = "normalized"
    threshold: str = "topk"
    ridge: float = 0.0
    fit_w: bool = True
    schedule_alpha: float = 0.0
    schedule_beta: float = 0.0
    schedule_c1: float = 0.25
    swap: bool = True
    swap_rtol: float = 1e-6
    swap_factor: float = 1.0
    restart_factor: float = 10.0
    loss_reference: float = 0.0


def escape_floors(config: TaskStepConfig) -> tuple[float, float]:
    """``(swap_floor, restart_floor)``: a stable task tries the exchange step when its objective exceeds
    ``swap_floor = swap_factor * loss_reference`` (``swap_factor <= 0``: every stable task, as in a private fit,
    where no task's decision may depend on the others' data), and is restarted when it exceeds ``restart_floor =
    restart_factor * loss_reference`` (``restart_factor <= 0``: never, ``inf``). ``loss_reference = inf`` (the
    first pass, before any reference exists) turns both off; ``0`` (a bare :func:`task_step`) opens both."""
    ref = config.loss_reference
    swap_floor = config.swap_factor * ref if config.swap_factor > 0 else 0.0
    restart_floor = config.restart_factor * ref if config.restart_factor > 0 else np.inf
    return float(swap_floor), float(restart_floor)


@dataclass
class TaskStepResult:
    """Updated ``w (n, r)``, ``idx, val (n, k)`` of a block; ``target`` is ``y_i - X_i b_i`` (row systems, (n, m))
    or ``X_i^T (y_i - X_i b_i)`` (Gram systems, (n, d)); objectives at entry and at exit (penalty included)."""

    w: np.ndarray
    idx: np.ndarray
    val: np.ndarray
    target: np.ndarray
    loss_before: float
    loss_after: float


def allowed_nonzeros(sizes: np.ndarray, rank: int, sparsity: int,
                     samples_per_nonzero: float | None = None) -> np.ndarray:
    """Non-zeros allowed in ``b_i``: ``k_i = min(k, max(0, m_i - r))`` so that ``r + k_i <= m_i`` when possible;
    with ``samples_per_nonzero = s`` also ``k_i <= floor(m_i / s)`` (sparsity adapted to a task's sample count)."""
    sizes = np.asarray(sizes)
    k = np.minimum(sparsity, np.maximum(0, sizes - rank))
    if samples_per_nonzero is not None:
        k = np.minimum(k, np.floor(sizes / float(samples_per_nonzero)))
    return k.astype(np.int64)


def _penalty(ridge: float, w: np.ndarray, val: np.ndarray) -> float:
    return 0.5 * ridge * float(np.sum(w * w) + np.sum(val * val)) if ridge else 0.0


def task_step(system: RowSystem | GramSystem, w: np.ndarray, idx: np.ndarray, val: np.ndarray,
              active: np.ndarray, config: TaskStepConfig, sizes: np.ndarray | None = None) -> TaskStepResult:
    """One per-task step over a block.

    Parameters
    ----------
    system : RowSystem or GramSystem
        The block's per-task systems for the current ``U``.
    w : ndarray of shape (n, r)
    idx, val : ndarrays of shape (n, k)
        Support slots and values of ``b_i``.
    active : ndarray of shape (n, k), bool
        Slot ``q`` of task ``a`` may be non-zero (``q < k_i``).
    config : TaskStepConfig
    sizes : ndarray of shape (n,), optional
        Rows per task (for the paper's step ``1/m_i``).
    """
    k = idx.shape[1]
    ridge = config.ridge
    state = system.residual(w, idx, val)
    loss_before = float(np.sum(system.objective(state))) + _penalty(ridge, w, val)
    fixed_w = None if config.fit_w else w
    if k == 0 or not np.any(active):
        val = np.zeros_like(val)
        if config.fit_w:
            w, _, state = system.solve(idx, active, ridge, fixed_b=(idx, val))
    elif config.method == "iht":
        w, idx, val, state = _iht_then_ls(system, w, idx, val, active, config, sizes)
    else:
        w, idx, val, state = _pursuit(system, w, idx, val, active, config, fixed_w, state)
        if config.method == "sp" and escape_floors(config)[1] < np.inf:
            w, idx, val, state = _restart_stuck(system, w, idx, val, active, config, fixed_w, state)
    loss_after = float(np.sum(system.objective(state))) + _penalty(ridge, w, val)
    return TaskStepResult(w=w, idx=idx, val=val, target=system.target(idx, val), loss_before=loss_before,
                          loss_after=loss_after)


def _dense(idx: np.ndarray, val: np.ndarray, d: int) -> np.ndarray:
    b = np.zeros((idx.shape[0], d))
    np.add.at(b, (np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape), idx), val)
    return b


def _pursuit(system, w, idx, val, active, config, fixed_w, state) -> tuple[Any, ...]:
    """Subspace pursuit (``"sp"``) or hard thresholding pursuit (``"htp"``) with joint least-squares solves.

    A task leaves the loop as soon as its support stops moving (its last solve is then least squares on that
    support for the current ``U``); later steps run on the remaining tasks only, through ``system.subset``.
    """
    n, k = idx.shape
    ridge = config.ridge
    w, idx, val = w.copy(), idx.copy(), val.copy()
    todo = np.arange(n)
    sub, sub_state = system, state
    for _ in range(config.n_steps):
        idx_t, val_t, act_t = idx[todo], val[todo], active[todo]
        fixed_t = None if fixed_w is None else fixed_w[todo]
        g = sub.gradient(sub_state)
        d = g.shape[1]
        current = act_t & (val_t != 0)
        if ridge:
            g = g - ridge * _dense(idx_t, val_t * current, d)
        if config.method == "sp":
            g_off = g.copy()
            np.put_along_axis(g_off, idx_t, np.where(current, 0.0, np.take_along_axis(g_off, idx_t, axis=1)), axis=1)
            extra = topk_abs(g_off, k)
            taken = np.any(extra[:, :, None] == np.where(current, idx_t, -1)[:, None, :], axis=2)
            union = np.concatenate([idx_t, extra], axis=1)
            union_mask = np.concatenate([current, act_t & ~taken], axis=1)
            normal = sub.assemble(union, union_mask, fixed_t)
            _, union_val, _ = sub.finish(normal, ridge)
            keep = topk_abs(np.where(union_mask, union_val, 0.0), k)
            new_idx = np.take_along_axis(union, keep, axis=1)
            # least squares on the kept support, from the union's normal equations (no new gather)
            pruned = sub.restrict(normal, keep, act_t)
        else:
            sup = topk_abs(g, k)
            g_S = np.take_along_axis(g, sup, axis=1) * act_t
            den = sub.sq_norm(sup, g_S)
            mu = np.where(den > 0, np.einsum("nk,nk->n", g_S, g_S) / np.where(den > 0, den, 1.0), 0.0)
            cand = mu[:, None] * g + _dense(idx_t, val_t * act_t, d)
            new_idx = topk_abs(cand, k)
            pruned = sub.assemble(new_idx, act_t, fixed_t)
        w_t, new_val, new_state = sub.finish(pruned, ridge)
        moved = (np.any(np.sort(np.where(act_t, new_idx, -1), axis=1)
                        != np.sort(np.where(act_t, idx_t, -1), axis=1), axis=1)
                 | np.any(current != act_t, axis=1))
        if config.swap and config.method == "sp" and not moved.all():
            moved = _escape_by_swap(sub, pruned, w_t, new_idx, new_val, new_state, act_t, ridge, moved,
                                    config.swap_rtol, fixed_t, escape_floors(config)[0])
        w[todo], idx[todo], val[todo] = w_t, new_idx, new_val
        put_state(state, todo, new_state)
        if not moved.any():
            break
        todo = todo[moved]
        sub, sub_state = system.subset(todo), take_state(new_state, moved)
    return w, idx, val, state


def _take_normal(normal: Normal, sel: np.ndarray) -> Normal:
    """The normal equations of the tasks ``sel`` only."""
    fixed_w = None if normal.fixed_w is None else normal.fixed_w[sel]
    target = None if normal.target is None else normal.target[sel]
    return Normal(normal.M[sel], normal.rhs[sel], normal.offset, normal.sup[sel], normal.mask[sel], fixed_w,
                  normal.data[sel], target)


def _swap_table(system, normal, w, vals, state, act, ridge):
    """The best single exchange of a support coordinate for an outside one, for every task, by its exact gain.

    At the least-squares solution ``x`` on the columns ``Z = [X_i U, X_{i,S}]`` (normal matrix ``A = Z^T Z +
    lambda I``), adding column ``j`` lowers the objective by ``g_j^2 / (2 s_j)`` with ``g_j = x_j^T r`` and
    ``s_j = ||x_j||^2 + lambda - h_j^T A^{-1} h_j`` (``h_j = Z^T x_j``); removing slot ``q`` from the enlarged
    solution ``x^+ = (x - A^{-1} h_j g_j / s_j, g_j / s_j)`` then raises it by ``(x^+_q)^2 / (2 (A^+)^{-1}_{qq})``
    with ``(A^+)^{-1}_{qq} = (A^{-1})_{qq} + (A^{-1} h_j)_q^2 / s_j``. Returns ``gain (n,)`` (objective decrease
    of the best exchange, -inf when none), ``j (n,)`` and ``q (n,)``.
    """
    off = normal.offset
    H, diag = system.cross(normal)
    Ainv = batched_inverse(normal.M, ridge)
    x = vals if off == 0 else np.concatenate([w, vals], axis=1)
    g = system.gradient(state)                                            # x_j^T r; b_j = 0 outside S
    V = np.matmul(H, Ainv)                                                # rows (A^{-1} h_j)^T
    s = diag + ridge - np.einsum("ndp,ndp->nd", H, V)
    n, d = g.shape
    rows = np.broadcast_to(np.arange(n)[:, None], normal.sup.shape)
    inside = np.zeros((n, d), dtype=bool)
    inside[rows[act], normal.sup[act]] = True
    ok = ~inside & (s > 1e-10 * np.maximum(diag, 1e-300))
    s_safe = np.where(ok, s, 1.0)
    alpha = np.where(ok, g / s_safe, 0.0)
    add_gain = 0.5 * alpha * g                                            # g_j^2 / (2 s_j)
    Vs = V[:, :, off:]
    x_plus = x[:, None, off:] - Vs * alpha[:, :, None]                    # (n, d, k)
    dinv = np.diagonal(Ainv, axis1=1, axis2=2)[:, None, off:] + Vs * Vs / s_safe[:, :, None]
    cost = np.where(act[:, None, :], 0.5 * x_plus * x_plus / np.where(dinv > 0, dinv, 1.0), np.inf)
    gain = np.where(ok[:, :, None], add_gain[:, :, None] - cost, -np.inf).reshape(n, -1)
    best = np.argmax(gain, axis=1)
    k = act.shape[1]
    return gain[np.arange(n), best], best // k, best % k


def _escape_by_swap(system, normal, w, idx, vals, state, act, ridge, moved, rtol, fixed_w, swap_floor):
    """Tasks whose support subspace pursuit left unchanged and whose objective exceeds ``swap_floor`` take their
    best single exchange (:func:`_swap_table`) when it lowers the objective by more than ``rtol`` of it (and than
    round-off of ``||y_i||^2``); their ``w, idx, vals, state`` are updated in place and they count as moved."""
    stable = np.flatnonzero(~moved & act.any(axis=1))
    if stable.size == 0:
        return moved
    # a gain is at most the objective: tasks already below the acceptance threshold (fitted to round-off) skip
    obj = _task_objective(system.subset(stable), take_state(state, stable), w[stable], vals[stable], ridge)
    floor = np.maximum(rtol * obj, 1e-13 * system.subset(stable).energy())
    open_ = (obj > floor) & (obj > swap_floor)
    stable, obj, floor = stable[open_], obj[open_], floor[open_]
    if stable.size == 0:
        return moved
    sub = system.subset(stable)
    sub_normal = _take_normal(normal, stable)
    sub_state = take_state(state, stable)
    gain, j, q = _swap_table(sub, sub_normal, w[stable], vals[stable], sub_state, act[stable], ridge)
    take = gain > floor
    if not take.any():
        return moved
    sel = stable[take]
    new_idx = idx[sel].copy()
    new_idx[np.arange(sel.size), q[take]] = j[take]
    sub2 = system.subset(sel)
    w2, v2, st2 = sub2.solve(new_idx, act[sel], ridge, None if fixed_w is None else fixed_w[sel])
    w[sel], idx[sel], vals[sel] = w2, new_idx, v2
    put_state(state, sel, st2)
    moved = moved.copy()
    moved[sel] = True
    return moved


def _task_objective(system, state, w, val, ridge) -> np.ndarray:
    obj = system.objective(state)
    return obj + 0.5 * ridge * (np.sum(w * w, axis=1) + np.sum(val * val, axis=1)) if ridge else obj


def _restart_stuck(system, w, idx, val, active, config, fixed_w, state) -> tuple[Any, ...]:
    """Restart the pursuit from ``b_i = 0`` for tasks whose objective ends far above the others': more than
    ``restart_factor`` times the previous pass's mean per-task objective (:func:`escape_floors`; and above
    round-off of ``||y_i||^2 / 2``); keep the restart where it is lower. A task left on a wrong support pulls
    ``U`` off for every other task; from ``b_i = 0`` its first gradient is that of the whole unexplained part."""
    ridge = config.ridge
    obj = _task_objective(system, state, w, val, ridge)
    stuck = np.flatnonzero((obj > escape_floors(config)[1]) & (obj > 1e-13 * system.energy())
                           & active.any(axis=1))
    if stuck.size == 0:
        return w, idx, val, state
    sub = system.subset(stuck)
    zeros = np.zeros((stuck.size, idx.shape[1]))
    fixed = None if fixed_w is None else fixed_w[stuck]
    if fixed is None:
        w0, _, state0 = sub.solve(idx[stuck], active[stuck], ridge, fixed_b=(idx[stuck], zeros))
    else:
        w0, state0 = fixed, sub.residual(fixed, idx[stuck], zeros)
    w1, idx1, val1, state1 = _pursuit(sub, w0, idx[stuck], zeros, active[stuck], config, fixed, state0)
    better = _task_objective(sub, state1, w1, val1, ridge) < obj[stuck]
    if better.any():
        sel = stuck[better]
        w, idx, val = w.copy(), idx.copy(), val.copy()
        w[sel], idx[sel], val[sel] = w1[better], idx1[better], val1[better]
        put_state(state, sel, take_state(state1, better))
    return w, idx, val, state


def _iht_then_ls(system, w, idx, val, active, config, sizes) -> tuple[Any, ...]:
    """The paper's per-task step: IHT on ``b_i`` with ``v = U w_i`` fixed, then least squares for ``w_i``."""
    n, k = idx.shape
    gamma = None
    sqrt_k = np.sqrt(max(k, 1))
    val = val * active
    for _ in range(config.n_steps):
        g = system.gradient(system.residual(w, idx, val))
        d = g.shape[1]
        b = _dense(idx, val, d)
        if config.step == "paper":
            mu = 1.0 / np.maximum(np.asarray(sizes if sizes is not None else 1.0, dtype=float), 1.0)
            mu = np.broadcast_to(mu, (n,))
        else:
            empty = ~np.any(val != 0, axis=1)
            sup = idx.copy()
            if np.any(empty):
                sup[empty] = topk_abs(g[empty], k)
            g_S = np.take_along_axis(g, sup, axis=1) * active
            den = system.sq_norm(sup, g_S)
            mu = np.where(den > 0, np.einsum("nk,nk->n", g_S, g_S) / np.where(den > 0, den, 1.0), 0.0)
        cand = b + mu[:, None] * g
        new_idx = topk_abs(cand, k)
        if config.step == "normalized":
            mu, new_idx = _halve_on_support_change(system, b, g, mu, idx, new_idx, active, k)
            cand = b + mu[:, None] * g
        new_val = np.take_along_axis(cand, new_idx, axis=1) * active
        if config.threshold == "schedule":
            if gamma is None:
                gamma = np.max(np.abs(cand), axis=1)
            a, beta, c1 = config.schedule_alpha, config.schedule_beta, config.schedule_c1
            delta = a + c1 * gamma + beta / sqrt_k
            new_val = np.where(np.abs(new_val) > delta[:, None], new_val, 0.0)
            gamma = 2 * c1 * gamma + 2 * (a + c1 * beta / sqrt_k)
        idx, val = new_idx, new_val
    if config.fit_w:
        w, _, state = system.solve(idx, active, config.ridge, fixed_b=(idx, val))
    else:
        state = system.residual(w, idx, val)
    return w, idx, val, state


def _halve_on_support_change(system, b, g, mu, idx, new_idx, active, k, c=0.01, max_halvings=20):
    """Blumensath & Davies' safeguard: where the support changed and
    ``mu > (1 - c) ||b_new - b||^2 / ||X (b_new - b)||^2``, halve ``mu`` and threshold again."""
    for _ in range(max_halvings):
        changed = np.any(np.sort(new_idx, axis=1) != np.sort(idx, axis=1), axis=1)
        if not np.any(changed):
            break
        cand = b + mu[:, None] * g
        union = np.concatenate([idx, new_idx], axis=1)
        b_new = np.zeros_like(b)
        np.put_along_axis(b_new, new_idx, np.take_along_axis(cand, new_idx, axis=1) * active, axis=1)
        diff = np.take_along_axis(b_new - b, union, axis=1)
        diff[:, k:] *= ~np.any(new_idx[:, :, None] == idx[:, None, :], axis=2)  # count shared slots once
        num = np.einsum("nk,nk->n", diff, diff)
        den = system.sq_norm(union, diff)
        omega = (1 - c) * np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)
        bad = changed & (mu > omega)
        if not np.any(bad):
            break
        mu = np.where(bad, mu / 2, mu)
        new_idx = np.where(bad[:, None], topk_abs(b + mu[:, None] * g, k), new_idx)
    return mu, new_idx
