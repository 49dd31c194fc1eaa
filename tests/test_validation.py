"""Bad input gets a clear error naming the argument, the allowed range and the value received."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from lorsa import LRSRegressor


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8))
    y = rng.standard_normal(60)
    tasks = np.repeat(np.arange(6), 10)
    return X, y, tasks


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X(data, bad):
    X, y, tasks = data
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match=r"X must contain only finite values.*at row 3, column 2"):
        LRSRegressor(rank=2).fit(X, y, tasks=tasks)


def test_non_finite_y(data):
    X, y, tasks = data
    y = y.copy()
    y[5] = np.nan
    with pytest.raises(ValueError, match=r"y must contain only finite values.*NaN"):
        LRSRegressor(rank=2).fit(X, y, tasks=tasks)


def test_mismatched_lengths(data):
    X, y, tasks = data
    with pytest.raises(ValueError, match=r"y has 59 entries but X has 60 rows"):
        LRSRegressor(rank=2).fit(X, y[:-1], tasks=tasks)
    with pytest.raises(ValueError, match=r"tasks has 59 labels but X has 60 rows"):
        LRSRegressor(rank=2).fit(X, y, tasks=tasks[:-1])


@pytest.mark.parametrize("rank", [8, 9, 0, -1])
def test_rank_out_of_range(data, rank):
    X, y, tasks = data
    with pytest.raises(ValueError, match=rf"rank must be in \[1, 7\], got {rank}"):
        LRSRegressor(rank=rank).fit(X, y, tasks=tasks)


def test_sparsity_out_of_range(data):
    X, y, tasks = data
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 8\], got 9"):
        LRSRegressor(rank=2, sparsity=9).fit(X, y, tasks=tasks)


def test_wrong_types(data):
    X, y, tasks = data
    with pytest.raises(TypeError, match=r"rank must be an integer, got 2.5"):
        LRSRegressor(rank=2.5).fit(X, y, tasks=tasks)
    with pytest.raises(ValueError, match=r"u_solver must be one of \['auto', 'exact', 'cg'\], got 'fast'"):
        LRSRegressor(rank=2, u_solver="fast").fit(X, y, tasks=tasks)
    with pytest.raises(ValueError, match=r"ridge must be in \[0, inf\], got -1"):
        LRSRegressor(rank=2, ridge=-1.0).fit(X, y, tasks=tasks)
    with pytest.raises(TypeError, match=r"X must be numeric"):
        LRSRegressor(rank=2).fit(np.array([["a", "b"], ["c", "d"]]), [1.0, 2.0], tasks=[0, 1])


def test_no_tasks_no_rows():
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        LRSRegressor(rank=1).fit(np.zeros((0, 5)), np.zeros(0), tasks=np.zeros(0))
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 5)), rng.standard_normal(6)
    one = LRSRegressor(rank=1).fit(X, y)  # tasks omitted: one task, labelled 0
    assert one.tasks_.tolist() == [0]
    np.testing.assert_array_equal(one.predict(X), one.predict(X, tasks=np.zeros(6, dtype=int)))
    two = LRSRegressor(rank=1).fit(X, y, tasks=[0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match=r"tasks is required: this LRSRegressor was fitted on 2 tasks"):
        two.predict(X)


def test_unknown_task_at_predict_is_named(data):
    X, y, tasks = data
    labels = np.array([f"user{i}" for i in tasks])
    est = LRSRegressor(rank=2, sparsity=1, max_iter=3).fit(X, y, tasks=labels)
    with pytest.raises(ValueError, match=r"never fitted: 'mallory'"):
        est.predict(X[:2], tasks=["user0", "mallory"])
    with pytest.raises(ValueError, match=r"must hold string labels"):
        est.predict(X[:2], tasks=[0, 1])
    with pytest.raises(ValueError, match=r"X has 7 features, but LRSRegressor is expecting 8 features"):
        est.predict(X[:2, :7], tasks=["user0", "user1"])


def test_predict_before_fit():
    with pytest.raises(NotFittedError, match="not fitted"):
        LRSRegressor().predict(np.zeros((1, 3)), tasks=[0])


def test_mixed_label_types_refused(data):
    X, y, tasks = data
    mixed = np.array([1, "a"] * 30, dtype=object)
    with pytest.raises(TypeError, match=r"only integers or only strings"):
        LRSRegressor(rank=2).fit(X, y, tasks=mixed)


def test_bad_init_shape(data):
    X, y, tasks = data
    with pytest.raises(ValueError, match=r"init must have shape \(n_features, rank\) = \(8, 2\), got \(8, 3\)"):
        LRSRegressor(rank=2, init=np.eye(8)[:, :3]).fit(X, y, tasks=tasks)


def test_set_params_unknown():
    with pytest.raises(ValueError, match="Invalid parameter 'rnak'"):
        LRSRegressor().set_params(rnak=3)
