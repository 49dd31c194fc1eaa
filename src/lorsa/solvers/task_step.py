"""The per-task step of AMHT-LRS over a block of tasks: fit ``(w_i, b_i)`` with ``U`` fixed (SPEC §2 step 1, §3, §5).

Two solvers, picked by ``TaskStepConfig.method``:

``"htp"`` (default) — hard thresholding pursuit on the joint problem
    ``min_{w, ||b||_0 <= k} ||y_i - X_i U w - X_i b||^2``. Each step takes a normalised gradient step on ``b``
    (step ``mu = ||g_S||^2 / ||X_i g_S||^2``, Blumensath & Davies), keeps the top-``k`` magnitudes as the support
    ``S`` and then solves least squares on the ``r + k`` columns ``[X_i U, X_{i,S}]`` jointly. Because ``w_i``
    and ``b_i`` are re-fitted together, a wrong support cannot be locked in by a stale ``w_i``; this reaches
    machine precision on noiseless data where the plain alternation stalls (see the README).

``"iht"`` — the paper's Algorithm 1 lines 4-5: ``b_i <- OptimizeSparseVector(X_i, y_i, v = U w_i)`` by iterative
    hard thresholding (Algorithm 2) with ``w_i`` fixed, then ``w_i <- argmin_w ||X_i U w - (y_i - X_i b_i)||``.
    Its step is ``mu = 1/m_i`` (``step="paper"``) or the normalised step with the step-halving safeguard
    (``step="normalized"``); its thresholding is the top-``k`` projection (``threshold="topk"``) or the paper's
    shrinking threshold (``threshold="schedule"``): keep ``|c_j| > Delta`` with ``Delta = alpha + c1 gamma +
    beta / sqrt(k)``, ``gamma <- 2 c1 gamma + 2 (alpha + c1 beta / sqrt(k))`` (still capped at ``k`` entries).
    The paper's constants come from its analysis and depend on unknown quantities; lorsa starts ``gamma`` at the
    largest magnitude of the first candidate and uses ``alpha = beta = 0``, ``c1 = 0.25`` unless told otherwise.

A ridge penalty ``lambda/2 (||w_i||^2 + ||b_i||^2)`` (``ridge``, default 0 for exactness) regularises data-starved
tasks. Tasks with fewer rows than ``r + k`` get fewer non-zeros (``k_i = max(0, m_i - r)``) and a minimum-norm
``w_i`` when ``m_i < r`` (see :func:`lorsa.kernels.batched_solve`), never NaN.

Everything is batched over the ``n`` tasks of a block: no Python loop over tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import batched_solve, gather_columns, topk_abs

__all__ = ["TaskStepConfig", "TaskStepResult", "task_step", "allowed_nonzeros"]


@dataclass(frozen=True)
class TaskStepConfig:
    """Settings of the per-task step (see the module docstring)."""

    method: str = "htp"
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
    """Updated per-task parameters of a block and the statistics the shared step needs.

    ``w (n, r)``, ``idx (n, k)``, ``val (n, k)``; ``target (n, m)`` is ``y_i - X_i b_i`` (what ``X_i U w_i``
    should fit in the U step); ``loss_before`` is the objective at entry (the state left by the previous
    iteration) and ``loss_after`` at exit.
    """

    w: np.ndarray
    idx: np.ndarray
    val: np.ndarray
    target: np.ndarray
    loss_before: float
    loss_after: float


def allowed_nonzeros(sizes: np.ndarray, rank: int, sparsity: int) -> np.ndarray:
    """Non-zeros allowed in ``b_i``: ``k_i = min(k, max(0, m_i - r))`` so that ``r + k_i <= m_i`` when possible."""
    return np.minimum(sparsity, np.maximum(0, np.asarray(sizes) - rank)).astype(np.int64)


def _penalty(ridge: float, w: np.ndarray, val: np.ndarray) -> float:
    if not ridge:
        return 0.0
    return 0.5 * ridge * float(np.sum(w * w) + np.sum(val * val))


def _rowdot(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``A[a] @ v[a]`` for A (n, m, p), v (n, p) -> (n, m), as one batched matrix product."""
    return np.matmul(A, v[:, :, None])[:, :, 0]


def _gradient(X: np.ndarray, res: np.ndarray) -> np.ndarray:
    """``X_i^T res_i`` for every task: (n, m, d), (n, m) -> (n, d)."""
    return np.matmul(res[:, None, :], X)[:, 0, :]


def _solve_w(XU: np.ndarray, target: np.ndarray, ridge: float) -> np.ndarray:
    G = np.matmul(np.swapaxes(XU, 1, 2), XU)
    rhs = np.matmul(target[:, None, :], XU)[:, 0, :]
    return batched_solve(G, rhs, ridge)


def _normalized_step(X: np.ndarray, g: np.ndarray, idx: np.ndarray, val: np.ndarray,
                     active: np.ndarray, k: int) -> np.ndarray:
    """NIHT step ``mu = ||g_S||^2 / ||X g_S||^2`` on the current support (top-k of |g| where b_i = 0)."""
    empty = ~np.any((val != 0) & active, axis=1)
    sup = idx.copy()
    if np.any(empty):
        sup[empty] = topk_abs(g[empty], k)
    g_S = np.take_along_axis(g, sup, axis=1) * active
    Xg = _rowdot(gather_columns(X, sup), g_S)
    num = np.sum(g_S * g_S, axis=1)
    den = np.sum(Xg * Xg, axis=1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def task_step(X: np.ndarray, y: np.ndarray, sizes: np.ndarray, U: np.ndarray, w: np.ndarray,
              idx: np.ndarray, val: np.ndarray, active: np.ndarray, config: TaskStepConfig) -> TaskStepResult:
    """One per-task step over a block.

    Parameters
    ----------
    X : ndarray of shape (n, m, d)
        Zero-padded features of the block's tasks.
    y : ndarray of shape (n, m)
    sizes : ndarray of shape (n,)
        Real rows per task ``m_i``.
    U : ndarray of shape (d, r)
    w : ndarray of shape (n, r)
    idx, val : ndarrays of shape (n, k)
        Support slots and values of ``b_i``.
    active : ndarray of shape (n, k), bool
        Slot ``q`` of task ``a`` may be non-zero (``q < k_i``).
    config : TaskStepConfig

    Returns
    -------
    TaskStepResult
    """
    n, m, d = X.shape
    r = U.shape[1]
    k = idx.shape[1]
    XU = (X.reshape(n * m, d) @ U.astype(X.dtype, copy=False)).reshape(n, m, r)
    X_S = gather_columns(X, idx)
    res = y - _rowdot(XU, w) - _rowdot(X_S, val)
    loss_before = 0.5 * float(np.sum(res * res)) + _penalty(config.ridge, w, val)
    if k == 0 or not np.any(active):
        val = np.zeros_like(val)
        if config.fit_w:
            w = _solve_w(XU, y, config.ridge)
        target = y
        res = y - _rowdot(XU, w)
    elif config.method == "htp":
        w, idx, val, res = _htp(X, y, XU, w, idx, val, active, res, config)
        target = y - _rowdot(gather_columns(X, idx), val)
    else:
        w, idx, val, res, target = _iht_then_ls(X, y, sizes, XU, w, idx, val, active, config)
    loss_after = 0.5 * float(np.sum(res * res)) + _penalty(config.ridge, w, val)
    return TaskStepResult(w=w, idx=idx, val=val, target=target, loss_before=loss_before, loss_after=loss_after)


def _htp(X, y, XU, w, idx, val, active, res, config):
    """Hard thresholding pursuit with a joint least-squares solve on ``[X_i U, X_{i,S}]``."""
    n, m, d = X.shape
    r = XU.shape[2]
    k = idx.shape[1]
    inactive_diag = np.zeros((n, r + k))
    inactive_diag[:, r:] = ~active
    fixed_part = None if config.fit_w else _rowdot(XU, w)
    for step in range(config.n_steps):
        g = _gradient(X, res)
        if config.ridge:
            dense_b = np.zeros((n, d))
            np.put_along_axis(dense_b, idx, val, axis=1)
            g -= config.ridge * dense_b
        mu = _normalized_step(X, g, idx, val, active, k)
        cand = mu[:, None] * g
        cand_at = np.take_along_axis(cand, idx, axis=1) + val * active
        np.put_along_axis(cand, idx, cand_at, axis=1)
        new_idx = topk_abs(cand, k)
        X_S = gather_columns(X, new_idx) * active[:, None, :]
        if config.fit_w:
            Z = np.concatenate([XU, X_S], axis=2)
            target = y
        else:
            Z = X_S
            target = y - fixed_part
        G = np.matmul(np.swapaxes(Z, 1, 2), Z)
        diag = inactive_diag if config.fit_w else inactive_diag[:, r:]
        G[:, np.arange(G.shape[1]), np.arange(G.shape[1])] += diag
        rhs = np.matmul(target[:, None, :], Z)[:, 0, :]
        sol = batched_solve(G, rhs, config.ridge)
        if config.fit_w:
            w, new_val = sol[:, :r], sol[:, r:] * active
        else:
            new_val = sol * active
        res = target - _rowdot(Z, sol)
        same = np.array_equal(np.sort(np.where(active, new_idx, -1), axis=1),
                              np.sort(np.where(active, idx, -1), axis=1))
        idx, val = new_idx, new_val
        if same and step > 0:
            break
    return w, idx, val, res


def _iht_then_ls(X, y, sizes, XU, w, idx, val, active, config):
    """The paper's per-task step: IHT on ``b_i`` with ``v = U w_i`` fixed, then least squares for ``w_i``."""
    n, m, d = X.shape
    k = idx.shape[1]
    v = _rowdot(XU, w)
    b = np.zeros((n, d))
    np.put_along_axis(b, idx, val * active, axis=1)
    k_i = active.sum(axis=1)
    gamma = None
    sqrt_k = np.sqrt(max(k, 1))
    for _ in range(config.n_steps):
        X_S = gather_columns(X, idx)
        res = y - v - _rowdot(X_S, np.take_along_axis(b, idx, axis=1))
        g = _gradient(X, res)
        if config.step == "paper":
            mu = 1.0 / np.maximum(sizes, 1)
        else:
            mu = _normalized_step(X, g, idx, np.take_along_axis(b, idx, axis=1), active, k)
        cand = b + mu[:, None] * g
        new_idx = topk_abs(cand, k)
        new_val = np.take_along_axis(cand, new_idx, axis=1) * active
        if config.step == "normalized":
            new_val, new_idx, mu = _halve_on_support_change(X, y, v, b, g, mu, idx, new_idx, new_val,
                                                            active, k)
        if config.threshold == "schedule":
            if gamma is None:
                gamma = np.max(np.abs(cand), axis=1)
            a, beta, c1 = config.schedule_alpha, config.schedule_beta, config.schedule_c1
            delta = a + c1 * gamma + beta / sqrt_k
            new_val = np.where(np.abs(new_val) > delta[:, None], new_val, 0.0)
            gamma = 2 * c1 * gamma + 2 * (a + c1 * beta / sqrt_k)
        b = np.zeros((n, d))
        np.put_along_axis(b, new_idx, new_val, axis=1)
        idx = new_idx
    val = np.take_along_axis(b, idx, axis=1) * active
    val = np.where(np.arange(k)[None, :] < k_i[:, None], val, 0.0)
    target = y - _rowdot(gather_columns(X, idx), val)
    if config.fit_w:
        w = _solve_w(XU, target, config.ridge)
    res = target - _rowdot(XU, w)
    return w, idx, val, res, target


def _halve_on_support_change(X, y, v, b, g, mu, idx, new_idx, new_val, active, k, c=0.01, max_halvings=20):
    """Blumensath & Davies' safeguard: where the support changed and
    ``mu > (1 - c) ||b_new - b||^2 / ||X (b_new - b)||^2``, halve ``mu`` and threshold again."""
    n, m, d = X.shape
    for _ in range(max_halvings):
        b_new = np.zeros((n, d))
        np.put_along_axis(b_new, new_idx, new_val, axis=1)
        diff = b_new - b
        Xdiff = np.matmul(X, diff[:, :, None])[:, :, 0]
        num = np.sum(diff * diff, axis=1)
        den = np.sum(Xdiff * Xdiff, axis=1)
        omega = (1 - c) * np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)
        support_changed = np.any(np.sort(new_idx, axis=1) != np.sort(idx, axis=1), axis=1)
        bad = support_changed & (mu > omega)
        if not np.any(bad):
            break
        mu = np.where(bad, mu / 2, mu)
        cand = b + mu[:, None] * g
        new_idx = np.where(bad[:, None], topk_abs(cand, k), new_idx)
        new_val = np.take_along_axis(cand, new_idx, axis=1) * active
    return new_val, new_idx, mu
