"""The per-task step of AMHT-LRS over a block: fit ``(w_i, b_i)`` with ``U`` fixed (SPEC §2 step 1, §3, §5).

Three solvers, picked by ``TaskStepConfig.method``, written once against the systems of :mod:`.task_systems`
(rows or Gram statistics):

``"sp"`` (default) — subspace pursuit on the joint problem ``min_{w, ||b||_0 <= k} ||y_i - X_i U w - X_i b||^2``
    (Dai & Milenkovic's support merge, CoSaMP-like): add to the current support ``S`` the ``k`` coordinates where
    the gradient ``X_i^T r_i`` is largest, solve least squares jointly for ``w_i`` and ``b`` on ``[X_i U, X_{i,T}]``
    over that union ``T``, keep the ``k`` largest coefficients as the new ``S`` and solve again on ``[X_i U,
    X_{i,S}]``. No step size is involved, and because ``w_i`` and ``b_i`` are re-fitted together a stale ``w_i``
    cannot lock in a wrong support: on noiseless data it reaches machine precision where the alternation stalls.
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

from ..kernels import topk_abs
from .task_systems import GramSystem, RowSystem, put_state, take_state

__all__ = ["TaskStepConfig", "TaskStepResult", "task_step", "allowed_nonzeros", "METHODS"]

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
        w[todo], idx[todo], val[todo] = w_t, new_idx, new_val
        put_state(state, todo, new_state)
        if not moved.any():
            break
        todo = todo[moved]
        sub, sub_state = system.subset(todo), take_state(new_state, moved)
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
