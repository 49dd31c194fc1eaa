"""``PrivateLRSRegressor``: AMHT-LRS whose shared ``U`` is user-level (ε, δ)-DP in the billboard model (SPEC §6).

Same interface as :class:`lorsa.LRSRegressor` (``fit``/``predict``/``adapt``/``save``/``load``), plus the target
``(epsilon, delta)``, the clipping bounds and the fitted ``privacy_report_``. The fit runs the ordinary AMHT-LRS
loop with two hooks (:mod:`lorsa.privacy.mechanism`): the U-step statistics are computed from clipped data with
each user's whole contribution bounded, and every reduced ``(S_A, S_V)`` is released with calibrated Gaussian noise
before the U solve. The number of releases is fixed in advance (``max_iter`` iterations, no early stopping).
"""

from __future__ import annotations

import copy
import math
import os
import secrets
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _validation as v
from ..backends.dask import any_dask
from ..data import RaggedTasks, encode_tasks
from ..io import read_model_file, write_model_file
from ..model import LRSRegressor
from ..solvers.amht import AMHTConfig, fit_amht
from ..solvers.task_step import TaskStepConfig
from ._checks import check_choice, check_real
from .accounting import ACCOUNTANTS, _check_delta, check_epsilon
from .mechanism import (
    ClippedStatistics,
    ClippingBounds,
    GaussianRelease,
    default_bounds,
    default_contribution_bounds,
    private_moments_basis,
    private_release,
)
from .report import PrivacyReport

__all__ = ["PrivateLRSRegressor", "PER_USER_STATEMENT"]

#: What a model file that holds the per-user parameters says about them (``save(..., include_users=True)``).
PER_USER_STATEMENT = (
    "This file holds every user's task label and (w_i, b_i). They are NOT covered by the differential privacy "
    "guarantee: each user's (w_i, b_i) is computed from that user's own data and belongs to that user alone "
    "(billboard model); anyone holding this file can read which users took part and fit their data. Publish only "
    "the file written by save(path) (U and the privacy report)."
)


class PrivateLRSRegressor(LRSRegressor):
    """Low-rank + sparse multi-task regression with a user-level differentially private shared basis ``U``.

    **Guarantee** (SPEC §6, the paper's Section 2.2 and Theorem 2). The fitted ``U_`` — and every noisy statistic
    released while fitting it — is (ε, δ)-differentially private with respect to adding or removing ONE user's
    (task's) entire data, ε accounted with dp-accounting over the ``2·max_iter`` Gaussian releases (plus one for a
    private method-of-moments start). Each ``w_i`` and ``b_i`` is what user ``i`` computes from the published
    ``U`` and its own data (billboard model, joint DP): ``W_``, ``B_`` and ``tasks_`` are held here only because
    this object simulates all users; handing them (or another user's ``w_i, b_i``) to one party is outside the
    guarantee, so :meth:`save` writes ``U`` and the privacy report only unless ``include_users=True``. The training
    loss, the fit time and which users have few rows are computed without noise and are not exposed
    (``loss_history_`` and ``iteration_times_`` are empty, no small-task warning is given). The guarantee assumes
    the bounds and hyper-parameters were chosen without looking at the private data, and that the noise seed is
    secret: it is drawn from the operating system (:mod:`secrets`); a known ``random_state`` is refused unless
    ``reproducible=True`` asks for a reproducible, NOT private run (the report then says so).

    Parameters
    ----------
    rank, sparsity : int
        ``r`` and ``k``, as in :class:`lorsa.LRSRegressor`.
    epsilon : float, default 1.0
        Target ε in (0, 100] (:data:`lorsa.privacy.accounting.MAX_EPSILON`: beyond it the guarantee says nothing).
        ``inf`` adds no noise (NOT private: clipping only, for baselines and tests; bounds may then be infinite
        too).
    delta : float, default 1e-6
        δ in (0, 0.01] (:data:`lorsa.privacy.accounting.MAX_DELTA`); take it well below ``1/t``.
    accountant : {"pld", "rdp"}, default "pld"
        dp-accounting's accountant used to calibrate σ_DP to ``(epsilon, delta)``.
    max_rows : int or None, default None
        ``None`` (default): each user's statistics are averages over its own rows (weight ``1/n_i``,
        ``A_i = (w̃_i w̃_iᵀ) ⊗ X̃_iᵀX̃_i/n_i``, ``V_i = X̃_iᵀ(ỹ_i − c̃_i) w̃_iᵀ/n_i``) and each user's whole pair is
        clipped (one factor for both) to Frobenius norms ``Δ_A = min(C_A, A₁²A_w²)``,
        ``Δ_V = min(C_V, A₁(A₂ + A₃)A_w)``, where ``C_A, C_V`` are set for a typical user of the public model
        (:func:`lorsa.privacy.mechanism.default_contribution_bounds`) — a user above them is down-weighted as a
        whole, which keeps its normal equations consistent. An integer ``m``: the paper's sums over rows, each user's
        whole contribution clipped to ``Δ_A = m·A₁²·A_w²`` and ``Δ_V = m·A₁·(A₂ + A₃)·A_w`` (worst-case bounds:
        far more noise for a typical user).
    feature_scale, target_scale : float, default 1.0
        Assumed standard deviation of each feature and of ``y`` (1 for standardised data), the only assumptions
        the defaults rest on (with ``d``): row bounds ``A₁ = feature_scale·(√d + 2)``,
        ``A₂ = A₃ = 3·target_scale`` (``A₃ = 0`` when ``sparsity=0``), ``A_w = 2·target_scale/feature_scale``, and
        the per-user contribution bounds ``C_A = ½·target_scale²·√d``, ``C_V = ½·target_scale²``,
        ``C_M = ½·target_scale²·feature_scale²·√d``. Choose them without looking at the private data (e.g. from
        the data's documented units, or a public sample).
    clip_x, clip_y, clip_xb, clip_w : float or None
        Override ``A₁`` (ℓ₂ norm of ``x``), ``A₂`` (``|y|``), ``A₃`` (``|x̃ᵀb_i|``), ``A_w`` (ℓ₂ norm of ``w_i``);
        in ``(0, inf]``, ``inf`` only with ``epsilon=inf``.
    clip_A, clip_V, clip_M : float or None
        Override the per-user contribution bounds ``C_A``, ``C_V`` and ``C_M`` (of the moments start) of the
        normalised statistics (``max_rows=None`` only); ``inf`` only with ``epsilon=inf``.
    budget_share_A : float, default 0.5
        Share in (0, 1) of the iterations' zCDP budget spent on the ``S_A`` releases (noise multipliers
        ``σ_DP·√L/√(2·share)`` for ``S_A`` and ``σ_DP·√L/√(2·(1 − share))`` for ``S_V``; 0.5: equal).
    init : {"moments", "random"} or ndarray of shape (d, r), default "moments"
        ``"moments"``: private method of moments (one more Gaussian release of the clipped, normalised
        ``Σ_j y² x xᵀ/n_i``, spending ``init_budget_share`` of the zCDP budget). ``"random"``: data independent,
        free. An array must not depend on the private data.
    init_budget_share : float, default 0.1
        Share in (0, 1) of the zCDP budget ρ given to a ``"moments"`` start.
    max_iter : int, default 6
        ``L``, the number of iterations, hence of U releases; always run in full. The noise std per release grows
        like ``√L`` at fixed ε (synthetic data, d = 10, r = 2, k = 1, m = 20, default mechanism: L = 6 and 3 within
        1 % at t = 10,000, ε = 1; 6 better than 3 at t = 1,000, ε = 4, test RMSE 0.609 against 0.628).
    solver, sparse_steps, step, threshold, ridge, sample_split, dtype, n_jobs, verbose
        As in :class:`lorsa.LRSRegressor` (``verbose`` prints only the iteration and the subspace change, both
        functions of the published U's). The data are always held as rows (clipping needs them).
    random_state : int, Generator or None, default None
        Seed of a random start. With a finite ``epsilon`` it must be ``None`` unless ``reproducible=True``.
    reproducible : bool, default False
        ``True``: the noise is drawn from ``random_state`` too (same seed -> same model), for experiments and tests.
        Whoever knows the seed can regenerate and subtract the noise, so such a fit is NOT private (its report
        says so). ``False``: the noise seed comes from the operating system (:func:`secrets.randbits`).

    Attributes
    ----------
    U_, W_, B_, tasks_, n_iter_, u_solver_, n_features_in_
        As in :class:`lorsa.LRSRegressor` (``U_`` is the private output; ``n_iter_ == max_iter``).
    loss_history_ : ndarray of shape (0,)
        Empty: the training loss is not private and is not exposed (``initial_loss_`` is NaN).
    privacy_report_ : PrivacyReport or None
        What was spent (ε, δ, ρ, σ_DP, noise multipliers, bounds, sensitivities, iterations) and the exact
        statement of the guarantee; ``None`` when ``epsilon=inf``.
    clipping_bounds_ : ClippingBounds
        The bounds used.

    Notes
    -----
    The U step always forms ``S_A`` (``dr × dr``) and solves it exactly; the global row-sparsity projection ζ of
    :class:`lorsa.LRSRegressor` couples users and is not available here.
    """

    # LRSRegressor options a private fit fixes: the exact U step, rows held (clipping needs them), a fixed number of
    # iterations (tol 0: no data-dependent stopping), no coupling between users (no row sparsity)
    row_sparsity = None
    samples_per_nonzero = None
    u_solver = "exact"
    fit_basis = True
    tol = 0.0
    cg_tol = 1e-10
    layout = "rows"
    engine = "auto"

    def __init__(self, rank: int = 1, sparsity: int = 0, *, epsilon: float = 1.0, delta: float = 1e-6,
                 accountant: str = "pld", max_rows: int | None = None, feature_scale: float = 1.0,
                 target_scale: float = 1.0, clip_x: float | None = None, clip_y: float | None = None,
                 clip_xb: float | None = None, clip_w: float | None = None, clip_A: float | None = None,
                 clip_V: float | None = None, clip_M: float | None = None, budget_share_A: float = 0.5,
                 init: str | np.ndarray = "moments", init_budget_share: float = 0.1, max_iter: int = 6,
                 solver: str = "sp", sparse_steps: int = 5, step: str = "normalized", threshold: str = "topk",
                 ridge: float = 0.0,
                 sample_split: int | None = None, dtype: str = "float64", n_jobs: int | None = None,
                 random_state: int | np.random.Generator | None = None, reproducible: bool = False,
                 verbose: bool = False) -> None:
        # only the constructor's own parameters are set (scikit-learn's contract); the LRSRegressor options a private
        # fit fixes are class attributes below
        self.rank = rank
        self.sparsity = sparsity
        self.solver = solver
        self.sparse_steps = sparse_steps
        self.step = step
        self.threshold = threshold
        self.ridge = ridge
        self.init = init
        self.max_iter = max_iter
        self.sample_split = sample_split
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.epsilon = epsilon
        self.delta = delta
        self.accountant = accountant
        self.max_rows = max_rows
        self.feature_scale = feature_scale
        self.target_scale = target_scale
        self.clip_x = clip_x
        self.clip_y = clip_y
        self.clip_xb = clip_xb
        self.clip_w = clip_w
        self.clip_A = clip_A
        self.clip_V = clip_V
        self.clip_M = clip_M
        self.budget_share_A = budget_share_A
        self.init_budget_share = init_budget_share
        self.reproducible = reproducible

    # ------------------------------------------------------------------ parameters
    def _check_privacy(self, d: int) -> tuple[float, float, ClippingBounds]:
        """Validate the privacy parameters; returns ``(epsilon, delta, bounds)``."""
        eps = check_epsilon(self.epsilon, allow_inf=True)
        delta = _check_delta(self.delta)
        if not isinstance(self.reproducible, bool):
            raise TypeError(f"reproducible must be True or False, got {self.reproducible!r}")
        if math.isfinite(eps) and self.random_state is not None and not self.reproducible:
            raise ValueError(
                f"random_state={self.random_state!r} with a finite epsilon={eps!r}: a known seed lets anyone "
                "regenerate and subtract the noise, so the fit would NOT be private. Leave random_state=None (the "
                "noise seed then comes from the operating system), or pass reproducible=True for a reproducible, "
                "non-private run (experiments, tests)"
            )
        check_choice("accountant", self.accountant, ACCOUNTANTS)
        m = v.check_int("max_rows", self.max_rows, 1, allow_none=True)
        check_real("init_budget_share", self.init_budget_share, 0.0, 1.0)
        check_real("budget_share_A", self.budget_share_A, 0.0, 1.0)
        base = default_bounds(d, self.feature_scale, self.target_scale, m if m is not None else 1,
                              sparsity=self.sparsity if isinstance(self.sparsity, int) else None)
        given = {"clip_x": self.clip_x, "clip_y": self.clip_y, "clip_xb": self.clip_xb, "clip_w": self.clip_w}
        values = {name: None if val is None else check_real(name, val, 0.0, allow_inf=True)
                  for name, val in given.items()}
        bounds = ClippingBounds(
            A1=base.A1 if values["clip_x"] is None else values["clip_x"],
            A2=base.A2 if values["clip_y"] is None else values["clip_y"],
            A3=base.A3 if values["clip_xb"] is None else values["clip_xb"],
            A_w=base.A_w if values["clip_w"] is None else values["clip_w"],
            m=1.0 if m is None else float(m),
            **self._contribution_bounds(d, normalised=m is None),
        )
        if math.isfinite(eps):
            infinite = [name for name, val in values.items() if val is not None and math.isinf(val)]
            infinite += [name for name in ("clip_A", "clip_V", "clip_M")
                         if getattr(self, name) is not None and math.isinf(getattr(self, name))]
            if infinite:
                raise ValueError(
                    f"a finite epsilon={eps!r} needs finite clipping bounds, got {infinite[0]}="
                    f"{getattr(self, infinite[0])!r}; give a finite value in (0, inf) (an integer >= 1 for "
                    "max_rows), or epsilon=inf for a non-private fit"
                )
        return eps, delta, bounds

    def _contribution_bounds(self, d: int, normalised: bool) -> dict[str, float]:
        """``C_A, C_V, C_M`` (normalised statistics: ``max_rows=None``), from ``clip_A`` ... or the defaults."""
        given = {"clip_A": self.clip_A, "clip_V": self.clip_V, "clip_M": self.clip_M}
        if not normalised:
            used = [name for name, val in given.items() if val is not None]
            if used:
                raise ValueError(f"{used[0]} bounds a user's normalised contribution and needs max_rows=None, got "
                                 f"max_rows={self.max_rows!r}")
            return {}
        base = default_contribution_bounds(d, self.feature_scale, self.target_scale)
        return {f"C_{key}": default if given[f"clip_{key}"] is None
                else check_real(f"clip_{key}", given[f"clip_{key}"], 0.0, allow_inf=True)
                for key, default in zip("AVM", base, strict=True)}

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, tasks: Any = None, *,
            callback: Callable[[int, float, float], Any] | None = None) -> PrivateLRSRegressor:
        """Fit a private ``U`` (released), and every user's ``w_i`` and ``b_i`` from it (SPEC §6).

        Parameters
        ----------
        X : array-like of shape (N, d)
        y : array-like of shape (N,)
        tasks : array-like of shape (N,), optional
            User (task) of every row: the unit of privacy (omitted: all rows are one user). There is no
            ``sample_weight``: a weight would change how much a user contributes, which the clipping bounds.
        callback : callable ``(iteration, objective, subspace_change)``, optional
            Called after every iteration (e.g. a progress bar); ``objective`` is always NaN (the training loss is
            not private), ``subspace_change`` is a function of the published U's.
        """
        if any_dask(X, y, tasks):
            from ..backends.dask.private import fit_private_dask

            return fit_private_dask(self, X, y, tasks, callback)
        X, y, labels, _ = self._validate_fit(X, y, tasks)
        d = X.shape[1]
        config, dtype = self._check_params(d)
        eps, delta, bounds = self._check_privacy(d)
        X, y = X.astype(dtype, copy=False), y.astype(dtype, copy=False)
        unique, index = encode_tasks(labels)
        X, y = _drop_overflowing_users(X, y, index, unique.shape[0])
        data = RaggedTasks.from_arrays(X, y, index, unique.shape[0])
        r = config.rank
        # no small-task warning: whether (and which) users have fewer than r + k rows is not private
        rng = v.check_random_state(self.random_state)
        moments = isinstance(self.init, str) and self.init == "moments"
        U0, config, release, z0, seed = self._private_plan(config, eps, delta, bounds, rng, moments, X, y)
        if moments:
            U0 = private_moments_basis(data, r, bounds, z0, seed)
        batches = data.split(self.sample_split, rng) if self.sample_split and self.sample_split > 1 else [data]
        backend = self._backend()
        try:
            result = fit_amht(batches, U0, np.zeros((unique.shape[0], r)), config, backend=backend,
                              full=data if len(batches) > 1 else None,
                              callback=_public_callback(callback, self.verbose))
        finally:
            getattr(backend, "close", lambda: None)()
        return self._set_private_fit(result, unique, d, config, release, bounds)

    def _private_plan(self, config: AMHTConfig, eps: float, delta: float, bounds: ClippingBounds,
                      rng: np.random.Generator, moments: bool, X: np.ndarray, y: np.ndarray) -> tuple[Any, ...]:
        """``(U0, config, (release, report), z0, seed)`` of a private fit, before any pass over the data: the
        data-independent start (``None`` for the private moments), the loop's settings with the clipped statistics
        and the noisy release, the calibrated noise. Shared with the dask engine (:mod:`lorsa.backends.dask`)."""
        r, L = config.rank, config.max_iter
        # a data-independent start (Haar-random, or a given array, which must not depend on the private data), drawn
        # first as in LRSRegressor; the private method of moments comes later, with the noise seed
        U0 = None if moments else self._initial_basis(X, y, r, rng)
        seed = _noise_seed(rng if self.reproducible or math.isinf(eps) else None)
        if math.isinf(eps):
            warnings.warn("epsilon=inf: no noise is added, this model is NOT differentially private",
                          UserWarning, stacklevel=3)
            release, report, z0 = GaussianRelease(0.0, 0.0, seed), None, None
        else:
            share = self.init_budget_share if moments else None
            release, report, z0 = private_release(bounds, eps, delta, L, self.accountant, share, seed,
                                                  known_seed=self.reproducible, share_A=self.budget_share_A)
        # no restarts of stuck tasks: their test compares a user's objective with the other users' (their mean),
        # so one user's data would move another user's (w_i, b_i) and its clipped contribution to the statistics,
        # which the per-user sensitivity bound does not allow; the exchange step stays, for every user whose support
        # is stable (swap_factor 0: not gated by the other users' mean objective)
        step = TaskStepConfig(**{**config.task_step.__dict__, "restart_factor": 0.0, "swap_factor": 0.0})
        config = AMHTConfig(**{**config.__dict__, "u_solver": "exact", "tol": 0.0, "early_stopping": False,
                               "block_statistics": ClippedStatistics(bounds),
                               "release": release, "task_step": step})
        return U0, config, (release, report), z0, seed

    def _set_private_fit(self, result: Any, unique: np.ndarray, d: int, config: AMHTConfig,
                         release: tuple[Any, Any], bounds: ClippingBounds) -> PrivateLRSRegressor:
        self._set_fitted(result, unique, d, config)
        self.loss_history_ = np.zeros(0)  # computed from all users' data without noise: not exposed
        self.iteration_times_ = np.zeros(0)  # the fit time depends on the data: not exposed either
        self.initial_loss_ = math.nan
        self.converged_ = False
        self.privacy_report_ = release[1]
        self.clipping_bounds_ = bounds
        return self

    # ------------------------------------------------------------------ predict
    def predict(self, X: Any, tasks: Any = None) -> np.ndarray:
        """Predict each row with its user's ``U w_i + b_i`` (see :meth:`lorsa.LRSRegressor.predict`).

        A model loaded from a file saved without ``include_users`` holds no user: each user computes its own
        ``(w_i, b_i)`` from the published ``U`` with :meth:`adapt` (or ``lorsa adapt``).
        """
        self._check_fitted()
        if self.tasks_.shape[0] == 0:
            raise ValueError("this private model holds U and its privacy report only (a private fit saves no "
                             "user's parameters); each user fits its own w_i, b_i from U with adapt(X, y) or "
                             "'lorsa adapt', or load a file written with save(path, include_users=True)")
        return super().predict(X, tasks=tasks)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, *, include_users: bool = False) -> None:
        """Write the released model: ``U``, the parameters and the privacy report (SPEC §6).

        Parameters
        ----------
        path : str or path-like
        include_users : bool, default False
            Also write every user's label, ``w_i`` and ``b_i`` (:data:`PER_USER_STATEMENT` is stored with them):
            outside the guarantee, for a file that stays with the users' data, never for publication.
        """
        write_model_file(path, *self._model_file_contents(include_users=include_users))

    def _model_file_contents(self, include_users: bool = False) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
        """``(kind, arrays, metadata)`` of :meth:`save`: without ``include_users`` no label, ``W`` or ``B``."""
        self._check_fitted()
        if not isinstance(include_users, bool):
            raise TypeError(f"include_users must be True or False, got {include_users!r}")
        if include_users:
            return LRSRegressor._model_file_contents(self)
        released = copy.copy(self)  # the same U, no user: labels, W and B never reach the file
        released.tasks_ = self.tasks_[:0]
        released.W_ = np.zeros((0, self.U_.shape[1]))
        released.B_ = self.B_[:, :0]
        return LRSRegressor._model_file_contents(released)

    def _file_metadata(self, params: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
        params = {**params, "random_state": None}  # the noise seed is secret: never written
        report = self.privacy_report_.to_dict() if self.privacy_report_ is not None else None
        users = PER_USER_STATEMENT if self.tasks_.shape[0] else None
        return {"params": params,
                "attributes": {**attributes, "privacy_report": report, "per_user_parameters": users}}

    @classmethod
    def load(cls, path: str | os.PathLike) -> PrivateLRSRegressor:
        """Read a model written by :meth:`save`, with its ``privacy_report_`` (``random_state`` is not stored).

        A file written without ``include_users`` gives a model with ``U`` and no user (``tasks_`` is empty).
        """
        from ..io import ModelFileError

        est = super().load(path)
        _, meta = read_model_file(path, kind=cls.__name__)
        try:
            report = meta["attributes"]["privacy_report"]
            est.privacy_report_ = None if report is None else PrivacyReport(**report)
            d = est.n_features_in_
            est.clipping_bounds_ = est._check_privacy(d)[2]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"model file {str(path)!r} has an inconsistent privacy report: {exc}") from exc
        return est


#: A user whose float64 normal equations could overflow (``n_i·d·max|x|²`` or ``n_i·d·max|x|·max|y|`` above this)
#: contributes nothing: its per-task step would fail (LinAlgError) and stop everyone's fit.
_OVERFLOW_LIMIT = 1e280


def _drop_overflowing_users(X: np.ndarray, y: np.ndarray, index: np.ndarray, n_tasks: int
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Zero the rows of every user whose per-task step would overflow (a user with zero rows gets ``w_i = 0``,
    ``b_i = 0`` and adds nothing to ``S_A``, ``S_V``). The decision for user i depends on user i's rows only, so
    the released statistics still change by at most the sensitivities when one user is added or removed."""
    ax = np.zeros(n_tasks)
    ay = np.zeros(n_tasks)
    np.maximum.at(ax, index, np.max(np.abs(X), axis=1).astype(np.float64))
    np.maximum.at(ay, index, np.abs(y).astype(np.float64))
    scale = np.bincount(index, minlength=n_tasks) * X.shape[1]
    with np.errstate(over="ignore"):
        bad = ~((scale * ax * ax <= _OVERFLOW_LIMIT) & (scale * ax * ay <= _OVERFLOW_LIMIT))
    if not bad.any():
        return X, y
    rows = bad[index]
    X, y = X.copy(), y.copy()
    X[rows] = 0
    y[rows] = 0
    return X, y


def _noise_seed(rng: np.random.Generator | None) -> tuple[int, ...]:
    """Four 63-bit words (252 bits) seeding the noise: from the operating system (:func:`secrets.randbits`), or
    from ``rng`` for a reproducible, NOT private run."""
    if rng is None:
        return tuple(secrets.randbits(63) for _ in range(4))
    return tuple(int(s) for s in rng.integers(0, 2**63, size=4))


def _public_callback(callback: Callable[[int, float, float], Any] | None, verbose: bool
                     ) -> Callable[[int, float, float], None] | None:
    """The loop's callback with the (non-private) loss hidden: only the iteration and the subspace change, a
    function of the published U's, are passed on or printed."""
    if callback is None and not verbose:
        return None

    def public(iteration: int, loss: float, change: float) -> None:
        if verbose:
            print(f"iteration {iteration:4d}  subspace change {change:.3e}", flush=True)
        if callback is not None:
            callback(iteration, math.nan, change)

    return public
