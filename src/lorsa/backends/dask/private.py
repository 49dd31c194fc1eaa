"""``PrivateLRSRegressor.fit`` on dask collections: clipping on the workers, noise on the driver only (SPEC §6).

The private fit runs the same loop as in memory (:meth:`lorsa.privacy.PrivateLRSRegressor._private_plan`): each
partition's blocks compute their users' clipped statistics with the mechanism's own
:class:`lorsa.privacy.mechanism.ClippedStatistics` where the rows live (a user's rows all sit in one partition,
so a user's whole contribution is clipped together), the driver sums them and adds the calibrated Gaussian noise
(the release hook never leaves the driver: workers get the settings without it, and never see the noise seed).
The per-user overflow guard also runs on the workers, per user, and so does the private method-of-moments start:
each partition sums its users' clipped moment matrices (:func:`lorsa.privacy.mechanism.clipped_moments`), the
driver adds the noise (:func:`lorsa.privacy.mechanism.noisy_moments_basis`). Nothing data-dependent about the
cluster run is kept on the estimator (no partition sizes, no ``distributed_``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ... import _validation as v
from .estimator import current_client, run_resident
from .ingest import as_frame, ingest

__all__ = ["fit_private_dask"]


def _clipped_moments(data: Any, d: int, bounds: Any) -> np.ndarray:
    from ...privacy.mechanism import clipped_moments

    return clipped_moments(data.blocks(-1), d, bounds)


def fit_private_dask(est: Any, X: Any, y: Any, tasks: Any, callback: Callable[[int, float, float], Any] | None
                     ) -> Any:
    """:meth:`lorsa.privacy.PrivateLRSRegressor.fit` on dask collections (see the module docstring)."""
    from ...privacy.estimator import _public_callback
    from ...privacy.mechanism import noisy_moments_basis

    client = current_client()
    frame, features = as_frame(X, y, tasks)
    d = len(features)
    config, dtype = est._check_params(d)
    eps, delta, bounds = est._check_privacy(d)
    rng = v.check_random_state(est.random_state)
    moments = isinstance(est.init, str) and est.init == "moments"
    U0, config, release, z0, noise_seed = est._private_plan(config, eps, delta, bounds, rng, moments,
                                                            np.zeros((0, d)), np.zeros(0))
    split = est.sample_split or 1
    seed = int(rng.integers(0, 2**63)) if split > 1 else None
    data = ingest(client, frame, features, str(np.dtype(dtype)), "rows", split, seed, False, private=True)
    if moments:   # the users' clipped moments summed where their rows are, the noise added here
        parts = client.gather([client.submit(_clipped_moments, p, d, bounds, pure=False) for p in data.partitions])
        M = np.zeros((d, d))
        for part in parts:
            M += part
        U0 = noisy_moments_basis(M, config.rank, bounds, z0, noise_seed)
    result, _ = run_resident(client, data, U0, config, split, _public_callback(callback, est.verbose))
    est._set_private_fit(result, data.labels, d, config, release, bounds)
    if not hasattr(X, "chunks"):
        est.feature_names_in_ = np.asarray(features, dtype=object)
    return est
