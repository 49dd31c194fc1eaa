"""The Gaussian mechanism of private AMHT-LRS (SPEC §6): clipped statistics, their noisy release, a private start.

Private AMHT-LRS changes only the shared step. In every iteration ``l = 1 … L`` the server

1. aggregates the statistics of the U step from CLIPPED data (:class:`ClippedStatistics`, the loop's
   ``AMHTConfig.block_statistics`` hook), with ``x̃ = clip(x, A₁)``, ``ỹ = clip(y, A₂)``,
   ``c̃ = clip(x̃ᵀb_i, A₃)``, ``w̃_i = clip(w_i, A_w)``::

       S_A = Σ_i s_i (w̃_i w̃_iᵀ) ⊗ Σ_j x̃_ij x̃_ijᵀ,        S_V = Σ_i s_i Σ_j x̃_ij (ỹ_ij − c̃_ij) w̃_iᵀ,

   where ``s_i = min(1, Δ_A/‖A_i‖_F, Δ_V/‖V_i‖_F) ∈ [0, 1]`` clips user i's whole contribution
   ``(A_i, V_i)`` to the Frobenius norms ``Δ_A`` and ``Δ_V``. Two variants (:class:`ClippingBounds`):

   - normalised (the default of :class:`lorsa.PrivateLRSRegressor`): ``A_i`` and ``V_i`` are averages over the
     user's ``n_i`` rows (the sums above divided by ``n_i``), and ``Δ_A = min(C_A, A₁²·A_w²)``,
     ``Δ_V = min(C_V, A₁·(A₂ + A₃)·A_w)`` with ``C_A, C_V`` the size of a typical user's contribution under public
     assumptions (:func:`default_contribution_bounds`), so the noise is set for a typical user, not the worst;
   - row sums: ``Δ_A = m·A₁²·A_w²`` and ``Δ_V = m·A₁·(A₂ + A₃)·A_w``, with ``m`` the number of rows a user
     contributes at full weight (``max_rows``). A user with at most ``m`` rows is never scaled (the bounds hold
     row by row); a user with more rows is down-weighted as a whole.

   A user whose step failed (non-finite ``w_i`` or ``b_i``) gets ``s_i = 0``. Both
   parts of a user's contribution get the SAME factor, so its normal equations stay consistent (a per-user
   weight in the least-squares problem for ``U``, not a distortion of it). This is the paper's matrix clip
   applied to the pair; it bounds what adding or removing one user changes by exactly ``Δ_A`` and ``Δ_V``;
2. releases ``S_A + N₁`` (``N₁`` symmetric: upper triangle and diagonal i.i.d. ``N(0, (Δ_A·σ_DP·√L)²)``,
   mirrored) and ``S_V + N₂`` (i.i.d. ``N(0, (Δ_V·σ_DP·√L)²)``) (:class:`GaussianRelease`, the loop's
   ``AMHTConfig.release`` hook);
3. post-processes the noisy ``S_A``: eigenvalues are floored at ``4·std_A·√(dr)``, twice the expected spectral
   norm of the symmetric noise (a data-independent floor, so this is post-processing and costs no privacy; on
   synthetic data it beat floors of 0.5-2x and a ridge ``+λI`` of the same size), which makes it positive
   definite; the loop then solves ``S_A vec(U) = vec(S_V)`` and orthonormalises by QR. (With the normalised
   default at t = 10,000 users the noise is far below the eigenvalues of ``S_A`` and the floor rarely binds.)

Everything the statistics of user i depend on — ``x_ij, y_ij, w_i, b_i`` — is computed from user i's data and the
previously published ``U`` only (the per-task step is independent across users; the global row-sparsity
projection ζ, which couples users, is therefore not allowed in a private fit). Padded rows of a block are zero
before and after clipping and contribute nothing.

:func:`private_moments_basis` is the private method-of-moments start: one more Gaussian release of the clipped
``Σ_i Σ_j ỹ_ij² x̃_ij x̃_ijᵀ`` (per-user Frobenius clip ``Δ_M = m·A₁²·A₂²``; normalised: the user's average,
clipped to ``min(C_M, A₁²·A₂²)``), accounted with its own noise multiplier ``z₀``.

Every function here is a function of one block's rows and the per-user ``(w_i, b_i)`` (or of the reduced
``(S_A, S_V)``), so a distributed engine can run :class:`ClippedStatistics` where the data live and release once
on the driver.

The noise generator is seeded (same seed -> same model). The seed is part of the mechanism's secret randomness:
whoever knows it can regenerate and subtract the noise, so a model fitted with a published or guessable seed is
NOT private. :class:`lorsa.PrivateLRSRegressor` draws it from the operating system (:mod:`secrets`) and accepts
a known seed only for a run declared reproducible (and not private) in its report.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..data import RaggedTasks, TaskBlock
from ..kernels import gather_columns
from ..solvers.shared_step import block_exact_statistics, block_gram, block_rhs, orthonormalize
from ._checks import check_positive_int, check_real
from .accounting import calibrate_noise, init_noise_multiplier_for_share, split_noise_multipliers
from .clipping import clip_frobenius, clip_rows, clip_scalars
from .report import PrivacyReport, make_privacy_report

__all__ = [
    "ClippingBounds",
    "ClippedStatistics",
    "GaussianRelease",
    "default_bounds",
    "private_moments_basis",
    "private_release",
    "symmetric_noise",
]


#: Relative margin added to every noise std: a clipped contribution's Frobenius norm, computed in float64, can
#: exceed its bound by a few ulps (measured at most 1 + 4e-15); the noise is calibrated to ``Δ·(1 + 1e-9)``.
ROUNDING_MARGIN = 1e-9


@dataclass(frozen=True)
class ClippingBounds:
    """Clipping bounds of SPEC §6: row bounds, and the per-user row budget ``m`` or contribution bounds ``C``.

    Attributes
    ----------
    A1 : float
        ℓ₂ bound of the feature rows ``x`` (``inf``: no clipping).
    A2 : float
        Bound of ``|y|``.
    A3 : float
        Bound of ``|x̃ᵀb_i|``; ``0`` when there is no sparse part (``k = 0``: ``b_i = 0``, so the term drops out
        of ``Δ_V``).
    A_w : float
        ℓ₂ bound of ``w_i``.
    m : float
        Rows a user contributes at full weight; each user's whole contribution is clipped to ``Δ_A``, ``Δ_V``
        (``inf``: no per-user clipping). ``1`` (unused) with normalised contributions.
    C_A, C_V, C_M : float or None
        Per-user contribution bounds of the normalised statistics (row averages; given together): then
        ``Δ_A = min(C_A, A₁²A_w²)``, ``Δ_V = min(C_V, A₁(A₂ + A₃)A_w)`` and the moments start's
        ``Δ_M = min(C_M, A₁²A₂²)``. ``None``: sums over up to ``m`` rows.
    """

    A1: float
    A2: float
    A3: float
    A_w: float
    m: float
    C_A: float | None = None
    C_V: float | None = None
    C_M: float | None = None

    def __post_init__(self) -> None:
        for name in ("A1", "A2", "A_w", "m"):
            check_real(name, getattr(self, name), 0.0, allow_inf=True)
        check_real("A3", self.A3, 0.0, low_inclusive=True, allow_inf=True)
        given = [name for name in ("C_A", "C_V", "C_M") if getattr(self, name) is not None]
        for name in given:
            check_real(name, getattr(self, name), 0.0, allow_inf=True)
        if given and len(given) != 3:
            raise ValueError(f"C_A, C_V and C_M are given together (normalised contributions), got only {given}")

    @property
    def normalised(self) -> bool:
        """Users' statistics are averages over their rows, clipped as a whole to ``C_A``, ``C_V`` (and ``C_M``)."""
        return self.C_A is not None

    @property
    def finite(self) -> bool:
        """Whether the sensitivities are finite (required for privacy)."""
        if self.normalised:
            return all(math.isfinite(b) for b in (self.C_A, self.C_V, self.C_M))
        return all(math.isfinite(b) for b in (self.A1, self.A2, self.A3, self.A_w, self.m))

    def sensitivities(self) -> tuple[float, float]:
        """``(Δ_A, Δ_V)``; ``inf`` if a bound is infinite (SPEC §6).

        Sums over rows: ``(m·A₁²·A_w², m·A₁·(A₂ + A₃)·A_w)``. Normalised: ``(min(C_A, A₁²·A_w²),
        min(C_V, A₁·(A₂ + A₃)·A_w))`` — a user's row average of clipped rows is within the row bounds too.
        """
        if self.normalised:
            if not all(math.isfinite(b) for b in (self.C_A, self.C_V)):
                return math.inf, math.inf
            return (min(self.C_A, self.A1**2 * self.A_w**2),
                    min(self.C_V, self.A1 * (self.A2 + self.A3) * self.A_w))
        if not self.finite:
            return math.inf, math.inf
        return self.m * self.A1**2 * self.A_w**2, self.m * self.A1 * (self.A2 + self.A3) * self.A_w

    def moments_sensitivity(self) -> float:
        """``Δ_M`` of the private moments start: ``m·A₁²·A₂²`` (sums) or ``min(C_M, A₁²·A₂²)`` (normalised)."""
        if self.normalised:
            return min(self.C_M, self.A1**2 * self.A2**2)
        return self.m * self.A1**2 * self.A2**2


def default_bounds(n_features: int, feature_scale: float = 1.0, target_scale: float = 1.0,
                   max_rows: int = 100, sparsity: int | None = None) -> ClippingBounds:
    """Data-independent default clipping bounds for features and targets of known scale.

    With ``s_x = feature_scale`` the assumed standard deviation of each feature and ``s_y = target_scale`` that of
    ``y`` (both 1 for standardised data):

    - ``A₁ = s_x·(√d + 2)``: the norm of a ``d``-dim standard Gaussian vector is ``√d ± 0.71``, so this is about
      3 standard deviations above its mean, for any ``d``;
    - ``A₂ = 3·s_y`` (three standard deviations of ``y``); ``A₃ = A₂`` (``x̃ᵀb_i`` is a part of the prediction);
    - ``A_w = 2·s_y/s_x``: ``‖w_i‖ = ‖U w_i‖ <= ‖θ_i‖``, and ``Var(y) = s_x²‖θ_i‖²`` for isotropic features gives
      ``‖θ_i‖ <= s_y/s_x``; the factor 2 leaves room for users whose ``y`` varies more than the average;
    - ``m = max_rows``.

    Parameters
    ----------
    n_features : int
        ``d`` (part of the public schema, not of the data).
    feature_scale, target_scale : float
        ``s_x``, ``s_y`` > 0, chosen without looking at the private data.
    max_rows : int
        ``m >= 1``.
    sparsity : int, optional
        ``k``; ``0`` sets ``A₃ = 0``.
    """
    d = check_positive_int("n_features", n_features)
    s_x = check_real("feature_scale", feature_scale, 0.0)
    s_y = check_real("target_scale", target_scale, 0.0)
    m = check_positive_int("max_rows", max_rows)
    A2 = 3.0 * s_y
    A3 = 0.0 if sparsity == 0 else A2
    return ClippingBounds(A1=s_x * (math.sqrt(d) + 2.0), A2=A2, A3=A3, A_w=2.0 * s_y / s_x, m=float(m))


#: Per-user contribution bounds of the normalised statistics, in units of their typical size for a user of the
#: public model (see :func:`default_contribution_bounds`). Half the typical size: on synthetic data (d = 10, r = 2,
#: k = 1, m = 20, t = 1,000 and 10,000, ε = 0.5-4) 0.5 beat 1 and matched 0.25 (most users are then clipped, which
#: only re-weights them, and the noise shrinks with the bound).
CONTRIBUTION_FACTORS = {"A": 0.5, "V": 0.5, "M": 0.5}


def default_contribution_bounds(n_features: int, feature_scale: float = 1.0, target_scale: float = 1.0
                                ) -> tuple[float, float, float]:
    """Per-user contribution bounds ``(C_A, C_V, C_M)`` of the normalised statistics from public assumptions only.

    With ``s_x = feature_scale``, ``s_y = target_scale`` and ``d`` features, a typical user of the isotropic model
    (``Cov x = s_x² I``, ``‖θ_i‖ ≈ ‖w_i‖ <= s_y/s_x``) has row averages ``Σ̂_i = X_iᵀX_i/n_i ≈ s_x² I`` with
    ``‖Σ̂_i‖_F ≈ s_x²·√d``, hence ``‖(w_i w_iᵀ) ⊗ Σ̂_i‖_F ≈ s_y²·√d``, ``‖X_iᵀ(y_i − X_i b_i) w_iᵀ/n_i‖_F ≈
    ‖Σ̂_i U w_i‖·‖w_i‖ ≈ s_y²`` and ``‖Σ_j y_ij² x_ij x_ijᵀ/n_i‖_F ≈ s_y²·s_x²·√d``. The bounds are these typical sizes
    times :data:`CONTRIBUTION_FACTORS`. Users above them are down-weighted as a whole (both parts of a user by the
    same factor, so its normal equations stay consistent: a per-user weight, not a distortion); since the noise is
    proportional to the bound, bounds at the typical size rather than the worst case keep the signal-to-noise
    ratio close to its best (every user contributing at most one unit of signal per unit of noise).
    """
    d = check_positive_int("n_features", n_features)
    s_x = check_real("feature_scale", feature_scale, 0.0)
    s_y = check_real("target_scale", target_scale, 0.0)
    f = CONTRIBUTION_FACTORS
    return (f["A"] * s_y**2 * math.sqrt(d), f["V"] * s_y**2, f["M"] * s_y**2 * s_x**2 * math.sqrt(d))


def _user_scale(norm_A: np.ndarray, norm_V: np.ndarray, delta_A: float, delta_V: float) -> np.ndarray:
    """``s_i = min(1, Δ_A/‖A_i‖, Δ_V/‖V_i‖)``, written as ``Δ/max(‖·‖, Δ)`` (exactly 1 inside, never 0/0)."""
    if math.isinf(delta_A) and math.isinf(delta_V):
        return np.ones_like(norm_A)
    return np.minimum(delta_A / np.maximum(norm_A, delta_A), delta_V / np.maximum(norm_V, delta_V))


@dataclass(frozen=True)
class ClippedStatistics:
    """A block's contribution to ``S_A`` and ``S_V`` from clipped data (SPEC §6); the ``block_statistics`` hook.

    A picklable callable ``(block, U, w, idx, val, target) -> (A_blk (dr, dr), V_blk (d, r))`` in the
    column-major vec order of :mod:`lorsa.solvers.shared_step`. ``U`` and the loop's ``target = y − X b`` are not
    used: the target is recomputed from clipped data as ``ỹ − clip(x̃ᵀb_i, A₃)``. Batched over the block's tasks.

    Parameters
    ----------
    bounds : ClippingBounds
    """

    bounds: ClippingBounds

    def user_contributions(self, block: TaskBlock, w: np.ndarray, idx: np.ndarray, val: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Clipped per-user pieces: ``G̃_i = X̃_iᵀX̃_i`` (n, d, d), ``X̃`` (n, m, d), ``t̃_i`` (n, m) and ``w̃`` (n, r),
        with each user's scale ``s_i`` already folded into ``G̃_i`` and ``t̃_i``."""
        b = self.bounds
        w = np.asarray(w, dtype=np.float64)
        failed = ~(np.all(np.isfinite(w), axis=1) & np.all(np.isfinite(val), axis=1))
        if failed.any():  # the user's per-task step failed: it contributes nothing (below)
            w = np.where(failed[:, None], 0.0, w)
            val = np.where(failed[:, None], 0.0, val)
        # float64 throughout, whatever the data's dtype: clipped in float32, a user's S_V change reached
        # 1.0000038·Δ_V; in float64 the norms and scales are exact to a few ulps (the noise covers that margin)
        X = clip_rows(np.asarray(block.X, dtype=np.float64), b.A1)
        y = clip_scalars(np.asarray(block.y, dtype=np.float64), b.A2)
        if b.A3 == 0 or idx.shape[1] == 0:  # no sparse part (k = 0): b_i = 0
            target = y
        else:
            xb = np.matmul(gather_columns(X, idx), val.astype(np.float64)[:, :, None])[:, :, 0]
            target = y - clip_scalars(xb, b.A3)
        w_c = clip_rows(w, b.A_w)
        gram = block_gram(X)
        if b.normalised:  # averages over each user's rows: weight 1/n_i (padded rows are zero)
            inv_n = 1.0 / np.maximum(block.sizes, 1).astype(np.float64)
            gram = gram * inv_n[:, None, None]
            target = target * inv_n[:, None]
        w_sq = np.sum(w_c * w_c, axis=1)
        rhs = np.matmul(target[:, None, :], X)[:, 0, :]
        # ‖(w̃w̃ᵀ) ⊗ G̃‖_F = ‖w̃‖²·‖G̃‖_F and ‖X̃ᵀt̃ w̃ᵀ‖_F = ‖X̃ᵀt̃‖·‖w̃‖: no per-user (dr)² matrix is formed
        norm_A = w_sq * np.sqrt(np.sum(gram * gram, axis=(1, 2)))
        norm_V = np.sqrt(w_sq) * np.sqrt(np.sum(rhs * rhs, axis=1))
        scale = _user_scale(norm_A, norm_V, *b.sensitivities())
        # a user whose step failed (non-finite w_i or b_i, or statistics) contributes nothing this iteration
        bad = failed | ~(np.isfinite(norm_A) & np.isfinite(norm_V))
        if bad.any():
            scale = np.where(bad, 0.0, scale)
            gram, target, w_c = (np.where(bad[:, None, None], 0.0, gram), np.where(bad[:, None], 0.0, target),
                                 np.where(bad[:, None], 0.0, w_c))
        return gram * scale[:, None, None], X, target * scale[:, None], w_c

    def __call__(self, block: TaskBlock, U: np.ndarray, w: np.ndarray, idx: np.ndarray, val: np.ndarray,
                 target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gram, X, target_c, w_c = self.user_contributions(block, w, idx, val)
        return block_exact_statistics(gram, w_c), block_rhs(X, target_c, w_c)


def symmetric_noise(rng: np.random.Generator, n: int, std: float, size: tuple[int, ...] = ()) -> np.ndarray:
    """Symmetric Gaussian noise ``(*size, n, n)``: upper triangle and diagonal i.i.d. ``N(0, std²)``, mirrored.

    Construction (a) of :mod:`lorsa.privacy.accounting`: the ℓ₂ norm of the upper triangle of a symmetric change
    is at most its Frobenius norm, so the noise-normalised sensitivity is at most ``Δ_A/std``. ``size`` draws a
    stack of independent matrices (used by the privacy audit).
    """
    G = np.triu(rng.standard_normal((*size, n, n)))
    return std * (G + np.swapaxes(np.triu(G, 1), -1, -2))


@dataclass(frozen=True)
class GaussianRelease:
    """The noisy release of ``(S_A, S_V)`` in iteration ``l`` (SPEC §6); the loop's ``release`` hook.

    Parameters
    ----------
    std_A, std_V : float
        Noise standard deviations ``Δ_A·σ_DP·√L`` and ``Δ_V·σ_DP·√L`` (0 and 0: no noise, nothing changed).
    seed : tuple of int
        Secret seed words; iteration ``l`` draws from ``default_rng([*seed, l])`` (so the release is a pure
        function of its inputs: same seed -> same model). Word ``0`` is reserved for the private start.
    floor_factor : float
        Eigenvalues of the noisy ``S_A`` are floored at ``floor_factor·std_A·√(dr)`` (default 4: twice the
        expected spectral norm ``2·std_A·√(dr)`` of the noise), which makes it positive definite and keeps the
        solve away from directions the noise dominates. Post-processing (data independent).
    """

    std_A: float
    std_V: float
    seed: tuple[int, ...]
    floor_factor: float = 4.0

    def noise(self, iteration: int, n: int, shape_V: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The noise ``(N₁ (n, n) symmetric, N₂ shape_V)`` of release ``iteration``."""
        rng = np.random.default_rng([*self.seed, int(iteration)])
        N1 = symmetric_noise(rng, n, self.std_A)
        N2 = self.std_V * rng.standard_normal(shape_V)
        return N1, N2

    def __call__(self, A: np.ndarray, V: np.ndarray, iteration: int) -> tuple[np.ndarray, np.ndarray]:
        if self.std_A == 0 and self.std_V == 0:
            return A, V
        N1, N2 = self.noise(iteration, A.shape[0], V.shape)
        A_noisy = 0.5 * (A + A.T) + N1
        vals, vecs = np.linalg.eigh(A_noisy)
        floor = self.floor_factor * self.std_A * math.sqrt(A.shape[0])
        if vals[0] < floor:
            A_noisy = (vecs * np.maximum(vals, floor)) @ vecs.T
            A_noisy = 0.5 * (A_noisy + A_noisy.T)
        return A_noisy, V + N2


@functools.lru_cache(maxsize=256)
def _calibrated_sigma(epsilon: float, delta: float, n_iter: int, accountant: str, init_share: float | None,
                      share_A: float = 0.5) -> float:
    """:func:`calibrate_noise` is deterministic and takes seconds (PLD): remembered per target."""
    return calibrate_noise(epsilon, delta, n_iter, accountant, init_share=init_share, share_A=share_A)


def private_release(bounds: ClippingBounds, epsilon: float, delta: float, n_iter: int, accountant: str = "pld",
                    init_share: float | None = None, seed: tuple[int, ...] = (0,), known_seed: bool = False,
                    share_A: float = 0.5) -> tuple[GaussianRelease, PrivacyReport, float | None]:
    """Calibrate the mechanism to a target ``(ε, δ)`` and account it (SPEC §6).

    σ_DP comes from :func:`lorsa.privacy.calibrate_noise` for ``2L`` Gaussian releases (plus a private start
    when ``init_share`` is given); each release then has noise multiplier ``z = σ_DP·√L`` and noise std
    ``Δ_A·z``, ``Δ_V·z``.

    Parameters
    ----------
    bounds : ClippingBounds
        Finite bounds.
    epsilon, delta : float
        Target ε > 0, δ in (0, 1).
    n_iter : int
        ``L``.
    accountant : {"pld", "rdp"}
    init_share : float, optional
        Share of the zCDP budget for a private method-of-moments start.
    seed : tuple of int
        Secret seed words of the noise.
    known_seed : bool
        The seed was derived from a known ``random_state`` (a reproducible, NOT private run): said in the report.

    Returns
    -------
    release : GaussianRelease
    report : PrivacyReport
    init_noise_multiplier : float or None
        ``z₀`` for :func:`private_moments_basis` (``None`` without ``init_share``).
    """
    if not bounds.finite:
        raise ValueError(f"a finite epsilon needs finite clipping bounds, got {bounds}")
    sigma = _calibrated_sigma(epsilon, delta, n_iter, accountant, init_share, share_A)
    z0 = None if init_share is None else init_noise_multiplier_for_share(sigma, init_share)
    delta_A, delta_V = bounds.sensitivities()
    z_A, z_V = split_noise_multipliers(sigma, n_iter, share_A)
    report = make_privacy_report(sigma, n_iter, delta, accountant=accountant, epsilon_target=epsilon,
                                 init_noise_multiplier=z0, A1=bounds.A1, A2=bounds.A2, A3=bounds.A3,
                                 A_w=bounds.A_w, m=int(bounds.m), sensitivity_A=delta_A, sensitivity_V=delta_V,
                                 known_seed=known_seed, share_A=share_A, normalised=bounds.normalised)
    margin = 1.0 + ROUNDING_MARGIN
    return GaussianRelease(delta_A * z_A * margin, delta_V * z_V * margin, tuple(seed)), report, z0


def private_moments_basis(data: RaggedTasks, rank: int, bounds: ClippingBounds, noise_multiplier: float | None,
                          seed: tuple[int, ...]) -> np.ndarray:
    """Private method-of-moments start (SPEC §4, §6): top-``r`` eigenvectors of a noisy clipped moment matrix.

    ``M = Σ_i clip_F(Σ_j ỹ_ij² x̃_ij x̃_ijᵀ, Δ_M) + N₀`` with ``Δ_M = m·A₁²·A₂²`` (one user changes ``M`` by at most
    ``Δ_M`` in Frobenius norm) and ``N₀`` symmetric with std ``Δ_M·z₀``: one Gaussian release with noise
    multiplier ``z₀``, accounted by :func:`lorsa.privacy.calibrate_noise` (``init_share``). The ``1/N`` of the
    paper's ``M`` does not change its eigenvectors and is left out (``N`` is not public).

    Parameters
    ----------
    data : RaggedTasks
    rank : int
        ``r``.
    bounds : ClippingBounds
        Finite bounds (``A₁``, ``A₂``, ``m`` are used).
    noise_multiplier : float or None
        ``z₀ > 0``; ``None`` adds no noise (NOT private: the clipped, non-private method of moments).
    seed : tuple of int
        Secret seed words (draws from ``default_rng([*seed, 0])``).

    Returns
    -------
    ndarray of shape (d, r), orthonormal columns.
    """
    return noisy_moments_basis(clipped_moments(data.blocks, data.n_features, bounds), rank, bounds,
                               noise_multiplier, seed)


def clipped_moments(blocks: list, n_features: int, bounds: ClippingBounds) -> np.ndarray:
    """``Σ_i clip_F(Σ_j ỹ_ij² x̃_ij x̃_ijᵀ, Δ_M)`` over the users of ``blocks`` (row blocks): additive over any split
    of the users, so a distributed engine computes it where the rows are (:func:`private_moments_basis`)."""
    delta_M = bounds.moments_sensitivity()
    M = np.zeros((n_features, n_features))
    for block in blocks:  # a loop over blocks, not tasks
        X = clip_rows(np.asarray(block.X, dtype=np.float64), bounds.A1)
        Z = X * clip_scalars(np.asarray(block.y, dtype=np.float64), bounds.A2)[:, :, None]
        M_i = block_gram(Z)
        if bounds.normalised:
            M_i = M_i / np.maximum(block.sizes, 1).astype(np.float64)[:, None, None]
        M += clip_frobenius(M_i, delta_M).sum(axis=0)
    return M


def noisy_moments_basis(M: np.ndarray, rank: int, bounds: ClippingBounds, noise_multiplier: float | None,
                        seed: tuple[int, ...]) -> np.ndarray:
    """The release of :func:`private_moments_basis`: ``M`` (:func:`clipped_moments`) plus the calibrated noise,
    then its top-``r`` eigenvectors (on the driver only)."""
    d = M.shape[0]
    delta_M = bounds.moments_sensitivity()
    M = np.array(M, dtype=np.float64)
    if noise_multiplier is not None:
        z0 = check_real("noise_multiplier", noise_multiplier, 0.0)
        if math.isinf(delta_M):
            raise ValueError("a private method-of-moments start needs finite clipping bounds A1, A2 and m")
        M += symmetric_noise(np.random.default_rng([*seed, 0]), d, delta_M * z0)
    vals, vecs = np.linalg.eigh(M)
    Q, _ = orthonormalize(vecs[:, ::-1][:, :rank])
    return Q
