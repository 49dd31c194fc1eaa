"""The Gaussian mechanism of private AMHT-LRS (SPEC §6): sensitivities of the clipped statistics (a), the noise's
standard deviation (b), the reported ε against the closed form and a second accountant (c), and the no-noise,
no-clipping path against the non-private fit (e). The empirical audit (d) is in test_privacy_audit.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from lorsa.data import RaggedTasks
from lorsa.privacy import (
    ClippedStatistics,
    ClippingBounds,
    GaussianRelease,
    calibrate_noise,
    epsilon_for_noise,
    private_release,
    symmetric_noise,
    zcdp_epsilon,
)


def _stats(bounds: ClippingBounds, X, y, task_index, n_tasks, W, idx, val) -> tuple[np.ndarray, np.ndarray]:
    """S_A, S_V summed over the blocks of the data, with per-task (w_i, b_i) from global arrays."""
    data = RaggedTasks.from_arrays(X, y, task_index, n_tasks, block_elements=256)  # several blocks
    stats = ClippedStatistics(bounds)
    d, r = X.shape[1], W.shape[1]
    A, V = np.zeros((d * r, d * r)), np.zeros((d, r))
    for blk in data.blocks:
        ids = blk.task_ids
        a, v = stats(blk, None, W[ids], idx[ids], val[ids], None)
        A += a
        V += v
    return A, V


def _reference(bounds: ClippingBounds, X, y, task_index, n_tasks, W, idx, val) -> tuple[np.ndarray, np.ndarray]:
    """SPEC §6 written out user by user with np.kron (a test-only loop over users)."""
    d, r = X.shape[1], W.shape[1]
    A, V = np.zeros((d * r, d * r)), np.zeros((d, r))
    delta_A, delta_V = bounds.sensitivities()
    for i in range(n_tasks):
        rows = task_index == i
        if not rows.any():
            continue
        x = X[rows] * np.minimum(1.0, bounds.A1 / np.maximum(np.linalg.norm(X[rows], axis=1), 1e-300))[:, None]
        yc = np.clip(y[rows], -bounds.A2, bounds.A2)
        b = np.zeros(d)
        b[idx[i]] = val[i]
        c = np.clip(x @ b, -bounds.A3, bounds.A3)
        w = W[i] * min(1.0, bounds.A_w / max(np.linalg.norm(W[i]), 1e-300))
        A_i = np.kron(np.outer(w, w), x.T @ x)
        V_i = np.outer(x.T @ (yc - c), w)
        if bounds.normalised:  # row averages: weight 1/n_i
            A_i, V_i = A_i / rows.sum(), V_i / rows.sum()
        s = min(1.0, delta_A / max(np.linalg.norm(A_i), 1e-300), delta_V / max(np.linalg.norm(V_i), 1e-300))
        A += s * A_i
        V += s * V_i
    return A, V


def _random_problem(rng: np.random.Generator, n_tasks: int, d: int, r: int, k: int, max_rows: int, scale: float):
    sizes = rng.integers(1, 3 * max_rows + 1, size=n_tasks)  # some users above the row budget m
    task_index = np.repeat(np.arange(n_tasks), sizes)
    X = scale * rng.standard_normal((task_index.size, d))
    y = scale * rng.standard_normal(task_index.size)
    W = scale * rng.standard_normal((n_tasks, r))
    idx = np.stack([rng.choice(d, size=k, replace=False) for _ in range(n_tasks)]).reshape(n_tasks, k)
    val = scale * rng.standard_normal((n_tasks, k))
    return X, y, task_index, W, idx, val


bound_values = st.floats(0.05, 20.0)


# ------------------------------------------------------------------------------------------------------------
# (a) sensitivities
# ------------------------------------------------------------------------------------------------------------


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), n_tasks=st.integers(1, 7), d=st.integers(2, 5), r=st.integers(1, 2),
       k=st.integers(0, 2), max_rows=st.integers(1, 6), A=st.tuples(*[bound_values] * 4),
       scale=st.floats(0.01, 50.0), C=st.one_of(st.none(), st.tuples(*[bound_values] * 2)))
def test_removing_one_user_changes_the_statistics_by_at_most_the_sensitivities(seed, n_tasks, d, r, k, max_rows,
                                                                               A, scale, C) -> None:
    """Row sums over up to m rows (C is None) and normalised row averages clipped to (C_A, C_V)."""
    rng = np.random.default_rng(seed)
    extra = {} if C is None else {"C_A": C[0], "C_V": C[1], "C_M": 1.0}
    bounds = ClippingBounds(A1=A[0], A2=A[1], A3=A[2], A_w=A[3], m=1.0 if C else float(max_rows), **extra)
    X, y, task_index, W, idx, val = _random_problem(rng, n_tasks, d, r, min(k, d), max_rows, scale)
    removed = int(rng.integers(n_tasks))
    keep = task_index != removed  # the removed user keeps its slot in W but has no rows: it is in no block
    A_full, V_full = _stats(bounds, X, y, task_index, n_tasks, W, idx, val)
    A_nbr, V_nbr = _stats(bounds, X[keep], y[keep], task_index[keep], n_tasks, W, idx, val)
    delta_A, delta_V = bounds.sensitivities()
    assert np.linalg.norm(A_full - A_nbr) <= delta_A * (1 + 1e-9)
    assert np.linalg.norm(V_full - V_nbr) <= delta_V * (1 + 1e-9)
    # and the batched statistics are SPEC §6's formula (padded rows contribute nothing)
    A_ref, V_ref = _reference(bounds, X, y, task_index, n_tasks, W, idx, val)
    np.testing.assert_allclose(A_full, A_ref, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(A_ref).max()))
    np.testing.assert_allclose(V_full, V_ref, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(V_ref).max()))


def test_normalised_sensitivities_are_the_contribution_bounds_or_the_row_bounds() -> None:
    b = ClippingBounds(A1=2.0, A2=3.0, A3=1.0, A_w=1.5, m=1.0, C_A=1.0, C_V=100.0, C_M=2.0)
    assert b.normalised and b.sensitivities() == (1.0, 2.0 * 4.0 * 1.5) and b.moments_sensitivity() == 2.0
    with pytest.raises(ValueError, match="together"):
        ClippingBounds(A1=2.0, A2=3.0, A3=1.0, A_w=1.5, m=1.0, C_A=1.0)


def test_a_worst_case_user_reaches_the_sensitivities_and_a_large_one_is_clipped_to_them() -> None:
    A1, A2, A3, Aw, m = 2.0, 3.0, 1.0, 1.5, 4
    bounds = ClippingBounds(A1=A1, A2=A2, A3=A3, A_w=Aw, m=float(m))
    delta_A, delta_V = bounds.sensitivities()
    assert (delta_A, delta_V) == pytest.approx((m * A1**2 * Aw**2, m * A1 * (A2 + A3) * Aw))
    for rows in (m, 5 * m):  # at the budget, and far above it (then clipped as a whole)
        X = np.tile([10.0, 0.0, 0.0], (rows, 1))  # norm 10 -> clipped to A1 along e1
        y = np.full(rows, 50.0)  # -> A2
        W, idx, val = np.array([[7.0]]), np.array([[0]]), np.array([[-100.0]])  # w -> A_w, x̃ᵀb -> -A3
        A, V = _stats(bounds, X, y, np.zeros(rows, dtype=np.int64), 1, W, idx, val)
        assert np.linalg.norm(A) == pytest.approx(delta_A, rel=1e-12)
        assert np.linalg.norm(V) == pytest.approx(delta_V, rel=1e-12)


def test_infinite_bounds_give_the_exact_statistics() -> None:
    from lorsa.solvers.shared_step import block_exact_statistics, block_gram, block_rhs

    rng = np.random.default_rng(0)
    X, y, task_index, W, idx, val = _random_problem(rng, 6, 4, 2, 1, 5, 3.0)
    inf = math.inf
    data = RaggedTasks.from_arrays(X, y, task_index, 6)
    for blk in data.blocks:
        ids = blk.task_ids
        A, V = ClippedStatistics(ClippingBounds(inf, inf, inf, inf, inf))(blk, None, W[ids], idx[ids], val[ids], None)
        b = np.zeros((ids.size, 4))
        np.put_along_axis(b, idx[ids], val[ids], axis=1)
        target = blk.y - np.einsum("nmd,nd->nm", blk.X, b)
        np.testing.assert_allclose(A, block_exact_statistics(block_gram(blk.X), W[ids]), rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(V, block_rhs(blk.X, target, W[ids]), rtol=1e-12, atol=1e-10)


# ------------------------------------------------------------------------------------------------------------
# (b) the noise has the calibrated standard deviation
# ------------------------------------------------------------------------------------------------------------

# Each check below is a two-sided chi-square test of the sample variance at level ALPHA: under the null
# hypothesis (the std is as calibrated) it fails with probability ALPHA. Four checks: the suite's false-failure
# probability is at most 4·ALPHA = 4e-6 (the draws are seeded, so in practice the outcome is fixed).
ALPHA = 1e-6


def _assert_std(samples: np.ndarray, std: float) -> None:
    n = samples.size
    stat = float(np.sum(samples**2)) / std**2  # mean 0 known: sum of squares / σ² ~ χ²(n)
    lo, hi = scipy.stats.chi2.ppf([ALPHA / 2, 1 - ALPHA / 2], n)
    assert lo <= stat <= hi, (stat / n, "vs 1")
    assert abs(float(np.mean(samples))) <= scipy.stats.norm.ppf(1 - ALPHA / 2) * std / math.sqrt(n)


def test_release_noise_has_the_calibrated_std_and_is_symmetric() -> None:
    bounds = ClippingBounds(A1=2.0, A2=1.0, A3=1.0, A_w=1.5, m=10.0)
    L = 4
    release, report, _ = private_release(bounds, 1.0, 1e-6, L, seed=(7,))
    sigma = calibrate_noise(1.0, 1e-6, L)
    delta_A, delta_V = bounds.sensitivities()
    assert release.std_A == pytest.approx(delta_A * sigma * math.sqrt(L)) == pytest.approx(report.noise_std_A)
    assert release.std_V == pytest.approx(delta_V * sigma * math.sqrt(L)) == pytest.approx(report.noise_std_V)
    n, d, r = 6, 3, 2
    draws = [release.noise(it, n, (d, r)) for it in range(1, 401)]
    N1 = np.stack([a for a, _ in draws])
    N2 = np.stack([b for _, b in draws])
    assert np.array_equal(N1, np.swapaxes(N1, 1, 2))
    iu = np.triu_indices(n, 1)
    _assert_std(N1[:, iu[0], iu[1]], release.std_A)  # off-diagonal entries
    _assert_std(np.diagonal(N1, axis1=1, axis2=2), release.std_A)  # diagonal entries
    _assert_std(N2, release.std_V)
    # the release adds exactly that noise (the eigenvalue floor does not bind on a well-conditioned A)
    A = 1e6 * release.std_A * np.eye(n)
    V = np.zeros((d, r))
    A_noisy, V_noisy = release(A, V, 3)
    N1_3, N2_3 = release.noise(3, n, (d, r))
    np.testing.assert_allclose(A_noisy - A, N1_3, atol=1e-6 * release.std_A)
    np.testing.assert_allclose(V_noisy, N2_3)
    # a stack drawn at once has the same law (the audit uses it)
    stack = symmetric_noise(np.random.default_rng(1), 4, 2.5, size=(20000,))
    _assert_std(stack[:, 0, 1], 2.5)


def test_release_is_reproducible_and_projects_onto_positive_definite() -> None:
    release = GaussianRelease(std_A=3.0, std_V=1.0, seed=(1, 2))
    A = np.zeros((5, 5))
    A1, V1 = release(A, np.zeros((5, 1)), 1)
    A1b, V1b = release(A, np.zeros((5, 1)), 1)
    _, V2 = release(A, np.zeros((5, 1)), 2)
    assert np.array_equal(A1, A1b) and np.array_equal(V1, V1b) and not np.allclose(V1, V2)
    floor = 4.0 * 3.0 * math.sqrt(5)
    assert np.allclose(A1, A1.T) and np.linalg.eigvalsh(A1).min() >= floor * (1 - 1e-9)
    A_big = np.diag([1e3, 1e3, 1e3, 0.0, 0.0])  # eigenvalues above the floor are kept, the others floored
    eig = np.linalg.eigvalsh(release(A_big, V1, 1)[0])
    assert eig[:2] == pytest.approx([floor, floor]) and np.all(eig[2:] > 900)
    assert GaussianRelease(0.0, 0.0, (0,))(A, V1, 1)[0] is A  # no noise: nothing changed


# ------------------------------------------------------------------------------------------------------------
# (c) accounting of a calibrated release
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("epsilon", [0.5, 2.0, 8.0])
def test_reported_epsilon_is_within_the_target_the_zcdp_bound_and_the_second_accountant(epsilon: float) -> None:
    bounds = ClippingBounds(A1=1.0, A2=1.0, A3=1.0, A_w=1.0, m=5.0)
    _, report, _ = private_release(bounds, epsilon, 1e-6, 6)
    assert report.epsilon <= epsilon and report.epsilon == pytest.approx(epsilon, rel=1e-3)
    assert report.epsilon <= report.epsilon_zcdp == pytest.approx(zcdp_epsilon(1 / report.sigma_dp**2, 1e-6))
    rdp = epsilon_for_noise(report.sigma_dp, 6, 1e-6, accountant="rdp")
    assert report.epsilon <= rdp <= 1.25 * report.epsilon  # RDP is looser, but not by much
    assert report.n_releases == 12 and report.m == 5


def test_infinite_bounds_refuse_a_finite_epsilon() -> None:
    with pytest.raises(ValueError, match="finite clipping bounds"):
        private_release(ClippingBounds(1.0, 1.0, 1.0, 1.0, math.inf), 1.0, 1e-6, 3)


def test_a_users_task_step_does_not_depend_on_the_other_users(monkeypatch) -> None:
    # The sensitivity argument needs user i's (w_i, b_i) -- hence its contribution to S_A, S_V -- to depend only
    # on its own data and the published U: the per-task step over a block must not couple the block's tasks
    # (e.g. through a block-wide stopping rule), however the blocks are formed. The private fit's step has no
    # restart and an exchange step not gated by the others' mean objective (PrivateLRSRegressor sets
    # restart_factor = swap_factor = 0); the non-private default uses the mean and is not tested here.
    import functools

    from lorsa import LRSRegressor, make_lrs_regression
    from lorsa import model as model_module
    from lorsa.solvers.task_step import TaskStepConfig

    monkeypatch.setattr(model_module, "TaskStepConfig",
                        functools.partial(TaskStepConfig, restart_factor=0.0, swap_factor=0.0))

    P = make_lrs_regression(n_tasks=30, n_samples=np.arange(5, 35), n_features=6, rank=2, sparsity=2,
                            row_sparsity=None, noise=0.3, random_state=9)
    U0 = np.linalg.qr(np.random.default_rng(1).standard_normal((6, 2)))[0]
    removed = np.isin(P.tasks, [3, 17, 18])
    for solver in ("sp", "htp", "iht"):
        full, part = (LRSRegressor(rank=2, sparsity=2, solver=solver, init=U0, fit_basis=False, max_iter=3, tol=0.0,
                                   layout="rows").fit(P.X[keep], P.y[keep], P.tasks[keep])
                      for keep in (np.ones_like(removed), ~removed))
        rows = np.searchsorted(full.tasks_, part.tasks_)
        np.testing.assert_allclose(part.W_, full.W_[rows], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(part.B_.toarray(), full.B_.toarray()[:, rows], rtol=1e-10, atol=1e-12)
