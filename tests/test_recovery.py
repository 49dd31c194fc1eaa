"""Noiseless exact recovery and special cases of AMHT-LRS (SPEC §1, §2, §8)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import relative_parameter_error
from lorsa import LRSRegressor, make_lrs_regression

# Noiseless data: the fit reaches round-off; 1e-6 is the bar, orders of magnitude above what is reached.
RECOVERY_TOL = 1e-6


@pytest.mark.parametrize("u_solver", ["exact", "cg"])
def test_paper_setting_exact_recovery(paper_problem, u_solver):
    P = paper_problem
    est = LRSRegressor(rank=1, sparsity=10, row_sparsity=5, u_solver=u_solver, random_state=0)
    est.fit(P.X, P.y, tasks=P.tasks)
    assert relative_parameter_error(est, P) <= RECOVERY_TOL
    B_err = np.linalg.norm(est.B_.toarray() - P.B.toarray()) / np.linalg.norm(P.B.toarray())
    assert B_err <= RECOVERY_TOL
    assert est.converged_


@pytest.mark.parametrize("u_solver", ["exact", "cg"])
def test_rank3_exact_recovery(rank3_problem, u_solver):
    P = rank3_problem
    est = LRSRegressor(rank=3, sparsity=3, u_solver=u_solver, random_state=0).fit(P.X, P.y, tasks=P.tasks)
    assert relative_parameter_error(est, P) <= RECOVERY_TOL
    # The learned subspace is the true one: sin-theta distance at round-off level (same 1e-6 bar).
    assert np.linalg.norm(P.U - est.U_ @ (est.U_.T @ P.U)) <= RECOVERY_TOL


def test_moments_initialisation_recovers(rank3_problem):
    P = rank3_problem
    est = LRSRegressor(rank=3, sparsity=3, init="moments").fit(P.X, P.y, tasks=P.tasks)
    assert relative_parameter_error(est, P) <= RECOVERY_TOL


def test_paper_iht_variant_runs_and_improves(rank3_problem):
    """The paper's IHT-then-least-squares step is kept as an option; it must at least make large progress."""
    P = rank3_problem
    est = LRSRegressor(rank=3, sparsity=3, solver="iht", max_iter=40, random_state=0)
    est.fit(P.X, P.y, tasks=P.tasks)
    assert relative_parameter_error(est, P) < 0.1
    assert est.loss_history_[-1] < 1e-3 * est.initial_loss_


def test_paper_schedule_and_step_options_run(small_problem):
    P = small_problem
    est = LRSRegressor(rank=2, sparsity=2, solver="iht", step="paper", threshold="schedule", max_iter=5)
    est.fit(P.X, P.y, tasks=P.tasks)
    assert np.all(np.isfinite(est.W_)) and est.B_.getnnz(axis=0).max() <= 2


def test_k0_is_representation_learning_and_matches_naive_altmin():
    """k = 0 reduces to AltMin (Thekumparampil et al. 2021): compare with a direct, loop-based implementation."""
    P = make_lrs_regression(n_tasks=60, n_samples=15, n_features=12, rank=2, sparsity=0, row_sparsity=None,
                            noise=0.1, random_state=3)
    rng = np.random.default_rng(0)
    U0, _ = np.linalg.qr(rng.standard_normal((12, 2)))
    est = LRSRegressor(rank=2, sparsity=0, init=U0, max_iter=6, tol=0.0, u_solver="exact")
    est.fit(P.X, P.y, tasks=P.tasks)
    assert est.B_.nnz == 0
    # Naive AltMin as the paper writes it: per-task least squares, then the dense Kronecker U solve, then QR.
    U = U0
    Xs = [P.X[P.tasks == i] for i in range(60)]
    ys = [P.y[P.tasks == i] for i in range(60)]
    W = np.array([np.linalg.lstsq(X @ U, y, rcond=None)[0] for X, y in zip(Xs, ys, strict=True)])
    for _ in range(6):
        A = sum(np.kron(np.outer(w, w), X.T @ X) for X, w in zip(Xs, W, strict=True))
        V = sum(np.outer(X.T @ y, w) for X, y, w in zip(Xs, ys, W, strict=True))
        U, _ = np.linalg.qr(np.linalg.solve(A, V.reshape(-1, order="F")).reshape((12, 2), order="F"))
        W = np.array([np.linalg.lstsq(X @ U, y, rcond=None)[0] for X, y in zip(Xs, ys, strict=True)])
    # Same iterates up to round-off (two solvers, same mathematics): compare the task models U w_i.
    np.testing.assert_allclose(est.U_ @ est.W_.T, U @ W.T, atol=1e-9)


def test_same_seed_same_model(small_problem):
    P = small_problem
    a = LRSRegressor(rank=2, sparsity=2, random_state=7, max_iter=5).fit(P.X, P.y, tasks=P.tasks)
    b = LRSRegressor(rank=2, sparsity=2, random_state=7, max_iter=5).fit(P.X, P.y, tasks=P.tasks)
    assert np.array_equal(a.U_, b.U_) and np.array_equal(a.W_, b.W_)
    assert (a.B_ != b.B_).nnz == 0
    assert np.array_equal(a.loss_history_, b.loss_history_)


def test_row_sparsity_is_enforced(paper_problem):
    P = paper_problem
    est = LRSRegressor(rank=1, sparsity=10, row_sparsity=2, max_iter=5, random_state=0)
    est.fit(P.X, P.y, tasks=P.tasks)
    assert est.B_.tocsr().getnnz(axis=1).max() <= 2


def test_sample_splitting_recovers(rank3_problem):
    P = rank3_problem
    est = LRSRegressor(rank=3, sparsity=3, sample_split=2, random_state=0).fit(P.X, P.y, tasks=P.tasks)
    # Each batch has 30 rows per task (> r + k): still exact, same bar.
    assert relative_parameter_error(est, P) <= RECOVERY_TOL


def test_float32_end_to_end(rank3_problem):
    P = rank3_problem
    est = LRSRegressor(rank=3, sparsity=3, dtype="float32", random_state=0).fit(P.X, P.y, tasks=P.tasks)
    # float32 data: round-off ~1e-7 relative per product, so recovery to ~1e-4 is what single precision allows.
    assert relative_parameter_error(est, P) <= 1e-4


def test_frozen_basis_is_per_task_compressed_sensing(small_problem):
    P = small_problem
    est = LRSRegressor(rank=2, sparsity=2, init=P.U, fit_basis=False).fit(P.X, P.y, tasks=P.tasks)
    assert np.array_equal(est.U_, P.U)
    assert relative_parameter_error(est, P) <= RECOVERY_TOL


def test_noisy_fit_ridge_helps_starved_tasks():
    """With noise and very few rows per task, a ridge on (w_i, b_i) lowers test error (sanity, not a benchmark)."""
    P = make_lrs_regression(n_tasks=200, n_samples=8, n_features=30, rank=2, sparsity=2, row_sparsity=None,
                            noise=1.0, random_state=4)
    Xt, yt, tt = P.sample(50, random_state=5, noise=0.0)
    plain = LRSRegressor(rank=2, sparsity=2, random_state=0, max_iter=30).fit(P.X, P.y, tasks=P.tasks)
    ridge = LRSRegressor(rank=2, sparsity=2, ridge=3.0, random_state=0, max_iter=30).fit(P.X, P.y, tasks=P.tasks)
    assert ridge.rmse(Xt, yt, tt) < plain.rmse(Xt, yt, tt)
    assert ridge.score(Xt, yt, tt) > plain.score(Xt, yt, tt)  # R^2: higher is better


@pytest.mark.parametrize("engine", ["numpy", "auto"])
@pytest.mark.parametrize("seed", range(5))
def test_recovery_with_few_samples_per_task(seed, engine):
    """d = 20, r = 2, k = 2, t = 300, m = 25, noiseless (issue 14): plain subspace pursuit left a task or two on a
    wrong support on 4 of these 5 seeds (relative error 2e-2 to 3e-2); the exchange step and the restart of stuck
    tasks recover every seed."""
    P = make_lrs_regression(n_tasks=300, n_samples=25, n_features=20, rank=2, sparsity=2, row_sparsity=None,
                            noise=0.0, random_state=seed)
    est = LRSRegressor(rank=2, sparsity=2, engine=engine, random_state=seed).fit(P.X, P.y, tasks=P.tasks)
    assert relative_parameter_error(est, P) <= RECOVERY_TOL


@pytest.mark.parametrize("engine", ["numpy", "auto"])
def test_escapes_do_not_depend_on_the_block_layout(monkeypatch, engine):
    """The exchange step and the restart compare a task's objective with the previous pass's mean per-task
    objective (one reduced scalar), not with its block's: the same data cut into many small blocks give the same
    fit. Seed 1 of the m = 25 case needs the escapes (plain subspace pursuit stops at 2e-2 there). Tolerance 1e-8:
    the blocks change only the summation order of the U-step statistics (round-off ~1e-13 per iteration)."""
    from lorsa import model as model_module
    from lorsa.data import RaggedTasks

    P = make_lrs_regression(n_tasks=300, n_samples=25, n_features=20, rank=2, sparsity=2, row_sparsity=None,
                            noise=0.0, random_state=1)
    one = LRSRegressor(rank=2, sparsity=2, engine=engine, random_state=1).fit(P.X, P.y, tasks=P.tasks)
    original = RaggedTasks.from_arrays.__func__

    def small_blocks(cls, *args, **kwargs):
        kwargs["block_elements"] = 25 * 20 * 7  # 7 tasks per block: 43 blocks instead of 1
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(model_module.RaggedTasks, "from_arrays", classmethod(small_blocks))
    many = LRSRegressor(rank=2, sparsity=2, engine=engine, random_state=1).fit(P.X, P.y, tasks=P.tasks)
    assert many.n_iter_ == one.n_iter_
    np.testing.assert_allclose(many.predict(P.X, P.tasks), one.predict(P.X, P.tasks), rtol=0, atol=1e-8)
