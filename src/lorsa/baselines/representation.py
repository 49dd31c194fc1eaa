"""AMHT-LRS with hold-out tuning, and representation learning (SPEC §7: AltMin, ``k = 0``, ``r`` per task).

:class:`TunedLRS` wraps :class:`lorsa.LRSRegressor` so that ``rank``, ``sparsity`` and ``ridge`` may be given as
candidate lists chosen on held-out rows like every baseline's hyper-parameters, and optionally fits AMHT-LRS on top
of a shared offset (``offset="single"``: ``theta_i = theta_0 + U w_i + b_i`` with ``theta_0`` the single model, so
that the ridge shrinks ``(w_i, b_i)`` toward the single model instead of toward 0, as fine-tuning does; still
``r + k`` numbers per task) with a per-task sparsity adapted to the sample count (``samples_per_nonzero``);
:class:`RepresentationLearning` is
the same with ``k = 0`` fixed: ``theta_i = U w_i``, the AltMin of Thekumparampil et al. (2021) (SPEC §1 special
case), which stores ``r`` numbers per task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .. import _validation as v
from ..model import LRSRegressor, predict_rows
from ..solvers.task_step import allowed_nonzeros
from .base import TaskRegressor, candidates, check_nonnegative_float, check_positive_int
from .single import DEFAULT_RIDGE_GRID, SingleModel

__all__ = ["TunedLRS", "RepresentationLearning"]

_OFFSETS = ("none", "single")
#: Ranks :class:`RepresentationLearning` tries by default (those ``>= d`` are dropped for small ``d``).
DEFAULT_RANK_GRID: tuple[int, ...] = (1, 2, 3, 5)


def _check_spn(name: str, value: Any) -> float | None:
    return None if value is None else v.check_float(name, value, 0.0, low_inclusive=False)


class TunedLRS(TaskRegressor):
    """``theta_i = U w_i + b_i`` fitted by AMHT-LRS (:class:`lorsa.LRSRegressor`), ``r + k`` parameters per task.

    Parameters
    ----------
    rank : int or sequence of int, default 1
        ``r``; with several values the one with the smallest hold-out RMSE is used.
    sparsity : int or sequence of int, default 0
        ``k``, non-zeros per ``b_i``.
    ridge : float or sequence of float, default 0.0
        Penalty on ``w_i, b_i`` (see :class:`lorsa.LRSRegressor`).
    offset : {"none", "single"} or sequence of them, default "none"
        ``"single"``: fit AMHT-LRS to ``y - <x, theta_0>``, with ``theta_0`` the single model
        (:class:`lorsa.baselines.SingleModel` with ``shared_ridge``), and predict ``<x, theta_0 + U w_i + b_i>``.
    samples_per_nonzero : float, None or sequence of them, default None
        At most ``floor(m_i / samples_per_nonzero)`` non-zeros in task ``i``'s ``b_i`` (see
        :class:`lorsa.LRSRegressor`); ``params_per_task`` then counts the mean number allowed.
    shared_ridge : float or sequence of float, default :data:`lorsa.baselines.single.DEFAULT_RIDGE_GRID`
        Ridge of ``theta_0`` (chosen on its own hold-out rows when several); used with ``offset="single"``.
    row_sparsity : int or None, default None
        ``zeta`` (fixed, not tuned).
    max_iter : int, default 100
        Cap on AMHT-LRS outer iterations.
    tol : float, default 1e-8
        Stopping tolerance of AMHT-LRS.
    init : {"moments", "random"}, default "moments"
        Initial ``U`` (SPEC §4).
    u_solver : {"auto", "exact", "cg"}, default "auto"
        U step of AMHT-LRS (see :class:`lorsa.LRSRegressor`).
    validation_fraction : float, default 0.2
        Fraction of every task's rows held out to choose among candidates.
    random_state : int, Generator or None
        Seed of the hold-out split and of AMHT-LRS's initialisation.

    Attributes
    ----------
    U_ : ndarray of shape (d, r)
    W_ : ndarray of shape (t, r)
    B_ : scipy.sparse.csc_matrix of shape (d, t)
    n_iter_ : int
        AMHT-LRS iterations of the final fit.
    """

    _min_features = 2
    _tunable: ClassVar[tuple[str, ...]] = ("rank", "sparsity", "ridge", "offset", "samples_per_nonzero")
    _state_names: ClassVar[tuple[str, ...]] = ("U_", "W_", "B_data_", "B_indices_", "B_indptr_", "n_iter_",
                                               "offset_coef_", "mean_nonzeros_")
    _state_defaults: ClassVar[dict[str, Any]] = {"offset_coef_": lambda a: np.zeros(a["U_"].shape[0]),
                                                 "mean_nonzeros_": lambda a: np.float64(0.0)}

    def __init__(self, rank: int | Sequence[int] = 1, sparsity: int | Sequence[int] = 0, *,
                 ridge: float | Sequence[float] = 0.0, offset: str | Sequence[str] = "none",
                 samples_per_nonzero: float | None | Sequence[float | None] = None,
                 shared_ridge: float | Sequence[float] = DEFAULT_RIDGE_GRID, row_sparsity: int | None = None,
                 max_iter: int = 100, tol: float = 1e-8, init: str = "moments", u_solver: str = "auto",
                 validation_fraction: float = 0.2, random_state: int | np.random.Generator | None = None) -> None:
        self.rank = rank
        self.sparsity = sparsity
        self.ridge = ridge
        self.offset = offset
        self.samples_per_nonzero = samples_per_nonzero
        self.shared_ridge = shared_ridge
        self.row_sparsity = row_sparsity
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.u_solver = u_solver
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _candidates(self, n_features: int) -> dict[str, list[Any]]:
        if n_features < 2:
            raise ValueError(f"X has {n_features} feature(s) (n_features={n_features}); a rank-r basis needs r < d, "
                             "so at least 2")
        v.check_int("row_sparsity", self._row_sparsity, 1, allow_none=True)
        v.check_int("max_iter", self.max_iter, 1)
        v.check_float("tol", self.tol, 0.0)
        v.check_choice("init", self.init, ("random", "moments"))
        v.check_choice("u_solver", self.u_solver, ("auto", "exact", "cg"))
        ranks = self.rank
        if isinstance(ranks, tuple) and ranks == DEFAULT_RANK_GRID:
            # the default grid loses the ranks a d this small cannot hold (r < d); a grid of the caller's is checked
            ranks = [r for r in ranks if r < n_features] or [1]
        return {"rank": candidates("rank", ranks, check_positive_int(1, n_features - 1)),
                "sparsity": candidates("sparsity", self._sparsity, check_positive_int(0, n_features)),
                "ridge": candidates("ridge", self.ridge, check_nonnegative_float),
                "offset": candidates("offset", self._offset, lambda n, x: v.check_choice(n, x, _OFFSETS)),
                "samples_per_nonzero": candidates("samples_per_nonzero", self._samples_per_nonzero, _check_spn)}

    def _fit_state(self, X, y, index, n_tasks, params, seed):
        offset = np.zeros(X.shape[1])
        if params["offset"] == "single":
            candidates("shared_ridge", self.shared_ridge, check_nonnegative_float)
            single = SingleModel(self.shared_ridge, validation_fraction=self.validation_fraction, random_state=seed)
            offset = single.fit(X, y, index).coef_
        spn = params["samples_per_nonzero"]
        est = LRSRegressor(rank=params["rank"], sparsity=params["sparsity"], ridge=params["ridge"],
                           samples_per_nonzero=spn, row_sparsity=self._row_sparsity, max_iter=self.max_iter,
                           tol=self.tol, init=self.init, u_solver=self.u_solver, random_state=seed)
        est.fit(X, y - X @ offset, index)
        if est.tasks_.shape[0] != n_tasks:  # pragma: no cover - split_rows keeps a row of every task
            raise RuntimeError("a task lost all its rows in the hold-out split")
        B = est.B_.tocsc()
        allowed = allowed_nonzeros(np.bincount(index, minlength=n_tasks), params["rank"], params["sparsity"], spn)
        return {"U_": est.U_, "W_": est.W_, "B_data_": B.data, "B_indices_": B.indices.astype(np.int64),
                "B_indptr_": B.indptr.astype(np.int64), "n_iter_": np.int64(est.n_iter_), "offset_coef_": offset,
                "mean_nonzeros_": np.float64(allowed.mean())}

    @property
    def _sparsity(self) -> int | Sequence[int]:
        return self.sparsity

    @property
    def _offset(self) -> str | Sequence[str]:
        return getattr(self, "offset", "none")

    @property
    def _samples_per_nonzero(self) -> float | None | Sequence[float | None]:
        return getattr(self, "samples_per_nonzero", None)

    @property
    def _row_sparsity(self) -> int | None:
        return self.row_sparsity

    @staticmethod
    def _B(state: dict[str, np.ndarray]) -> sp.csc_matrix:
        d = state["U_"].shape[0]
        t = state["W_"].shape[0]
        return sp.csc_matrix((state["B_data_"], state["B_indices_"], state["B_indptr_"]), shape=(d, t))

    @property
    def B_(self) -> sp.csc_matrix:
        """The sparse parts ``b_i`` as the columns of a (d, t) CSC matrix."""
        self._check_fitted()
        return self._B(self._state)

    def _predict_state(self, state, X, index):
        return predict_rows(X, index, state["U_"], state["W_"], self._B(state)) + X @ state["offset_coef_"]

    def _coefficients_state(self, state):
        return state["U_"] @ state["W_"].T + self._B(state).toarray() + state["offset_coef_"][:, None]

    def _params_per_task(self) -> float:
        """``r + k``, or ``r`` + the mean number of non-zeros allowed per task with ``samples_per_nonzero``."""
        r, k = int(self.best_params_["rank"]), int(self.best_params_["sparsity"])
        if self.best_params_.get("samples_per_nonzero") is None:
            return r + k
        return r + float(self.mean_nonzeros_)


class RepresentationLearning(TunedLRS):
    """Representation learning only (SPEC §7): ``theta_i = U w_i``, AltMin (AMHT-LRS with ``k = 0``); ``r`` per task.

    Parameters
    ----------
    rank : int or sequence of int, default (1, 2, 3, 5)
        ``r``; with several values the one with the smallest hold-out RMSE is used (from the default grid, the
        ranks ``>= d`` are dropped).
    ridge : float or sequence of float, default 0.0
        Penalty on ``w_i``.
    max_iter, tol, init, u_solver, validation_fraction, random_state
        As for :class:`TunedLRS`.
    """

    def __init__(self, rank: int | Sequence[int] = DEFAULT_RANK_GRID, *, ridge: float | Sequence[float] = 0.0,
                 max_iter: int = 100, tol: float = 1e-8, init: str = "moments", u_solver: str = "auto",
                 validation_fraction: float = 0.2, random_state: int | np.random.Generator | None = None) -> None:
        self.rank = rank
        self.ridge = ridge
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.u_solver = u_solver
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    @property
    def _sparsity(self) -> int:
        return 0

    @property
    def _row_sparsity(self) -> None:
        return None
