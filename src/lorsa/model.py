"""``LRSRegressor``: one linear model per task, ``theta_i = U w_i + b_i``, fitted by AMHT-LRS (SPEC §1-§5)."""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from . import _validation as v
from ._estimator import SmallTaskWarning, TaskRegressorMixin, rows_weighted
from .backends import make_backend
from .backends.dask import any_dask
from .data import RaggedTasks, encode_tasks
from .io import read_model_file, write_model_file
from .scaling import data_scale
from .solvers.amht import AMHTConfig, AMHTResult, fit_amht
from .solvers.init import moments_basis, random_basis
from .solvers.task_step import TaskStepConfig
from .task_labels import TaskIndex

__all__ = ["LRSRegressor", "choose_u_solver"]

_SOLVERS = ("sp", "htp", "iht")
_U_SOLVERS = ("auto", "exact", "cg")
_STEPS = ("normalized", "paper")
_THRESHOLDS = ("topk", "schedule")
_INITS = ("random", "moments")
_LAYOUTS = ("auto", "rows", "gram")
_ENGINES = ("auto", "numpy", "numba")


def _resolve_engine(engine: str) -> str:
    """``engine`` as run: "auto" is "numba" when numba imports, else "numpy"; "numba" must import."""
    v.check_choice("engine", engine, _ENGINES)
    if engine == "numpy":
        return "numpy"
    try:
        import numba  # noqa: F401  (imported here once; the compiled kernels import it again for free)
    except Exception as exc:  # not installed, or installed but unusable (e.g. built for another numpy)
        if engine == "numba":
            raise ImportError(f"engine='numba' needs numba, which cannot be imported ({exc}): "
                              "pip install 'lorsa[fast]' (or use engine='numpy')") from exc
        return "numpy"
    try:  # numba imports, but its kernels may not load (e.g. an unusable cache): "auto" falls back, with a warning
        for kernels in ("gram_pass_compiled", "row_pass_compiled"):
            importlib.import_module(f"{__package__}.solvers.{kernels}")
    except Exception as exc:
        if engine == "numba":
            raise ImportError(f"engine='numba': lorsa's compiled kernels cannot be loaded ({exc}); use "
                              f"engine='numpy'") from exc
        warnings.warn(f"lorsa's compiled kernels cannot be loaded ({type(exc).__name__}: {exc}); "
                      f"engine='auto' uses the numpy engine (the same fit, about 3x slower)", RuntimeWarning,
                      stacklevel=4)
        return "numpy"
    return "numba"


def choose_u_solver(n_features: int, rank: int, n_tasks: int, n_samples: int, median_rows: float) -> str:
    """Pick the U-step solver by estimated cost per iteration (SPEC §2, Remark 1).

    When tasks have fewer rows than ``d`` (row layout) the exact statistics need every ``X_i^T X_i`` rebuilt each
    iteration (O(N d^2) plus O(t d^2 r^2)), while a CG step costs two passes over X (O(N d r)): CG. With the Gram
    layout both read each ``G_i`` once per product; ``exact`` is then chosen unless the dense (dr)^3 solve would
    dominate or ``A`` would take more than 512 MB. Measured at t = 100,000, d = 50, r = 3, m = 20: exact 6.4 s,
    CG 2.0 s per iteration (BENCHMARKS.md).
    """
    dr = n_features * rank
    if median_rows < n_features or 8 * dr**2 > 512 * 2**20:
        return "cg"
    return "exact" if dr**3 / 3 <= n_tasks * n_features**2 * rank**2 else "cg"


@dataclass
class PreparedTasks:
    """The rows of a fit as :meth:`LRSRegressor.fit` iterates on them (see :meth:`LRSRegressor._prepare`)."""

    X: np.ndarray
    y: np.ndarray
    init_rows: tuple[np.ndarray, np.ndarray] | None
    tasks: np.ndarray
    data: RaggedTasks
    scale: Any
    dtype: np.dtype
    layout: str


class LRSRegressor(TaskRegressorMixin):
    """Low-rank + sparse multi-task linear regression, fitted by AMHT-LRS.

    Task ``i`` predicts ``y = <x, U w_i + b_i>`` with a shared orthonormal ``U`` (d × r), task coordinates
    ``w_i`` (r) and a ``k``-sparse ``b_i`` (d): ``r + k`` numbers (and ``k`` indices) per task instead of ``d``.
    ``fit`` minimises ``sum_ij 1/2 (y_ij - <x_ij, U w_i + b_i>)^2 + ridge/2 sum_i (||w_i||^2 + ||b_i||^2)``
    subject to ``U^T U = I``, ``||b_i||_0 <= k`` (and rows of ``B`` ``zeta``-sparse), SPEC §1.

    A scikit-learn regressor (:class:`lorsa._estimator.TaskRegressorMixin`): ``tasks`` is metadata requested by
    default for ``fit``/``predict``/``score`` (so ``GridSearchCV``, ``cross_val_score(..., params={"tasks": t})`` and
    ``Pipeline`` route it with ``sklearn.set_config(enable_metadata_routing=True)``), ``tasks`` omitted means one
    task, ``score`` is R^2 and :meth:`rmse` the root mean squared error.

    Parameters
    ----------
    rank : int, default 1
        ``r``, dimension of the shared subspace, ``1 <= r < d``.
    sparsity : int, default 0
        ``k``, non-zeros per ``b_i``, ``0 <= k <= d``. ``k = 0`` is pure representation learning.
    samples_per_nonzero : float or None, default None
        Adapt the sparsity to a task's sample count: task ``i`` gets at most ``floor(m_i / samples_per_nonzero)``
        non-zeros (and at most ``k``). None: every task may use ``k``. For real data whose tasks range from a few
        to thousands of rows (SPEC §8, MovieLens), where data-starved tasks cannot afford ``k`` fitted weights.
    row_sparsity : int or None, default None
        ``zeta``: each coordinate personalised by at most this many tasks (SPEC §1, Assumption A1).
    solver : {"sp", "htp", "iht"}, default "sp"
        Per-task step (:mod:`lorsa.solvers.task_step`): subspace pursuit or hard thresholding pursuit, both with a
        joint ``(w_i, b_i)`` least-squares solve on the support, or the paper's IHT for ``b_i`` followed by least
        squares for ``w_i``.
    sparse_steps : int, default 5
        Thresholding steps per outer iteration (``T``; SP/HTP stop early once supports are stable).
    step : {"normalized", "paper"}, default "normalized"
        IHT step size: the normalised step of Blumensath & Davies, or the paper's ``1/m_i`` (``solver="iht"``).
    threshold : {"topk", "schedule"}, default "topk"
        IHT thresholding: top-``k`` projection or the paper's shrinking threshold (``solver="iht"``).
    ridge : float, default 0.0
        Penalty ``lambda`` on the per-task parameters ``w_i, b_i``; 0 for exact recovery, > 0 for real, noisy
        data with data-starved tasks.
    u_solver : {"auto", "exact", "cg"}, default "auto"
        Shared step: exact Kronecker normal equations, or matrix-free conjugate gradients (:mod:`.shared_step`).
    init : {"moments", "random"} or ndarray of shape (d, r), default "moments"
        Initial ``U`` (SPEC §4): the method of moments (one O(N d^2) pass; AMHT-LRS converges locally and a random
        start can stall in a poor stationary point, e.g. 1 seed in 3 at d=10, r=2, k=1, m=20, t=10,000,
        sigma=0.5, where the moments start recovered U every time), a random orthonormal matrix, or your own.
    fit_basis : bool, default True
        If False, ``U`` stays at ``init`` (per-task compressed sensing in a frozen subspace).
    max_iter : int, default 100
        Cap on outer iterations ``L``.
    tol : float or None, default None
        Stop when the subspace moves less than ``tol`` or the objective changes relatively less than ``tol``.
        None means 1e-8 for float64 and 1e-5 for float32 (about 100 times what round-off lets the iterates
        settle to).
    cg_tol : float, default 1e-10
        Relative residual tolerance of the CG U step.
    sample_split : int or None, default None
        Split each task's rows into this many disjoint batches and use a fresh one per iteration (SPEC §2).
    dtype : {"float64", "float32"}, default "float64"
        Storage of the data blocks (statistics and small solves are accumulated in float64).
    layout : {"auto", "rows", "gram"}, default "auto"
        How task data are held during the fit (:mod:`lorsa.data`): padded rows, or per-task sufficient statistics
        ``X_i^T X_i, X_i^T y_i`` (cheaper per iteration and no larger when ``m_i >= d``). ``"auto"`` uses the
        statistics for blocks of tasks with ``m_i >= d`` and rows elsewhere; ``sample_split`` always uses rows.
    n_jobs : int or None, default None
        Threads running the blocks of each pass, each with single-threaded BLAS (many small products run faster
        side by side than one multi-threaded BLAS call at a time). None: one per core when ``threadpoolctl`` is
        installed to pin BLAS (the ``experiments`` extra), else 1; ``-1``: one per core; 1: this thread, BLAS as
        configured. Results agree across ``n_jobs`` to round-off (BLAS threading changes summation order) and
        are identical for the same ``n_jobs`` and seed.
    engine : {"auto", "numpy", "numba"}, default "auto"
        How the per-task pass runs with ``solver="sp"``: numpy calls batched over the tasks of a block, or one
        compiled loop over them that fuses subspace pursuit with the U-step statistics
        (:mod:`lorsa.solvers.gram_pass_compiled`, :mod:`lorsa.solvers.row_pass_compiled`; about 3x faster per
        iteration; needs ``numba``, the ``fast`` extra). Both compute the same fit (agreement to round-off is
        tested). ``"auto"``: numba if it imports. The ``htp``/``iht`` solvers, fixed ``w_i`` and private fits
        always use numpy.
    random_state : int, Generator or None
        Seed for the random initialisation and sample splitting: the same seed gives the same model.
    verbose : bool, default False
        Print the objective after every iteration.

    Attributes
    ----------
    U_ : ndarray of shape (d, r)
        Shared basis, orthonormal columns.
    W_ : ndarray of shape (t, r)
        Row ``i`` is ``w_i`` of task ``tasks_[i]``.
    B_ : scipy.sparse.csc_matrix of shape (d, t)
        Column ``i`` is ``b_i`` (at most ``k`` non-zeros).
    tasks_ : ndarray of shape (t,)
        Task labels in the order of ``W_``'s rows and ``B_``'s columns.
    n_iter_ : int
        Outer iterations run.
    loss_history_ : ndarray of shape (n_iter_,)
        Training objective after each iteration.
    iteration_times_ : ndarray of shape (n_iter_,)
        Wall time of each iteration in seconds (not saved in the model file).
    converged_ : bool
        Whether a ``tol`` criterion stopped the fit (else ``max_iter`` did).
    u_solver_ : str
        The U solver used.
    engine_ : str
        The engine the fit ran with ("numpy" or "numba"; not saved in the model file).
    n_features_in_ : int
        ``d``.
    feature_names_in_ : ndarray of shape (d,)
        Column names of a DataFrame ``X`` given to ``fit`` (only then); ``predict`` refuses other columns.
    """

    _min_features = 2

    def __init__(self, rank: int = 1, sparsity: int = 0, *, samples_per_nonzero: float | None = None,
                 row_sparsity: int | None = None, solver: str = "sp",
                 sparse_steps: int = 5, step: str = "normalized", threshold: str = "topk", ridge: float = 0.0,
                 u_solver: str = "auto", init: str | np.ndarray = "moments", fit_basis: bool = True,
                 max_iter: int = 100, tol: float | None = None, cg_tol: float = 1e-10, sample_split: int | None = None,
                 dtype: str = "float64", layout: str = "auto", n_jobs: int | None = None, engine: str = "auto",
                 random_state: int | np.random.Generator | None = None, verbose: bool = False) -> None:
        self.rank = rank
        self.sparsity = sparsity
        self.samples_per_nonzero = samples_per_nonzero
        self.row_sparsity = row_sparsity
        self.solver = solver
        self.sparse_steps = sparse_steps
        self.step = step
        self.threshold = threshold
        self.ridge = ridge
        self.u_solver = u_solver
        self.init = init
        self.fit_basis = fit_basis
        self.max_iter = max_iter
        self.tol = tol
        self.cg_tol = cg_tol
        self.sample_split = sample_split
        self.dtype = dtype
        self.layout = layout
        self.n_jobs = n_jobs
        self.engine = engine
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self, d: int) -> tuple[AMHTConfig, np.dtype]:
        if d < 2:
            raise ValueError(f"X has {d} feature(s) (n_features={d}); a rank-r basis needs r < d, so at least 2")
        r = v.check_int("rank", self.rank, 1, d - 1)
        k = v.check_int("sparsity", self.sparsity, 0, d)
        zeta = v.check_int("row_sparsity", self.row_sparsity, 1, allow_none=True)
        spn = None if self.samples_per_nonzero is None else v.check_float(
            "samples_per_nonzero", self.samples_per_nonzero, 0.0, low_inclusive=False)
        v.check_choice("solver", self.solver, _SOLVERS)
        steps = v.check_int("sparse_steps", self.sparse_steps, 1, 10_000)
        v.check_choice("step", self.step, _STEPS)
        v.check_choice("threshold", self.threshold, _THRESHOLDS)
        ridge = v.check_float("ridge", self.ridge, 0.0)
        v.check_choice("u_solver", self.u_solver, _U_SOLVERS)
        max_iter = v.check_int("max_iter", self.max_iter, 1)
        dtype = v.check_dtype("dtype", self.dtype)
        tol = (1e-8 if dtype == np.float64 else 1e-5) if self.tol is None else v.check_float("tol", self.tol, 0.0)
        cg_tol = v.check_float("cg_tol", self.cg_tol, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        v.check_int("sample_split", self.sample_split, 1, allow_none=True)
        if self.n_jobs not in (None, -1):
            v.check_int("n_jobs", self.n_jobs, 1)
        v.check_choice("layout", self.layout, _LAYOUTS)
        engine = _resolve_engine(self.engine)
        if self.layout == "gram" and (self.sample_split or 1) > 1:
            raise ValueError("layout='gram' cannot split samples (sample_split); use layout='rows' or 'auto'")
        if not isinstance(self.fit_basis, bool):
            raise TypeError(f"fit_basis must be True or False, got {self.fit_basis!r}")
        step = TaskStepConfig(method=self.solver, n_steps=steps, step=self.step, threshold=self.threshold,
                              ridge=ridge)
        config = AMHTConfig(rank=r, sparsity=k, row_sparsity=zeta, task_step=step, u_solver=self.u_solver,
                            fit_u=self.fit_basis, max_iter=max_iter, tol=tol, cg_tol=cg_tol,
                            samples_per_nonzero=spn, engine=engine)
        return config, dtype

    def _backend(self) -> Any:
        if self.n_jobs is None:
            return make_backend(os.cpu_count() or 1 if importlib.util.find_spec("threadpoolctl") else 1)
        return make_backend(os.cpu_count() or 1 if self.n_jobs == -1 else self.n_jobs)

    def _layout(self) -> str:
        return "rows" if (self.sample_split or 1) > 1 else self.layout

    def _initial_basis(self, X: np.ndarray, y: np.ndarray, r: int, rng: np.random.Generator) -> np.ndarray:
        d = X.shape[1]
        if isinstance(self.init, str):
            v.check_choice("init", self.init, _INITS)
            return random_basis(d, r, rng) if self.init == "random" else moments_basis(X, y, r)
        U0 = v.check_features(self.init, name="init")
        if U0.shape != (d, r):
            raise ValueError(f"init must have shape (n_features, rank) = ({d}, {r}), got {U0.shape}")
        if not np.allclose(U0.T @ U0, np.eye(r), atol=1e-8):
            raise ValueError("init must have orthonormal columns (U^T U = I); orthonormalise it, e.g. by QR")
        return np.array(U0, dtype=np.float64)

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X: Any, y: Any, tasks: Any = None, *, sample_weight: Any = None,
            callback: Callable[[int, float, float], Any] | None = None) -> LRSRegressor:
        """Fit ``U``, every ``w_i`` and every ``b_i``.

        Parameters
        ----------
        X : array-like of shape (N, d)
        y : array-like of shape (N,)
        tasks : array-like of shape (N,), optional
            Task label (int or str) of every row; omitted, all rows are one task (labelled 0).
        sample_weight : array-like of shape (N,), optional
            Non-negative row weights: the squared loss of row ``j`` is multiplied by ``w_j`` (rows are scaled by
            ``sqrt(w_j)``, which is exact for this loss). Row counts (small-task rules) count every row.
        callback : callable ``(iteration, objective, subspace_change)``, optional
            Called after every outer iteration, e.g. to advance a progress bar (replaces ``verbose`` printing).

        Dask collections (a dask DataFrame / arrays chunked alike) are fitted on the current dask.distributed
        cluster, where the data live (:mod:`lorsa.backends.dask`).
        """
        if any_dask(X, y, tasks, sample_weight):
            from .backends.dask.estimator import fit_dask

            return fit_dask(self, X, y, tasks, callback, sample_weight=sample_weight)
        return self._fit_prepared(self._prepare(X, y, tasks, sample_weight), callback, release=True)

    def _prepare(self, X: Any, y: Any, tasks: Any = None, sample_weight: Any = None) -> PreparedTasks:
        """Checked, scaled, weighted rows bucketed by task: what :meth:`fit` builds before iterating. A caller that
        fits many settings of ``rank``, ``sparsity`` and ``ridge`` to the same data (:class:`lorsa.LRSRegressorCV`)
        builds it once and passes it to :meth:`_fit_prepared` of every estimator with the same ``dtype`` and
        ``layout``."""
        X, y, labels, weight = self._validate_fit(X, y, tasks, sample_weight)
        _, dtype = self._check_params(X.shape[1])
        X, y = X.astype(dtype, copy=False), y.astype(dtype, copy=False)
        scale = data_scale(X, y)  # powers of two, only for extreme scales (1e155 overflows, 1e-200 underflows)
        if not scale.identity:
            X, y = scale.apply(X, y)
        # the method of moments weighs row j by w_j (as if repeated w_j times): rows scaled by w_j^(1/4)
        init_rows = rows_weighted(X, y, None if weight is None else np.sqrt(weight))
        X, y = rows_weighted(X, y, weight)
        unique, index = encode_tasks(labels)
        data = RaggedTasks.from_arrays(X, y, index, unique.shape[0], layout=self._layout())
        return PreparedTasks(X=X, y=y, init_rows=init_rows, tasks=unique, data=data, scale=scale, dtype=dtype,
                             layout=self._layout())

    def _fit_prepared(self, prepared: PreparedTasks, callback: Callable[[int, float, float], Any] | None = None,
                      release: bool = False) -> LRSRegressor:
        """:meth:`fit` on data from :meth:`_prepare` (of an estimator with the same ``dtype`` and ``layout``);
        ``release``: drop the rows of the method of moments once used (a weighted copy of ``X``), for a single fit."""
        X, unique, data, scale = prepared.X, prepared.tasks, prepared.data, prepared.scale
        config, dtype = self._check_params(X.shape[1])
        if dtype != prepared.dtype or self._layout() != prepared.layout:
            raise ValueError(f"prepared data has dtype {prepared.dtype} and layout {prepared.layout!r}; this "
                             f"estimator needs {dtype} and {self._layout()!r}")
        if not scale.identity:
            config = AMHTConfig(**{**config.__dict__, "task_step": TaskStepConfig(
                **{**config.task_step.__dict__, "ridge": scale.ridge(config.task_step.ridge)})})
        rng = v.check_random_state(self.random_state)
        r, k = config.rank, config.sparsity
        self._warn_small_tasks(data.counts, unique, r, k, stacklevel=4 if release else 3)
        _check_sample_split(self.sample_split, data.counts, unique, r, k)
        if self.u_solver == "auto":
            u_solver = choose_u_solver(X.shape[1], r, unique.shape[0], X.shape[0], float(np.median(data.counts)))
            config = AMHTConfig(**{**config.__dict__, "u_solver": u_solver})
        if prepared.init_rows is None:
            raise ValueError("prepared data were released by an earlier fit; prepare them again")
        U0 = self._initial_basis(*prepared.init_rows, r, rng)
        if release:
            prepared.init_rows = None
        batches = data.split(self.sample_split, rng) if self.sample_split and self.sample_split > 1 else [data]
        callback = callback or (_print_progress if self.verbose else None)
        backend = self._backend()
        try:
            result = fit_amht(batches, U0, np.zeros((unique.shape[0], r)), config, backend=backend,
                              full=data if len(batches) > 1 else None, callback=scale.callback(callback))
        finally:
            getattr(backend, "close", lambda: None)()
        self._set_fitted(scale.undo(result), unique, X.shape[1], config)
        if not self.converged_:
            warnings.warn(f"{type(self).__name__} did not converge: it stopped at max_iter={config.max_iter} "
                          f"iterations before the subspace change or the relative objective change fell below "
                          f"tol={config.tol:g}; raise max_iter (or tol) for a converged fit", ConvergenceWarning,
                          stacklevel=3 if release else 2)  # the caller of fit
        return self

    @staticmethod
    def _warn_small_tasks(counts: np.ndarray, labels: np.ndarray, r: int, k: int, stacklevel: int = 3) -> None:
        small = np.flatnonzero(counts < r + k)
        if small.size:
            names = ", ".join(repr(x) for x in labels[small[:5]].tolist())
            more = f" and {small.size - 5} more" if small.size > 5 else ""
            warnings.warn(
                f"{small.size} task(s) have fewer rows than rank + sparsity = {r + k} ({names}{more}); they are fitted "
                f"with at most max(0, m_i - rank) non-zeros in b_i and a minimum-norm (or ridge) w_i",
                SmallTaskWarning, stacklevel=stacklevel,
            )

    def _set_fitted(self, result: AMHTResult, tasks: np.ndarray, d: int, config: AMHTConfig) -> None:
        self.U_ = result.U
        self.W_ = result.W
        self.B_ = _slots_to_csc(result.idx, result.val, d)
        self.tasks_ = tasks
        self.n_iter_ = int(result.n_iter)
        self.loss_history_ = np.asarray(result.loss_history, dtype=np.float64)
        self.iteration_times_ = np.asarray(result.iteration_times, dtype=np.float64)
        self.initial_loss_ = float(result.initial_loss)
        self.converged_ = bool(result.converged)
        self.u_solver_ = config.u_solver
        self.engine_ = config.engine
        self.n_features_in_ = d
        self._index = TaskIndex(tasks)

    def predict(self, X: Any, tasks: Any = None) -> np.ndarray:
        """Predict each row with its own task's model: ``<x_j, U w_i + b_i>``.

        Parameters
        ----------
        X : array-like of shape (N, d)
        tasks : array-like of shape (N,), optional
            Labels of tasks seen in ``fit`` (an unknown label is an error naming it; use :meth:`adapt` for new
            tasks). Omitted: the model's only task (refused for a model of several tasks).

        Returns
        -------
        y_pred : ndarray of shape (N,)
            (a lazy dask Series aligned with ``X``, or a dask array, for dask inputs)
        """
        self._check_fitted()
        if any_dask(X, tasks):
            from .backends.dask.predict import predict_dask

            return predict_dask(self, X, tasks)
        X, labels = self._validate_predict(X, tasks)
        index = self._index.lookup(labels, "tasks")
        return predict_rows(X, index, self.U_, self.W_, self.B_)

    def adapt(self, X: Any, y: Any, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """Fit a task never seen in training with ``U`` held fixed (SPEC §5, the paper's Algorithm 6).

        Runs the per-task step (same solver, ridge and sparsity as ``fit``) to convergence.

        Parameters
        ----------
        X : array-like of shape (m, d)
        y : array-like of shape (m,)
        max_iter : int
            Cap on per-task passes.

        Returns
        -------
        w : ndarray of shape (r,)
        b : ndarray of shape (d,)
            Dense, at most ``k`` non-zeros.
        """
        self._check_fitted()
        X = self._validate_X(X, reset=False)
        labels, W, B = self.adapt_tasks(X, y, np.zeros(X.shape[0], dtype=np.int64), max_iter=max_iter)
        return W[0], B[:, 0].toarray().ravel()

    def adapt_tasks(self, X: Any, y: Any, tasks: Any, max_iter: int = 100
                    ) -> tuple[np.ndarray, np.ndarray, sp.csc_matrix]:
        """Fit many new tasks at once with ``U`` fixed (batched like ``fit``).

        Returns
        -------
        labels : ndarray of shape (t_new,)
        W : ndarray of shape (t_new, r)
        B : scipy.sparse.csc_matrix of shape (d, t_new)
        """
        self._check_fitted()
        if any_dask(X, y, tasks):
            from .backends.dask.estimator import adapt_tasks_dask

            return adapt_tasks_dask(self, X, y, tasks, max_iter)
        X = self._validate_X(X, reset=False)
        y = self._validate_y(y, X.shape[0], np.dtype(np.float64))
        max_iter = v.check_int("max_iter", max_iter, 1)
        labels = v.check_task_labels(tasks, X.shape[0])
        unique, index = encode_tasks(labels)
        config, dtype = self._adapt_config(max_iter)
        data = RaggedTasks.from_arrays(X.astype(dtype, copy=False), y.astype(dtype, copy=False), index,
                                       unique.shape[0], layout=self._layout())
        self._warn_small_tasks(data.counts, unique, self.U_.shape[1], config.sparsity)
        backend = self._backend()
        try:
            result = fit_amht([data], self.U_, np.zeros((unique.shape[0], self.U_.shape[1])), config, backend=backend)
        finally:
            getattr(backend, "close", lambda: None)()
        return unique, result.W, _slots_to_csc(result.idx, result.val, self.n_features_in_)

    def _adapt_config(self, max_iter: int) -> tuple[AMHTConfig, np.dtype]:
        """The fit's settings with ``U`` fixed, for :meth:`adapt_tasks` (more sparse steps: one outer pass)."""
        config, dtype = self._check_params(self.n_features_in_)
        step = TaskStepConfig(**{**config.task_step.__dict__, "n_steps": max(config.task_step.n_steps, 50)})
        return AMHTConfig(**{**config.__dict__, "task_step": step, "fit_u": False, "max_iter": max_iter,
                             "row_sparsity": None}), dtype

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to ``path`` (format: :mod:`lorsa.io`; one atomic write)."""
        write_model_file(path, *self._model_file_contents())

    def _model_file_contents(self) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
        """``(kind, arrays, metadata)`` as :meth:`save` writes them (the CLI adds its column names to the
        metadata and writes the file once)."""
        self._check_fitted()
        params = {k: val for k, val in self.get_params().items() if k not in ("init", "random_state")}
        params["init"] = self.init if isinstance(self.init, str) else "array"
        params["random_state"] = self.random_state if isinstance(self.random_state, int | None) else "generator"
        B = self.B_.tocsc()
        arrays = {"U": self.U_, "W": self.W_, "B_data": B.data, "B_indices": B.indices.astype(np.int64),
                  "B_indptr": B.indptr.astype(np.int64), "tasks": self.tasks_, "loss_history": self.loss_history_}
        attributes = {"n_iter": self.n_iter_, "converged": self.converged_, "u_solver": self.u_solver_,
                      "n_features": self.n_features_in_, "initial_loss": self.initial_loss_}
        if hasattr(self, "feature_names_in_"):
            attributes["feature_names"] = [str(x) for x in self.feature_names_in_]
        return type(self).__name__, arrays, self._file_metadata(params, attributes)

    def _file_metadata(self, params: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
        """JSON metadata of the model file; a subclass may edit or extend it (e.g. a privacy report)."""
        return {"params": params, "attributes": attributes}

    @classmethod
    def load(cls, path: str | os.PathLike) -> LRSRegressor:
        """Read a model written by :meth:`save` (verifying format version, checksums and shapes)."""
        from .io import ModelFileError

        arrays, meta = read_model_file(path, kind=cls.__name__)
        where = f"model file {str(path)!r}"
        try:
            params = dict(meta["params"])
            attrs = meta["attributes"]
            if not isinstance(attrs, dict):
                raise TypeError(f"attributes must be a mapping, got {type(attrs).__name__}")
            if params.get("init") == "array":
                params["init"] = "random"
            if params.get("random_state") == "generator":
                params["random_state"] = None
            est = cls(**params)
            U, W, tasks = arrays["U"], arrays["W"], arrays["tasks"]
            if U.ndim != 2 or W.ndim != 2 or tasks.ndim != 1:
                raise ValueError(f"U, W and tasks must be 2-D, 2-D and 1-D, got shapes {U.shape}, {W.shape}, "
                                 f"{tasks.shape}")
            d, r = U.shape
            t = tasks.shape[0]
            params_engine = est.engine
            est.engine = "numpy"  # the parameters go through the constructor's checks (the engine is not needed)
            est._check_params(d)
            est.engine = params_engine
            v.check_choice("engine", est.engine, _ENGINES)
            if est.rank != r:
                raise ValueError(f"params say rank {est.rank!r} but U has {r} columns")
            _check_loaded_arrays(U, W, tasks, arrays, attrs, d)
            B = sp.csc_matrix((arrays["B_data"], arrays["B_indices"], arrays["B_indptr"]), shape=(d, t))
            B.check_format(full_check=True)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelFileError(f"{where} is inconsistent: {exc}") from exc
        est.U_, est.W_, est.B_, est.tasks_ = U, W, B, tasks
        est.n_iter_ = int(attrs["n_iter"])
        est.converged_ = bool(attrs["converged"])
        est.u_solver_ = str(attrs["u_solver"])
        est.initial_loss_ = float(attrs["initial_loss"])
        est.n_features_in_ = int(d)
        if attrs.get("feature_names") is not None:
            est.feature_names_in_ = np.asarray(attrs["feature_names"], dtype=object)
        est.loss_history_ = arrays["loss_history"]
        est.iteration_times_ = np.zeros(0)
        est._index = TaskIndex(tasks)
        return est


def _check_loaded_arrays(U: np.ndarray, W: np.ndarray, tasks: np.ndarray, arrays: dict[str, np.ndarray],
                         attrs: dict[str, Any], d: int) -> None:
    """Shapes, dtypes, finiteness and label order of a loaded model's arrays and attributes (ValueError)."""
    t, r = tasks.shape[0], U.shape[1]
    if W.shape != (t, r) or attrs.get("n_features") != d:
        raise ValueError(f"U {U.shape}, W {W.shape}, {t} tasks and n_features {attrs.get('n_features')!r} disagree")
    for name in ("U", "W", "B_data", "loss_history"):
        arr = arrays[name]
        if arr.dtype.kind != "f" or (name in ("B_data", "loss_history") and arr.ndim != 1):
            raise ValueError(f"array {name!r} must be a float array, got dtype {arr.dtype} and shape {arr.shape}")
        if name != "loss_history" and not np.isfinite(arr).all():
            raise ValueError(f"array {name!r} holds NaN or inf")
    for name in ("B_indices", "B_indptr"):
        if arrays[name].dtype.kind not in "iu" or arrays[name].ndim != 1:
            raise ValueError(f"array {name!r} must be a 1-D integer array, got {arrays[name].dtype}")
    if tasks.dtype.kind not in "iU":
        raise ValueError(f"tasks must be integer or string labels, got dtype {tasks.dtype}")
    if t and not np.all(tasks[1:] > tasks[:-1]):
        raise ValueError("tasks must be sorted and distinct (as fit writes them)")
    if type(attrs.get("n_iter")) is not int or attrs["n_iter"] < 0 or type(attrs.get("converged")) is not bool:
        raise ValueError(f"attributes n_iter / converged are malformed: {attrs.get('n_iter')!r}, "
                         f"{attrs.get('converged')!r}")
    v.check_choice("attributes u_solver", attrs.get("u_solver"), ("exact", "cg"))
    if not isinstance(attrs.get("initial_loss"), int | float) or isinstance(attrs.get("initial_loss"), bool):
        raise ValueError(f"attribute initial_loss must be a number, got {attrs.get('initial_loss')!r}")


def _check_sample_split(sample_split: int | None, counts: np.ndarray, labels: np.ndarray, r: int, k: int) -> None:
    """Refuse a ``sample_split`` that leaves every task fewer than ``max(1, r + k)`` rows in a batch (each batch
    then fits nothing: the fit would be ruined silently); warn when some tasks are left that few."""
    if not sample_split or sample_split <= 1:
        return
    need = max(1, r + k)
    per_batch = counts // sample_split
    if per_batch.max() < need:
        raise ValueError(f"sample_split={sample_split} leaves every task fewer than rank + sparsity = {need} rows per "
                         f"batch (the largest task has {int(counts.max())} rows); use sample_split <= "
                         f"{max(1, int(counts.max()) // need)} or None")
    short = np.flatnonzero(per_batch < need)
    if short.size:
        names = ", ".join(repr(x) for x in labels[short[:5]].tolist())
        more = f" and {short.size - 5} more" if short.size > 5 else ""
        warnings.warn(f"sample_split={sample_split}: {short.size} task(s) get fewer than rank + sparsity = {need} rows "
                      f"per batch ({names}{more}); their per-batch steps are underdetermined", UserWarning,
                      stacklevel=3)


def _print_progress(iteration: int, loss: float, change: float) -> None:
    print(f"iteration {iteration:4d}  objective {loss:.6e}  subspace change {change:.3e}", flush=True)


def _slots_to_csc(idx: np.ndarray, val: np.ndarray, d: int) -> sp.csc_matrix:
    """``B`` (d, t) from the slots ``idx, val (t, k)``, explicit zeros dropped, indices sorted."""
    t, k = idx.shape
    cols = np.repeat(np.arange(t), k)
    B = sp.csc_matrix((val.reshape(-1), (idx.reshape(-1), cols)), shape=(d, t))
    B.eliminate_zeros()
    B.sort_indices()
    return B


def predict_rows(X: np.ndarray, task_index: np.ndarray, U: np.ndarray, W: np.ndarray, B: sp.spmatrix,
                 chunk_rows: int = 65536) -> np.ndarray:
    """``<x_j, U w_{i(j)} + b_{i(j)}>`` for every row, in chunks of rows (O(N d r) time, bounded memory)."""
    B = B.tocsc()
    counts = np.diff(B.indptr)
    k = int(counts.max()) if counts.size else 0
    t = W.shape[0]
    idx = np.zeros((t, k), dtype=np.int64)
    val = np.zeros((t, k))
    if k:
        slot = np.arange(B.indices.size) - np.repeat(B.indptr[:-1], counts)
        cols = np.repeat(np.arange(t), counts)
        idx[cols, slot] = B.indices
        val[cols, slot] = B.data
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], chunk_rows):
        sl = slice(start, start + chunk_rows)
        Xc, ti = X[sl], task_index[sl]
        low = np.einsum("nr,nr->n", Xc @ U, W[ti])
        sparse_part = np.einsum("nk,nk->n", np.take_along_axis(Xc, idx[ti], axis=1), val[ti]) if k else 0.0
        out[sl] = low + sparse_part
    return out

