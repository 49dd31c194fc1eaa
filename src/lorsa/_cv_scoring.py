"""How :class:`lorsa.LRSRegressorCV` scores one candidate ``(r, k, ridge, offset)`` (SPEC §1-§5, §8).

A candidate is one AMHT-LRS fit per split on the training rows (warm-started, or from the method-of-moments
directions of its offset's targets, computed once), scored on the held-out rows with the fit's own ``w_i``, with the
empirical-Bayes posterior means of ``w_i`` (``U`` and ``b_i`` fixed), and with every ridge of the grid (and every
task-size exponent) re-solved on the fit's ``U`` and supports (:mod:`lorsa.solvers.task_resolve`). The per-task
moments of a split (built once), the bucketed rows of its last offset's targets (built once per offset switch) and
the held-out support features make everything after the fit a batched solve over tasks.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from . import _validation as v
from ._cv_helpers import _eb_fit, _eb_fit_moments, _moments_directions, _warm_basis
from .data import split_rows
from .model import LRSRegressor, predict_rows
from .solvers.task_resolve import (
    TaskMoments,
    moments_normals,
    solve_coefficients,
    support_features,
    support_normals,
    task_ridges,
)

__all__ = ["CandidateScoring", "SHARED_RIDGES"]

#: Ridges of the pooled model ``theta_0`` (``offset="single"``), chosen on held-out rows.
SHARED_RIDGES = (0.0, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)


class CandidateScoring:
    """The candidate fits and scores of :class:`lorsa.LRSRegressorCV` (a mixin: it reads the estimator's
    parameters, appends every scored row to ``self._results`` and calls ``self.verbose``)."""

    _eb_search_tol = 1e-5

    def _splits(self, index: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Held-out masks: one (hold-out) or K (folds over each task's rows)."""
        if self.cv is None:
            fraction = v.check_float("validation_fraction", self.validation_fraction, 0.0, 1.0,
                                     low_inclusive=False, high_inclusive=False)
            held = split_rows(index, fraction, rng)
            if not held.any():
                raise ValueError(f"validation_fraction={fraction:g} holds out no row (n_samples = {index.shape[0]}; "
                                 "every task has too few rows); give a larger fraction or use LRSRegressor with fixed "
                                 "parameters")
            return [held]
        folds = v.check_int("cv", self.cv, 2, 100)
        n = index.shape[0]
        order = np.lexsort((rng.random(n), index))
        starts = np.flatnonzero(np.r_[True, index[order][1:] != index[order][:-1]])
        counts = np.diff(np.r_[starts, n])
        position = np.arange(n) - np.repeat(starts, counts)
        fold = np.empty(n, dtype=np.int64)
        fold[order] = position % folds
        single = np.repeat(counts, counts)[np.argsort(order)] < 2  # a one-row task always trains
        return [(fold == f) & ~single for f in range(folds)]

    def _prepare_split(self, X, y, index, X_held, y_held, index_held, seed) -> dict[str, Any]:
        from .baselines.single import SingleModel

        single = SingleModel(SHARED_RIDGES, random_state=seed).fit(X, y, index)
        return {"X": X, "y": y, "index": index, "X_held": X_held, "y_held": y_held, "index_held": index_held,
                "offset": single.coef_, "offset_ridge": float(single.best_params_["ridge"]), "warm": {},
                "directions": {}, "best_rmse": {}}

    def _lrs(self, point: dict[str, Any], init: Any, seed: int, search: bool = False) -> LRSRegressor:
        tol = max(self.tol, self.search_tol) if search else self.tol
        max_iter = min(self.max_iter, self.search_max_iter) if search else self.max_iter
        return LRSRegressor(rank=point["rank"], sparsity=point["sparsity"], ridge=point["ridge"], init=init,
                            max_iter=max_iter, tol=tol, engine=self.engine, n_jobs=self.n_jobs,
                            dtype=self.dtype, random_state=seed)

    def _init(self, split: dict[str, Any], point: dict[str, Any]) -> Any:
        warm = split["warm"].get((point["offset"], point["sparsity"]))
        if warm is None or warm[0].shape[1] > point["rank"]:
            return "moments"
        U, gram_w = warm
        return _warm_basis(U, gram_w, point["rank"], split["directions"][point["offset"]])

    @staticmethod
    def _moments(split: dict[str, Any], train_index: np.ndarray, n_tasks: int) -> TaskMoments | None:
        """The split's per-task moments of its training rows (built at first use), or None where they would be
        larger than the rows (then every candidate reads the rows)."""
        if "moments" not in split:
            X = split["X"]
            split["moments"] = (TaskMoments.from_rows(X, split["y"], train_index, n_tasks)
                                if TaskMoments.worthwhile(X.shape[0], n_tasks, X.shape[1]) else None)
        return split["moments"]

    def _evaluate(self, point, splits, axes, seed) -> dict[str, Any]:
        tic = time.perf_counter()
        shrinkages = axes["shrinkage"]
        basis = self.ridge_search == "basis"
        settings = [(lam, a) for lam in axes["ridge"] for a in axes["exponent"]] if basis else []
        sq = {"ridge": 0.0, "eb": 0.0}
        sq_set = dict.fromkeys(settings, 0.0)
        n_held, n_iter = 0, 0
        fitted = []
        for split in splits:
            X, index, Xh = split["X"], split["index"], split["X_held"]
            theta0 = split["offset"] if point["offset"] == "single" else None
            offset = np.zeros(X.shape[1]) if theta0 is None else theta0
            target = split["y"] - X @ offset
            if point["offset"] not in split["directions"]:
                split["directions"][point["offset"]] = _moments_directions(X, target)
            init = self._init(split, point)
            if isinstance(init, str):  # the method of moments: its top-r directions, computed once per offset
                init = np.ascontiguousarray(split["directions"][point["offset"]][:, :point["rank"]])
            est = self._lrs(point, init, seed, search=True)
            # the bucketed rows of the last offset's targets are kept for the next candidates (one copy at a time)
            if split.get("prepared", (None,))[0] != point["offset"]:
                split["prepared"] = (point["offset"], est._prepare(X, target, index))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est._fit_prepared(split["prepared"][1])
            n_iter += est.n_iter_
            est_index = np.searchsorted(est.tasks_, split["index_held"])
            train_index, n_t = np.searchsorted(est.tasks_, index), est.tasks_.shape[0]
            moments = self._moments(split, train_index, n_t)
            base = Xh @ offset
            pred = predict_rows(Xh, est_index, est.U_, est.W_, est.B_) + base
            sq["ridge"] += float(np.sum((pred - split["y_held"]) ** 2))
            if "eb" in shrinkages:
                eb = (_eb_fit(X, target, train_index, n_t, est.U_, est.B_, tol=self._eb_search_tol) if moments is None
                      else _eb_fit_moments(moments, theta0, est.U_, est.B_, tol=self._eb_search_tol))
                pred_eb = predict_rows(Xh, est_index, est.U_, eb.coef, est.B_) + base
                sq["eb"] += float(np.sum((pred_eb - split["y_held"]) ** 2))
            if settings:
                # the ridge grid scored on this fit's U and supports: one batched re-solve per ridge, no U iterations
                counts = np.bincount(train_index, minlength=n_t)
                normals = (support_normals(X, target, train_index, n_t, est.U_, est.B_, point["sparsity"])
                           if moments is None else moments_normals(moments, theta0, est.U_, est.B_, point["sparsity"]))
                F = support_features(Xh, est_index, est.U_, normals)
                for lam, a in settings:
                    theta = solve_coefficients(normals, task_ridges(counts, lam, a, float(np.median(counts))))
                    sq_set[(lam, a)] += float(np.sum((np.einsum("np,np->n", F, theta[est_index]) + base
                                                      - split["y_held"]) ** 2))
            n_held += int(Xh.shape[0])
            fitted.append(est)
        rm = {k: float(np.sqrt(s / max(n_held, 1))) for k, s in sq.items()}
        best_ridge, exponent, resolved = point["ridge"], 0.0, rm["ridge"]
        if settings:
            # prefer the fit's own setting, then smaller exponents and ridges, among exact ties
            own = (point["ridge"], 0.0)
            order = sorted(settings, key=lambda sa: (sq_set[sa], sa != own, abs(sa[1]), sa[0]))
            best_ridge, exponent = order[0]
            resolved = float(np.sqrt(sq_set[order[0]] / max(n_held, 1)))
            if own in sq_set and sq_set[own] <= sq_set[order[0]]:
                best_ridge, exponent, resolved = point["ridge"], 0.0, rm["ridge"]
        allowed = {"ridge": min(resolved, rm["ridge"]), **({"eb": rm["eb"]} if "eb" in shrinkages else {})}
        allowed = {k: allowed[k] for k in shrinkages}
        shrink = min(allowed, key=lambda k: (allowed[k], k != "ridge"))
        if shrink == "eb" or resolved >= rm["ridge"]:
            best_ridge, exponent = point["ridge"], 0.0
        row = {**point, "rmse_ridge": rm["ridge"], "rmse_eb": rm["eb"] if "eb" in shrinkages else float("nan"),
               "rmse": allowed[shrink], "shrinkage": shrink, "best_ridge": best_ridge, "exponent": exponent,
               "rmse_resolved": resolved, "n_iter": n_iter, "fit_seconds": time.perf_counter() - tic}
        self._results.append(row)
        # A later candidate with the same offset and k starts from the best fit so far of that pair (kept small: U
        # and W^T W, never W). Starts from another k or truncated from a larger r were measured to land in poorer
        # fits (U had compensated for other supports), so those start from the method of moments.
        # A fit that stopped at max_iter is not a start (measured on synthetic LRS data: an unconverged rank-2 fit
        # passed on led to rank-3 and rank-4 fits stuck at 3-8x the hold-out error of the same fits from the moments).
        key = (point["offset"], point["sparsity"])
        for split, est in zip(splits, fitted, strict=True):
            if est.converged_ and row["rmse"] <= split["best_rmse"].get(key, np.inf):
                split["best_rmse"][key] = row["rmse"]
                split["warm"][key] = (est.U_, est.W_.T @ est.W_)
        if self.verbose:
            print(f"r={point['rank']:3d} k={point['sparsity']:3d} ridge={point['ridge']:.4g} "
                  f"offset={point['offset']:6s} rmse(ridge)={rm['ridge']:.5f} rmse(eb)={row['rmse_eb']:.5f} "
                  f"resolved {resolved:.5f} at ridge={best_ridge:.4g} exponent={exponent:g} "
                  f"({row['fit_seconds']:.2f} s, {n_iter} it)",
                  flush=True)
        return row
