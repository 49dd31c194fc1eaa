"""``PrivateLRSRegressor.fit`` on dask collections: clipping on the workers, noise on the driver only (SPEC §6).

The private fit runs the same loop as in memory (:meth:`lorsa.privacy.PrivateLRSRegressor._private_plan`): each
partition's blocks compute their users' clipped statistics with the mechanism's own
:class:`lorsa.privacy.mechanism.ClippedStatistics` where the rows live (a user's rows all sit in one partition,
so a user's whole contribution is clipped together), the driver sums them and adds the calibrated Gaussian noise
(the release hook never leaves the driver: workers get the settings without it, and never see the noise seed).
The per-user overflow guard also runs on the workers, per user. Not supported on dask: ``init="moments"`` (the
private method of moments needs every row in one process) — a clear error says so. Nothing data-dependent about
the cluster run is kept on the estimator (no partition sizes, no ``distributed_``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ... import _validation as v
from .estimator import current_client, run_resident
from .ingest import as_frame, ingest

__all__ = ["fit_private_dask"]


def fit_private_dask(est: Any, X: Any, y: Any, tasks: Any, callback: Callable[[int, float, float], Any] | None
                     ) -> Any:
    """:meth:`lorsa.privacy.PrivateLRSRegressor.fit` on dask collections (see the module docstring)."""
    from ...privacy.estimator import _public_callback

    if isinstance(est.init, str) and est.init == "moments":
        raise NotImplementedError("PrivateLRSRegressor on dask collections does not support init='moments' (the "
                                  "private method of moments needs all rows in one process); use init='random' "
                                  "or a data-independent orthonormal array")
    client = current_client()
    frame, features = as_frame(X, y, tasks)
    d = len(features)
    config, dtype = est._check_params(d)
    eps, delta, bounds = est._check_privacy(d)
    rng = v.check_random_state(est.random_state)
    U0, config, release, _, _ = est._private_plan(config, eps, delta, bounds, rng, False, np.zeros((0, d)),
                                                 np.zeros(0))
    split = est.sample_split or 1
    seed = int(rng.integers(0, 2**63)) if split > 1 else None
    data = ingest(client, frame, features, str(np.dtype(dtype)), "rows", split, seed, False, private=True)
    result, _ = run_resident(client, data, U0, config, split, _public_callback(callback, est.verbose))
    est._set_private_fit(result, data.labels, d, config, release, bounds)
    if not hasattr(X, "chunks"):
        est.feature_names_in_ = np.asarray(features, dtype=object)
    return est
