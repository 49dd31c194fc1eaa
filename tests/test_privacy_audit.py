"""(d) An empirical privacy audit of private AMHT-LRS (SPEC §6).

Two neighbouring datasets: a few ordinary users, with and without a worst-case user (every row at the clipping
bounds, and five times the row budget m, so the per-user clip is exercised). The clipped statistics ``S_A, S_V``
of both are computed by the library's :class:`ClippedStatistics`; the mechanism is calibrated by the library's
:func:`private_release` to a claimed (ε, δ) for ``L`` iterations; and the ``2L`` noisy releases are drawn many
times in each world with the library's noise construction. The adversary knows both datasets and uses the
likelihood-ratio (Neyman-Pearson optimal) statistic for the mean shift. Its threshold is chosen on one half of the
draws; on the other half the false-positive and false-negative rates get one-sided Clopper-Pearson upper bounds,
and ``ε_lb = max(log((1 − δ − FNR⁺)/FPR⁺), log((1 − δ − FPR⁺)/FNR⁺))`` is a lower bound on the ε of the mechanism
with confidence ``1 − BETA`` (Jagielski et al. 2020; Nasr et al. 2021).

Assertions: ε_lb stays below the claimed ε (if the mechanism is (ε, δ)-DP this fails with probability at most
BETA = 1e-3 over the draws; the draws are seeded, so the outcome is fixed), and — so that a pass means something —
the same audit on the mechanism with the noise scaled down 20x finds ε_lb above the claimed ε.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats

from lorsa import PrivateLRSRegressor
from lorsa.data import RaggedTasks
from lorsa.privacy import ClippedStatistics, ClippingBounds, private_release, symmetric_noise

BETA = 1e-3  # total failure probability of the lower bound (split over the two Clopper-Pearson bounds)
N_DRAWS = 1_000_000  # per world; half choose the threshold, half evaluate it
EPSILON, DELTA, L = 1.0, 1e-5, 2


def _worlds(bounds: ClippingBounds) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(S_A, S_V)`` with and without the worst-case user (user 0), d = 2, r = 1."""
    rng = np.random.default_rng(0)
    m = int(bounds.m)
    sizes = np.array([5 * m, 2, 4, 6, 3, 5])
    task_index = np.repeat(np.arange(sizes.size), sizes)
    X = rng.standard_normal((task_index.size, 2))
    y = rng.standard_normal(task_index.size)
    canary = task_index == 0
    X[canary] = [10.0, 0.0]  # clipped to A1 along e1
    y[canary] = 10.0  # clipped to A2
    W = np.vstack([[10.0], rng.standard_normal((sizes.size - 1, 1))])  # canary's w clipped to A_w
    idx = np.zeros((sizes.size, 1), dtype=np.int64)
    val = np.vstack([[-100.0], 0.3 * rng.standard_normal((sizes.size - 1, 1))])  # canary: x̃ᵀb clipped to -A3
    stats = ClippedStatistics(bounds)

    def totals(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        data = RaggedTasks.from_arrays(X[keep], y[keep], task_index[keep], sizes.size)
        A, V = np.zeros((2, 2)), np.zeros((2, 1))
        for blk in data.blocks:
            a, v = stats(blk, None, W[blk.task_ids], idx[blk.task_ids], val[blk.task_ids], None)
            A, V = A + a, V + v
        return A, V

    return totals(np.ones(task_index.size, dtype=bool)), totals(~canary)


def _statistic(rng: np.random.Generator, S: tuple[np.ndarray, np.ndarray], S0: tuple[np.ndarray, np.ndarray],
               S1: tuple[np.ndarray, np.ndarray], std_A: float, std_V: float, n: int) -> np.ndarray:
    """Log-likelihood ratio (world 1 against world 0, up to a constant) of ``n`` runs of the ``2L`` releases of
    ``S``."""
    dA, dV = S1[0] - S0[0], S1[1] - S0[1]
    iu = np.triu_indices(2)  # the independent coordinates of the symmetric noise
    noisy_A = S[0] + symmetric_noise(rng, 2, std_A, size=(n, L))
    noisy_V = S[1] + std_V * rng.standard_normal((n, L, 2, 1))
    t_A = np.einsum("nlk,k->n", (noisy_A - S0[0])[:, :, iu[0], iu[1]], dA[iu]) / std_A**2
    t_V = np.einsum("nlpq,pq->n", noisy_V - S0[1], dV) / std_V**2
    return t_A + t_V


def _cp_upper(k: int, n: int, beta: float) -> float:
    """One-sided Clopper-Pearson upper confidence bound of a binomial proportion at level ``1 − beta``."""
    return 1.0 if k >= n else float(scipy.stats.beta.ppf(1 - beta, k + 1, n - k))


def _epsilon_bound(s0: np.ndarray, s1: np.ndarray, threshold: float, beta: float, delta: float = DELTA) -> float:
    """Lower bound on ε from the test "world 1 iff T > threshold", with Clopper-Pearson bounds on its errors."""
    fp, fn = int(np.sum(s0 > threshold)), int(np.sum(s1 <= threshold))
    fpr, fnr = _cp_upper(fp, s0.size, beta / 2), _cp_upper(fn, s1.size, beta / 2)
    best = 0.0
    for a, b in ((fpr, fnr), (fnr, fpr)):
        if a > 0 and 1 - delta - b > 0:
            best = max(best, math.log((1 - delta - b) / a))
    return best


def audit(noise_scale: float = 1.0, seed: int = 0, normalised: bool = False) -> tuple[float, float]:
    """Run the audit; returns ``(ε_lb, claimed ε)``. ``normalised``: the default mechanism (row averages clipped
    to C_A, C_V, set at half the canary's normalised norms so that the canary reaches both)."""
    bounds = ClippingBounds(A1=1.0, A2=1.0, A3=1.0, A_w=1.0, m=3.0)
    if normalised:
        bounds = ClippingBounds(A1=1.0, A2=1.0, A3=1.0, A_w=1.0, m=1.0, C_A=0.5, C_V=1.0, C_M=1.0)
    release, report, _ = private_release(bounds, EPSILON, DELTA, L, seed=(seed,))
    (S1, S0) = _worlds(bounds)
    delta_A, delta_V = bounds.sensitivities()
    # the worst-case user moves both statistics by their full sensitivity
    assert np.linalg.norm(S1[0] - S0[0]) == pytest.approx(delta_A, rel=1e-9)
    assert np.linalg.norm(S1[1] - S0[1]) == pytest.approx(delta_V, rel=1e-9)
    std_A, std_V = noise_scale * release.std_A, noise_scale * release.std_V
    rng = np.random.default_rng([seed, 1])
    s0 = _statistic(rng, S0, S0, S1, std_A, std_V, N_DRAWS)
    s1 = _statistic(rng, S1, S0, S1, std_A, std_V, N_DRAWS)
    half = N_DRAWS // 2
    candidates = np.quantile(s0[:half], 1 - np.logspace(-4, -0.3, 40))
    candidates = np.concatenate([candidates, np.quantile(s1[:half], np.logspace(-4, -0.3, 40))])
    best = max(candidates, key=lambda c: _epsilon_bound(s0[:half], s1[:half], c, BETA))
    return _epsilon_bound(s0[half:], s1[half:], best, BETA), report.epsilon


@pytest.mark.parametrize("normalised", [True, False], ids=["normalised", "row_sums"])
def test_audit_lower_bound_stays_below_the_claimed_epsilon(normalised: bool) -> None:
    eps_lb, eps_claimed = audit(normalised=normalised)
    assert eps_claimed <= EPSILON
    assert 0.4 < eps_lb <= eps_claimed, (eps_lb, eps_claimed)  # > 0.4: the audit is not vacuous either


@pytest.mark.parametrize("normalised", [True, False], ids=["normalised", "row_sums"])
def test_audit_detects_a_mechanism_with_half_the_noise(normalised: bool) -> None:
    eps_lb, eps_claimed = audit(noise_scale=0.5, normalised=normalised)
    assert eps_lb > eps_claimed, (eps_lb, eps_claimed)


# ------------------------------------------------------------------------------------------------------------------
# black box: only the final U of the whole fit (default mechanism, private moments start, L iterations)
# ------------------------------------------------------------------------------------------------------------------
BB_RUNS = 600  # fits per world; half choose the threshold, half evaluate it
BB_EPSILON, BB_DELTA = 1.0, 1e-5


def _black_box_data() -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Three ordinary users whose tasks lie along e2 and a canary (user 0) along e1 with large rows and targets
    (clipped to every bound): ``(X, y, tasks)`` with and without the canary, d = 2."""
    rng = np.random.default_rng(3)
    n = 4
    X = rng.standard_normal((4 * n, 2))
    tasks = np.repeat(np.arange(4), n)
    y = 0.8 * X[:, 1] + 0.1 * rng.standard_normal(4 * n)
    X[:n] = [[30.0, 0.0], [-30.0, 0.0], [30.0, 0.0], [-30.0, 0.0]]
    y[:n] = 30.0 * np.sign(X[:n, 0])
    keep = tasks != 0
    return (X, y, tasks), (X[keep], y[keep], tasks[keep])


def _final_alignment(world: tuple[np.ndarray, ...], runs: int, seed: int) -> np.ndarray:
    """``|U[0, 0]|`` (alignment of the released U with the canary's direction) over ``runs`` fits."""
    X, y, tasks = world
    out = np.empty(runs)
    for i in range(runs):
        est = PrivateLRSRegressor(rank=1, epsilon=BB_EPSILON, delta=BB_DELTA, max_iter=2, n_jobs=1,
                                  random_state=seed * 1_000_003 + i, reproducible=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[i] = abs(est.fit(X, y, tasks).U_[0, 0])
    return out


def black_box_audit(runs: int = BB_RUNS) -> tuple[float, float]:
    """ε lower bound from the final U only (threshold on ``|U[0, 0]|`` chosen on one half of the runs, error rates
    bounded with Clopper-Pearson on the other), and the ε the fit claims."""
    with_canary, without = _black_box_data()
    s1, s0 = _final_alignment(with_canary, runs, 1), _final_alignment(without, runs, 2)
    half = runs // 2
    candidates = np.unique(np.concatenate([s0[:half], s1[:half]]))
    best = max(candidates, key=lambda c: _epsilon_bound(s0[:half], s1[:half], c, BETA, BB_DELTA))
    claimed = PrivateLRSRegressor(rank=1, epsilon=BB_EPSILON, delta=BB_DELTA, max_iter=2).fit(
        *without).privacy_report_.epsilon
    return _epsilon_bound(s0[half:], s1[half:], best, BETA, BB_DELTA), claimed


def test_black_box_audit_of_the_final_u_stays_below_the_claimed_epsilon() -> None:
    eps_lb, eps_claimed = black_box_audit()
    assert eps_claimed <= BB_EPSILON
    assert eps_lb <= eps_claimed, (eps_lb, eps_claimed)


def test_black_box_audit_detects_a_fit_with_too_little_noise(monkeypatch) -> None:
    """Power check: the same audit, with every noise std (the iterations' and the start's) divided by 200 (with
    three users the final U is mostly noise, so only a grossly under-noised fit is visible from U alone; the
    white-box audit above detects half the noise)."""
    from lorsa.privacy import GaussianRelease, mechanism

    real = mechanism.private_release

    def weak(*args, **kwargs):
        release, report, z0 = real(*args, **kwargs)
        return (GaussianRelease(release.std_A / 200, release.std_V / 200, release.seed), report,
                None if z0 is None else z0 / 200)

    monkeypatch.setattr("lorsa.privacy.estimator.private_release", weak)
    eps_lb, eps_claimed = black_box_audit(runs=200)
    assert eps_lb > eps_claimed, (eps_lb, eps_claimed)
