"""Privacy accounting for private AMHT-LRS in the billboard model (SPEC §6, paper Section 2.2).

The mechanism
-------------
Private AMHT-LRS runs ``L`` iterations. In each one the server releases two Gaussian mechanisms: the clipped
statistics ``S_A + N₁`` and ``S_V + N₂``, with i.i.d. Gaussian entries of standard deviation
``Δ·σ_DP·√L``, where ``Δ`` is that statistic's L2 (Frobenius) sensitivity to adding or removing ONE
user's (task's) entire data (``Δ_A = m·A₁²·A_w²``, ``Δ_V = m·A₁·(A₂ + A₃)·A_w``, see
:func:`lorsa.privacy.clipping.sensitivities`). Divided by its sensitivity, each release is a Gaussian
mechanism with noise multiplier ``z = σ_DP·√L``, and the run is the adaptive composition of ``2L`` of them;
optionally one more Gaussian release (a private method-of-moments initialisation) with its own noise
multiplier ``z₀``.

Each release is ``1/(2z²)``-zCDP, so the ``2L`` releases give ``ρ = 2L/(2σ_DP²L) = 1/σ_DP²`` (plus
``1/(2z₀²)`` for a private start), i.e. (ε, δ)-DP with ``ε = ρ + 2√(ρ·log(1/δ))`` (SPEC §6, Theorem 2). Note
that ε does not depend on ``L`` at fixed σ_DP: the ``√L`` in the noise pays for the ``L`` rounds.

The tighter accountants come from Google's ``dp-accounting`` (``pip install "lorsa[dp]"``), imported lazily so
that this module imports without it: ``"pld"`` (privacy loss distributions, numerically tight up to a
pessimistic discretisation) and ``"rdp"`` (Rényi DP, a valid but slightly looser upper bound).

A symmetric ``N₁`` of std ``s = Δ_A·σ_DP·√L`` is covered by the same analysis whichever way it is drawn:
(a) the upper triangle incl. the diagonal i.i.d. with std ``s`` and mirrored — the upper triangle of a
symmetric change ``D`` has ℓ₂ norm at most ``‖D‖_F``; (b) ``(G + Gᵀ)/2`` with ``G`` i.i.d. std ``s`` — the
off-diagonal std drops to ``s/√2``, and the noise-normalised change is exactly ``‖D‖_F/s``. Either way the
noise-normalised sensitivity is at most ``Δ_A/s = 1/(σ_DP·√L)``. A construction whose diagonal entries
have std below ``s``, or whose off-diagonal entries have std below ``s/√2``, is NOT covered.

Floating-point caveat: like dp-accounting, the analysis is for real-valued Gaussians; sampling with
numpy's floating-point normal generator is the usual practice but not formally covered (Mironov 2012).
"""

from __future__ import annotations

import math
from typing import Any

from lorsa.privacy._checks import check_choice, check_positive_int, check_real

__all__ = [
    "ACCOUNTANTS",
    "MAX_DELTA",
    "MAX_EPSILON",
    "build_dp_event",
    "check_epsilon",
    "calibrate_noise",
    "epsilon_for_noise",
    "init_noise_multiplier_for_share",
    "noise_std",
    "release_noise_multiplier",
    "split_noise_multipliers",
    "zcdp_epsilon",
    "zcdp_rho",
]

#: Accountants understood by :func:`epsilon_for_noise` and :func:`calibrate_noise`.
ACCOUNTANTS: tuple[str, ...] = ("pld", "rdp")

#: Discretisation interval of the PLD accountant (dp-accounting's default; pessimistic, i.e. ε is rounded up) for
#: noise multipliers >= 1; for an effective noise multiplier ``z_eff < 1`` (large ε) it grows like ``1/z_eff²``, so
#: that the privacy loss distribution keeps a bounded number of points (time and memory stay bounded at large ε;
#: the rounding stays pessimistic and measured below 1e-6 relative in ε up to ε = 100).
PLD_DISCRETIZATION = 1e-4

#: Largest finite ε accepted: a bound e^ε on likelihood ratios above e^100 (~10^43) says nothing, and the
#: accountants' time and memory grow with ε. ``epsilon=inf`` is the non-private fit.
MAX_EPSILON = 100.0

#: Largest δ accepted. δ is the probability with which the guarantee may fail outright (publishing one random
#: user's entire data is (0, 1/t)-DP), so it must be far below 1/t; anything above 0.01 is no guarantee for any
#: realistic number of users (and very large δ also makes calibration slow).
MAX_DELTA = 0.01

def _import_dp_accounting() -> Any:
    try:
        import dp_accounting
    except ImportError as exc:  # pragma: no cover - exercised by a test that hides the package
        raise ImportError(
            "lorsa's privacy accounting needs the optional dependency 'dp-accounting' "
            '(Google\'s DP accounting library); install it with: pip install "lorsa[dp]"'
        ) from exc
    return dp_accounting


def _check_delta(delta: Any, name: str = "delta") -> float:
    """δ in (0, MAX_DELTA]; the message says why a large δ is refused."""
    value = check_real(name, delta, 0.0, 1.0)
    if value > MAX_DELTA:
        raise ValueError(
            f"{name} must be in (0, {MAX_DELTA:g}], got {value!r}: delta is the probability that the guarantee "
            "fails outright (publishing one random user's entire data is (0, 1/t)-DP for t users), so it must be "
            "far below 1/t; take e.g. 1e-6"
        )
    return value


def check_epsilon(epsilon: Any, name: str = "epsilon", allow_inf: bool = False) -> float:
    """ε in (0, MAX_EPSILON] (or ``inf`` when ``allow_inf``); the message says why a huge ε is refused."""
    value = check_real(name, epsilon, 0.0, allow_inf=allow_inf)
    if math.isinf(value):
        return value
    if value > MAX_EPSILON:
        hint = f", or {name}=inf for a non-private fit" if allow_inf else ""
        raise ValueError(
            f"{name} must be in (0, {MAX_EPSILON:g}]{' or inf' if allow_inf else ''}, got {value!r}: an "
            f"(epsilon, delta) guarantee with epsilon > {MAX_EPSILON:g} bounds likelihood ratios by more than "
            f"e^{MAX_EPSILON:g} ~ 1e43, i.e. it protects nothing, and accounting it would need unbounded time and "
            f"memory; take epsilon <= {MAX_EPSILON:g}{hint}"
        )
    return value


def _check_init(init_noise_multiplier: Any) -> float | None:
    if init_noise_multiplier is None:
        return None
    return check_real("init_noise_multiplier", init_noise_multiplier, 0.0)


# ----------------------------------------------------------------------------------------------------------
# closed forms
# ----------------------------------------------------------------------------------------------------------


def release_noise_multiplier(sigma_dp: float, n_iter: int) -> float:
    """Noise multiplier ``z = σ_DP·√L`` of each of the ``2L`` sensitivity-normalised Gaussian releases.

    Parameters
    ----------
    sigma_dp : float
        The paper's noise scale σ_DP > 0 (SPEC §6).
    n_iter : int
        Number of AMHT-LRS iterations ``L >= 1``.
    """
    sigma_dp = check_real("sigma_dp", sigma_dp, 0.0)
    n_iter = check_positive_int("n_iter", n_iter)
    return sigma_dp * math.sqrt(n_iter)


def split_noise_multipliers(sigma_dp: float, n_iter: int, share_A: float = 0.5) -> tuple[float, float]:
    """Noise multipliers ``(z_A, z_V)`` of the ``S_A`` and ``S_V`` releases when ``S_A`` gets the share ``share_A``
    of the iterations' zCDP budget: ``z_A = σ_DP·√L/√(2·share_A)``, ``z_V = σ_DP·√L/√(2·(1 − share_A))``.

    The ``2L`` releases then spend ``L/(2z_A²) + L/(2z_V²) = 1/σ_DP²`` whatever the share (all Gaussian: the run
    is one Gaussian mechanism with ``1/z_eff² = Σ 1/z²``); ``share_A = 0.5`` gives ``z_A = z_V = σ_DP·√L``.
    """
    z = release_noise_multiplier(sigma_dp, n_iter)
    share_A = check_real("share_A", share_A, 0.0, 1.0)
    return z / math.sqrt(2.0 * share_A), z / math.sqrt(2.0 * (1.0 - share_A))


def noise_std(sensitivity: float, sigma_dp: float, n_iter: int) -> float:
    """Standard deviation ``Δ·σ_DP·√L`` of each Gaussian noise entry added to a statistic (SPEC §6).

    Parameters
    ----------
    sensitivity : float
        The statistic's Frobenius sensitivity Δ (``Δ_A`` for ``S_A``, ``Δ_V`` for ``S_V``), > 0.
    sigma_dp : float
        σ_DP > 0.
    n_iter : int
        ``L >= 1``.
    """
    sensitivity = check_real("sensitivity", sensitivity, 0.0)
    return sensitivity * release_noise_multiplier(sigma_dp, n_iter)


def zcdp_rho(sigma_dp: float, init_noise_multiplier: float | None = None) -> float:
    """zCDP parameter ρ of the whole run: ``1/σ_DP²`` (Theorem 2) plus ``1/(2z₀²)`` for a private start.

    Parameters
    ----------
    sigma_dp : float
        σ_DP > 0; the ``2L`` releases with noise multiplier ``σ_DP·√L`` give ``2L/(2σ_DP²L) = 1/σ_DP²``.
    init_noise_multiplier : float, optional
        Noise multiplier ``z₀ > 0`` of a private method-of-moments initialisation, if one is released.
    """
    sigma_dp = check_real("sigma_dp", sigma_dp, 0.0)
    z0 = _check_init(init_noise_multiplier)
    rho = 1.0 / sigma_dp**2
    if z0 is not None:
        rho += 1.0 / (2.0 * z0**2)
    return rho


def zcdp_epsilon(rho: float, delta: float) -> float:
    """Closed-form conversion of ρ-zCDP to (ε, δ)-DP: ``ε = ρ + 2√(ρ·log(1/δ))`` (SPEC §6, Theorem 2).

    Parameters
    ----------
    rho : float
        zCDP parameter ρ >= 0 (``1/σ_DP²`` for private AMHT-LRS, see :func:`zcdp_rho`).
    delta : float
        Target δ in (0, 1).

    Returns
    -------
    float
        ε; an upper bound on what :func:`epsilon_for_noise` reports for the same noise.
    """
    rho = check_real("rho", rho, 0.0, low_inclusive=True)
    delta = _check_delta(delta)
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def init_noise_multiplier_for_share(sigma_dp: float, init_share: float) -> float:
    """Noise multiplier ``z₀`` that gives a private initialisation the fraction ``init_share`` of the total ρ.

    With ``ρ_iter = 1/σ_DP²`` and ``ρ_init = 1/(2z₀²) = init_share·ρ_total`` one gets
    ``z₀ = σ_DP·√((1 − init_share)/(2·init_share))``.

    Parameters
    ----------
    sigma_dp : float
        σ_DP > 0 of the iterations.
    init_share : float
        Share of the zCDP budget spent on the initialisation, in (0, 1).
    """
    sigma_dp = check_real("sigma_dp", sigma_dp, 0.0)
    init_share = check_real("init_share", init_share, 0.0, 1.0)
    return sigma_dp * math.sqrt((1.0 - init_share) / (2.0 * init_share))


# ----------------------------------------------------------------------------------------------------------
# dp-accounting
# ----------------------------------------------------------------------------------------------------------


def build_dp_event(sigma_dp: float, n_iter: int, init_noise_multiplier: float | None = None,
                   share_A: float = 0.5) -> Any:
    """The ``dp_accounting.DpEvent`` of a private AMHT-LRS run (SPEC §6).

    ``SelfComposedDpEvent(ComposedDpEvent([GaussianDpEvent(z), GaussianDpEvent(z)]), L)`` with
    ``z = σ_DP·√L`` (noisy ``S_A`` and ``S_V`` per iteration; with ``share_A != 0.5`` the two events have the
    multipliers of :func:`split_noise_multipliers`), preceded by ``GaussianDpEvent(z₀)`` when a private
    initialisation is released.

    Parameters
    ----------
    sigma_dp : float
        σ_DP > 0.
    n_iter : int
        ``L >= 1``.
    init_noise_multiplier : float, optional
        ``z₀ > 0`` of a private method-of-moments start; ``None`` for a random (data-independent) start.
    share_A : float
        Share in (0, 1) of the iterations' zCDP budget given to the ``S_A`` releases.
    """
    z_A, z_V = split_noise_multipliers(sigma_dp, n_iter, share_A)
    z0 = _check_init(init_noise_multiplier)
    dpa = _import_dp_accounting()
    per_iteration = dpa.ComposedDpEvent([dpa.GaussianDpEvent(z_A), dpa.GaussianDpEvent(z_V)])
    event = dpa.SelfComposedDpEvent(per_iteration, int(n_iter))
    if z0 is not None:
        event = dpa.ComposedDpEvent([dpa.GaussianDpEvent(z0), event])
    return event


def _fresh_accountant(accountant: str, z_eff: float = 1.0) -> Any:
    dpa = _import_dp_accounting()
    relation = dpa.NeighboringRelation.ADD_OR_REMOVE_ONE  # one user's entire data added or removed
    if accountant == "pld":
        interval = PLD_DISCRETIZATION * max(1.0, 1.0 / z_eff**2)
        return dpa.pld.PLDAccountant(relation, value_discretization_interval=interval)
    return dpa.rdp.RdpAccountant(neighboring_relation=relation)


def _event_noise_multiplier(event: Any) -> float:
    """``(Σ 1/z²)^(-1/2)`` over the Gaussian events of a (self-)composed event: the run's single-Gaussian
    equivalent, which sets the PLD discretisation."""
    def inverse_square(ev: Any) -> float:
        if hasattr(ev, "noise_multiplier"):
            return 1.0 / ev.noise_multiplier**2
        if hasattr(ev, "events"):
            return sum(inverse_square(e) for e in ev.events)
        if hasattr(ev, "event") and hasattr(ev, "count"):
            return ev.count * inverse_square(ev.event)
        return 1.0  # pragma: no cover - only Gaussian events are built here

    return 1.0 / math.sqrt(inverse_square(event))


def _epsilon_of_event(event: Any, delta: float, accountant: str) -> float:
    accountant_ = _fresh_accountant(accountant, _event_noise_multiplier(event))
    return float(accountant_.compose(event).get_epsilon(delta))


def epsilon_for_noise(sigma_dp: float, n_iter: int, delta: float, accountant: str = "pld",
                      init_noise_multiplier: float | None = None, share_A: float = 0.5) -> float:
    """ε spent by private AMHT-LRS with noise scale σ_DP, accounted with dp-accounting (SPEC §6).

    Parameters
    ----------
    sigma_dp : float
        σ_DP > 0; each of the ``2L`` releases has noise std ``Δ·σ_DP·√L``.
    n_iter : int
        Number of iterations ``L >= 1``.
    delta : float
        Target δ in (0, 1).
    accountant : {"pld", "rdp"}
        ``"pld"``: privacy loss distribution accountant (tight); ``"rdp"``: Rényi DP accountant (looser).
    init_noise_multiplier : float, optional
        ``z₀`` of an accounted private initialisation; ``None`` when the start is random.
    share_A : float
        Share of the iterations' budget given to ``S_A`` (:func:`split_noise_multipliers`).

    Returns
    -------
    float
        ε such that the released U (and every noisy ``S_A``, ``S_V``) is (ε, δ)-DP with respect to adding or
        removing one user's entire data. It is at most :func:`zcdp_epsilon` of :func:`zcdp_rho`.
    """
    accountant = check_choice("accountant", accountant, ACCOUNTANTS)
    delta = _check_delta(delta)
    event = build_dp_event(sigma_dp, n_iter, init_noise_multiplier, share_A)
    return _epsilon_of_event(event, delta, accountant)


def _zcdp_sigma_guess(epsilon: float, delta: float, z0: float | None, init_share: float | None) -> float:
    """σ_DP at which the closed-form zCDP bound equals ``epsilon`` (a starting point for calibration)."""
    log_inv_delta = math.log(1.0 / delta)
    rho = (math.sqrt(log_inv_delta + epsilon) - math.sqrt(log_inv_delta)) ** 2
    if init_share is not None:
        rho *= 1.0 - init_share
    elif z0 is not None:
        rho -= 1.0 / (2.0 * z0**2)
    return 1.0 / math.sqrt(rho) if rho > 0 else 1.0


def _gaussian_log_delta(z: float, epsilon: float) -> float:
    """log δ(ε) of one Gaussian mechanism with noise multiplier ``z`` (Balle & Wang 2018, Theorem 8)."""
    from scipy.special import log_ndtr

    t = epsilon * z + 1.0 / (2.0 * z)
    x = float(log_ndtr(1.0 / z - t))
    y = epsilon + float(log_ndtr(-t))
    return x + math.log1p(-math.exp(y - x)) if y < x else -math.inf


def _exact_gaussian_epsilon(z: float, delta: float) -> float:
    """Exact ε of one Gaussian mechanism with noise multiplier ``z`` at ``delta`` (no accountant slack)."""
    from scipy.optimize import brentq

    log_delta = math.log(delta)
    if _gaussian_log_delta(z, 0.0) <= log_delta:
        return 0.0
    hi = 1.0
    while _gaussian_log_delta(z, hi) > log_delta:
        hi *= 2.0
    return float(brentq(lambda e: _gaussian_log_delta(z, e) - log_delta, 0.0, hi, xtol=1e-14, rtol=1e-14))


def _effective_noise_multiplier(sigma: float, z0: float | None, init_share: float | None) -> float:
    """All releases are Gaussian, so the run is one Gaussian with ``z_eff = (2/σ_DP² + 1/z₀²)^(-1/2)``."""
    inv = 2.0 / sigma**2
    if init_share is not None:
        inv += 1.0 / init_noise_multiplier_for_share(sigma, init_share) ** 2
    elif z0 is not None:
        inv += 1.0 / z0**2
    return 1.0 / math.sqrt(inv)


def calibrate_noise(epsilon: float, delta: float, n_iter: int, accountant: str = "pld", *,
                    init_noise_multiplier: float | None = None, init_share: float | None = None,
                    share_A: float = 0.5, rtol: float = 1e-6) -> float:
    """Smallest σ_DP whose accounted ε is at most the target ``epsilon`` (SPEC §6).

    Since every release is Gaussian, the run is exactly one Gaussian mechanism with noise multiplier
    ``(2/σ_DP² + 1/z₀²)^(-1/2)``; its exact ε (Balle & Wang's analytic Gaussian) is a lower bound for any
    sound accountant, so the exact solution ``σ*`` gives the lower end of a bracket
    (``ε(σ*(1 − 10⁻⁶)) > epsilon``).
    The upper end is the first of ``σ*(1 + 10⁻⁴)``, ``σ*·1.01``, ``σ*·1.1``, the closed-form zCDP solution,
    ... (doubling) that the accountant finds feasible. Brent's method (``scipy.optimize.brentq``, as in
    ``dp_accounting.calibrate_dp_mechanism``) then refines the bracket to ``rtol·σ*`` and the point returned
    is verified to satisfy ``ε(σ_DP) <= epsilon`` (moving to the feasible side if needed). Deterministic.

    Parameters
    ----------
    epsilon : float
        Target ε > 0.
    delta : float
        Target δ in (0, 1).
    n_iter : int
        Number of iterations ``L >= 1`` (ε at fixed σ_DP does not depend on it, the per-release noise does).
    accountant : {"pld", "rdp"}
        Accountant used for ε.
    init_noise_multiplier : float, optional
        Fixed ``z₀`` of an accounted private initialisation; σ_DP is calibrated for what is left.
    init_share : float, optional
        Alternatively, the share of the zCDP budget given to the initialisation, in (0, 1): then
        ``z₀ = init_noise_multiplier_for_share(σ_DP, init_share)`` moves with σ_DP (compute it from the
        returned σ_DP with :func:`init_noise_multiplier_for_share`). Mutually exclusive with
        ``init_noise_multiplier``.
    share_A : float
        Share in (0, 1) of the iterations' budget given to the ``S_A`` releases (:func:`split_noise_multipliers`;
        the exact bracket does not depend on it).
    rtol : float
        Relative tolerance on σ_DP, in (0, 0.1).

    Returns
    -------
    float
        σ_DP; the per-release noise multiplier is ``σ_DP·√L`` and the noise std of a statistic is
        ``Δ·σ_DP·√L``.

    Raises
    ------
    ValueError
        On an invalid argument, or if a fixed ``init_noise_multiplier`` alone already spends at least
        ``epsilon``.
    """
    from scipy.optimize import brentq

    epsilon = check_epsilon(epsilon)
    delta = _check_delta(delta)
    n_iter = check_positive_int("n_iter", n_iter)
    accountant = check_choice("accountant", accountant, ACCOUNTANTS)
    z0 = _check_init(init_noise_multiplier)
    if init_share is not None:
        if z0 is not None:
            raise ValueError(
                "init_noise_multiplier and init_share are mutually exclusive; got "
                f"init_noise_multiplier={z0!r} and init_share={init_share!r}"
            )
        init_share = check_real("init_share", init_share, 0.0, 1.0)
    rtol = check_real("rtol", rtol, 0.0, 0.1)
    dpa = _import_dp_accounting()

    if z0 is not None:
        init_only = _epsilon_of_event(dpa.GaussianDpEvent(z0), delta, accountant)
        if init_only >= epsilon:
            raise ValueError(
                f"init_noise_multiplier={z0!r} alone spends epsilon={init_only:.6g} >= the target "
                f"epsilon={epsilon!r} (delta={delta!r}); increase init_noise_multiplier or the target"
            )

    cache: dict[float, float] = {}

    def gap(sigma: float) -> float:
        if sigma not in cache:
            init = z0 if init_share is None else init_noise_multiplier_for_share(sigma, init_share)
            event = build_dp_event(sigma, n_iter, init, share_A)
            cache[sigma] = _epsilon_of_event(event, delta, accountant) - epsilon
        return cache[sigma]

    def exact_gap(sigma: float) -> float:
        return _exact_gaussian_epsilon(_effective_noise_multiplier(sigma, z0, init_share), delta) - epsilon

    # exact σ* (cheap, analytic): the accountant can only need more noise than this
    guess = _zcdp_sigma_guess(epsilon, delta, z0, init_share)
    lo, hi = guess / 2.0, guess
    while exact_gap(hi) > 0:
        lo, hi = hi, hi * 2.0
    while exact_gap(lo) <= 0:
        lo, hi = lo / 2.0, lo
    sigma_star = float(brentq(exact_gap, lo, hi, xtol=1e-12 * hi, rtol=1e-12))

    lo = sigma_star * (1.0 - 1e-6)
    while gap(lo) <= 0:  # pragma: no cover - only if the accountant were tighter than the exact ε
        lo /= 2.0
    candidates = [sigma_star * (1.0 + f) for f in (1e-4, 1e-2, 1e-1)]
    candidates.append(max(guess, candidates[-1] * 1.5))
    hi = next((c for c in candidates if gap(c) <= 0), None)
    if hi is None:  # pragma: no cover - the zCDP solution is feasible for both accountants
        hi = candidates[-1]
        while gap(hi) > 0:
            hi *= 2.0

    xtol = rtol * sigma_star
    sigma = float(brentq(gap, lo, hi, xtol=xtol))
    if gap(sigma) > 0:
        # Brent's root is within xtol of the true one: step to the feasible side, else bisect [sigma, hi].
        if gap(sigma + xtol) <= 0:
            sigma += xtol
        else:  # pragma: no cover
            a, b = sigma, hi
            while b - a > xtol:
                mid = 0.5 * (a + b)
                a, b = (mid, b) if gap(mid) > 0 else (a, mid)
            sigma = b
    return sigma


def __getattr__(name: str) -> Any:
    # PrivacyReport and make_privacy_report live in lorsa.privacy.report (which imports this module); they are
    # re-exported here lazily so that ``from lorsa.privacy.accounting import PrivacyReport`` works too.
    if name in ("PrivacyReport", "make_privacy_report"):
        from lorsa.privacy import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
