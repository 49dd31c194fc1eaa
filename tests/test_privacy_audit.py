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

import numpy as np
import pytest
import scipy.stats

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


def _epsilon_bound(s0: np.ndarray, s1: np.ndarray, threshold: float, beta: float) -> float:
    """Lower bound on ε from the test "world 1 iff T > threshold", with Clopper-Pearson bounds on its errors."""
    fp, fn = int(np.sum(s0 > threshold)), int(np.sum(s1 <= threshold))
    fpr, fnr = _cp_upper(fp, s0.size, beta / 2), _cp_upper(fn, s1.size, beta / 2)
    best = 0.0
    for a, b in ((fpr, fnr), (fnr, fpr)):
        if a > 0 and 1 - DELTA - b > 0:
            best = max(best, math.log((1 - DELTA - b) / a))
    return best


def audit(noise_scale: float = 1.0, seed: int = 0) -> tuple[float, float]:
    """Run the audit; returns ``(ε_lb, claimed ε)``."""
    bounds = ClippingBounds(A1=1.0, A2=1.0, A3=1.0, A_w=1.0, m=3.0)
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


def test_audit_lower_bound_stays_below_the_claimed_epsilon() -> None:
    eps_lb, eps_claimed = audit()
    assert eps_claimed <= EPSILON
    assert 0.4 < eps_lb <= eps_claimed, (eps_lb, eps_claimed)  # > 0.4: the audit is not vacuous either


def test_audit_detects_a_mechanism_with_half_the_noise() -> None:
    eps_lb, eps_claimed = audit(noise_scale=0.5)
    assert eps_lb > eps_claimed, (eps_lb, eps_claimed)
