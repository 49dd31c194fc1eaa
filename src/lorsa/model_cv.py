"""``LRSRegressorCV``: AMHT-LRS that chooses its own ``r``, ``k``, ridge, offset and shrinkage (SPEC §1-§5, §8).

The scikit-learn ``RidgeCV`` / ``LassoCV`` convention for :class:`lorsa.LRSRegressor`: every candidate is fitted
on the training rows of every task and scored (RMSE) on rows of the *same* tasks held out from ``fit``'s data
(``validation_fraction`` of every task's rows, or ``cv``-fold over rows within tasks); the winner is refitted on
all rows. Nothing outside the ``X, y`` given to ``fit`` is ever seen.

The model is ``theta_i = theta_0 + U w_i + b_i``: ``theta_0`` is shared (the pooled ridge model, ``offset="single"``,
or 0), so a task still stores ``r + k`` numbers (and ``k`` indices). Searched, in this order:

- ``offset`` ("none" or "single"): fit AMHT-LRS to ``y - <x, theta_0>``, so that the ridge shrinks a data-starved
  task toward the population model instead of toward 0;
- ``rank`` along an ordered path (default 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, ... below ``d``) with the ``sparsity``
  (0, 1, 2, 5, 10, 20, ...) and the ``ridge`` searched at every rank, stopping as soon as a larger ``r`` stops
  helping; ``ridge`` is on a grid scaled to the data (``s = median_i m_i * mean_j ||x_j||^2 / d``, the size of a
  typical task's Gram diagonal, times 0, 0.001, ..., 10, starting at s); then ``offset``, and the axes are
  revisited (coordinate search) until no move helps. A fit is warm-started from the best fit so far with the same
  ``k``, offset and a rank no larger (its ``U``, extended by the method-of-moments directions), else from the
  method of moments;
- ``shrinkage`` ("ridge" or "eb"), scored on the same fit at no extra AMHT-LRS cost: "eb" replaces every ``w_i`` by
  its posterior mean under an empirical-Bayes Gaussian prior ``w_i ~ N(mu_w, Sigma_w)`` (``Sigma_w`` r x r)
  estimated across tasks by EM (:mod:`lorsa.solvers.random_effects`) with ``U`` and ``b_i`` held fixed: a
  per-direction shrinkage of ``w_i`` (strong directions of task variation are shrunk less than weak ones, and a
  task with few rows more than one with many), instead of one isotropic ridge.

A candidate must improve the best hold-out RMSE by more than ``improvement`` (relative) to be preferred, so among
near-ties the smaller model wins.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import _validation as v
from ._cv_file import CVModelFile
from ._cv_helpers import (
    _choices,
    _eb_fit,
    _sorted_list,
    _sparse_part,
    default_ranks,
    default_sparsities,
    ridge_scale,
)
from ._cv_scoring import SHARED_RIDGES, CandidateScoring
from ._estimator import TaskRegressorMixin, rows_weighted
from .data import encode_tasks
from .model import LRSRegressor, predict_rows
from .params import plain_value
from .solvers.random_effects import posterior_means, task_gram_blocks
from .solvers.task_resolve import (
    solve_normals,
    support_normals,
    task_ridges,
)
from .task_labels import TaskIndex

__all__ = ["LRSRegressorCV", "default_ranks", "default_sparsities", "ridge_scale"]

_OFFSETS = ("none", "single")
_SHRINKAGES = ("ridge", "eb")
_RIDGE_SEARCHES = ("basis", "fits")
_RIDGE_FACTORS = (0.0, 1e-3, 1e-2, 0.1, 1.0, 10.0)


class LRSRegressorCV(CandidateScoring, CVModelFile, TaskRegressorMixin):
    """:class:`LRSRegressor` with ``r``, ``k``, the ridge, the offset and the shrinkage of ``w_i`` chosen on held-out
    rows (ordered, warm-started search), then refitted on all rows.

    Parameters
    ----------
    ranks : sequence of int or None, default None
        Ordered ``r`` path; None: 1, 2, 4, 8, ... below ``d`` (:func:`default_ranks`, capped by ``max_rank``).
    sparsities : sequence of int or None, default None
        Ordered ``k`` path; None: 0, 1, 2, 5, 10, 20, ... up to ``d / 2``.
    ridges : sequence of float or None, default None
        Ridge path, searched from its fifth value (or its last); None: ``(0, 0.001, 0.01, 0.1, 1, 10) * s`` with
        ``s`` from :func:`ridge_scale`, so the search starts at ``s`` (measured on ML-100K: from ``0.1 s`` it stopped
        at r = 2, k = 0, validation RMSE 0.8887 with 19 fits; from ``s`` at r = 1, k = 2, 0.8849 with 14 fits).
    offsets : sequence of {"none", "single"}, default ("none", "single")
        Candidate shared offsets ``theta_0`` (the pooled ridge model, its ridge chosen on held-out rows).
    shrinkages : sequence of {"ridge", "eb"}, default ("ridge", "eb")
        Candidate shrinkage of ``w_i``: the fit's isotropic ridge, or the empirical-Bayes posterior mean.
    cv : int or None, default None
        None: one hold-out split (``validation_fraction`` of every task's rows); an int ``K >= 2``: K folds over the
        rows of every task (every candidate fitted K times, scored on all held-out rows).
    validation_fraction : float, default 0.2
        Share of every task's rows held out when ``cv`` is None (a task keeps at least one training row).
    max_rank : int or None, default 64
        Cap of the default rank path.
    improvement : float, default 1e-3
        Relative decrease of the hold-out RMSE a move must bring to be taken.
    patience : int, default 1
        The rank path stops after this many consecutive ranks that do not improve the best hold-out RMSE (measured on
        ML-100K: 2 chose the same model as 1 with 23 fits instead of 19).
    max_iter, tol, engine, n_jobs, dtype
        Passed to every :class:`LRSRegressor` fit (``tol`` default 1e-6).
    search_tol : float, default 1e-4
        Stopping tolerance of the candidate fits of the search (the final refit uses ``tol``): hold-out scores
        settle long before the iterates do.
    search_max_iter : int, default 10
        Cap on the AMHT-LRS iterations of a search fit (its ConvergenceWarning is not raised; the refit uses
        ``max_iter``): measured on ML-100K (r = 1, k = 1 or 2), the hold-out RMSE after 10, 20 and 100 iterations
        of a fit that never meets ``search_tol`` agrees to 5e-5, while those fits were 60 % of the search time. On
        the 14 MovieLens robustness rows, 10 against 20 chose the same model on 8; on the other 6 the validation
        RMSE was lower overall on 5 (ML-100K seed 1: 0.8660 against 0.8791) and higher on 1 (ML-1M seed 2, by
        0.0004), lower on data-starved tasks on 4 and higher on 2 (by at most 0.0017), at 0.6-1.0x the search time.
    sparsity_patience : int, default 2
        At the rank path's first rank, the ``k`` path upward stops after this many consecutive ``k`` that do not
        improve the best hold-out RMSE (later ranks and the revisits stop at the first). Measured on the 14 MovieLens
        robustness rows against 1: the same model on 13; on ML-100K factor rank 100 the search went on from ``k = 1``
        (worse than ``k = 0``) to ``k = 2`` and up to ``k = 50`` (validation RMSE 0.8798 against 0.8870 overall,
        1.0533 against 1.0610 on data-starved tasks), with 9 to 20 fits there and 1 more on 3 rows. Applying it at
        every rank found nothing more and made one row worse on data-starved tasks (ML-100K seed 2, 1.0249 against
        1.0161) at up to 1.4x the fits.
    ridge_search : {"basis", "fits"}, default "basis"
        "basis": every fit scores the whole ridge grid on its own ``U`` and supports (each ridge one batched
        re-solve of the per-task least squares, :mod:`lorsa.solvers.task_resolve`, no ``U`` iterations); the next
        fit uses the best ridge, and the winner is refitted at its ridge once (kept if it scores at least as well).
        "fits": the ridge is a searched axis, one AMHT-LRS fit per value (the search before 2026-12-03).
    ridge_exponents : sequence of float, default (0.0, 0.5, 1.0)
        Task-size-adapted ridge ``lambda_i = ridge * (m_i / m_med) ** alpha`` for every ``alpha`` given (``m_i`` a
        task's training rows, ``m_med`` their median; scored like the ridge grid, ``ridge_search="basis"`` only; the
        fit of ``U`` uses the plain ridge; (0.0,) is the isotropic ridge alone). Measured on the 7 ML-100K robustness
        rows against (0.0,): validation RMSE lower on 6 of 7 overall and on data-starved tasks, and on 6 of 7 ML-1M
        rows in both (README).
    refit : bool, default True
        Refit the winner on all rows of ``fit``'s data (False: only the search; see :meth:`fit_best`).
    random_state : int, Generator or None
        Seed of the splits and the fits: the same seed gives the same model.

    Attributes
    ----------
    best_params_ : dict
        ``rank``, ``sparsity``, ``ridge`` (of the per-task step), ``ridge_exponent``, ``basis_ridge`` (the ridge of
        the AMHT-LRS fit of ``U``; ``ridge`` differs when the re-solve with another ridge scored better), ``offset``,
        ``shrinkage`` of the final model.
    best_score_ : float
        Its hold-out RMSE.
    cv_results_ : dict of lists
        One entry per candidate fitted: ``rank``, ``sparsity``, ``ridge``, ``offset``, ``rmse_ridge``, ``rmse_eb``,
        ``rmse`` (the better of the two allowed), ``n_iter`` (summed over folds), ``fit_seconds``, ``params``.
    n_fits_ : int
        AMHT-LRS fits run, the final refit included.
    search_seconds_, refit_seconds_ : float
        Wall time of the search and of the final refit.
    holdout_mask_ : ndarray of bool, shape (N,)
        Rows of ``fit``'s data held out for scoring (``cv=None``); every other row trained every candidate.
    best_estimator_ : LRSRegressor
        The refitted AMHT-LRS model of ``y - <x, theta_0>`` (its ``W_`` holds the final, possibly shrunk, ``w_i``).
    U_, W_, B_, tasks_, n_features_in_, n_iter_
        As in :class:`LRSRegressor` (``n_iter_``: AMHT-LRS iterations of the final refit).
    offset_ : ndarray of shape (d,)
        ``theta_0`` (zeros for ``offset="none"``).
    offset_ridge_ : float
        The ridge of ``theta_0``'s pooled model, chosen on the search's held-out rows (the most frequent over
        folds) and used by the refit and :meth:`fit_best` (not saved).
    w_prior_mean_, w_prior_cov_, noise_var_
        The empirical-Bayes prior and noise variance (``shrinkage="eb"``; else None).
    W_ridge_ : ndarray of shape (t, r)
        The refit's own (ridge-shrunk) ``w_i``, before any empirical-Bayes replacement (not saved).
    """

    _min_features = 2

    def __init__(self, ranks: Any = None, sparsities: Any = None, ridges: Any = None, *,
                 offsets: Any = ("none", "single"), shrinkages: Any = ("ridge", "eb"), cv: int | None = None,
                 validation_fraction: float = 0.2, max_rank: int | None = 64, improvement: float = 1e-3,
                 patience: int = 1, sparsity_patience: int = 2, ridge_search: str = "basis",
                 ridge_exponents: Any = (0.0, 0.5, 1.0),
                 max_iter: int = 100, tol: float = 1e-6, search_tol: float = 1e-4, search_max_iter: int = 10,
                 refit: bool = True,
                 engine: str = "auto", n_jobs: int | None = None, dtype: str = "float64",
                 random_state: int | np.random.Generator | None = None, verbose: bool = False) -> None:
        self.ranks = ranks
        self.sparsities = sparsities
        self.ridges = ridges
        self.offsets = offsets
        self.shrinkages = shrinkages
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.max_rank = max_rank
        self.improvement = improvement
        self.patience = patience
        self.sparsity_patience = sparsity_patience
        self.ridge_search = ridge_search
        self.ridge_exponents = ridge_exponents
        self.max_iter = max_iter
        self.tol = tol
        self.search_tol = search_tol
        self.search_max_iter = search_max_iter
        self.refit = refit
        self.engine = engine
        self.n_jobs = n_jobs
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _axes(self, X: np.ndarray, index: np.ndarray, t: int) -> dict[str, list[Any]]:
        d = X.shape[1]
        if d < 2:
            raise ValueError(f"X must have at least 2 features for a rank-r basis with r < d, got d={d}")
        max_rank = v.check_int("max_rank", self.max_rank, 1, allow_none=True)
        ranks = default_ranks(d, max_rank) if self.ranks is None else _sorted_list(
            "ranks", self.ranks, lambda n, x: v.check_int(n, x, 1, d - 1))
        ks = default_sparsities(d) if self.sparsities is None else _sorted_list(
            "sparsities", self.sparsities, lambda n, x: v.check_int(n, x, 0, d))
        if self.ridges is None:
            scale = ridge_scale(X, index, t)
            ridges = [f * scale for f in _RIDGE_FACTORS]
        else:
            ridges = _sorted_list("ridges", self.ridges, lambda n, x: v.check_float(n, x, 0.0))
        offsets = _choices("offsets", self.offsets, _OFFSETS)
        shrinkages = _choices("shrinkages", self.shrinkages, _SHRINKAGES)
        v.check_choice("ridge_search", self.ridge_search, _RIDGE_SEARCHES)
        exponents = _sorted_list("ridge_exponents", self.ridge_exponents, lambda n, x: v.check_float(n, x, -4.0, 4.0))
        if self.ridge_search == "fits" and exponents != [0.0]:
            raise ValueError(f"ridge_exponents other than (0.0,) need ridge_search='basis', got {exponents} with "
                             "ridge_search='fits' (pass ridge_exponents=(0.0,))")
        return {"rank": ranks, "sparsity": ks, "ridge": ridges, "offset": offsets, "shrinkage": shrinkages,
                "exponent": exponents}

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, tasks: Any = None, sample_weight: Any = None, *,
            validation: tuple[Any, Any, Any] | None = None) -> LRSRegressorCV:
        """Search ``r``, ``k``, ridge, offset and shrinkage on held-out rows, then refit on all rows of ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (N, d)
        y : array-like of shape (N,)
        tasks : array-like of shape (N,), optional
            Task label (int or str) of every row (omitted: one task).
        sample_weight : array-like of shape (N,), optional
            Row weights of the squared loss (rows scaled by ``sqrt(w_j)``; hold-out scores are weighted too).
        validation : (X_val, y_val, tasks_val), optional
            Held-out rows of the same tasks given by the caller (then ``cv`` and ``validation_fraction`` are not
            used and every candidate trains on all of ``X``): for features that were themselves fitted on the
            training targets (e.g. MovieLens movie vectors), where rows held out of ``X`` would be optimistic.
        """
        X, y, labels, weight = self._validate_fit(X, y, tasks, sample_weight)
        X, y = rows_weighted(X.astype(np.float64, copy=False), y.astype(np.float64, copy=False), weight)
        unique, index = encode_tasks(labels)
        t = unique.shape[0]
        axes = self._axes(X, index, t)
        v.check_float("improvement", self.improvement, 0.0, 1.0)
        v.check_int("search_max_iter", self.search_max_iter, 1)
        self._sparsity_patience = v.check_int("sparsity_patience", self.sparsity_patience, 1)
        if not isinstance(self.refit, bool):
            raise TypeError(f"refit must be True or False, got {self.refit!r}")
        rng = v.check_random_state(self.random_state)
        seed = int(rng.integers(0, 2**31 - 1))
        start = time.perf_counter()
        if validation is None:
            helds = self._splits(index, rng)
            splits = [self._prepare_split(X[~h], y[~h], index[~h], X[h], y[h], index[h], seed) for h in helds]
        else:
            if not isinstance(validation, tuple | list) or len(validation) != 3:
                raise TypeError("validation must be a tuple (X_val, y_val, tasks_val)")
            Xv = v.check_features(validation[0], name="validation X", n_features=X.shape[1],
                                  dtype=np.dtype(np.float64))
            yv = v.check_targets(validation[1], Xv.shape[0], name="validation y")
            iv = TaskIndex(unique).lookup(v.check_task_labels(validation[2], Xv.shape[0], "validation tasks"),
                                          "validation tasks")
            helds = []
            splits = [self._prepare_split(X, y, index, Xv, yv, iv, seed)]
        self._results: list[dict[str, Any]] = []
        cache: dict[tuple[Any, ...], dict[str, Any]] = {}

        def evaluate(point: dict[str, Any]) -> dict[str, Any]:
            # "basis" with k = 0: a fit has scored every ridge already (re-solved on its U), so another ridge at the
            # same (r, k, offset) is that fit, not a new one (measured on ML-100K: 3-4 of the 9-13 fits were such)
            ridge_key = None if self.ridge_search == "basis" and point["sparsity"] == 0 else point["ridge"]
            key = (point["rank"], point["sparsity"], ridge_key, point["offset"])
            if key not in cache:
                cache[key] = self._evaluate(point, splits, axes, seed)
            return cache[key]

        nxt = self._next_point
        current = {"rank": axes["rank"][0], "sparsity": axes["sparsity"][0],
                   "ridge": axes["ridge"][min(4, len(axes["ridge"]) - 1)], "offset": axes["offset"][-1]}
        best = evaluate(current)
        first = current["offset"]
        current = nxt(best)
        for off in axes["offset"]:
            if off == first:  # fitted already (with ridge_search="basis" its ridge is scored on that fit)
                continue
            cand = evaluate({**current, "offset": off})
            if self._better(cand, best):
                best, current = cand, nxt(cand)
        # The rank path, with the sparsity and then the ridge searched at every rank from the previous rank's best
        # values (a ridge too strong for a rank makes a larger rank look better); the path stops after `patience`
        # ranks in a row that do not improve on the best so far. With ridge_search="basis" every fit scores the whole
        # ridge grid on its own U (no fit per ridge) and the next fit uses the best ridge found; with k > 0 the ridge
        # is still also searched by fits, because it changes which coordinates the pursuit puts in the supports
        # (measured on ML-100K per-user tasks: the re-solve on fixed supports never left ridge = s at k = 1, where the
        # fit at 10 s led the search to k = 20 and a hold-out RMSE of 0.9164 against 0.9211).
        basis = self.ridge_search == "basis"
        patience = v.check_int("patience", self.patience, 1)
        stale, last = 0, current
        for r in axes["rank"]:
            start_row = evaluate({**last, "rank": r})
            # at the path's first rank the k path looks `sparsity_patience` values ahead; later ranks start from
            # the k found there and step while it helps
            point, cand, _ = self._line_search("sparsity", axes["sparsity"], nxt(start_row), start_row, evaluate,
                                               patience=self._sparsity_patience if r == axes["rank"][0] else 1)
            if not basis or point["sparsity"] > 0:  # the ridge also moves the supports of b_i: fitted, not re-solved
                point, cand, _ = self._line_search("ridge", axes["ridge"], point, cand, evaluate)
            last = point
            if cand is best or self._better(cand, best):
                best, current, stale = cand, point, 0
            else:
                stale += 1
                if stale >= patience:
                    break
        # Then the ridge, and the three axes revisited until no move helps ("basis": the ridge move is one fit at the
        # best ridge scored on the winner's basis, kept when it scores at least as well).
        for _cycle in range(3):
            moved = False
            if basis:
                cand = evaluate(nxt(best))
                if cand is not best and cand["rmse"] <= best["rmse"]:
                    moved |= self._better(cand, best)
                    best = cand
                current = nxt(best)
            for axis in ("ridge", "sparsity", "rank", "offset"):
                if axis == "ridge" and basis and current["sparsity"] == 0:
                    continue
                current, best, step_moved = self._line_search(axis, axes[axis], current, best, evaluate)
                moved |= step_moved
            if not moved:
                break
        self.search_seconds_ = time.perf_counter() - start
        self.best_params_ = {**{k: plain_value(best[k]) for k in ("rank", "sparsity", "offset")},
                             "ridge": plain_value(best["best_ridge"]), "ridge_exponent": plain_value(best["exponent"]),
                             "basis_ridge": plain_value(best["ridge"]), "shrinkage": best["shrinkage"]}
        self.best_score_ = float(best["rmse"])
        self.cv_results_ = {name: [r[name] for r in self._results] for name in
                            ("rank", "sparsity", "ridge", "offset", "rmse_ridge", "rmse_eb", "rmse", "best_ridge",
                             "exponent", "rmse_resolved", "shrinkage", "n_iter", "fit_seconds")}
        self.cv_results_["params"] = [{k: r[k] for k in ("rank", "sparsity", "ridge", "offset")} for r in self._results]
        self.n_fits_ = len(splits) * len(self._results)
        # theta_0's ridge, chosen on the splits like every other hyper-parameter (the most frequent over folds)
        chosen = [split["offset_ridge"] for split in splits]
        self.offset_ridge_ = float(min(set(chosen), key=lambda lam: (-chosen.count(lam), lam)))
        self.holdout_mask_ = helds[0] if len(helds) == 1 else None
        self._warm = self._init(splits[0], best)
        for split in splits:  # the search's bucketed rows and moments are not needed by the refit
            split.pop("prepared", None)
            split.pop("moments", None)
        del self._results
        self.refit_seconds_ = 0.0
        if self.refit:
            self._refit(X, y, index, unique, self._warm)
        return self

    def fit_best(self, X: Any, y: Any, tasks: Any = None, sample_weight: Any = None) -> LRSRegressorCV:
        """Fit the chosen parameters (``best_params_``) on ``(X, y)``: e.g. on the full training data after a
        search on a tuning problem whose features differ (started from the method of moments, not warm)."""
        if not hasattr(self, "best_params_"):
            raise RuntimeError("fit_best needs best_params_: call fit(...) first")
        X, y, labels, weight = self._validate_fit(X, y, tasks, sample_weight)
        X, y = rows_weighted(X.astype(np.float64, copy=False), y.astype(np.float64, copy=False), weight)
        unique, index = encode_tasks(labels)
        self._refit(X, y, index, unique, "moments")
        return self

    @staticmethod
    def _next_point(row: dict[str, Any]) -> dict[str, Any]:
        """The point a search continues from after ``row``: its fit with the ridge it scored best."""
        return {"rank": row["rank"], "sparsity": row["sparsity"], "ridge": row["best_ridge"], "offset": row["offset"]}

    def _better(self, cand: dict[str, Any], best: dict[str, Any]) -> bool:
        return bool(cand["rmse"] < best["rmse"] * (1 - self.improvement))

    def _line_search(self, axis: str, values: list[Any], current: dict[str, Any], best: dict[str, Any],
                     evaluate: Any, patience: int = 1) -> tuple[dict[str, Any], dict[str, Any], bool]:
        """Move along one axis from the current point, upward then downward, while the score improves (upward: until
        ``patience`` values in a row do not improve)."""
        pos = values.index(current[axis])
        moved = False
        for direction in (1, -1):
            limit = patience if direction > 0 else 1
            p, misses = pos + direction, 0
            while 0 <= p < len(values):
                cand = evaluate({**current, axis: values[p]})
                if self._better(cand, best):
                    best, current, pos, moved, misses = cand, self._next_point(cand), p, True, 0
                else:
                    misses += 1
                    if misses >= limit:
                        break
                p += direction
            if moved:
                break
        return current, best, moved

    def _refit(self, X, y, index, unique, init) -> None:
        from .baselines.single import SingleModel

        tic = time.perf_counter()
        best = self.best_params_
        seed = int(v.check_random_state(self.random_state).integers(0, 2**31 - 1))
        offset = np.zeros(X.shape[1])
        if best["offset"] == "single":
            ridge = getattr(self, "offset_ridge_", None)  # a model saved before it was kept: chosen again
            offset = SingleModel(SHARED_RIDGES if ridge is None else ridge, random_state=seed).fit(X, y, index).coef_
        target = y - X @ offset
        est = self._lrs({**best, "ridge": best.get("basis_ridge", best["ridge"])}, init, seed).fit(X, target, index)
        self.w_prior_mean_ = self.w_prior_cov_ = self.noise_var_ = None
        counts = np.bincount(index, minlength=unique.shape[0])
        self.ridge_median_rows_ = float(np.median(counts))
        if best["shrinkage"] == "ridge" and (best["ridge"] != best.get("basis_ridge", best["ridge"])
                                             or best.get("ridge_exponent", 0.0) != 0.0):
            # the per-task step re-solved on the fitted U and supports with the chosen (task-size-adapted) ridge
            normals = support_normals(X, target, index, unique.shape[0], est.U_, est.B_, int(best["sparsity"]))
            est.W_, est.B_ = solve_normals(normals, self._task_ridges(counts), X.shape[1])
        self.W_ridge_ = est.W_
        if best["shrinkage"] == "eb":
            eb = _eb_fit(X, target, index, unique.shape[0], est.U_, est.B_)
            est.W_ = eb.coef
            self.w_prior_mean_, self.w_prior_cov_, self.noise_var_ = eb.mean, eb.cov, float(eb.noise_var)
        est.tasks_ = unique
        est._index = TaskIndex(unique)
        self.best_estimator_ = est
        self.n_iter_ = int(est.n_iter_)
        self.offset_ = offset
        self._set_model(est.U_, est.W_, est.B_, unique, X.shape[1])
        self.refit_seconds_ = time.perf_counter() - tic
        self.n_fits_ += 1

    def _task_ridges(self, counts: np.ndarray) -> np.ndarray:
        """Every task's ridge ``ridge * (m_i / m_med) ** ridge_exponent`` (``m_med`` of the refit's tasks)."""
        p = self.best_params_
        return task_ridges(counts, float(p["ridge"]), float(p.get("ridge_exponent", 0.0)), self.ridge_median_rows_)

    def _set_model(self, U, W, B, tasks, d) -> None:
        self.U_, self.W_, self.B_, self.tasks_, self.n_features_in_ = U, W, B.tocsc(), tasks, int(d)

    # ------------------------------------------------------------------ predict / adapt
    def _check_fitted(self) -> None:
        if not hasattr(self, "U_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, y, tasks=...) first")

    def predict(self, X: Any, tasks: Any = None) -> np.ndarray:
        """``<x_j, theta_0 + U w_i + b_i>`` for every row, with its own task's model.

        Parameters
        ----------
        X : array-like of shape (N, d)
        tasks : array-like of shape (N,), optional
            Labels of tasks seen in ``fit`` (omitted: the model's only task).

        Returns
        -------
        y_pred : ndarray of shape (N,)
        """
        self._check_fitted()
        X, labels = self._validate_predict(X, tasks)
        X = X.astype(np.float64, copy=False)
        index = TaskIndex(self.tasks_).lookup(labels, "tasks")
        return predict_rows(X, index, self.U_, self.W_, self.B_) + X @ self.offset_

    def adapt_tasks(self, X: Any, y: Any, tasks: Any, max_iter: int = 100
                    ) -> tuple[np.ndarray, np.ndarray, sp.csc_matrix]:
        """Fit new tasks with ``U`` and ``theta_0`` fixed (SPEC §5); with ``shrinkage="eb"`` every ``w_i`` is then
        its posterior mean under the learned prior. Returns ``labels (t_new,)``, ``W (t_new, r)``, ``B (d, t_new)``."""
        self._check_fitted()
        X = v.check_features(X, n_features=self.n_features_in_, dtype=np.dtype(np.float64))
        y = v.check_targets(y, X.shape[0])
        inner = self._inner()
        target = y - X @ self.offset_
        labels, W, B = inner.adapt_tasks(X, target, tasks, max_iter=max_iter)
        _, index = encode_tasks(v.check_task_labels(tasks, X.shape[0]))
        if self.w_prior_cov_ is None and float(self.best_params_.get("ridge_exponent", 0.0)) != 0.0:
            normals = support_normals(X, target, index, labels.shape[0], self.U_, B, int(self.best_params_["sparsity"]))
            W, B = solve_normals(normals, self._task_ridges(np.bincount(index, minlength=labels.shape[0])), X.shape[1])
        if self.w_prior_cov_ is not None:
            Z = X @ self.U_
            blocks = task_gram_blocks(Z, target - _sparse_part(X, index, B), index, labels.shape[0])
            W = posterior_means(blocks, labels.shape[0], self.w_prior_mean_, self.w_prior_cov_, self.noise_var_)
        return labels, W, B

    def adapt(self, X: Any, y: Any, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """One new task: ``w (r,)`` and a dense ``b (d,)`` (see :meth:`adapt_tasks`)."""
        X = v.check_features(X, n_features=getattr(self, "n_features_in_", None), dtype=np.dtype(np.float64))
        _, W, B = self.adapt_tasks(X, y, np.zeros(X.shape[0], dtype=np.int64), max_iter=max_iter)
        return W[0], B[:, 0].toarray().ravel()

    def _inner(self) -> LRSRegressor:
        p = self.best_params_
        est = LRSRegressor(rank=int(p["rank"]), sparsity=int(p["sparsity"]), ridge=float(p["ridge"]),
                           max_iter=self.max_iter, tol=self.tol, engine=self.engine, n_jobs=self.n_jobs,
                           dtype=self.dtype)
        est.U_, est.W_, est.B_, est.tasks_ = self.U_, self.W_, self.B_, self.tasks_
        est.n_features_in_ = self.n_features_in_
        est._index = TaskIndex(self.tasks_)
        return est

    @property
    def params_per_task(self) -> int:
        """``r + k``: what a task stores beyond the shared ``U`` and ``theta_0``."""
        self._check_fitted()
        return int(self.best_params_["rank"]) + int(self.best_params_["sparsity"])
