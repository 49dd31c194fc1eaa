"""LRSRegressorCV: chooses r and k on held-out rows of the training data, never anything else; API, files."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import lorsa
from lorsa import LRSRegressor, LRSRegressorCV, make_lrs_regression
from lorsa.model_cv import default_ranks, default_sparsities


@pytest.fixture(scope="module")
def lrs_problem():
    """d = 16, r = 3, k = 2, 150 tasks of 100 rows, low noise: the right (r, k) is clearly the best."""
    return make_lrs_regression(n_tasks=150, n_samples=100, n_features=16, rank=3, sparsity=2, row_sparsity=None,
                               noise=0.01, random_state=0)


@pytest.fixture(scope="module")
def fitted(lrs_problem):
    P = lrs_problem
    return LRSRegressorCV(offsets=("none",), random_state=0).fit(P.X, P.y, tasks=P.tasks)


def test_recovers_rank_and_sparsity(fitted, lrs_problem):
    P = lrs_problem
    assert fitted.best_params_["rank"] == 3
    assert fitted.best_params_["sparsity"] == 2
    assert fitted.params_per_task == 5
    theta = fitted.U_ @ fitted.W_.T + fitted.B_.toarray() + fitted.offset_[:, None]
    assert np.linalg.norm(theta - P.theta) / np.linalg.norm(P.theta) < 0.05   # measured 0.023 (sigma = 0.01)
    # The ordered search stopped: it never went beyond two rank steps past the answer.
    assert max(fitted.cv_results_["rank"]) <= 6
    assert len(fitted.cv_results_["rmse"]) == fitted.n_fits_ - 1
    assert set(fitted.cv_results_) >= {"params", "rank", "sparsity", "ridge", "offset", "rmse_ridge", "rmse_eb"}
    # the winner is a fitted candidate within `improvement` (0.1 %) of the lowest score: near-ties keep the earlier,
    # smaller model
    assert fitted.best_score_ in fitted.cv_results_["rmse"]
    assert fitted.best_score_ <= min(fitted.cv_results_["rmse"]) * (1 + 1e-3)


@pytest.mark.parametrize("noise, m", [(0.05, 80)])
def test_default_search_finds_the_model(noise, m):
    """With the default search (offsets too): k = 2, and r = 3, or r = 4 on top of the pooled offset theta_0 (then
    theta_i - theta_0 = U w_i - theta_0 spans one more direction)."""
    P = make_lrs_regression(n_tasks=150, n_samples=m, n_features=16, rank=3, sparsity=2, row_sparsity=None,
                            noise=noise, random_state=1)
    est = LRSRegressorCV(random_state=0).fit(P.X, P.y, tasks=P.tasks)
    p = est.best_params_
    assert p["sparsity"] == 2 and p["rank"] == (3 if p["offset"] == "none" else 4), p


def test_candidates_never_train_on_held_out_rows(lrs_problem, monkeypatch):
    """Every candidate fit sees exactly the rows outside holdout_mask_ (recognised by their unique targets); only
    the final refit sees all rows; and the reported score is the RMSE on the held-out rows."""
    P = lrs_problem
    seen: list[np.ndarray] = []
    real_fit = LRSRegressor.fit

    def spy(self, X, y, tasks, **kw):
        seen.append(np.asarray(X)[:, 0].copy())
        return real_fit(self, X, y, tasks, **kw)

    monkeypatch.setattr(LRSRegressor, "fit", spy)
    est = LRSRegressorCV(ranks=(2, 3), sparsities=(1, 2), offsets=("none",), random_state=1).fit(P.X, P.y, P.tasks)
    held = est.holdout_mask_
    assert held.sum() == pytest.approx(0.2 * P.X.shape[0], rel=0.01)
    train_keys, held_keys = set(P.X[~held, 0].tolist()), set(P.X[held, 0].tolist())
    for x0 in seen[:-1]:
        assert set(x0.tolist()) == train_keys and not (set(x0.tolist()) & held_keys)
    assert set(seen[-1].tolist()) == train_keys | held_keys          # the refit
    # Changing the held-out targets changes the scores, changing nothing else does not reach them.
    y2 = P.y.copy()
    y2[held] += 1.0
    est2 = LRSRegressorCV(ranks=(2, 3), sparsities=(1, 2), offsets=("none",), random_state=1, refit=False)
    est2.fit(P.X, y2, P.tasks)
    assert est2.best_score_ > est.best_score_ + 0.5


def test_external_validation_rows_and_refit(lrs_problem):
    """With validation=(X, y, tasks) the candidates train on all of X and are scored on the given rows only."""
    P = lrs_problem
    rng = np.random.default_rng(5)
    tasks_v = np.repeat(np.arange(150), 10)                       # fresh rows of the same tasks
    X_v = rng.standard_normal((tasks_v.size, 16))
    y_v = np.einsum("nd,nd->n", X_v, P.theta.T[tasks_v]) + 0.01 * rng.standard_normal(tasks_v.size)
    Q = type("Rows", (), {"X": X_v, "y": y_v, "tasks": tasks_v})
    est = LRSRegressorCV(ranks=(2, 3, 4), sparsities=(1, 2, 3), offsets=("none",), random_state=0, refit=False)
    est.fit(P.X, P.y, P.tasks, validation=(Q.X, Q.y, Q.tasks))
    assert est.best_params_["rank"] == 3 and est.best_params_["sparsity"] == 2 and est.holdout_mask_ is None
    assert not hasattr(est, "U_")
    est.fit_best(P.X, P.y, P.tasks)
    assert est.rmse(Q.X, Q.y, Q.tasks) < 0.05
    shuffled = np.random.default_rng(0).permutation(Q.y)
    other = LRSRegressorCV(ranks=(2, 3, 4), sparsities=(1, 2, 3), offsets=("none",), random_state=0, refit=False)
    other.fit(P.X, P.y, P.tasks, validation=(Q.X, shuffled, Q.tasks))
    assert other.best_score_ > 1.0
    with pytest.raises(ValueError, match="never fitted"):
        est.fit(P.X, P.y, P.tasks, validation=(Q.X, Q.y, Q.tasks + 10_000))


def test_kfold_and_determinism(lrs_problem):
    P = lrs_problem
    kw = dict(ranks=(1, 3), sparsities=(0, 2), ridges=(1e-3,), offsets=("none",), shrinkages=("ridge",))
    a = LRSRegressorCV(cv=3, random_state=4, **kw).fit(P.X, P.y, P.tasks)
    b = LRSRegressorCV(cv=3, random_state=4, **kw).fit(P.X, P.y, P.tasks)
    assert a.best_params_ == b.best_params_ == {"rank": 3, "sparsity": 2, "ridge": 1e-3, "offset": "none",
                                                "ridge_exponent": 0.0, "basis_ridge": 1e-3, "shrinkage": "ridge"}
    np.testing.assert_array_equal(a.predict(P.X, P.tasks), b.predict(P.X, P.tasks))
    assert a.n_fits_ == 3 * len(a.cv_results_["rmse"]) + 1 and a.holdout_mask_ is None


def test_predict_adapt_save_load(fitted, lrs_problem, tmp_path):
    P = lrs_problem
    path = tmp_path / "cv.npz"
    fitted.save(path)
    back = LRSRegressorCV.load(path)
    np.testing.assert_array_equal(back.predict(P.X, P.tasks), fitted.predict(P.X, P.tasks))
    assert back.best_params_ == fitted.best_params_
    rows = P.tasks == 0
    w, b = back.adapt(P.X[rows], P.y[rows])
    theta = back.U_ @ w + b + back.offset_
    assert np.linalg.norm(theta - P.theta[:, 0]) / np.linalg.norm(P.theta[:, 0]) < 0.05
    with pytest.raises(lorsa.ModelFileError):
        LRSRegressor.load(path)


def test_default_paths_and_errors():
    assert default_ranks(5) == [1, 2, 3, 4] and default_ranks(51)[-1] == 48 and default_ranks(500, 64)[-1] == 64
    assert default_sparsities(5) == [0, 1, 2] and default_sparsities(51) == [0, 1, 2, 5, 10, 20]
    X = np.random.default_rng(0).standard_normal((40, 6))
    y, tasks = X[:, 0], np.repeat(np.arange(4), 10)
    with pytest.raises(ValueError, match=r"ranks\[0\] must be in \[1, 5\]"):
        LRSRegressorCV(ranks=(9,)).fit(X, y, tasks)
    with pytest.raises(ValueError, match="offsets"):
        LRSRegressorCV(offsets=("pooled",)).fit(X, y, tasks)
    with pytest.raises(ValueError, match="cv must be in"):
        LRSRegressorCV(cv=1).fit(X, y, tasks)
    with pytest.raises(ValueError, match="patience must be in"):
        LRSRegressorCV(patience=0).fit(X, y, tasks)
    with pytest.raises(NotFittedError, match="not fitted"):
        LRSRegressorCV().predict(X, tasks)
    assert lorsa.LRSRegressorCV is LRSRegressorCV


def test_cli_fit_tune_predict_adapt(tmp_path, capsys):
    """``lorsa fit --tune`` writes an LRSRegressorCV model that predict and adapt read (offset included)."""
    import pandas as pd

    from lorsa.cli import main

    P = make_lrs_regression(n_tasks=30, n_samples=40, n_features=8, rank=2, sparsity=1, row_sparsity=None,
                            noise=0.05, random_state=3)
    df = pd.DataFrame(P.X, columns=[f"x_{j}" for j in range(8)])
    df.insert(0, "user", [f"u{t:02d}" for t in P.tasks])
    df["rating"] = P.y
    train, new = df[df.user != "u29"], df[df.user == "u29"]
    train.to_csv(tmp_path / "train.csv", index=False)
    new.to_csv(tmp_path / "new.csv", index=False)
    model = tmp_path / "m.npz"
    opts = ["--task-column", "user", "--target-column", "rating", "--feature-prefix", "x_", "--seed", "0"]
    assert main(["fit", str(tmp_path / "train.csv"), "-o", str(model), "--tune", *opts]) == 0
    out = capsys.readouterr().out
    assert "chose r=" in out and "refitted on all rows" in out
    est = LRSRegressorCV.load(model)
    assert est.best_params_["rank"] >= 1
    assert main(["predict", str(model), str(tmp_path / "train.csv"), "-o", str(tmp_path / "p.csv"), "-q"]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")["prediction"].to_numpy()
    X = train[[f"x_{j}" for j in range(8)]].to_numpy()
    np.testing.assert_allclose(pred, est.predict(X, tasks=train["user"].to_numpy()), rtol=1e-10, atol=1e-10)
    assert np.sqrt(np.mean((pred - train["rating"].to_numpy()) ** 2)) < 0.2
    assert main(["adapt", str(model), str(tmp_path / "new.csv"), "-o", str(tmp_path / "m2.npz"), "-q"]) == 0
    both = LRSRegressorCV.load(tmp_path / "m2.npz")
    Xn = new[[f"x_{j}" for j in range(8)]].to_numpy()
    assert np.sqrt(np.mean((both.predict(Xn, tasks=new["user"].to_numpy()) - new["rating"].to_numpy()) ** 2)) < 0.3
    assert main(["fit", str(tmp_path / "train.csv"), "-o", str(model), "--tune", "--rank", "3", *opts]) == 2
    assert "--rank cannot be used with --tune" in capsys.readouterr().err


def test_ridge_scored_on_the_basis_needs_fewer_fits():
    """ridge_search="basis" (default) scores the ridge grid on each fit's U instead of fitting every ridge: on k = 0
    data it finds the same r with fewer AMHT-LRS fits than ridge_search="fits"."""
    P = make_lrs_regression(n_tasks=120, n_samples=40, n_features=12, rank=3, sparsity=0, row_sparsity=None,
                            noise=0.3, random_state=2)
    kw = dict(sparsities=(0,), offsets=("none",), shrinkages=("ridge",), random_state=0)
    basis = LRSRegressorCV(**kw).fit(P.X, P.y, P.tasks)
    fits = LRSRegressorCV(ridge_search="fits", ridge_exponents=(0.0,), **kw).fit(P.X, P.y, P.tasks)
    assert basis.best_params_["rank"] == fits.best_params_["rank"] == 3
    assert basis.n_fits_ < fits.n_fits_, (basis.n_fits_, fits.n_fits_)
    # every candidate's reported score is one of the scores it computed (its own fit or a re-solve)
    for own, resolved, rmse in zip(basis.cv_results_["rmse_ridge"], basis.cv_results_["rmse_resolved"],
                                   basis.cv_results_["rmse"], strict=True):
        assert rmse == min(own, resolved)
    assert basis.best_score_ <= fits.best_score_ * 1.01      # near-ties are broken toward fewer fits, not better


def test_task_size_ridge_exponent_refit_and_adapt(lrs_problem, tmp_path):
    """ridge_exponents: the refit re-solves every task with lambda_i = ridge (m_i / m_med)^alpha; adapting a task
    on its own rows reproduces its refitted (w_i, b_i); the exponent survives save/load."""
    P = lrs_problem
    keep = np.ones(P.X.shape[0], dtype=bool)
    keep[P.tasks < 30] = np.tile(np.arange(100) < 40, 30)             # 30 tasks of 40 rows, 120 of 100
    X, y, tasks = P.X[keep], P.y[keep], P.tasks[keep]
    est = LRSRegressorCV(ranks=(3,), sparsities=(2,), ridges=(0.0, 1.0, 10.0), ridge_exponents=(1.0,),
                         offsets=("none",), shrinkages=("ridge",), random_state=0).fit(X, y, tasks)
    est.best_params_ = {**est.best_params_, "ridge": 10.0, "ridge_exponent": 1.0}   # force a visible exponent
    est.fit_best(X, y, tasks)
    assert est.ridge_median_rows_ == 100.0
    rows = tasks == 0
    w, b = est.adapt(X[rows], y[rows])
    # tolerance: same U, same support, same normal equations with lambda_0 = 10 * 40 / 100; only the pursuit differs
    np.testing.assert_allclose(w, est.W_[0], atol=1e-8)
    np.testing.assert_allclose(b, est.B_[:, 0].toarray().ravel(), atol=1e-8)
    est.save(tmp_path / "x.npz")
    back = LRSRegressorCV.load(tmp_path / "x.npz")
    assert back.best_params_["ridge_exponent"] == 1.0 and back.ridge_median_rows_ == 100.0
    with pytest.raises(ValueError, match="ridge_search='basis'"):
        LRSRegressorCV(ridge_search="fits", ridge_exponents=(0.0, 1.0)).fit(X, y, tasks)


def test_prepared_rows_fit_like_fit(lrs_problem):
    """The search builds the bucketed rows once (LRSRegressor._prepare) and fits every candidate on them: each fit
    is bit for bit the fit from the raw rows, and data released by a single fit cannot be reused."""
    P = lrs_problem
    keep = P.tasks < 30
    X, y, tasks = P.X[keep], P.y[keep], P.tasks[keep]
    prepared = LRSRegressor(rank=1)._prepare(X, y, tasks)
    for rank, k, ridge in ((1, 0, 0.0), (3, 2, 0.5), (2, 1, 10.0)):
        params = {"rank": rank, "sparsity": k, "ridge": ridge, "max_iter": 30, "random_state": 0}
        a = LRSRegressor(**params)._fit_prepared(prepared)
        b = LRSRegressor(**params).fit(X, y, tasks)
        assert np.array_equal(a.U_, b.U_) and np.array_equal(a.W_, b.W_)
        assert np.array_equal(a.B_.toarray(), b.B_.toarray()) and a.n_iter_ == b.n_iter_
    LRSRegressor(rank=2)._fit_prepared(prepared, release=True)
    with pytest.raises(ValueError, match="released"):
        LRSRegressor(rank=2)._fit_prepared(prepared)
    with pytest.raises(ValueError, match="dtype"):
        LRSRegressor(rank=2, dtype="float32")._fit_prepared(LRSRegressor(rank=1)._prepare(X, y, tasks))


def test_refit_uses_the_offset_ridge_chosen_in_the_search(lrs_problem):
    """theta_0's ridge is chosen on the search's held-out rows, like r and k, and the refit on all rows uses it."""
    from lorsa.baselines.single import pooled_ridge

    P = lrs_problem
    keep = P.tasks < 40
    X, y, tasks = P.X[keep], P.y[keep] + 3.0 * P.X[keep, 0], P.tasks[keep]   # a shared part for theta_0 to find
    est = LRSRegressorCV(ranks=[3], sparsities=[2], offsets=("single",), random_state=0).fit(X, y, tasks=tasks)
    assert est.offset_ridge_ in (0.0, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)
    # the same normal equations, solved once (round-off only)
    np.testing.assert_allclose(est.offset_, pooled_ridge(X, y, est.offset_ridge_), rtol=1e-10, atol=1e-12)
