"""The ragged layout and the batched kernels."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lorsa.data import RaggedTasks, encode_tasks, split_rows
from lorsa.kernels import batched_solve, gather_columns, topk_abs


def test_blocks_hold_every_row_once_with_bounded_padding():
    rng = np.random.default_rng(0)
    sizes = np.r_[1, 1, 2, 3, 7, 50, 51, 60, 1000, 100_000]
    task = rng.permutation(np.repeat(np.arange(sizes.size), sizes))
    X = rng.standard_normal((task.size, 4))
    y = rng.standard_normal(task.size)
    data = RaggedTasks.from_arrays(X, y, task, sizes.size, growth=1.25, block_elements=2**16)
    assert data.n_samples == task.size and np.array_equal(data.counts, sizes)
    seen = np.concatenate([b.task_ids for b in data.blocks])
    assert np.array_equal(np.sort(seen), np.arange(sizes.size))
    for b in data.blocks:
        assert b.X.size <= 2**16 or b.n_tasks == 1
        assert b.n_rows <= 1.25 * b.sizes.min() + 1  # padding waste bounded by the growth factor
        for a, i in enumerate(b.task_ids):
            rows = X[task == i]  # stable order within a task is preserved
            np.testing.assert_array_equal(b.X[a, : b.sizes[a]], rows)
            np.testing.assert_array_equal(b.y[a, : b.sizes[a]], y[task == i])
            assert not np.any(b.X[a, b.sizes[a]:])
    # no padding of everything to the largest task: storage close to N * d
    assert data.padded_elements <= 1.3 * X.size


def test_split_batches_are_disjoint_and_balanced():
    rng = np.random.default_rng(1)
    sizes = np.array([5, 6, 9, 2])
    task = np.repeat(np.arange(4), sizes)
    X = np.arange(task.size, dtype=float)[:, None] * np.ones((1, 3))
    data = RaggedTasks.from_arrays(X, X[:, 0], task, 4)
    parts = data.split(3, rng)
    total = np.concatenate([np.concatenate([b.y[b.y != 0] for b in p.blocks]) for p in parts])
    assert sorted(total.tolist()) == sorted(X[1:, 0].tolist())  # row 0 has y = 0 (padding-indistinguishable)
    counts = np.stack([p.counts for p in parts])
    assert np.all(counts.max(axis=0) - counts.min(axis=0) <= 1)


def test_encode_tasks_and_split_rows():
    labels = np.array(["b", "a", "b", "c"])
    unique, index = encode_tasks(labels)
    assert list(unique) == ["a", "b", "c"] and list(index) == [1, 0, 1, 2]
    mask = split_rows(np.repeat(np.arange(3), [1, 4, 10]), 0.5, np.random.default_rng(0))
    assert mask[:1].sum() == 0 and mask[1:5].sum() == 2 and mask[5:].sum() == 5


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 8), st.integers(0, 2**31 - 1), st.booleans())
def test_batched_solve_matches_lstsq(n, p, seed, singular):
    rng = np.random.default_rng(seed)
    m = p - 1 if singular and p > 1 else p + 3
    Z = rng.standard_normal((n, m, p))
    t = rng.standard_normal((n, m))
    G = np.matmul(np.swapaxes(Z, 1, 2), Z)
    rhs = np.einsum("nmp,nm->np", Z, t)
    x = batched_solve(G, rhs)
    for a in range(n):
        ref = np.linalg.lstsq(Z[a], t[a], rcond=None)[0]  # minimum-norm solution when rank deficient
        np.testing.assert_allclose(x[a], ref, atol=1e-7 * (1 + np.abs(ref).max()))


def test_topk_and_gather():
    v = np.array([[0.1, -3.0, 2.0, 0.0], [1.0, 1.0, -1.0, 5.0]])
    idx = topk_abs(v, 2)
    assert idx.tolist() == [[1, 2], [3, 0]]
    X = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    np.testing.assert_array_equal(gather_columns(X, idx)[1], X[1][:, [3, 0]])
    assert topk_abs(v, 0).shape == (2, 0)
