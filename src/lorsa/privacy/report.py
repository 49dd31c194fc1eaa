"""The privacy report of a private AMHT-LRS fit (SPEC §6): what was spent and exactly what is protected.

:class:`PrivacyReport` is what a fitted private model exposes (e.g. as ``est.privacy_report_``);
:func:`make_privacy_report` accounts a run with :mod:`lorsa.privacy.accounting` and builds it. Both are also
importable from :mod:`lorsa.privacy.accounting` and :mod:`lorsa.privacy`.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

from lorsa.privacy._checks import check_choice, check_positive_int, check_real
from lorsa.privacy.accounting import (
    ACCOUNTANTS,
    _check_delta,
    _check_init,
    _import_dp_accounting,
    epsilon_for_noise,
    release_noise_multiplier,
    split_noise_multipliers,
    zcdp_epsilon,
    zcdp_rho,
)
from lorsa.privacy.clipping import sensitivities

__all__ = ["PrivacyReport", "make_privacy_report"]

_NEIGHBOURING = "add or remove one user's (task's) entire data"


@functools.lru_cache(maxsize=1)
def _dp_accounting_version(dpa: Any) -> str:
    try:
        from importlib.metadata import version

        return version("dp-accounting")
    except Exception:  # metadata missing (e.g. a vendored copy): fall back to the module attribute
        return str(getattr(dpa, "__version__", "unknown"))


@dataclass(frozen=True)
class PrivacyReport:
    """What a private AMHT-LRS fit spent and exactly what it protects (SPEC §6), e.g. ``est.privacy_report_``.

    Attributes
    ----------
    epsilon : float
        ε spent, as accounted by ``accountant`` at ``delta``.
    delta : float
        δ.
    epsilon_target : float or None
        The requested ε (``None`` when σ_DP was given directly).
    epsilon_zcdp : float
        The closed-form bound ``ρ + 2√(ρ·log(1/δ))`` of Theorem 2 (>= ``epsilon``).
    rho : float
        zCDP ρ of the run: ``1/σ_DP²`` (Theorem 2), plus ``1/(2z₀²)`` for a private start.
    sigma_dp : float
        σ_DP.
    noise_multiplier : float
        ``z = σ_DP·√L``: the noise multiplier (noise std / sensitivity) of each release with an even budget split;
        with ``budget_share_A`` ``S_A``'s is ``z/√(2·share)`` and ``S_V``'s ``z/√(2·(1 − share))``.
    n_iter : int
        Iterations ``L``.
    n_releases : int
        Number of Gaussian releases accounted: ``2L`` (+1 with a private start).
    accountant : str
        ``"pld"`` or ``"rdp"`` (dp-accounting).
    A1, A2, A3, A_w : float or None
        Clipping bounds for ``x`` (ℓ₂), ``y``, ``xᵀb_i`` (scalars) and ``w_i`` (ℓ₂).
    m : int or None
        Rows a user contributes per iteration (cap), used in the sensitivities.
    sensitivity_A, sensitivity_V : float or None
        Frobenius sensitivities ``Δ_A``, ``Δ_V`` of ``S_A``, ``S_V`` to one user's data.
    noise_std_A, noise_std_V : float or None
        Noise std ``Δ·σ_DP·√L`` added to each entry of ``S_A`` and ``S_V``.
    init : str
        ``"random"`` (data independent, free) or ``"private_moments"`` (accounted).
    init_noise_multiplier : float or None
        ``z₀`` of the private start.
    neighbouring : str
        The neighbouring relation of the guarantee.
    guarantee : str
        Exact statement of what is protected.
    dp_accounting_version : str
        Version of dp-accounting that computed ``epsilon``.
    budget_share_A : float
        Share of the iterations' zCDP budget spent on the ``S_A`` releases (0.5: equal noise multipliers).
    normalised : bool
        Each user's statistics are averages over its rows (weight ``1/n_i``) whose whole contribution is clipped
        to ``sensitivity_A`` and ``sensitivity_V`` (the default); ``False``: sums over up to ``m`` rows.
    noise_seed : str
        ``"os_entropy"`` (secret: drawn with :mod:`secrets`) or ``"known_seed"`` (a reproducible run whose noise
        anyone who knows ``random_state`` can subtract: NOT private, whatever ``epsilon`` says).
    """

    epsilon: float
    delta: float
    epsilon_target: float | None
    epsilon_zcdp: float
    rho: float
    sigma_dp: float
    noise_multiplier: float
    n_iter: int
    n_releases: int
    accountant: str
    A1: float | None
    A2: float | None
    A3: float | None
    A_w: float | None
    m: int | None
    sensitivity_A: float | None
    sensitivity_V: float | None
    noise_std_A: float | None
    noise_std_V: float | None
    init: str
    init_noise_multiplier: float | None
    neighbouring: str
    guarantee: str
    dp_accounting_version: str
    noise_seed: str = "os_entropy"
    budget_share_A: float = 0.5
    normalised: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of all fields (floats, ints, strings and ``None`` only)."""
        return dataclasses.asdict(self)


def _guarantee_text(epsilon: float, delta: float, accountant: str, z0: float | None, known_seed: bool = False
                    ) -> str:
    if known_seed:
        return (
            "NOT PRIVATE: this run was declared reproducible, its noise was drawn from a known random_state, and "
            "whoever knows that seed can regenerate and subtract the noise. With a secret seed the same mechanism "
            "would give: " + _guarantee_text(epsilon, delta, accountant, z0)
        )
    if z0 is None:
        init = "Initialisation is random (data independent) and spends no privacy budget."
    else:
        init = (f"The private method-of-moments initialisation (noise multiplier {z0:.6g}) is one more "
                "Gaussian release and is included in epsilon.")
    return (
        f"User-level ({epsilon:.6g}, {delta:.3g})-differential privacy in the billboard model (SPEC §6), "
        f"accounted with dp-accounting's {accountant.upper()} accountant: the published shared factor U, "
        "and every noisy statistic S_A, S_V released while fitting it, is (epsilon, delta)-DP with respect "
        "to adding or removing ONE user's (task's) entire data. Each w_i and b_i is computed by user i from "
        "the published U and that user's own data and stays with that user (joint differential privacy in "
        "the billboard model); handing all W_ and B_ (or another user's w_i, b_i) to one party is outside "
        "this guarantee (the model file holds them only when saved with include_users=True, and then says "
        "so), and so is anything else computed from the data without noise during the fit (the training "
        f"loss, the fit time, the row and task counts, which the private estimator does not expose). {init} "
        "The number of iterations is "
        "fixed in advance (no data-dependent stopping). The guarantee assumes the clipping bounds A1, A2, A3, "
        "A_w, the per-user row budget m and the hyper-parameters (rank, sparsity, number of iterations) were "
        "chosen without looking at the private data, and that the seed of the noise generator is secret "
        "(it is drawn from the operating system; whoever knows it can subtract the noise)."
    )


@functools.lru_cache(maxsize=256)
def _accounted_epsilon(sigma_dp: float, n_iter: int, delta: float, accountant: str, z0: float | None,
                       share_A: float) -> float:
    """:func:`epsilon_for_noise` is deterministic and takes up to a second (PLD): remembered per run."""
    return epsilon_for_noise(sigma_dp, n_iter, delta, accountant, z0, share_A)


def make_privacy_report(sigma_dp: float, n_iter: int, delta: float, *, accountant: str = "pld",
                        epsilon_target: float | None = None, init_noise_multiplier: float | None = None,
                        A1: float | None = None, A2: float | None = None, A3: float | None = None,
                        A_w: float | None = None, m: int | None = None, sensitivity_A: float | None = None,
                        sensitivity_V: float | None = None, known_seed: bool = False, share_A: float = 0.5,
                        normalised: bool = False) -> PrivacyReport:
    """Account a private AMHT-LRS run and build its :class:`PrivacyReport` (SPEC §6).

    Parameters
    ----------
    sigma_dp : float
        σ_DP > 0 (typically from :func:`calibrate_noise`).
    n_iter : int
        ``L >= 1``.
    delta : float
        δ in (0, 1).
    accountant : {"pld", "rdp"}
        Accountant for ε.
    epsilon_target : float, optional
        The requested ε; if given, the accounted ε must not exceed it.
    init_noise_multiplier : float, optional
        ``z₀`` of a private method-of-moments start (``None``: random start).
    A1, A2, A3, A_w : float, optional
        Clipping bounds (> 0), reported; with ``m`` they determine ``Δ_A`` and ``Δ_V`` unless given.
    m : int, optional
        Per-user, per-iteration row cap.
    sensitivity_A, sensitivity_V : float, optional
        ``Δ_A``, ``Δ_V`` when known directly (e.g. each user's whole contribution clipped in Frobenius norm).
    known_seed : bool
        The noise came from a known seed (a reproducible run): the report says it is NOT private.
    share_A : float
        Share of the iterations' budget given to ``S_A`` (:func:`lorsa.privacy.split_noise_multipliers`).
    normalised : bool
        Whether users' statistics were normalised by their row counts (recorded).

    Raises
    ------
    ValueError
        On invalid arguments, or if the accounted ε exceeds ``epsilon_target``.
    """
    accountant = check_choice("accountant", accountant, ACCOUNTANTS)
    sigma_dp = check_real("sigma_dp", sigma_dp, 0.0)
    n_iter = check_positive_int("n_iter", n_iter)
    delta = _check_delta(delta)
    z0 = _check_init(init_noise_multiplier)
    if epsilon_target is not None:
        epsilon_target = check_real("epsilon_target", epsilon_target, 0.0)
    bounds = {"A1": A1, "A2": A2, "A3": A3, "A_w": A_w}
    bounds = {k: None if v is None else check_real(k, v, 0.0, low_inclusive=(k == "A3")) for k, v in bounds.items()}
    m = None if m is None else check_positive_int("m", m)
    if sensitivity_A is not None:
        sensitivity_A = check_real("sensitivity_A", sensitivity_A, 0.0)
    if sensitivity_V is not None:
        sensitivity_V = check_real("sensitivity_V", sensitivity_V, 0.0)
    if m is not None and all(v is not None for v in bounds.values()):
        d_a, d_v = sensitivities(bounds["A1"], bounds["A2"], bounds["A3"], bounds["A_w"], m)
        sensitivity_A = d_a if sensitivity_A is None else sensitivity_A
        sensitivity_V = d_v if sensitivity_V is None else sensitivity_V

    dpa = _import_dp_accounting()
    epsilon = _accounted_epsilon(sigma_dp, n_iter, delta, accountant, z0, float(share_A))
    if epsilon_target is not None and epsilon > epsilon_target:
        raise ValueError(
            f"sigma_dp={sigma_dp!r} spends epsilon={epsilon:.6g} > epsilon_target={epsilon_target!r} "
            f"(delta={delta!r}, n_iter={n_iter}, accountant={accountant!r}); use calibrate_noise"
        )
    rho = zcdp_rho(sigma_dp, z0)
    z = release_noise_multiplier(sigma_dp, n_iter)
    z_A, z_V = split_noise_multipliers(sigma_dp, n_iter, share_A)
    return PrivacyReport(
        epsilon=epsilon,
        delta=delta,
        epsilon_target=epsilon_target,
        epsilon_zcdp=zcdp_epsilon(rho, delta),
        rho=rho,
        sigma_dp=sigma_dp,
        noise_multiplier=z,
        n_iter=n_iter,
        n_releases=2 * n_iter + (0 if z0 is None else 1),
        accountant=accountant,
        A1=bounds["A1"],
        A2=bounds["A2"],
        A3=bounds["A3"],
        A_w=bounds["A_w"],
        m=m,
        sensitivity_A=sensitivity_A,
        sensitivity_V=sensitivity_V,
        noise_std_A=None if sensitivity_A is None else sensitivity_A * z_A,
        noise_std_V=None if sensitivity_V is None else sensitivity_V * z_V,
        init="random" if z0 is None else "private_moments",
        init_noise_multiplier=z0,
        neighbouring=_NEIGHBOURING,
        guarantee=_guarantee_text(epsilon, delta, accountant, z0, known_seed),
        dp_accounting_version=_dp_accounting_version(dpa),
        noise_seed="known_seed" if known_seed else "os_entropy",
        budget_share_A=float(share_A),
        normalised=bool(normalised),
    )
