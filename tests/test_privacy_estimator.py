"""PrivateLRSRegressor (SPEC §6): same interface as LRSRegressor, a fixed number of releases, the report, the
model file, errors, and (e) the no-noise, no-clipping path giving the non-private model."""

from __future__ import annotations

import json
import math
import pickle
import zipfile

import numpy as np
import pytest

from lorsa import LRSRegressor, PrivateLRSRegressor, make_lrs_regression
from lorsa.privacy import ClippedStatistics, ClippingBounds, PrivacyReport, epsilon_for_noise

INF = math.inf
NO_CLIPPING = {"clip_x": INF, "clip_y": INF, "clip_xb": INF, "clip_w": INF, "clip_A": INF, "clip_V": INF,
               "clip_M": INF}


@pytest.fixture(scope="module")
def noisy_problem():
    return make_lrs_regression(n_tasks=60, n_samples=25, n_features=8, rank=2, sparsity=1, row_sparsity=None,
                               noise=0.3, random_state=3)


@pytest.fixture(scope="module")
def many_users():
    """Enough users for a useful private U at moderate ε: t = 20000, d = 6, r = 1, m = 10."""
    return make_lrs_regression(n_tasks=20000, n_samples=10, n_features=6, rank=1, sparsity=0, row_sparsity=None,
                               noise=0.3, random_state=4)


def _sin_angle(U: np.ndarray, U_true: np.ndarray) -> float:
    return float(np.linalg.norm(U_true - U @ (U.T @ U_true)))


def test_no_noise_and_no_clipping_gives_the_non_private_model(noisy_problem, monkeypatch) -> None:
    P = noisy_problem
    # the private fit's per-task step decides each user's escapes from its own data only (no restart against the
    # others' mean objective, the exchange step tried by every stable user): the reference uses the same step
    import functools

    from lorsa import model as model_module
    from lorsa.solvers.task_step import TaskStepConfig

    monkeypatch.setattr(model_module, "TaskStepConfig",
                        functools.partial(TaskStepConfig, restart_factor=0.0, swap_factor=0.0))
    ref = LRSRegressor(rank=2, sparsity=1, init="random", u_solver="exact", tol=0.0, max_iter=6,
                       random_state=5)
    ref.fit(P.X, P.y, P.tasks)
    with pytest.warns(UserWarning, match="NOT differentially private"):
        est = PrivateLRSRegressor(rank=2, sparsity=1, epsilon=INF, max_iter=6, random_state=5, init="random",
                                  **NO_CLIPPING)
        est.fit(P.X, P.y, P.tasks)
    assert ref.n_iter_ == est.n_iter_ == 6
    np.testing.assert_allclose(est.U_, ref.U_, atol=1e-8)
    np.testing.assert_allclose(est.W_, ref.W_, atol=1e-8)
    np.testing.assert_allclose(est.B_.toarray(), ref.B_.toarray(), atol=1e-8)
    assert est.privacy_report_ is None


def test_private_fit_runs_all_iterations_reports_and_hides_the_loss(noisy_problem) -> None:
    P = noisy_problem
    est = PrivateLRSRegressor(rank=2, sparsity=1, epsilon=2.0, delta=1e-5, max_iter=4, random_state=0,
                              reproducible=True)
    est.fit(P.X, P.y, P.tasks)
    assert est.n_iter_ == 4 and not est.converged_
    assert est.loss_history_.shape == (0,) and math.isnan(est.initial_loss_)
    rep = est.privacy_report_
    assert isinstance(rep, PrivacyReport)
    assert rep.epsilon <= 2.0 and rep.epsilon == pytest.approx(2.0, rel=1e-3)
    assert rep.epsilon <= rep.epsilon_zcdp and rep.delta == 1e-5 and rep.n_iter == 4 and rep.n_releases == 9
    assert rep.init == "private_moments" and rep.normalised and rep.m == 1 and rep.budget_share_A == 0.5
    d = 8
    assert rep.A1 == pytest.approx(math.sqrt(d) + 2) and rep.A2 == rep.A3 == 3.0 and rep.A_w == 2.0
    # default per-user contribution bounds (target_scale = feature_scale = 1): half the typical sizes
    assert rep.sensitivity_A == pytest.approx(0.5 * math.sqrt(d)) and rep.sensitivity_V == pytest.approx(0.5)
    assert rep.noise_std_A == pytest.approx(rep.sensitivity_A * rep.sigma_dp * 2.0)
    assert "W_ and B_" in rep.guarantee and "seed" in rep.guarantee and "training loss" in rep.guarantee
    assert est.U_.shape == (d, 2) and np.allclose(est.U_.T @ est.U_, np.eye(2), atol=1e-10)
    assert np.all(np.isfinite(est.predict(P.X[:10], P.tasks[:10])))
    w, b = est.adapt(P.X[:25], P.y[:25])  # a new user computes its own (w, b) from the published U
    assert w.shape == (2,) and np.count_nonzero(b) <= 1


def test_same_seed_same_model_other_seed_other_noise(noisy_problem) -> None:
    P = noisy_problem
    fit = lambda seed: PrivateLRSRegressor(rank=2, sparsity=1, epsilon=1.0, max_iter=3,  # noqa: E731
                                           random_state=seed, reproducible=True).fit(P.X, P.y, P.tasks)
    a, b, c = fit(11), fit(11), fit(12)
    assert np.array_equal(a.U_, b.U_) and np.array_equal(a.W_, b.W_)
    assert not np.allclose(a.U_, c.U_)


def test_utility_improves_with_epsilon_on_many_users(many_users) -> None:
    P = many_users
    fit = lambda eps: PrivateLRSRegressor(rank=1, epsilon=eps, target_scale=1.2, max_rows=10,  # noqa: E731
                                          max_iter=4, random_state=0, reproducible=True).fit(P.X, P.y, P.tasks)
    strong, weak = _sin_angle(fit(8.0).U_, P.U), _sin_angle(fit(0.1).U_, P.U)
    assert strong < 0.15 < weak, (strong, weak)


def test_private_method_of_moments_start_is_accounted(many_users) -> None:
    P = many_users
    est = PrivateLRSRegressor(rank=1, epsilon=4.0, init="moments", init_budget_share=0.2, target_scale=1.2,
                              max_rows=10, max_iter=2, random_state=0, reproducible=True).fit(P.X, P.y, P.tasks)
    rep = est.privacy_report_
    assert rep.init == "private_moments" and rep.n_releases == 5 and rep.epsilon <= 4.0
    assert rep.epsilon == pytest.approx(epsilon_for_noise(rep.sigma_dp, 2, rep.delta, "pld",
                                                          rep.init_noise_multiplier))
    # the start's share of the zCDP budget: 1/(2 z0²) = 0.2 ρ
    assert 1 / (2 * rep.init_noise_multiplier**2) == pytest.approx(0.2 * rep.rho)
    assert _sin_angle(est.U_, P.U) < 0.3


def test_save_and_load_keep_the_report_and_never_write_the_seed(noisy_problem, tmp_path) -> None:
    P = noisy_problem
    est = PrivateLRSRegressor(rank=2, sparsity=1, epsilon=1.0, max_iter=2, random_state=1234, reproducible=True)
    est.fit(P.X, P.y, P.tasks)
    path = tmp_path / "private.npz"
    est.save(path)
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(np.load(zf.open("__metadata__.npy")).tobytes().decode("utf-8"))
    assert meta["kind"] == "PrivateLRSRegressor" and meta["params"]["random_state"] is None
    assert meta["attributes"]["privacy_report"]["epsilon"] == est.privacy_report_.epsilon
    loaded = PrivateLRSRegressor.load(path)
    assert loaded.privacy_report_ == est.privacy_report_
    assert loaded.clipping_bounds_ == est.clipping_bounds_
    assert np.array_equal(loaded.U_, est.U_)
    assert loaded.tasks_.shape == (0,)  # a released file holds no user (tests/test_privacy_leaks.py)
    est.save(path, include_users=True)
    loaded = PrivateLRSRegressor.load(path)
    np.testing.assert_array_equal(loaded.predict(P.X[:20], P.tasks[:20]), est.predict(P.X[:20], P.tasks[:20]))
    assert loaded.get_params()["epsilon"] == 1.0 and loaded.random_state is None


def test_verbose_and_callback_show_no_loss(noisy_problem, capsys) -> None:
    P = noisy_problem
    seen = []
    PrivateLRSRegressor(rank=2, sparsity=1, epsilon=1.0, max_iter=2, random_state=0, reproducible=True,
                        verbose=True).fit(
        P.X, P.y, P.tasks, callback=lambda *a: seen.append(a))
    out = capsys.readouterr().out
    assert "subspace change" in out and "objective" not in out and out.count("iteration") == 2
    assert [a[0] for a in seen] == [1, 2] and all(math.isnan(a[1]) and a[2] > 0 for a in seen)


def test_block_statistics_are_picklable() -> None:
    stats = ClippedStatistics(ClippingBounds(1.0, 2.0, 3.0, 4.0, 5.0))
    assert pickle.loads(pickle.dumps(stats)) == stats


BAD = [
    ({"epsilon": 0.0}, ValueError, ["epsilon", "(0, inf]", "0.0"]),
    ({"epsilon": -1.0}, ValueError, ["epsilon", "-1.0"]),
    ({"epsilon": "1"}, TypeError, ["epsilon", "'1'"]),
    ({"delta": 1.0}, ValueError, ["delta", "(0, 1)", "1.0"]),
    ({"accountant": "gdp"}, ValueError, ["accountant", "'pld'", "'gdp'"]),
    ({"max_rows": 0}, ValueError, ["max_rows", "[1, inf]", "0"]),
    ({"clip_A": INF}, ValueError, ["clip_A", "finite", "inf"]),
    ({"max_rows": 5, "clip_V": 1.0}, ValueError, ["clip_V", "max_rows=None", "5"]),
    ({"budget_share_A": 1.0}, ValueError, ["budget_share_A", "(0, 1)", "1.0"]),
    ({"clip_x": INF}, ValueError, ["clip_x", "finite", "inf"]),
    ({"clip_w": -2.0}, ValueError, ["clip_w", "(0, inf]", "-2.0"]),
    ({"feature_scale": 0.0}, ValueError, ["feature_scale", "(0, inf)", "0.0"]),
    ({"init_budget_share": 1.0}, ValueError, ["init_budget_share", "(0, 1)", "1.0"]),
    ({"init": "spectral"}, ValueError, ["init", "'moments'", "'spectral'"]),
    ({"max_iter": 0}, ValueError, ["max_iter", "0"]),
]


@pytest.mark.parametrize("params, exc, fragments", BAD)
def test_errors_name_the_argument_the_range_and_the_value(noisy_problem, params, exc, fragments) -> None:
    P = noisy_problem
    with pytest.raises(exc) as info:
        PrivateLRSRegressor(rank=2, **params).fit(P.X, P.y, P.tasks)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_row_sparsity_and_a_frozen_basis_are_not_parameters() -> None:
    for name in ("row_sparsity", "fit_basis", "u_solver", "tol"):
        assert name not in PrivateLRSRegressor().get_params()
    with pytest.raises(TypeError):
        PrivateLRSRegressor(row_sparsity=3)  # couples users: would break the sensitivity bound
