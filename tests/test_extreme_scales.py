"""Data of extreme scale is fitted exactly like data of ordinary scale (issue 16, item 7): X times 1e-200 once
fitted in one iteration, reported convergence and predicted 0; X times 1e155 failed with LinAlgError ("Array must
not contain infs or NaNs"); a sample_split leaving tasks no rows per batch silently ruined the fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from lorsa import LRSRegressor
from lorsa.cli import main
from lorsa.scaling import data_scale


def _fit(P, X=None, y=None, **kw):
    est = LRSRegressor(rank=2, sparsity=2, max_iter=30, random_state=0, **kw)
    return est.fit(P.X if X is None else X, P.y if y is None else y, tasks=P.tasks)


@pytest.mark.parametrize("x_factor, y_factor", [(1e-200, 1.0), (1e155, 1.0), (1.0, 1e-250), (1e-200, 1e-200),
                                                (1e150, 1e140)])
def test_extreme_scales_give_the_scaled_fit(small_problem, x_factor, y_factor):
    P = small_problem
    reference = _fit(P)
    X, y = P.X * x_factor, P.y * y_factor
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / underflow warnings either
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=30 for both fits: they must stop alike
        est = _fit(P, X, y)
    assert est.n_iter_ == reference.n_iter_ and est.converged_ == reference.converged_
    # Power-of-two scalings are exact; the factors here are not powers of two, so agreement is to round-off
    # (1e-9 relative: the problem is well conditioned, reference condition numbers are below 1e3).
    theta = reference.U_ @ reference.W_.T + reference.B_.toarray()
    theta_scaled = (est.U_ @ est.W_.T + est.B_.toarray()) * (x_factor / y_factor)
    np.testing.assert_allclose(theta_scaled, theta, rtol=1e-9, atol=1e-9 * np.abs(theta).max())
    pred = est.predict(X, tasks=P.tasks)
    np.testing.assert_allclose(pred / y_factor, reference.predict(P.X, tasks=P.tasks), rtol=1e-8, atol=1e-8)
    if y_factor**2 == 0.0:  # objectives of y at 1e-250 (about 1e-500) are not representable: reported as 0
        assert np.all(est.loss_history_ == 0.0)
        return
    # the objective falls to round-off (1e-12 of its start) in 30 iterations: compared to that level
    np.testing.assert_allclose(est.loss_history_ / y_factor / y_factor, reference.loss_history_, rtol=1e-6,
                               atol=1e-12 * reference.loss_history_[0])


def test_ordinary_scales_are_untouched(small_problem):
    P = small_problem
    assert data_scale(P.X, P.y).identity and data_scale(P.X * 1e5, P.y * 1e-5).identity
    assert not data_scale(P.X * 1e7, P.y).identity and not data_scale(P.X.astype(np.float32) * 1e4, P.y).identity


def test_ridge_is_rescaled_with_the_data(small_problem):
    P = small_problem
    reference = _fit(P, ridge=0.5)
    est = _fit(P, P.X * 2.0**-300, P.y, ridge=0.5 * 2.0**-600)
    np.testing.assert_array_equal(est.U_, reference.U_)
    np.testing.assert_array_equal(est.W_, np.ldexp(reference.W_, 300))


def test_power_of_two_rescaling_is_exact(small_problem):
    P = small_problem
    a, b = _fit(P), _fit(P, P.X * 2.0**-600, P.y * 2.0**300)
    assert not data_scale(P.X * 2.0**-600, P.y).identity
    np.testing.assert_array_equal(a.U_, b.U_)
    np.testing.assert_array_equal(np.ldexp(a.W_, 900), b.W_)
    np.testing.assert_array_equal(np.ldexp(a.loss_history_, 600), b.loss_history_)


def test_cli_fits_features_of_1e155(small_problem, tmp_path):
    P = small_problem
    df = pd.DataFrame(P.X * 1e155, columns=[f"x_{j}" for j in range(P.X.shape[1])])
    df.insert(0, "task", [f"t{t}" for t in P.tasks])
    df["y"] = P.y
    df.to_csv(tmp_path / "d.csv", index=False)
    assert main(["fit", str(tmp_path / "d.csv"), "-o", str(tmp_path / "m.npz"), "--task-column", "task",
                 "--target-column", "y", "--rank", "2", "--sparsity", "2", "--quiet"]) == 0
    est = LRSRegressor.load(tmp_path / "m.npz")
    assert est.score(P.X * 1e155, P.y, tasks=np.array([f"t{t}" for t in P.tasks])) > 0.999


def test_sample_split_that_empties_the_batches_is_refused(small_problem):
    P = small_problem  # 30 rows per task, r + k = 4
    with pytest.raises(ValueError, match=r"sample_split=30 leaves every task fewer than rank \+ sparsity = 4 rows "
                                         r"per batch \(the largest task has 30 rows\); use sample_split <= 7"):
        _fit(P, sample_split=30)
    uneven = np.r_[np.flatnonzero(P.tasks != 0), np.flatnonzero(P.tasks == 0)[:5]]  # task 0 keeps 5 rows
    with pytest.warns(UserWarning, match=r"sample_split=3: 1 task\(s\) get fewer than rank \+ sparsity = 4 rows"):
        LRSRegressor(rank=2, sparsity=2, max_iter=3, sample_split=3).fit(P.X[uneven], P.y[uneven],
                                                                        tasks=P.tasks[uneven])
