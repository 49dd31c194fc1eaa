"""User-level differential privacy for AMHT-LRS in the billboard model (SPEC §6).

The estimator :class:`PrivateLRSRegressor` (:mod:`lorsa.privacy.estimator`) and its building blocks: clipping
(:mod:`lorsa.privacy.clipping`), the Gaussian mechanism on the clipped statistics (:mod:`lorsa.privacy.mechanism`),
accounting (:mod:`lorsa.privacy.accounting`) and the report (:mod:`lorsa.privacy.report`). The accounting
functions need the optional dependency dp-accounting (``pip install "lorsa[dp]"``), which is imported lazily:
importing this package works without it.

Guarantee in one sentence: the published U is (ε, δ)-DP with respect to adding or removing one user's
(task's) entire data; each user's w_i and b_i is computed by that user from U and stays with them (joint
DP); giving all W_ and B_ to one party is outside the guarantee.
"""

from lorsa.privacy.accounting import (
    ACCOUNTANTS,
    build_dp_event,
    calibrate_noise,
    epsilon_for_noise,
    init_noise_multiplier_for_share,
    noise_std,
    release_noise_multiplier,
    zcdp_epsilon,
    zcdp_rho,
)
from lorsa.privacy.clipping import clip_frobenius, clip_rows, clip_scalars, sensitivities
from lorsa.privacy.estimator import PrivateLRSRegressor
from lorsa.privacy.mechanism import (
    ClippedStatistics,
    ClippingBounds,
    GaussianRelease,
    default_bounds,
    private_moments_basis,
    private_release,
    symmetric_noise,
)
from lorsa.privacy.report import PrivacyReport, make_privacy_report

__all__ = [
    "ACCOUNTANTS",
    "ClippedStatistics",
    "ClippingBounds",
    "GaussianRelease",
    "PrivacyReport",
    "PrivateLRSRegressor",
    "build_dp_event",
    "calibrate_noise",
    "clip_frobenius",
    "clip_rows",
    "clip_scalars",
    "default_bounds",
    "epsilon_for_noise",
    "init_noise_multiplier_for_share",
    "make_privacy_report",
    "noise_std",
    "private_moments_basis",
    "private_release",
    "release_noise_multiplier",
    "sensitivities",
    "symmetric_noise",
    "zcdp_epsilon",
    "zcdp_rho",
]
