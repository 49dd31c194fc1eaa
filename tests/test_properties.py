"""Invariants on random inputs (hypothesis): U^T U = I, k-sparse columns, finite outputs."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lorsa import LRSRegressor


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    d=st.integers(2, 12), r=st.integers(1, 4), k=st.integers(0, 5), t=st.integers(1, 8),
    seed=st.integers(0, 2**31 - 1), solver=st.sampled_from(["htp", "iht"]),
    u_solver=st.sampled_from(["exact", "cg"]), ridge=st.sampled_from([0.0, 0.5]),
)
def test_invariants_on_random_data(d, r, k, t, seed, solver, u_solver, ridge):
    r = min(r, d - 1)
    k = min(k, d)
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 15, size=t)
    tasks = np.repeat(np.arange(t), sizes)
    X = rng.standard_normal((tasks.size, d)) * rng.uniform(0.1, 10)
    y = rng.standard_normal(tasks.size) * rng.uniform(0.1, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tiny tasks warn by design
        est = LRSRegressor(rank=r, sparsity=k, solver=solver, u_solver=u_solver, ridge=ridge, max_iter=4,
                           random_state=seed).fit(X, y, tasks=tasks)
    # orthonormal to round-off of one QR (1e-10 is generous for d <= 12)
    np.testing.assert_allclose(est.U_.T @ est.U_, np.eye(r), atol=1e-10)
    assert est.B_.shape == (d, t) and est.W_.shape == (t, r)
    assert est.B_.getnnz(axis=0).max(initial=0) <= k
    assert np.all(np.isfinite(est.W_)) and np.all(np.isfinite(est.B_.data))
    assert np.all(np.isfinite(est.loss_history_))
    assert np.all(np.isfinite(est.predict(X, tasks)))
