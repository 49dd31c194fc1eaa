"""Tests for the privacy building blocks of SPEC §6: clipping, sensitivities, dp-accounting based accounting.

Reference values used below (dp-accounting 0.6.0, PLD discretisation 1e-4): the run with noise scale σ_DP is
exactly one Gaussian mechanism with noise multiplier σ_DP/√2 (2L releases with multiplier σ_DP·√L), so
dp-accounting's analytic ``get_epsilon_gaussian(σ_DP/√2, δ)`` is the exact ε; PLD matches it to < 1e-5
relative, RDP is 4-15 % above it (δ <= 1e-5), the closed-form zCDP bound of Theorem 2 is above both.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lorsa.privacy import (
    ACCOUNTANTS,
    PrivacyReport,
    build_dp_event,
    calibrate_noise,
    clip_frobenius,
    clip_rows,
    clip_scalars,
    epsilon_for_noise,
    init_noise_multiplier_for_share,
    make_privacy_report,
    noise_std,
    release_noise_multiplier,
    sensitivities,
    zcdp_epsilon,
    zcdp_rho,
)
from lorsa.privacy.accounting import _exact_gaussian_epsilon

dpa = pytest.importorskip("dp_accounting")

SIGMAS = (0.8, 2.0, 8.0, 50.0)
ITERS = (1, 7, 50)
DELTAS = (1e-3, 1e-6, 1e-10)
# RDP vs PLD: RDP converts Rényi divergences on a finite grid of orders to (ε, δ); it is a valid upper bound
# but looser. Measured (dp-accounting 0.6.0): 4-14 % above PLD for δ <= 1e-5 and ε_PLD in [0.1, 20]; up to
# 33 % for δ = 1e-3 and ε ~ 0.04 (small ε, large δ is where the order grid / conversion slack weighs most).
RDP_OVER_PLD_MAX = 1.15


def _exact(sigma: float, delta: float) -> float:
    # dp-accounting's analytic Gaussian (0.6.0); older releases lack it, then use lorsa's own implementation
    exact = getattr(dpa, "get_epsilon_gaussian", _exact_gaussian_epsilon)
    return exact(sigma / math.sqrt(2.0), delta)


# ------------------------------------------------------------------------------------------------------------
# closed forms
# ------------------------------------------------------------------------------------------------------------


def test_rho_of_theorem_2_is_sum_over_2L_releases() -> None:
    for sigma in SIGMAS:
        for n_iter in ITERS:
            z = release_noise_multiplier(sigma, n_iter)
            assert z == pytest.approx(sigma * math.sqrt(n_iter))
            per_release = 1.0 / (2.0 * z**2)
            assert 2 * n_iter * per_release == pytest.approx(zcdp_rho(sigma), rel=1e-12)
            assert zcdp_rho(sigma) == pytest.approx(1.0 / sigma**2)
    assert zcdp_rho(2.0, init_noise_multiplier=3.0) == pytest.approx(0.25 + 1.0 / 18.0)
    assert zcdp_epsilon(0.5, 1e-6) == pytest.approx(0.5 + 2.0 * math.sqrt(0.5 * math.log(1e6)))
    assert zcdp_epsilon(0.0, 1e-6) == 0.0
    assert noise_std(3.0, 2.0, 4) == pytest.approx(3.0 * 2.0 * 2.0)


def test_init_share_gives_that_share_of_rho() -> None:
    sigma, share = 3.0, 0.2
    z0 = init_noise_multiplier_for_share(sigma, share)
    rho_init = 1.0 / (2.0 * z0**2)
    assert rho_init / zcdp_rho(sigma, z0) == pytest.approx(share)


def test_dp_event_structure() -> None:
    event = build_dp_event(2.0, 5)
    assert isinstance(event, dpa.SelfComposedDpEvent) and event.count == 5
    assert [e.noise_multiplier for e in event.event.events] == pytest.approx([2.0 * math.sqrt(5)] * 2)
    with_init = build_dp_event(2.0, 5, init_noise_multiplier=7.0)
    assert isinstance(with_init, dpa.ComposedDpEvent)
    assert with_init.events[0] == dpa.GaussianDpEvent(7.0)


def test_own_analytic_gaussian_matches_dp_accounting() -> None:
    if not hasattr(dpa, "get_epsilon_gaussian"):
        pytest.skip("this dp-accounting has no get_epsilon_gaussian")
    for z in (0.3, 1.0, 5.0, 50.0):
        for delta in DELTAS:
            ours, theirs = _exact_gaussian_epsilon(z, delta), dpa.get_epsilon_gaussian(z, delta)
            assert ours == pytest.approx(theirs, rel=1e-8, abs=1e-10)


# ------------------------------------------------------------------------------------------------------------
# accountants
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid() -> dict[tuple[float, int, float, str], float]:
    return {(s, n, d, a): epsilon_for_noise(s, n, d, accountant=a)
            for s in SIGMAS for n in ITERS for d in DELTAS for a in ACCOUNTANTS}


def test_accountants_are_below_the_zcdp_closed_form(grid) -> None:
    for (sigma, _n, delta, _a), eps in grid.items():
        assert 0.0 < eps <= zcdp_epsilon(zcdp_rho(sigma), delta)


def test_pld_matches_the_exact_gaussian_and_never_undercounts(grid) -> None:
    # PLD discretisation is pessimistic: ε_PLD >= exact, and tight (< 1e-5 relative measured; allow 1e-4).
    for (sigma, _n, delta, a), eps in grid.items():
        if a == "pld":
            exact = _exact(sigma, delta)
            assert eps >= exact * (1.0 - 1e-9)
            assert eps <= exact * (1.0 + 1e-4)


def test_pld_and_rdp_agree_within_tolerance(grid) -> None:
    for (sigma, n, delta, a), eps in grid.items():
        if a != "rdp":
            continue
        pld = grid[(sigma, n, delta, "pld")]
        assert eps >= pld  # RDP is the looser valid bound
        if delta <= 1e-5 and 0.1 <= pld <= 20.0:
            assert eps <= RDP_OVER_PLD_MAX * pld, (sigma, n, delta, pld, eps)


def test_epsilon_does_not_depend_on_L_at_fixed_sigma_dp(grid) -> None:
    # The √L in the per-release noise pays exactly for the L rounds (ρ = 1/σ_DP² for every L).
    for (sigma, _n, delta, a), eps in grid.items():
        assert eps == pytest.approx(grid[(sigma, 1, delta, a)], rel=1e-6)


@pytest.mark.parametrize("accountant", ACCOUNTANTS)
def test_more_noise_means_less_epsilon(accountant: str) -> None:
    eps = [epsilon_for_noise(s, 10, 1e-6, accountant) for s in (1.0, 1.5, 3.0, 6.0, 20.0)]
    assert all(a > b for a, b in zip(eps, eps[1:], strict=False))


@pytest.mark.parametrize("accountant", ACCOUNTANTS)
def test_more_iterations_at_fixed_release_noise_means_more_epsilon(accountant: str) -> None:
    z = 20.0  # per-release noise multiplier held fixed: σ_DP = z/√L
    eps = [epsilon_for_noise(z / math.sqrt(n), n, 1e-6, accountant) for n in (1, 4, 16, 64)]
    assert all(a < b for a, b in zip(eps, eps[1:], strict=False))


@pytest.mark.parametrize("accountant", ACCOUNTANTS)
def test_private_initialisation_costs_budget(accountant: str) -> None:
    base = epsilon_for_noise(4.0, 10, 1e-6, accountant)
    with_init = epsilon_for_noise(4.0, 10, 1e-6, accountant, init_noise_multiplier=5.0)
    assert with_init > base
    assert with_init <= zcdp_epsilon(zcdp_rho(4.0, 5.0), 1e-6)


# ------------------------------------------------------------------------------------------------------------
# calibration
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("accountant", ACCOUNTANTS)
@pytest.mark.parametrize("target", [0.5, 1.0, 4.0])
def test_calibrate_noise_round_trip(accountant: str, target: float) -> None:
    sigma = calibrate_noise(target, 1e-6, 10, accountant)
    spent = epsilon_for_noise(sigma, 10, 1e-6, accountant)
    assert 0.99 * target <= spent <= target
    # minimal: 0.1 % less noise overshoots the target
    assert epsilon_for_noise(sigma * 0.999, 10, 1e-6, accountant) > target
    assert calibrate_noise(target, 1e-6, 10, accountant) == sigma  # deterministic
    if accountant == "pld" and hasattr(dpa, "get_sigma_gaussian"):
        assert sigma == pytest.approx(math.sqrt(2.0) * dpa.get_sigma_gaussian(target, 1e-6), rel=1e-5)


def test_calibrated_noise_decreases_with_epsilon_and_rdp_needs_more() -> None:
    pld = [calibrate_noise(e, 1e-6, 5, "pld") for e in (0.5, 2.0, 8.0)]
    assert pld[0] > pld[1] > pld[2]
    assert calibrate_noise(2.0, 1e-6, 5, "rdp") > pld[1]


def test_calibrate_with_private_initialisation() -> None:
    sigma = calibrate_noise(1.0, 1e-6, 10, init_share=0.1)
    z0 = init_noise_multiplier_for_share(sigma, 0.1)
    assert 0.99 <= epsilon_for_noise(sigma, 10, 1e-6, init_noise_multiplier=z0) <= 1.0
    assert sigma > calibrate_noise(1.0, 1e-6, 10)

    sigma_fixed = calibrate_noise(1.0, 1e-6, 10, init_noise_multiplier=20.0)
    assert 0.99 <= epsilon_for_noise(sigma_fixed, 10, 1e-6, init_noise_multiplier=20.0) <= 1.0
    with pytest.raises(ValueError, match="init_noise_multiplier=0.5 alone spends"):
        calibrate_noise(1.0, 1e-6, 10, init_noise_multiplier=0.5)
    with pytest.raises(ValueError, match="mutually exclusive"):
        calibrate_noise(1.0, 1e-6, 10, init_noise_multiplier=20.0, init_share=0.1)


# ------------------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------------------


def test_privacy_report() -> None:
    sigma = calibrate_noise(2.0, 1e-6, 8)
    rep = make_privacy_report(sigma, 8, 1e-6, epsilon_target=2.0, A1=1.0, A2=2.0, A3=0.5, A_w=1.5, m=10)
    assert isinstance(rep, PrivacyReport)
    assert rep.epsilon <= rep.epsilon_target == 2.0
    assert rep.epsilon <= rep.epsilon_zcdp == pytest.approx(zcdp_epsilon(1.0 / sigma**2, 1e-6))
    assert rep.rho == pytest.approx(1.0 / sigma**2)
    assert rep.noise_multiplier == pytest.approx(sigma * math.sqrt(8))
    assert (rep.sensitivity_A, rep.sensitivity_V) == pytest.approx(sensitivities(1.0, 2.0, 0.5, 1.5, 10))
    assert rep.noise_std_A == pytest.approx(rep.sensitivity_A * sigma * math.sqrt(8))
    assert rep.noise_std_V == pytest.approx(rep.sensitivity_V * sigma * math.sqrt(8))
    assert rep.n_releases == 16 and rep.init == "random" and rep.init_noise_multiplier is None
    assert rep.accountant == "pld" and rep.dp_accounting_version
    for phrase in ("U", "ONE user's (task's) entire data", "w_i and b_i", "joint differential privacy",
                   "billboard", "W_ and B_", "outside this guarantee", "random (data independent)"):
        assert phrase in rep.guarantee
    d = rep.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d) == {f.name for f in dataclasses.fields(PrivacyReport)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.epsilon = 0.0  # type: ignore[misc]
    from lorsa.privacy import accounting

    assert accounting.PrivacyReport is PrivacyReport  # also reachable from the accounting module


def test_privacy_report_with_private_init_and_rdp() -> None:
    rep = make_privacy_report(3.0, 5, 1e-5, accountant="rdp", init_noise_multiplier=10.0,
                              sensitivity_A=2.0, sensitivity_V=4.0)
    assert rep.n_releases == 11 and rep.init == "private_moments"
    assert rep.epsilon == pytest.approx(epsilon_for_noise(3.0, 5, 1e-5, "rdp", 10.0))
    assert "included in epsilon" in rep.guarantee
    assert rep.A1 is None and rep.noise_std_A == pytest.approx(2.0 * 3.0 * math.sqrt(5))


def test_privacy_report_refuses_overspending() -> None:
    with pytest.raises(ValueError, match="epsilon_target=1.0"):
        make_privacy_report(1.0, 5, 1e-6, epsilon_target=1.0)


# ------------------------------------------------------------------------------------------------------------
# optional dependency
# ------------------------------------------------------------------------------------------------------------


def test_missing_dp_accounting_gives_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dp_accounting", None)
    with pytest.raises(ImportError, match=r'pip install "lorsa\[dp\]"'):
        epsilon_for_noise(1.0, 1, 1e-6)
    with pytest.raises(ImportError, match=r"lorsa\[dp\]"):
        calibrate_noise(1.0, 1e-6, 1)
    assert zcdp_epsilon(zcdp_rho(2.0), 1e-6) > 0  # closed forms need no optional dependency


def test_module_imports_without_dp_accounting() -> None:
    src = Path(__file__).resolve().parents[1] / "src"
    code = ("import sys; sys.modules['dp_accounting'] = None; sys.path.insert(0, sys.argv[1]); "
            "import lorsa.privacy.accounting, lorsa.privacy.report, lorsa.privacy; "
            "print(lorsa.privacy.clip_rows([[3.0, 4.0]], 1.0))")
    out = subprocess.run([sys.executable, "-c", code, str(src)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


# ------------------------------------------------------------------------------------------------------------
# clipping (hypothesis properties)
# ------------------------------------------------------------------------------------------------------------

finite = st.floats(-1e100, 1e100, allow_nan=False, allow_infinity=False)
bounds = st.floats(1e-3, 1e3)


def _norm(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return np.sqrt(np.sum(np.square(a), axis=axes))


@settings(deadline=None, max_examples=150)
@given(X=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=finite),
       bound=bounds)
def test_clip_rows_properties(X: np.ndarray, bound: float) -> None:
    before = X.copy()
    out = clip_rows(X, bound)
    np.testing.assert_array_equal(X, before)  # input untouched
    assert out.shape == X.shape and out.dtype == np.float64 and np.all(np.isfinite(out))
    n_in, n_out = _norm(X, (-1,)), _norm(out, (-1,))
    assert np.all(n_out <= bound * (1 + 1e-12))
    inside = n_in <= bound
    np.testing.assert_array_equal(out[inside], X[inside])  # unchanged if already inside
    outside = ~inside
    np.testing.assert_allclose(n_out[outside], bound, rtol=1e-12)
    # direction preserved: out = X·(bound/‖X‖) with a positive factor
    scale = np.where(outside, bound / np.where(outside, n_in, 1.0), 1.0)
    np.testing.assert_allclose(out, X * scale[..., None], rtol=1e-12, atol=0)


@settings(deadline=None, max_examples=100)
@given(M=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=4, max_side=5), elements=finite),
       bound=bounds)
def test_clip_frobenius_properties(M: np.ndarray, bound: float) -> None:
    out = clip_frobenius(M, bound)
    n_in, n_out = _norm(M, (-2, -1)), _norm(out, (-2, -1))
    assert np.all(n_out <= bound * (1 + 1e-12))
    inside = n_in <= bound
    np.testing.assert_array_equal(out[inside], M[inside])
    scale = np.where(inside, 1.0, bound / np.where(inside, 1.0, n_in))
    np.testing.assert_allclose(out, M * scale[..., None, None], rtol=1e-12, atol=0)


@settings(deadline=None, max_examples=100)
@given(v=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=2), elements=finite), bound=bounds)
def test_clip_scalars_properties(v: np.ndarray, bound: float) -> None:
    out = clip_scalars(v, bound)
    assert out.shape == v.shape and np.all(np.abs(out) <= bound)
    inside = np.abs(v) <= bound
    np.testing.assert_array_equal(out[inside], v[inside])
    np.testing.assert_array_equal(np.sign(out), np.sign(v))
    np.testing.assert_array_equal(out[~inside], bound * np.sign(v[~inside]))


def test_clip_edge_cases() -> None:
    # zero stays zero, no NaN
    np.testing.assert_array_equal(clip_rows(np.zeros((3, 4)), 1.0), np.zeros((3, 4)))
    np.testing.assert_array_equal(clip_frobenius(np.zeros((2, 3, 3)), 1.0), np.zeros((2, 3, 3)))
    np.testing.assert_allclose(clip_rows([[3, 4], [0, 0]], 1.0), [[0.6, 0.8], [0.0, 0.0]])  # ints -> float
    big = np.full((2, 5), 1e300)  # squares overflow: the norm is rescaled
    np.testing.assert_allclose(np.linalg.norm(clip_rows(big, 2.0), axis=1), 2.0)
    tiny = np.full(4, 1e-300)
    np.testing.assert_array_equal(clip_rows(tiny, 1.0), tiny)
    X = np.array([[30.0, 40.0]])
    np.testing.assert_array_equal(clip_rows(X, math.inf), X)  # inf = no clipping
    assert clip_rows(X, math.inf) is not X
    np.testing.assert_array_equal(clip_scalars([-5.0, 5.0], math.inf), [-5.0, 5.0])
    assert clip_rows(np.ones((2, 2), dtype=np.float32), 1.0).dtype == np.float32
    assert clip_rows(np.empty((0, 3)), 1.0).shape == (0, 3)
    stack = np.stack([np.eye(2) * 10, np.eye(2) * 0.1])
    out = clip_frobenius(stack, 1.0)  # per leading index
    assert np.linalg.norm(out[0]) == pytest.approx(1.0)
    np.testing.assert_array_equal(out[1], stack[1])


# ------------------------------------------------------------------------------------------------------------
# sensitivities
# ------------------------------------------------------------------------------------------------------------


def test_sensitivity_formulas() -> None:
    assert sensitivities(2.0, 3.0, 1.0, 0.5, 7) == pytest.approx((7 * 4.0 * 0.25, 7 * 2.0 * 4.0 * 0.5))


@settings(deadline=None, max_examples=60)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 8), d=st.integers(1, 5), k=st.integers(1, 3),
       A=st.tuples(bounds, bounds, bounds, bounds), scale=st.floats(0.01, 100.0))
def test_one_users_clipped_contribution_is_within_the_sensitivities(seed, m, d, k, A, scale) -> None:
    # One user's additive contribution to S_A and S_V (what adding/removing that user changes) is bounded
    # in Frobenius norm by Δ_A and Δ_V (SPEC §6).
    A1, A2, A3, Aw = A
    rng = np.random.default_rng(seed)
    x = clip_rows(scale * rng.standard_normal((m, d)), A1)
    y = clip_scalars(scale * rng.standard_normal(m), A2)
    b = scale * rng.standard_normal(d)
    w = clip_rows(scale * rng.standard_normal(k), Aw)
    c = clip_scalars(x @ b, A3)
    contrib_A = np.kron(np.outer(w, w), x.T @ x)
    contrib_V = x.T @ (y - c)[:, None] @ w[None, :]
    delta_A, delta_V = sensitivities(A1, A2, A3, Aw, m)
    assert np.linalg.norm(contrib_A) <= delta_A * (1 + 1e-9)
    assert np.linalg.norm(contrib_V) <= delta_V * (1 + 1e-9)


# ------------------------------------------------------------------------------------------------------------
# validation: every error names the argument, the allowed range and the value
# ------------------------------------------------------------------------------------------------------------

BAD_CALLS = [
    (lambda: epsilon_for_noise(0.0, 5, 1e-6), ValueError, ["sigma_dp", "(0, inf)", "0.0"]),
    (lambda: epsilon_for_noise(-1.0, 5, 1e-6), ValueError, ["sigma_dp", "(0, inf)", "-1.0"]),
    (lambda: epsilon_for_noise(math.nan, 5, 1e-6), ValueError, ["sigma_dp", "nan"]),
    (lambda: epsilon_for_noise(math.inf, 5, 1e-6), ValueError, ["sigma_dp", "inf"]),
    (lambda: epsilon_for_noise("1", 5, 1e-6), TypeError, ["sigma_dp", "'1'", "str"]),
    (lambda: epsilon_for_noise(1.0, 0, 1e-6), ValueError, ["n_iter", "[1, inf)", "0"]),
    (lambda: epsilon_for_noise(1.0, 2.5, 1e-6), TypeError, ["n_iter", "integer", "2.5"]),
    (lambda: epsilon_for_noise(1.0, True, 1e-6), TypeError, ["n_iter", "integer", "True"]),
    (lambda: epsilon_for_noise(1.0, 5, 0.0), ValueError, ["delta", "(0, 1)", "0.0"]),
    (lambda: epsilon_for_noise(1.0, 5, 1.0), ValueError, ["delta", "(0, 1)", "1.0"]),
    (lambda: epsilon_for_noise(1.0, 5, 1e-6, accountant="gdp"), ValueError, ["accountant", "'pld'", "'gdp'"]),
    (lambda: epsilon_for_noise(1.0, 5, 1e-6, init_noise_multiplier=0.0), ValueError,
     ["init_noise_multiplier", "(0, inf)", "0.0"]),
    (lambda: calibrate_noise(0.0, 1e-6, 5), ValueError, ["epsilon", "(0, inf)", "0.0"]),
    (lambda: calibrate_noise(-2.0, 1e-6, 5), ValueError, ["epsilon", "(0, inf)", "-2.0"]),
    (lambda: calibrate_noise(1.0, 2.0, 5), ValueError, ["delta", "(0, 1)", "2.0"]),
    (lambda: calibrate_noise(1.0, 1e-6, -3), ValueError, ["n_iter", "[1, inf)", "-3"]),
    (lambda: calibrate_noise(1.0, 1e-6, 5, accountant="x"), ValueError, ["accountant", "'rdp'", "'x'"]),
    (lambda: calibrate_noise(1.0, 1e-6, 5, init_share=1.0), ValueError, ["init_share", "(0, 1)", "1.0"]),
    (lambda: calibrate_noise(1.0, 1e-6, 5, rtol=0.5), ValueError, ["rtol", "(0, 0.1)", "0.5"]),
    (lambda: zcdp_epsilon(-0.1, 1e-6), ValueError, ["rho", "[0, inf)", "-0.1"]),
    (lambda: zcdp_epsilon(1.0, 0.0), ValueError, ["delta", "(0, 1)", "0.0"]),
    (lambda: zcdp_rho(0.0), ValueError, ["sigma_dp", "(0, inf)", "0.0"]),
    (lambda: release_noise_multiplier(1.0, 0), ValueError, ["n_iter", "[1, inf)", "0"]),
    (lambda: noise_std(0.0, 1.0, 1), ValueError, ["sensitivity", "(0, inf)", "0.0"]),
    (lambda: init_noise_multiplier_for_share(1.0, 0.0), ValueError, ["init_share", "(0, 1)", "0.0"]),
    (lambda: make_privacy_report(1.0, 1, 1e-6, A1=-1.0), ValueError, ["A1", "(0, inf)", "-1.0"]),
    (lambda: make_privacy_report(1.0, 1, 1e-6, m=0), ValueError, ["m", "[1, inf)", "0"]),
    (lambda: make_privacy_report(1.0, 1, 1e-6, epsilon_target=0.0), ValueError,
     ["epsilon_target", "(0, inf)", "0.0"]),
    (lambda: make_privacy_report(1.0, 1, 1e-6, sensitivity_V=-1.0), ValueError,
     ["sensitivity_V", "(0, inf)", "-1.0"]),
    (lambda: sensitivities(0.0, 1.0, 1.0, 1.0, 1), ValueError, ["A1", "(0, inf)", "0.0"]),
    (lambda: sensitivities(1.0, -1.0, 1.0, 1.0, 1), ValueError, ["A2", "(0, inf)", "-1.0"]),
    (lambda: sensitivities(1.0, 1.0, math.inf, 1.0, 1), ValueError, ["A3", "[0, inf)", "inf"]),  # 0: k = 0
    (lambda: sensitivities(1.0, 1.0, 1.0, 0.0, 1), ValueError, ["Aw", "(0, inf)", "0.0"]),
    (lambda: sensitivities(1.0, 1.0, 1.0, 1.0, 0), ValueError, ["m", "[1, inf)", "0"]),
    (lambda: clip_rows([[1.0]], 0.0), ValueError, ["bound", "(0, inf]", "0.0"]),
    (lambda: clip_rows([[1.0]], -1.0), ValueError, ["bound", "(0, inf]", "-1.0"]),
    (lambda: clip_scalars([1.0], math.nan), ValueError, ["bound", "(0, inf]", "nan"]),
    (lambda: clip_frobenius([[1.0]], -math.inf), ValueError, ["bound", "(0, inf]", "-inf"]),
    (lambda: clip_rows([[1.0, math.nan]], 1.0), ValueError, ["X", "finite"]),
    (lambda: clip_scalars([math.inf], 1.0), ValueError, ["v", "finite"]),
    (lambda: clip_frobenius([1.0, 2.0], 1.0), ValueError, ["M", "at least 2", "(2,)"]),
    (lambda: clip_rows(5.0, 1.0), ValueError, ["X", "at least 1", "()"]),
    (lambda: clip_rows(["a"], 1.0), TypeError, ["X", "dtype"]),
]


@pytest.mark.parametrize("call, exc, fragments", BAD_CALLS)
def test_validation_errors(call, exc, fragments) -> None:
    with pytest.raises(exc) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
