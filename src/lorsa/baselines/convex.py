"""Convex low-rank + sparse multi-task learning: the classic convex alternative to AMHT-LRS.

The task coefficients ``Theta = [theta_1 ... theta_t]`` (d x t) are ``theta_0 1^T + L + S`` and

    min_{L, S}  F(L, S) = 1/2 sum_i ||y_i - X_i (theta_0 + l_i + s_i)||^2 + lam_* ||L||_* + lam_1 ||S||_1

(nuclear norm: a low-rank shared part; entrywise l1: sparse task-specific parts; Chen, Liu & Ye 2010, "Learning
incoherent sparse and low-rank patterns from multiple tasks", and the robust multi-task learning of Chen, Zhou &
Ye 2011), solved by accelerated proximal gradient (FISTA, Beck & Teboulle 2009) with gradient-based adaptive
restart (O'Donoghue & Candes 2015). The smooth part's gradient is the same ``g_i = X_i^T (X_i theta_i - y_i)``
for ``l_i`` and ``s_i``, computed block by block over :class:`lorsa.data.RaggedTasks` (``G_i theta_i - c_i`` for
Gram blocks); its Lipschitz constant is ``2 max_i lambda_max(X_i^T X_i)``. The proximal steps are singular-value
soft-thresholding of ``L`` and entrywise soft-thresholding of ``S``.

``lam_*`` and ``lam_1`` are given as fractions (``nuclear``, ``l1``) of the smallest values that make ``L = 0``
(the spectral norm of the gradient at 0) and ``S = 0`` (its largest entry), chosen on held-out rows like every
baseline's hyper-parameters. ``theta_0`` is the single model (``toward="single"``, the default) or 0.
A task stores ``rank(L)`` coordinates (``L = P diag(s) Q^T``: its column of ``diag(s) Q^T``) plus the non-zeros
of ``s_i``: ``params_per_task = rank(L) + mean_i ||s_i||_0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .. import _validation as v
from ..data import GramBlock, RaggedTasks
from .base import candidates, check_nonnegative_float
from .finetune import DenseTaskModel
from .single import DEFAULT_RIDGE_GRID, SingleModel

__all__ = ["ConvexLRS", "ConvexLRSProblem", "soft_threshold", "singular_value_threshold"]

_TOWARD = ("single", "zero")
DEFAULT_FRACTIONS: tuple[float, ...] = (0.3, 0.1, 0.03, 0.01)


def soft_threshold(A: np.ndarray, tau: float) -> np.ndarray:
    """``sign(A) max(|A| - tau, 0)``: the proximal operator of ``tau ||.||_1``."""
    return np.sign(A) * np.maximum(np.abs(A) - tau, 0.0)


def singular_value_threshold(A: np.ndarray, tau: float) -> tuple[np.ndarray, int]:
    """``P max(s - tau, 0) Q^T`` for ``A = P diag(s) Q^T`` (the prox of ``tau ||.||_*``), and its rank."""
    P, s, Qt = np.linalg.svd(A, full_matrices=False)
    s = np.maximum(s - tau, 0.0)
    rank = int(np.count_nonzero(s))
    return (P[:, :rank] * s[:rank]) @ Qt[:rank], rank


@dataclass
class ConvexLRSProblem:
    """The smooth part ``1/2 sum_i ||y_i - X_i (theta_0 + theta_i)||^2`` over ``RaggedTasks`` blocks.

    ``gradient(Theta)`` (d, t) and ``loss(Theta)`` take the *deviation* ``Theta = L + S`` from ``theta_0``.
    """

    data: RaggedTasks
    offset: np.ndarray

    @classmethod
    def build(cls, X: np.ndarray, y: np.ndarray, index: np.ndarray, n_tasks: int, offset: np.ndarray
              ) -> ConvexLRSProblem:
        data = RaggedTasks.from_arrays(X, y - X @ offset, index, n_tasks, layout="auto")
        return cls(data=data, offset=offset)

    def lipschitz(self) -> float:
        """``2 max_i lambda_max(X_i^T X_i)`` (the factor 2: ``L`` and ``S`` enter through their sum)."""
        top = 0.0
        for b in self.data.blocks:
            if isinstance(b, GramBlock):
                top = max(top, float(np.linalg.eigvalsh(b.G.astype(np.float64)).max()))
            else:
                K = np.matmul(b.X, np.swapaxes(b.X, 1, 2))
                top = max(top, float(np.linalg.eigvalsh(K.astype(np.float64)).max()))
        return 2.0 * max(top, 1e-300)

    def gradient(self, theta: np.ndarray) -> tuple[np.ndarray, float]:
        """``g_i = X_i^T (X_i theta_i - y_i)`` as columns (d, t), and the smooth loss at ``theta``."""
        grad = np.zeros_like(theta)
        loss = 0.0
        for b in self.data.blocks:
            th = theta[:, b.task_ids].T                                   # (n, d)
            if isinstance(b, GramBlock):
                Gth = np.einsum("npq,nq->np", b.G, th)
                grad[:, b.task_ids] = (Gth - b.c).T
                loss += 0.5 * float(b.yy.sum() - 2.0 * np.einsum("np,np->", b.c, th) + np.einsum("np,np->", th, Gth))
            else:
                resid = np.einsum("nmd,nd->nm", b.X, th) - b.y
                grad[:, b.task_ids] = np.einsum("nmd,nm->nd", b.X, resid).T
                loss += 0.5 * float(np.einsum("nm,nm->", resid, resid))
        return grad, loss


def fista_lrs(problem: ConvexLRSProblem, lam_nuclear: float, lam_l1: float, *, max_iter: int = 3000,
              tol: float = 1e-7, start: tuple[np.ndarray, np.ndarray] | None = None
              ) -> tuple[np.ndarray, np.ndarray, int, list[float]]:
    """Accelerated proximal gradient on ``F(L, S)``; returns ``L``, ``S`` (d, t), iterations, objective trace."""
    d, t = problem.data.n_features, problem.data.n_tasks
    step = 1.0 / problem.lipschitz()
    L = np.zeros((d, t)) if start is None else start[0].copy()
    S = np.zeros((d, t)) if start is None else start[1].copy()
    yL, yS = L.copy(), S.copy()
    momentum = 1.0
    history: list[float] = []
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (reported)
        g, _ = problem.gradient(yL + yS)
        L_new, _ = singular_value_threshold(yL - step * g, step * lam_nuclear)
        S_new = soft_threshold(yS - step * g, step * lam_l1)
        change = np.sqrt(np.sum((L_new - L) ** 2) + np.sum((S_new - S) ** 2))
        scale = max(np.sqrt(np.sum(L_new ** 2) + np.sum(S_new ** 2)), 1e-300)
        # Restart the momentum when the step goes against the generalised gradient (O'Donoghue & Candes).
        if np.sum((yL - L_new) * (L_new - L)) + np.sum((yS - S_new) * (S_new - S)) > 0:
            momentum = 1.0
        nxt = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * momentum ** 2))
        beta = (momentum - 1.0) / nxt
        yL, yS = L_new + beta * (L_new - L), S_new + beta * (S_new - S)
        L, S, momentum = L_new, S_new, nxt
        if it % 25 == 0 or change <= tol * scale:
            history.append(objective(problem, L, S, lam_nuclear, lam_l1))
        if change <= tol * scale:
            break
    return L, S, it, history


def objective(problem: ConvexLRSProblem, L: np.ndarray, S: np.ndarray, lam_nuclear: float, lam_l1: float) -> float:
    """``F(L, S)``."""
    _, loss = problem.gradient(L + S)
    return loss + lam_nuclear * float(np.linalg.svd(L, compute_uv=False).sum()) + lam_l1 * float(np.abs(S).sum())


def regularisation_limits(problem: ConvexLRSProblem) -> tuple[float, float]:
    """The smallest ``lam_*`` and ``lam_1`` at which ``L = 0`` and ``S = 0`` solve the problem alone."""
    g, _ = problem.gradient(np.zeros((problem.data.n_features, problem.data.n_tasks)))
    return float(np.linalg.norm(g, 2)), float(np.abs(g).max())


class ConvexLRS(DenseTaskModel):
    """``theta_i = theta_0 + l_i + s_i`` with a nuclear-norm ``L`` and an l1 ``S``, by accelerated proximal gradient.

    Parameters
    ----------
    nuclear : float or sequence of float, default (0.3, 0.1, 0.03, 0.01)
        ``lam_*`` as a fraction of the smallest value giving ``L = 0``.
    l1 : float or sequence of float, default (0.3, 0.1, 0.03, 0.01)
        ``lam_1`` as a fraction of the smallest value giving ``S = 0``.
    toward : {"single", "zero"}, default "single"
        ``theta_0``: the single model (:class:`SingleModel` with ``shared_ridge``) or 0.
    shared_ridge : float or sequence of float, default :data:`DEFAULT_RIDGE_GRID`
        Ridge of ``theta_0``.
    max_iter : int, default 3000
        Cap on FISTA iterations.
    tol : float, default 1e-7
        Stop when an iteration moves ``(L, S)`` by less than ``tol`` relative to its norm.
    validation_fraction : float, default 0.2
    random_state : int, Generator or None

    Attributes
    ----------
    coef_ : ndarray of shape (t, d)
        ``theta_i`` of task ``tasks_[i]``.
    shared_coef_ : ndarray of shape (d,)
        ``theta_0``.
    low_rank_ : ndarray of shape (d, t)
        ``L``.
    sparse_ : ndarray of shape (d, t)
        ``S``.
    rank_ : int
        ``rank(L)``.
    n_iter_ : int
        FISTA iterations of the final fit.
    """

    _tunable: ClassVar[tuple[str, ...]] = ("nuclear", "l1")
    _state_names: ClassVar[tuple[str, ...]] = ("coef_", "shared_coef_", "low_rank_", "sparse_", "rank_", "n_iter_",
                                               "lam_nuclear_", "lam_l1_")

    def __init__(self, nuclear: float | Sequence[float] = DEFAULT_FRACTIONS, *,
                 l1: float | Sequence[float] = DEFAULT_FRACTIONS, toward: str = "single",
                 shared_ridge: float | Sequence[float] = DEFAULT_RIDGE_GRID, max_iter: int = 3000, tol: float = 1e-7,
                 validation_fraction: float = 0.2, random_state: int | np.random.Generator | None = None) -> None:
        self.nuclear = nuclear
        self.l1 = l1
        self.toward = toward
        self.shared_ridge = shared_ridge
        self.max_iter = max_iter
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _candidates(self, n_features: int) -> dict[str, list[Any]]:
        v.check_choice("toward", self.toward, _TOWARD)
        v.check_int("max_iter", self.max_iter, 1)
        v.check_float("tol", self.tol, 0.0)
        candidates("shared_ridge", self.shared_ridge, check_nonnegative_float)
        return {"nuclear": candidates("nuclear", self.nuclear, check_nonnegative_float),
                "l1": candidates("l1", self.l1, check_nonnegative_float)}

    def _fit_state(self, X, y, index, n_tasks, params, seed):
        offset = np.zeros(X.shape[1])
        if self.toward == "single":
            single = SingleModel(self.shared_ridge, validation_fraction=self.validation_fraction, random_state=seed)
            offset = single.fit(X, y, index).coef_
        problem = ConvexLRSProblem.build(X, y, index, n_tasks, offset)
        nuc_max, l1_max = regularisation_limits(problem)
        lam_n, lam_1 = params["nuclear"] * nuc_max, params["l1"] * l1_max
        L, S, n_iter, _ = fista_lrs(problem, lam_n, lam_1, max_iter=self.max_iter, tol=self.tol)
        rank = int(np.count_nonzero(np.linalg.svd(L, compute_uv=False) > 1e-12 * max(nuc_max, 1e-300)))
        coef = (offset[:, None] + L + S).T
        return {"coef_": np.ascontiguousarray(coef), "shared_coef_": offset, "low_rank_": L, "sparse_": S,
                "rank_": np.int64(rank), "n_iter_": np.int64(n_iter), "lam_nuclear_": np.float64(lam_n),
                "lam_l1_": np.float64(lam_1)}

    def _params_per_task(self) -> float:
        """``rank(L)`` + the mean number of non-zeros of ``s_i``."""
        return float(self.rank_) + float(np.count_nonzero(self.sparse_)) / max(self.sparse_.shape[1], 1)
