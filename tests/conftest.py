"""Shared fixtures and helpers for lorsa's tests."""

from __future__ import annotations

import numpy as np
import pytest

from lorsa import make_lrs_regression


def relative_parameter_error(est, problem) -> float:
    """``||U W^T + B - Theta*||_F / ||Theta*||_F`` (U and W are identified only up to rotation, Theta is not)."""
    theta = est.U_ @ est.W_.T + est.B_.toarray()
    return float(np.linalg.norm(theta - problem.theta) / np.linalg.norm(problem.theta))


@pytest.fixture
def torch_one_thread():
    """torch pinned to one thread for the test, restored after (torch imported only by the tests that ask)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def paper_problem():
    """SPEC §8: d=150, r=1, k=10, zeta=5, m=100, t=75, noiseless."""
    return make_lrs_regression(n_tasks=75, n_samples=100, n_features=150, rank=1, sparsity=10, row_sparsity=5,
                               random_state=0)


@pytest.fixture(scope="session")
def rank3_problem():
    """A rank-3 setting with many small tasks: d=50, r=3, k=3, m=60, t=400, noiseless."""
    return make_lrs_regression(n_tasks=400, n_samples=60, n_features=50, rank=3, sparsity=3, row_sparsity=None,
                               random_state=1)


@pytest.fixture(scope="session")
def small_problem():
    """A quick problem for API tests: d=20, r=2, k=2, m=30, t=40, noiseless."""
    return make_lrs_regression(n_tasks=40, n_samples=30, n_features=20, rank=2, sparsity=2, row_sparsity=None,
                               random_state=2)
