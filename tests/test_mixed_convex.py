"""The new baselines reach their estimators' optima: the mixed model is statsmodels' MixedLM maximum-likelihood fit
(a reference library, tests only), the convex low-rank + sparse fit satisfies the KKT conditions of its objective."""

from __future__ import annotations

import numpy as np
import pytest

from lorsa import make_lrs_regression
from lorsa.baselines import ConvexLRS, MixedEffects, load_model
from lorsa.baselines.convex import ConvexLRSProblem, fista_lrs, objective, regularisation_limits
from lorsa.solvers.random_effects import fit_random_effects, posterior_means, task_gram_blocks


def _mixed_data(seed=0, t=40, m=15, p=3):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(p, p))
    cov = 0.3 * A @ A.T
    mean = np.array([1.0, -0.5, 0.3])[:p]
    beta = mean + rng.multivariate_normal(np.zeros(p), cov, size=t)
    sizes = rng.integers(3, m + 1, size=t)          # ragged tasks, some with fewer rows than 2p
    tasks = np.repeat(np.arange(t), sizes)
    X = rng.normal(size=(tasks.size, p))
    y = np.einsum("np,np->n", X, beta[tasks]) + 0.5 * rng.normal(size=tasks.size)
    return X, y, tasks


def test_random_effects_em_matches_statsmodels_mixedlm():
    sm = pytest.importorskip("statsmodels.api")
    X, y, tasks = _mixed_data()
    t = int(tasks.max()) + 1
    fit = fit_random_effects(task_gram_blocks(X, y, tasks, t), t, max_iter=20000, tol=1e-13)
    ref = sm.MixedLM(y, X, groups=tasks, exog_re=X).fit(reml=False)
    # Both maximise the same likelihood: the log-likelihoods agree to 1e-7 relative (EM stops at 1e-13 change,
    # lbfgs at its gradient tolerance), the estimates to 1e-3 (the likelihood is flat near its maximum).
    assert fit.loglik == pytest.approx(ref.llf, rel=1e-7)
    assert fit.loglik >= ref.llf - 1e-6
    np.testing.assert_allclose(fit.mean, ref.fe_params, atol=2e-3)
    np.testing.assert_allclose(fit.cov, np.asarray(ref.cov_re), atol=3e-3)
    assert fit.noise_var == pytest.approx(ref.scale, rel=2e-3)
    # The BLUPs: statsmodels' random effects are E[beta_i] - mu.
    blups = np.array([np.asarray(ref.random_effects[i]) for i in range(t)])
    np.testing.assert_allclose(fit.coef - fit.mean, blups, atol=5e-3)
    # EM never decreases the likelihood.
    assert np.all(np.diff(fit.loglik_history) >= -1e-8 * np.abs(fit.loglik_history[1:]))


def test_posterior_means_closed_form():
    """E[beta_i | y_i] = (G_i / s2 + Sigma^-1)^-1 (c_i / s2 + Sigma^-1 mu), task by task, for a given prior."""
    X, y, tasks = _mixed_data(seed=1, t=6)
    blocks = task_gram_blocks(X, y, tasks, 6)
    mean, cov, s2 = np.array([0.5, 0.0, -1.0]), np.diag([1.0, 0.5, 2.0]), 0.3
    got = posterior_means(blocks, 6, mean, cov, s2)
    for i in range(6):
        Xi, yi = X[tasks == i], y[tasks == i]
        P = Xi.T @ Xi / s2 + np.linalg.inv(cov)
        want = np.linalg.solve(P, Xi.T @ yi / s2 + np.linalg.solve(cov, mean))
        np.testing.assert_allclose(got[i], want, rtol=1e-10, atol=1e-12)


def test_mixed_effects_baseline_interface(tmp_path):
    X, y, tasks = _mixed_data(seed=2)
    est = MixedEffects(prior_weight=(0.0, 10.0), random_state=0).fit(X, y, tasks=tasks)
    assert est.best_params_["prior_weight"] in (0.0, 10.0) and len(est.validation_scores_) == 2
    assert est.params_per_task == 3 and est.task_coefficients().shape == (3, 40)
    est.save(tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.predict(X, tasks), est.predict(X, tasks))
    with pytest.raises(ValueError, match="covariance"):
        MixedEffects(covariance="spherical").fit(X, y, tasks=tasks)


def _kkt_violation(problem, L, S, lam_n, lam_1):
    """Largest violation of 0 in grad + lam_n d||L||_* and of 0 in grad + lam_1 d||S||_1, relative to lam."""
    g, _ = problem.gradient(L + S)
    on = S != 0
    v1 = max(np.abs(g[on] + lam_1 * np.sign(S[on])).max(initial=0.0), (np.abs(g[~on]) - lam_1).max(initial=0.0))
    P, s, Qt = np.linalg.svd(L, full_matrices=False)
    k = int(np.sum(s > 1e-8 * s.max())) if s.size and s.max() > 0 else 0
    P, Q = P[:, :k], Qt[:k].T
    # -g = lam_n (P Q^T + W), P^T W = 0, W Q = 0, ||W||_2 <= 1
    a = np.abs(P.T @ (-g) @ Q - lam_n * np.eye(k)).max(initial=0.0)
    rest = (np.eye(L.shape[0]) - P @ P.T) @ (-g) @ (np.eye(L.shape[1]) - Q @ Q.T)
    cross = max(np.abs(P.T @ g @ (np.eye(L.shape[1]) - Q @ Q.T)).max(initial=0.0),
                np.abs((np.eye(L.shape[0]) - P @ P.T) @ g @ Q).max(initial=0.0))
    b = max(np.linalg.norm(rest, 2) - lam_n, 0.0)
    return v1 / lam_1, max(a, b, cross) / lam_n, k


@pytest.mark.parametrize("fractions", [(0.3, 0.2), (0.1, 0.05)])
def test_convex_lrs_reaches_kkt_optimum(fractions):
    P = make_lrs_regression(n_tasks=25, n_samples=12, n_features=8, rank=2, sparsity=1, row_sparsity=None,
                            noise=0.2, random_state=3)
    t = 25
    index = P.tasks.astype(np.int64)
    problem = ConvexLRSProblem.build(P.X, P.y, index, t, np.zeros(8))
    nmax, lmax = regularisation_limits(problem)
    lam_n, lam_1 = fractions[0] * nmax, fractions[1] * lmax
    L, S, n_iter, history = fista_lrs(problem, lam_n, lam_1, max_iter=50000, tol=1e-12)
    v_s, v_l, rank = _kkt_violation(problem, L, S, lam_n, lam_1)
    # Subgradient conditions hold to 1e-5 of the regularisation (FISTA stopped at a 1e-12 relative step).
    assert v_s < 1e-5 and v_l < 1e-5, (v_s, v_l, n_iter)
    assert 0 < rank < 8 and 0 < np.count_nonzero(S) < S.size  # both parts active, neither full
    # No feasible perturbation lowers the objective (a direct check of optimality).
    f0 = objective(problem, L, S, lam_n, lam_1)
    rng = np.random.default_rng(0)
    for _ in range(5):
        dL, dS = 1e-4 * rng.standard_normal(L.shape), 1e-4 * rng.standard_normal(S.shape)
        assert objective(problem, L + dL, S + dS, lam_n, lam_1) >= f0 - 1e-10 * abs(f0)
    # Above the limits the solution is exactly zero.
    Lz, Sz, _, _ = fista_lrs(problem, 1.001 * nmax, 1.001 * lmax, max_iter=200)
    assert not Lz.any() and not Sz.any()


def test_convex_lrs_baseline_recovers_lrs_tasks(tmp_path):
    P = make_lrs_regression(n_tasks=60, n_samples=30, n_features=12, rank=2, sparsity=2, row_sparsity=None,
                            noise=0.1, random_state=0)
    est = ConvexLRS(nuclear=(0.1, 0.03, 0.01), l1=(0.1, 0.03, 0.01), random_state=0).fit(P.X, P.y, tasks=P.tasks)
    rel = np.linalg.norm(est.task_coefficients() - P.theta) / np.linalg.norm(P.theta)
    assert rel < 0.2
    assert len(est.validation_scores_) == 9
    assert est.params_per_task == pytest.approx(est.rank_ + np.count_nonzero(est.sparse_) / 60)
    est.save(tmp_path / "c.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "c.npz").predict(P.X, P.tasks), est.predict(P.X, P.tasks))
