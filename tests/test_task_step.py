"""The per-task step: the row and Gram forms agree, masks and ridge behave, supports are k-sparse."""

from __future__ import annotations

import numpy as np
import pytest

from lorsa.data import GramBlock, RaggedTasks
from lorsa.solvers.task_step import TaskStepConfig, allowed_nonzeros, task_step
from lorsa.solvers.task_systems import GramSystem, RowSystem


def _block(seed: int, n: int = 30, m: int = 25, d: int = 12):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, m + 1, size=n)  # some tasks have fewer rows than r + k
    task = np.repeat(np.arange(n), sizes)
    X = rng.standard_normal((task.size, d))
    y = rng.standard_normal(task.size)
    data = RaggedTasks.from_arrays(X, y, task, n, growth=100.0, block_elements=10**9)
    assert len(data.blocks) == 1
    return data.blocks[0], rng


@pytest.mark.parametrize("method", ["sp", "htp", "iht"])
@pytest.mark.parametrize("ridge", [0.0, 0.3])
@pytest.mark.parametrize("fit_w", [True, False])
def test_row_and_gram_forms_agree(method, ridge, fit_w):
    block, rng = _block(0)
    n, _, d = block.X.shape
    r, k = 2, 3
    U, _ = np.linalg.qr(rng.standard_normal((d, r)))
    w = rng.standard_normal((n, r))
    idx = np.stack([rng.choice(d, k, replace=False) for _ in range(n)])
    val = rng.standard_normal((n, k))
    active = np.arange(k)[None, :] < allowed_nonzeros(block.sizes, r, k)[:, None]
    val *= active
    cfg = TaskStepConfig(method=method, ridge=ridge, fit_w=fit_w, n_steps=3)
    rows = task_step(RowSystem(block.X, block.y, U), w, idx, val, active, cfg, sizes=block.sizes)
    gram_block = GramBlock.from_rows(block)
    gram = task_step(GramSystem(gram_block.G, gram_block.c, gram_block.yy, U), w, idx, val, active, cfg,
                     sizes=block.sizes)
    # Same normal equations, assembled differently: round-off level differences only, on every task whose
    # systems are determined (m_i >= r + 2k: SP's union solve). Underdetermined tasks take minimum-norm solutions
    # whose thresholding may break ties differently; there only finiteness and sparsity are required.
    well = block.sizes >= r + 2 * k
    assert well.sum() >= n // 2
    np.testing.assert_allclose(gram.w[well], rows.w[well], atol=1e-8)
    dense = np.zeros((2, n, d))
    for s, res in enumerate((rows, gram)):
        np.put_along_axis(dense[s], res.idx, res.val, axis=1)
    np.testing.assert_allclose(dense[1][well], dense[0][well], atol=1e-8)
    assert np.all(np.isfinite(dense)) and np.all(np.isfinite(gram.w))
    np.testing.assert_allclose(gram.loss_before, rows.loss_before, rtol=1e-8, atol=1e-8)
    assert rows.loss_after <= rows.loss_before + 1e-9 or method == "iht"
    assert np.all((np.abs(dense[0]) > 0).sum(axis=1) <= active.sum(axis=1))
    if not fit_w:
        assert np.array_equal(rows.w, w)


def test_subspace_pursuit_finds_planted_support_in_one_step():
    """Noiseless task with the true U: one SP step from b = 0 recovers (w_i, b_i) exactly."""
    rng = np.random.default_rng(3)
    n, m, d, r, k = 50, 40, 30, 2, 3
    U, _ = np.linalg.qr(rng.standard_normal((d, r)))
    W = rng.standard_normal((n, r))
    B = np.zeros((n, d))
    for a in range(n):
        B[a, rng.choice(d, k, replace=False)] = rng.choice([-1, 1], k) * rng.uniform(1, 2, k)
    X = rng.standard_normal((n, m, d))
    y = np.einsum("nmd,nd->nm", X, W @ U.T + B)
    res = task_step(RowSystem(X, y, U), np.zeros((n, r)), np.zeros((n, k), dtype=np.int64), np.zeros((n, k)),
                    np.ones((n, k), dtype=bool), TaskStepConfig(method="sp", n_steps=3))
    dense = np.zeros((n, d))
    np.put_along_axis(dense, res.idx, res.val, axis=1)
    np.testing.assert_allclose(dense, B, atol=1e-10)
    np.testing.assert_allclose(res.w, W, atol=1e-10)
