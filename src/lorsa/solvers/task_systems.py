"""The per-task least-squares systems of a block, in the two data layouts (SPEC §2 step 1, §3).

For every task ``i`` of a block, with ``U`` fixed, the per-task step works with

    residual   y_i - X_i (U w_i + b_i)
    gradient   g_i = X_i^T (y_i - X_i (U w_i + b_i))                      (n, d)
    solve      least squares on the columns [X_i U, X_{i,S}] for a support S (jointly w_i and b_{i,S}),
               or on X_{i,S} with w_i fixed, or on X_i U with b_i fixed, plus an optional ridge
    objective  1/2 ||y_i - X_i (U w_i + b_i)||^2

:class:`RowSystem` computes them from padded rows ``X (n, m, d)``; :class:`GramSystem` from the sufficient statistics
``G_i = X_i^T X_i``, ``c_i = X_i^T y_i``, ``||y_i||^2`` (O(d^2) per task instead of O(m_i d), SPEC Remark 1). Both
solve the same normal equations; the solvers of :mod:`.task_step` are written once against this interface.

A support is ``k`` slots ``sup (n, k)`` with a mask ``(n, k)``: masked slots take no part (their coefficient is 0).
The "state" a solve returns (residual rows, or ``(theta, G theta)``) is what ``gradient`` and ``objective`` read,
so that no pass over the data is repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..kernels import batched_solve, gather_columns

__all__ = ["RowSystem", "GramSystem", "gather_rows"]


def gather_rows(G: np.ndarray, idx: np.ndarray, tasks: np.ndarray | None = None) -> np.ndarray:
    """``G[t_a][idx[a], :]`` for every task ``a`` (``t = tasks``, default all): (n, k) -> (n, k, d), one flat
    gather of contiguous rows."""
    n_all, d, _ = G.shape
    tasks = np.arange(n_all) if tasks is None else tasks
    flat = (tasks[:, None] * d + idx).reshape(-1)
    return G.reshape(n_all * d, d)[flat].reshape(idx.shape[0], idx.shape[1], d)


def take_state(state: Any, sel: np.ndarray) -> Any:
    """The state of the tasks ``sel`` (a state is an array, or a tuple of arrays, with tasks on axis 0)."""
    return tuple(part[sel] for part in state) if isinstance(state, tuple) else state[sel]


def put_state(state: Any, sel: np.ndarray, part: Any) -> None:
    """Write ``part`` (the state of tasks ``sel``) into ``state`` in place."""
    if isinstance(state, tuple):
        for whole, piece in zip(state, part, strict=True):
            whole[sel] = piece
    else:
        state[sel] = part


def _rowdot(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``A[a] @ v[a]``: (n, m, p), (n, p) -> (n, m) as one batched product."""
    return np.matmul(A, v[:, :, None].astype(A.dtype, copy=False))[:, :, 0]


def _combine_rows(rows: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``sum_q coef[a, q] rows[a, q, :]``: (n, k, d), (n, k) -> (n, d) float64, as one batched product."""
    return np.matmul(coef[:, None, :].astype(rows.dtype, copy=False), rows)[:, 0, :].astype(np.float64, copy=False)


def _assemble(blocks: list[list[np.ndarray]]) -> np.ndarray:
    return np.concatenate([np.concatenate(row, axis=2) for row in blocks], axis=1)


def _mask_system(M: np.ndarray, rhs: np.ndarray, offset: int, mask: np.ndarray) -> None:
    """Decouple masked slots (columns ``offset + q``): zero their rows/columns, unit diagonal, zero right side."""
    if mask.all():
        return
    keep = np.ones(M.shape[:2], dtype=bool)
    keep[:, offset:] = mask
    M *= keep[:, :, None] & keep[:, None, :]
    rhs *= keep
    diag = np.arange(offset, M.shape[1])
    M[:, diag, diag] += ~mask


@dataclass
class Normal:
    """Assembled per-task normal equations ``M (n, p, p) x = rhs (n, p)`` on ``[X_i U, X_{i,sup}]`` (the first
    ``offset`` unknowns are ``w_i``; ``offset = 0`` when ``w`` is fixed), with what is needed to finish the solve
    and to restrict it to a sub-support: the gathered data (``G_{i,sup:}`` rows, or the columns ``Z``) and,
    for rows, the target."""

    M: np.ndarray
    rhs: np.ndarray
    offset: int
    sup: np.ndarray
    mask: np.ndarray
    fixed_w: np.ndarray | None
    data: np.ndarray
    target: np.ndarray | None


def _split(normal: Normal, sol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = normal.offset
    w = sol[:, :r] if normal.fixed_w is None else normal.fixed_w
    return w, sol[:, r:] * normal.mask


def _selection(offset: int, keep: np.ndarray) -> np.ndarray:
    """Unknowns kept when a support is restricted to ``keep``: all of ``w`` and the kept slots."""
    head = np.broadcast_to(np.arange(offset), (keep.shape[0], offset))
    return np.concatenate([head, offset + keep], axis=1)


def _restrict_system(M: np.ndarray, rhs: np.ndarray, sel: np.ndarray, offset: int, mask: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    M = np.take_along_axis(np.take_along_axis(M, sel[:, :, None], axis=1), sel[:, None, :], axis=2)
    rhs = np.take_along_axis(rhs, sel, axis=1)
    _mask_system(M, rhs, offset, mask)
    return M, rhs


class RowSystem:
    """The per-task systems of a row block ``X (n, m, d)``, ``y (n, m)`` (zero padding rows are inert)."""

    def __init__(self, X: np.ndarray, y: np.ndarray, U: np.ndarray) -> None:
        n, m, d = X.shape
        self.X, self.y = X, y
        self.XU = (X.reshape(n * m, d) @ U.astype(X.dtype, copy=False)).reshape(n, m, U.shape[1])

    def subset(self, tasks: np.ndarray) -> RowSystem:
        """The systems of the tasks ``tasks`` only (their rows are copied: meant for small subsets)."""
        sub = object.__new__(RowSystem)
        sub.X, sub.y, sub.XU = self.X[tasks], self.y[tasks], self.XU[tasks]
        return sub

    def residual(self, w: np.ndarray, idx: np.ndarray, val: np.ndarray) -> np.ndarray:
        return self.y - _rowdot(self.XU, w) - _rowdot(gather_columns(self.X, idx), val)

    def gradient(self, state: np.ndarray) -> np.ndarray:
        return np.matmul(state[:, None, :].astype(self.X.dtype, copy=False), self.X)[:, 0, :].astype(np.float64)

    def objective(self, state: np.ndarray) -> np.ndarray:
        return 0.5 * np.einsum("nm,nm->n", state, state, dtype=np.float64)

    def sq_norm(self, sup: np.ndarray, vals: np.ndarray) -> np.ndarray:
        """``||X_{i,sup} v_i||^2`` per task."""
        Xv = _rowdot(gather_columns(self.X, sup), vals)
        return np.einsum("nm,nm->n", Xv, Xv, dtype=np.float64)

    def target(self, idx: np.ndarray, val: np.ndarray) -> np.ndarray:
        """``y_i - X_i b_i`` (n, m): what ``X_i U w_i`` fits in the shared step."""
        return self.y - _rowdot(gather_columns(self.X, idx), val)

    def solve(self, sup: np.ndarray, mask: np.ndarray, ridge: float, fixed_w: np.ndarray | None = None,
              fixed_b: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Least squares for ``(w_i, b_{i,sup})`` jointly; or ``b`` only (``fixed_w``); or ``w`` only (``fixed_b``).

        Returns ``w (n, r)``, ``vals (n, len(sup))`` (zero on masked slots) and the residual state.
        """
        if fixed_b is not None:
            target = self.target(*fixed_b)
            M = np.matmul(np.swapaxes(self.XU, 1, 2), self.XU).astype(np.float64, copy=False)
            rhs = np.matmul(target[:, None, :].astype(self.XU.dtype, copy=False), self.XU)[:, 0, :]
            w = batched_solve(M, rhs.astype(np.float64, copy=False), ridge)
            return w, fixed_b[1], target - _rowdot(self.XU, w)
        return self.finish(self.assemble(sup, mask, fixed_w), ridge)

    def assemble(self, sup: np.ndarray, mask: np.ndarray, fixed_w: np.ndarray | None = None) -> Normal:
        """The normal equations of the least squares on ``[X_i U, X_{i,sup}]`` (or ``X_{i,sup}`` with ``w``
        fixed), masked slots decoupled."""
        X_S = gather_columns(self.X, sup)
        if fixed_w is None:
            Z, target, offset = np.concatenate([self.XU, X_S], axis=2), self.y, self.XU.shape[2]
        else:
            Z, target, offset = X_S, self.y - _rowdot(self.XU, fixed_w), 0
        M = np.matmul(np.swapaxes(Z, 1, 2), Z).astype(np.float64, copy=False)
        rhs = np.matmul(target[:, None, :].astype(Z.dtype, copy=False), Z)[:, 0, :].astype(np.float64, copy=False)
        _mask_system(M, rhs, offset, mask)
        return Normal(M, rhs, offset, sup, mask, fixed_w, Z, target)

    def finish(self, normal: Normal, ridge: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Solve assembled normal equations: ``w``, slot values and the residual state."""
        sol = batched_solve(normal.M, normal.rhs, ridge)
        state = normal.target - _rowdot(normal.data, sol)
        return _split(normal, sol) + (state,)

    def cross(self, normal: Normal) -> tuple[np.ndarray, np.ndarray]:
        """``H (n, d, p)``: every coordinate column ``X_{i,j}`` against the columns of ``normal`` (``X_i^T Z_i``,
        masked slots zero), and ``diag (n, d)``: ``||X_{i,j}||^2``."""
        H = np.matmul(np.swapaxes(self.X, 1, 2), normal.data).astype(np.float64, copy=False)
        H[:, :, normal.offset:] *= normal.mask[:, None, :]
        return H, np.einsum("nmd,nmd->nd", self.X, self.X, dtype=np.float64)

    def energy(self) -> np.ndarray:
        """``1/2 ||y_i||^2`` per task (the objective at ``theta_i = 0``)."""
        return 0.5 * np.einsum("nm,nm->n", self.y, self.y, dtype=np.float64)

    @staticmethod
    def restrict(normal: Normal, keep: np.ndarray, mask: np.ndarray) -> Normal:
        """The normal equations for the sub-support ``sup[keep]``, taken from those of ``sup`` (no new gather)."""
        sel = _selection(normal.offset, keep)
        M, rhs = _restrict_system(normal.M, normal.rhs, sel, normal.offset, mask)
        data = np.take_along_axis(normal.data, sel[:, None, :], axis=2)
        sup = np.take_along_axis(normal.sup, keep, axis=1)
        return Normal(M, rhs, normal.offset, sup, mask, normal.fixed_w, data, normal.target)


class GramSystem:
    """The per-task systems of a Gram block: ``G (n, d, d)``, ``c (n, d)``, ``yy (n,)``.

    State: ``(theta, G theta)`` with ``theta_i = U w_i + b_i``. The objective is evaluated as
    ``1/2 (||y||^2 - 2 c^T theta + theta^T G theta)``, accurate to about ``1e-16 ||y_i||^2`` (clipped at 0).
    """

    def __init__(self, G: np.ndarray, c: np.ndarray, yy: np.ndarray, U: np.ndarray) -> None:
        n, d, _ = G.shape
        self.G, self.yy, self.U = G, yy, U
        self.tasks = np.arange(n)
        self.c = c.astype(np.float64, copy=False)
        self.GU = (G.reshape(n * d, d) @ U.astype(G.dtype, copy=False)).reshape(n, d, -1).astype(np.float64)
        self.UGU = np.matmul(U.T, self.GU)
        self.cU = self.c @ U

    def subset(self, tasks: np.ndarray) -> GramSystem:
        """The systems of the tasks ``tasks`` only (``G`` is shared, not copied)."""
        sub = object.__new__(GramSystem)
        sub.G, sub.U, sub.tasks = self.G, self.U, self.tasks[tasks]
        for name in ("yy", "c", "GU", "UGU", "cU"):
            setattr(sub, name, getattr(self, name)[tasks])
        return sub

    def _gather(self, idx: np.ndarray) -> np.ndarray:
        return gather_rows(self.G, idx, self.tasks)

    @staticmethod
    def _rows(idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape)

    def _state(self, w: np.ndarray, sup: np.ndarray, vals: np.ndarray, G_S: np.ndarray | None = None) -> Any:
        if G_S is None:
            G_S = self._gather(sup)
        theta = w @ self.U.T
        np.add.at(theta, (self._rows(sup), sup), vals)
        Gtheta = _rowdot(self.GU, w) + _combine_rows(G_S, vals)
        return theta, Gtheta

    def residual(self, w: np.ndarray, idx: np.ndarray, val: np.ndarray) -> Any:
        return self._state(w, idx, val)

    def gradient(self, state: Any) -> np.ndarray:
        return self.c - state[1]

    def objective(self, state: Any) -> np.ndarray:
        theta, Gtheta = state
        value = self.yy - 2.0 * np.einsum("nd,nd->n", self.c, theta) + np.einsum("nd,nd->n", theta, Gtheta)
        return 0.5 * np.maximum(value, 0.0)

    def sq_norm(self, sup: np.ndarray, vals: np.ndarray) -> np.ndarray:
        G_S = self._gather(sup)
        G_SS = G_S[self._rows(sup)[:, :, None], np.arange(sup.shape[1])[None, :, None], sup[:, None, :]]
        return np.einsum("nk,nk->n", vals, _rowdot(G_SS.astype(np.float64, copy=False), vals))

    def target(self, idx: np.ndarray, val: np.ndarray) -> np.ndarray:
        """``X_i^T (y_i - X_i b_i)`` (n, d)."""
        return self.c - _combine_rows(self._gather(idx), val)

    def solve(self, sup: np.ndarray, mask: np.ndarray, ridge: float, fixed_w: np.ndarray | None = None,
              fixed_b: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, Any]:
        """See :meth:`RowSystem.solve`; the same normal equations assembled from ``G``."""
        if fixed_b is not None:
            b_idx, b_val = fixed_b
            G_B = self._gather(b_idx).astype(np.float64, copy=False)
            rhs = self.cU - _combine_rows(self.GU[self._rows(b_idx), b_idx], b_val)
            w = batched_solve(self.UGU, rhs, ridge)
            return w, b_val, self._state(w, b_idx, b_val, G_B)
        return self.finish(self.assemble(sup, mask, fixed_w), ridge)

    def assemble(self, sup: np.ndarray, mask: np.ndarray, fixed_w: np.ndarray | None = None) -> Normal:
        """See :meth:`RowSystem.assemble`."""
        G_S = self._gather(sup).astype(np.float64, copy=False)
        rows = self._rows(sup)
        G_SS = G_S[rows[:, :, None], np.arange(sup.shape[1])[None, :, None], sup[:, None, :]]
        GU_S = self.GU[rows, sup]
        c_S = self.c[rows, sup]
        if fixed_w is None:
            M = _assemble([[self.UGU, np.swapaxes(GU_S, 1, 2)], [GU_S, G_SS]])
            rhs = np.concatenate([self.cU, c_S], axis=1)
            offset = self.UGU.shape[1]
        else:
            M, rhs, offset = G_SS.copy(), c_S - _rowdot(GU_S, fixed_w), 0
        _mask_system(M, rhs, offset, mask)
        return Normal(M, rhs, offset, sup, mask, fixed_w, G_S, None)

    def finish(self, normal: Normal, ridge: float) -> tuple[np.ndarray, np.ndarray, Any]:
        """See :meth:`RowSystem.finish`."""
        sol = batched_solve(normal.M, normal.rhs, ridge)
        w, vals = _split(normal, sol)
        return w, vals, self._state(w, normal.sup, vals, normal.data)

    def cross(self, normal: Normal) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`RowSystem.cross`: ``[G_i U, G_{i,:S}]`` and ``diag(G_i)``."""
        n_all, d, _ = self.G.shape
        H_S = np.swapaxes(normal.data, 1, 2) * normal.mask[:, None, :]
        H = H_S if normal.offset == 0 else np.concatenate([self.GU, H_S], axis=2)
        diag = self.G.reshape(n_all, d * d)[self.tasks[:, None], np.arange(d) * (d + 1)]
        return H, diag.astype(np.float64, copy=False)

    def energy(self) -> np.ndarray:
        """See :meth:`RowSystem.energy`."""
        return 0.5 * np.asarray(self.yy, dtype=np.float64)

    @staticmethod
    def restrict(normal: Normal, keep: np.ndarray, mask: np.ndarray) -> Normal:
        """See :meth:`RowSystem.restrict`."""
        sel = _selection(normal.offset, keep)
        M, rhs = _restrict_system(normal.M, normal.rhs, sel, normal.offset, mask)
        data = np.take_along_axis(normal.data, keep[:, :, None], axis=1)
        sup = np.take_along_axis(normal.sup, keep, axis=1)
        return Normal(M, rhs, normal.offset, sup, mask, normal.fixed_w, data, None)
