"""The dask engine (lorsa.backends.dask) against the in-memory engine, on a LocalCluster the tests start.

Agreement: the same data and seed give predictions within 1e-8 of the in-memory fit (only the summation order of
the statistics differs: round-off, measured ~1e-14 here), and a second dask run gives identical bits (fixed
reduction order). Sizes are small: the point is the engine's plumbing, not speed (benchmarks/distributed.py).
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

from lorsa import LRSRegressor, make_lrs_regression  # noqa: E402

D = 10
FEATURES = [f"f{j}" for j in range(D)]
# 1e-8 is the bar; the engines differ only by the order of floating-point sums (observed ~1e-14)
AGREE = 1e-8


@pytest.fixture(scope="module")
def client():
    with dask.config.set({"distributed.scheduler.allowed-failures": 10}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                               memory_limit="2GiB")
        with Client(cluster) as c:
            yield c
        cluster.close()


def _unequal(low: int):
    sizes = np.random.default_rng(5).integers(low, 30, size=100)
    return make_lrs_regression(n_tasks=100, n_samples=sizes, n_features=D, rank=1, sparsity=2, row_sparsity=None,
                               random_state=2)


@pytest.fixture(scope="module")
def problem():
    """Unequal task sizes, 6 to 29 rows at d = 10 (row blocks and Gram blocks under layout='auto'), noiseless.
    Tasks need m_i > r + k here: a task with m_i = r + k is interpolated by any support, which round-off then picks
    (even the in-memory engine's answer changes with the row order)."""
    return _unequal(6)


@pytest.fixture(scope="module")
def recoverable():
    """12 to 29 rows per task: AMHT-LRS recovers the noiseless model (objective ~1e-13)."""
    return _unequal(12)


def _table(P, string_ids: bool = False, seed: int = 0) -> pd.DataFrame:
    """The problem's rows shuffled (a task's rows end up in several partitions), with a task column."""
    perm = np.random.default_rng(seed).permutation(P.X.shape[0])
    df = pd.DataFrame(P.X[perm], columns=FEATURES)
    df["y"] = P.y[perm]
    df["task"] = np.array([f"user-{t:03d}" for t in P.tasks[perm]]) if string_ids else P.tasks[perm]
    return df


def _pair(df: pd.DataFrame, npartitions: int = 4, **params):
    """(in-memory fit, dask fit) of the same estimator on the same rows."""
    ref = LRSRegressor(**params).fit(df[FEATURES], df["y"].to_numpy(), df["task"].to_numpy())
    ddf = dd.from_pandas(df, npartitions=npartitions, sort=False)
    est = LRSRegressor(**params).fit(ddf[FEATURES], ddf["y"], tasks=ddf["task"])
    return ref, est, ddf


def _assert_agree(ref, est, df, same_iterations=True):
    np.testing.assert_array_equal(est.tasks_, ref.tasks_)
    p_ref = ref.predict(df[FEATURES], df["task"].to_numpy())
    p_dask = est.predict(df[FEATURES], df["task"].to_numpy())
    assert np.max(np.abs(p_ref - p_dask)) <= AGREE
    if same_iterations:
        assert est.n_iter_ == ref.n_iter_


@pytest.mark.parametrize("layout,u_solver", [("auto", "exact"), ("rows", "cg"), ("gram", "exact")])
def test_agrees_with_in_memory(client, problem, recoverable, layout, u_solver):
    """Six iterations of the same fit (agreement does not need convergence; it keeps the test short).

    The gram case runs to convergence instead: with Gram blocks subspace pursuit restarts stuck tasks early in the
    fit, and its test compares a task with the median of its block (issue 14's rule), whose tasks differ between a
    partition and the whole data; the iterates then differ on the way (1.7e-3 after 6 iterations here) and agree
    where both fits end, at the noiseless optimum."""
    gram = layout == "gram"
    df = _table(recoverable if gram else problem, string_ids=gram)
    ref, est, _ = _pair(df, rank=1, sparsity=2, layout=layout, u_solver=u_solver, engine="numpy", random_state=0,
                        max_iter=100 if gram else 6)
    _assert_agree(ref, est, df, same_iterations=not gram)
    assert est.distributed_["shuffled"] and est.distributed_["n_partitions"] >= 2
    assert est.tasks_.dtype.kind == ("U" if gram else "i")


def test_same_bits_twice_and_saved_model(client, problem, tmp_path):
    df = _table(problem)
    ddf = dd.from_pandas(df, npartitions=3, sort=False)
    fits = [LRSRegressor(rank=1, sparsity=2, engine="numpy", max_iter=4, random_state=1).fit(ddf[FEATURES], ddf["y"],
                                                                                   tasks=ddf["task"])
            for _ in range(2)]
    np.testing.assert_array_equal(fits[0].U_, fits[1].U_)
    np.testing.assert_array_equal(fits[0].W_, fits[1].W_)
    assert (fits[0].B_ != fits[1].B_).nnz == 0
    fits[0].save(tmp_path / "m.npz")
    loaded = LRSRegressor.load(tmp_path / "m.npz")
    X, t = df[FEATURES], df["task"].to_numpy()
    np.testing.assert_array_equal(loaded.predict(X, t), fits[0].predict(X, t))


def test_sample_splitting_is_reproducible(client, recoverable):
    """Batches are drawn per partition (seeded by the estimator's seed and the partition): not the in-memory batches,
    but the same ones on every run, and the fit descends as in memory."""
    df = _table(recoverable)
    ddf = dd.from_pandas(df, npartitions=3, sort=False)
    fits = [LRSRegressor(rank=1, sparsity=2, sample_split=2, engine="numpy", max_iter=5, tol=0.0,
                         random_state=3).fit(ddf[FEATURES], ddf["y"], tasks=ddf["task"]) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].U_, fits[1].U_)
    assert fits[0].loss_history_[-1] < 0.05 * fits[0].initial_loss_   # measured 0.016 after 5 iterations


def test_row_sparsity_random_init_and_compiled_engine(client):
    P = make_lrs_regression(n_tasks=30, n_samples=20, n_features=D, rank=1, sparsity=2, row_sparsity=8,
                            random_state=4)
    df = _table(P)
    ref, est, _ = _pair(df, rank=1, sparsity=2, row_sparsity=8, init="random", engine="auto", random_state=2,
                        max_iter=6)
    _assert_agree(ref, est, df)


def test_dask_arrays_and_presorted_table(client, problem):
    """Arrays chunked alike; rows grouped by task in the input (whole tasks per chunk): no shuffle."""
    X, y, tasks = problem.X, problem.y, problem.tasks
    ref = LRSRegressor(rank=1, sparsity=2, engine="numpy", max_iter=6, random_state=0).fit(X, y, tasks)
    bounds = np.flatnonzero(np.r_[True, tasks[1:] != tasks[:-1]])
    chunks = tuple(np.diff(np.r_[bounds[::15], X.shape[0]]).tolist())
    est = LRSRegressor(rank=1, sparsity=2, engine="numpy", max_iter=6, random_state=0).fit(
        da.from_array(X, chunks=(chunks, D)), da.from_array(y, chunks=(chunks,)),
        da.from_array(tasks, chunks=(chunks,)))
    assert not est.distributed_["shuffled"]
    np.testing.assert_allclose(est.predict(X, tasks), ref.predict(X, tasks), rtol=0, atol=AGREE)
    lazy = est.predict(da.from_array(X, chunks=(chunks, D)), da.from_array(tasks, chunks=(chunks,)))
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), est.predict(X, tasks), rtol=0, atol=1e-12)  # chunked BLAS calls


def test_predict_is_lazy_and_aligned_adapt_on_workers(client, recoverable):
    """Fitted to convergence (string ids put tasks with Gram blocks in other blocks than in memory: see
    test_agrees_with_in_memory on restarts)."""
    df = _table(recoverable, string_ids=True)
    ref, est, ddf = _pair(df, rank=1, sparsity=2, engine="numpy", random_state=0)
    lazy = est.predict(ddf[FEATURES], tasks=ddf["task"])
    assert isinstance(lazy, dd.Series) and lazy.npartitions == ddf.npartitions
    out = lazy.compute()
    pd.testing.assert_index_equal(out.index, df.index)   # aligned with the input rows
    np.testing.assert_allclose(out.to_numpy(), ref.predict(df[FEATURES], df["task"].to_numpy()), rtol=0, atol=AGREE)
    for metric in ("score", "rmse"):   # reduced on the workers
        dask_value = getattr(est, metric)(ddf[FEATURES], ddf["y"], ddf["task"])
        assert abs(dask_value - getattr(ref, metric)(df[FEATURES], df["y"], df["task"].to_numpy())) <= 1e-8
    new = make_lrs_regression(n_tasks=12, n_samples=25, n_features=D, rank=1, sparsity=2, row_sparsity=None,
                              random_state=9)
    new_df = _table(new, string_ids=True, seed=1)
    labels_ref, W_ref, B_ref = ref.adapt_tasks(new_df[FEATURES], new_df["y"].to_numpy(),
                                               new_df["task"].to_numpy())
    nd = dd.from_pandas(new_df, npartitions=3, sort=False)
    labels, W, B = est.adapt_tasks(nd[FEATURES], nd["y"], nd["task"])
    np.testing.assert_array_equal(labels, labels_ref)
    np.testing.assert_allclose(W, W_ref, rtol=0, atol=1e-8)
    np.testing.assert_allclose(B.toarray(), B_ref.toarray(), rtol=0, atol=1e-8)


def test_bad_input_same_errors_as_in_memory(client, problem):
    df = _table(problem)
    ddf = dd.from_pandas(df, npartitions=2, sort=False)
    est = LRSRegressor(rank=1, sparsity=2, engine="numpy", max_iter=2, random_state=0).fit(
        df[FEATURES], df["y"].to_numpy(), df["task"].to_numpy())
    with pytest.raises(ValueError, match="X has 9 features, but the model was fitted with 10"):
        est.predict(ddf[FEATURES[:-1]], tasks=ddf["task"])
    unknown = ddf.assign(task=ddf["task"] + 1000)
    lazy = est.predict(unknown[FEATURES], tasks=unknown["task"])      # lazy: the error comes at compute time
    with pytest.raises(ValueError, match="never fitted"):
        lazy.compute()
    with pytest.raises(ValueError, match="tasks is required with dask inputs"):
        LRSRegressor(rank=2).fit(ddf[FEATURES], ddf["y"])
    with pytest.raises(TypeError, match="must all be dask collections"):
        LRSRegressor(rank=2).fit(ddf[FEATURES], df["y"].to_numpy(), tasks=ddf["task"])
    with pytest.raises(TypeError, match="X must be numeric, got column 'name'"):
        LRSRegressor(rank=2).fit(ddf[FEATURES].assign(name="a"), ddf["y"], tasks=ddf["task"])
    with pytest.raises(ValueError, match="rank must be in"):
        LRSRegressor(rank=10).fit(ddf[FEATURES], ddf["y"], tasks=ddf["task"])
    bad = df.copy()
    bad.loc[5, "f0"] = np.nan
    bdf = dd.from_pandas(bad, npartitions=2, sort=False)
    with pytest.raises(ValueError, match="only finite values"):
        LRSRegressor(rank=2).fit(bdf[FEATURES], bdf["y"], tasks=bdf["task"])


def test_worker_that_cannot_hold_its_blocks_is_an_error(client, problem):
    df = _table(problem)
    ddf = dd.from_pandas(df, npartitions=2, sort=False)
    with dask.config.set({"distributed.worker.memory.target": 1e-7}):   # a share above 1e-7 x 2 GiB = 215 bytes
        with pytest.raises(MemoryError, match="cannot hold its share of the blocks"):
            LRSRegressor(rank=1, sparsity=2).fit(ddf[FEATURES], ddf["y"], tasks=ddf["task"])


def test_killed_worker_does_not_lose_the_fit(client, recoverable):
    """A worker process is killed (SIGKILL) after iteration 2: its blocks are rebuilt from their source partitions
    (dask replays read -> shuffle -> build), their (w_i, b_i) re-fitted from the current U, and the fit ends where
    an undisturbed fit does (noiseless data: both converge to round-off)."""
    df = _table(recoverable)
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    params = dict(rank=1, sparsity=2, engine="numpy", random_state=0, u_solver="exact")
    quiet = LRSRegressor(**params).fit(ddf[FEATURES], ddf["y"], tasks=ddf["task"])
    pids = client.run(os.getpid)

    def kill(iteration, loss, change):
        if iteration == 2:   # the worker holding this fit's first partition dies with its blocks and state
            built = ("build_partition", "_same")   # built blocks, or a copy moved by the balancing
            held = [w for key, ws in client.who_has().items() if str(key).startswith(built) for w in ws]
            os.kill(pids[sorted(held)[0]], signal.SIGKILL)
            time.sleep(0.2)

    hit = LRSRegressor(**params).fit(ddf[FEATURES], ddf["y"], tasks=ddf["task"], callback=kill)
    # the victim's partitions lost their state (whether the nanny's new process came back under a new address,
    # reported in lost_workers, or under the old one)
    assert hit.distributed_["recovered_partitions"] >= 1
    X, t = df[FEATURES], df["task"].to_numpy()
    scale = np.max(np.abs(quiet.predict(X, t)))
    # both fits reach the noiseless optimum; the recovered one restarted some tasks' (w_i, b_i), so it agrees to
    # the fit's tolerance, not to round-off
    gap = np.max(np.abs(hit.predict(X, t) - quiet.predict(X, t)))
    print(f"killed worker: {hit.distributed_['recovered_partitions']} partitions re-fitted, lost "
          f"{hit.distributed_['lost_workers']}, max prediction difference {gap:.2e} (scale {scale:.2f})")
    assert gap <= 1e-6 * scale
    client.wait_for_workers(2, timeout=60)   # the nanny restarts the process


def test_sample_weight_agrees(client, problem):
    df = _table(problem).assign(w=lambda f: np.random.default_rng(3).uniform(0.5, 2.0, len(f)))
    params = dict(rank=1, sparsity=2, engine="numpy", max_iter=4, random_state=0)
    ref = LRSRegressor(**params).fit(df[FEATURES], df["y"], df["task"].to_numpy(), sample_weight=df["w"].to_numpy())
    ddf = dd.from_pandas(df, npartitions=3, sort=False)
    est = LRSRegressor(**params).fit(ddf[FEATURES], ddf["y"], ddf["task"], sample_weight=ddf["w"])
    _assert_agree(ref, est, df)


def test_private_fit_clips_on_workers_and_adds_noise_on_the_driver(client, recoverable):
    """Same seed (reproducible, NOT private: needed to compare) -> the same noise on the driver; the clipped
    statistics come from the workers, so the private U agrees with the in-memory private fit to round-off."""
    from lorsa.privacy import PrivateLRSRegressor

    df = _table(recoverable)
    params = dict(rank=1, sparsity=2, epsilon=4.0, delta=1e-5, max_iter=3, random_state=7, reproducible=True,
                  max_rows=30)   # init="moments" (the default): the private method of moments, distributed too
    ref = PrivateLRSRegressor(**params).fit(df[FEATURES], df["y"].to_numpy(), df["task"].to_numpy())
    ddf = dd.from_pandas(df, npartitions=3, sort=False)
    est = PrivateLRSRegressor(**params).fit(ddf[FEATURES], ddf["y"], tasks=ddf["task"])
    assert np.max(np.abs(np.abs(est.U_.T @ ref.U_) - 1)) <= 1e-8
    _assert_agree(ref, est, df)
    assert est.privacy_report_.to_dict() == ref.privacy_report_.to_dict()
    assert not hasattr(est, "distributed_") and est.loss_history_.size == 0   # nothing data-dependent kept


def test_cli_fit_predict_adapt_on_the_cluster(client, recoverable, tmp_path, capsys):
    """``--scheduler ADDRESS`` with a Parquet directory: the same model as the in-memory CLI on the same rows, the
    predictions written by the workers as a Parquet directory, new tasks adapted on the workers."""
    from lorsa.cli import main

    df = _table(recoverable, string_ids=True)
    df.insert(0, "row_id", np.arange(len(df)))
    parts = tmp_path / "samples"
    parts.mkdir()
    cuts = np.linspace(0, len(df), 4).astype(int)
    for i in range(3):    # every task's rows spread over the three files
        df.iloc[cuts[i]:cuts[i + 1]].to_parquet(parts / f"part-{i}.parquet", index=False)
    df.to_parquet(tmp_path / "all.parquet", index=False)
    common = ["--task-column", "task", "--target-column", "y", "--features", *FEATURES, "--rank", "1",
              "--sparsity", "2", "--quiet"]   # to convergence (see test_agrees_with_in_memory on restarts)
    sched = ["--scheduler", client.scheduler.address]
    assert main(["fit", str(parts), "-o", str(tmp_path / "d.npz"), *common, *sched]) == 0
    assert main(["fit", str(tmp_path / "all.parquet"), "-o", str(tmp_path / "m.npz"), *common]) == 0
    assert main(["predict", str(tmp_path / "d.npz"), str(parts / "*.parquet"), "-o", str(tmp_path / "pred"),
                 "--keep-columns", "row_id", *sched]) == 0
    assert main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "all.parquet"), "-o",
                 str(tmp_path / "pred.parquet"), "--keep-columns", "row_id", "--quiet"]) == 0
    written = sorted((tmp_path / "pred").glob("*.parquet"))
    assert len(written) == 3
    ours = pd.concat([pd.read_parquet(f) for f in written]).sort_values("row_id")
    ref = pd.read_parquet(tmp_path / "pred.parquet").sort_values("row_id")
    np.testing.assert_allclose(ours["prediction"].to_numpy(), ref["prediction"].to_numpy(), rtol=0, atol=AGREE)
    new = _table(make_lrs_regression(n_tasks=5, n_samples=25, n_features=D, rank=1, sparsity=2, row_sparsity=None,
                                     random_state=11), seed=2)
    new["task"] = [f"new-{t}" for t in new["task"]]
    new.to_parquet(tmp_path / "new.parquet", index=False)
    assert main(["adapt", str(tmp_path / "d.npz"), str(tmp_path / "new.parquet"), "-o", str(tmp_path / "a.npz"),
                 "--quiet", *sched]) == 0
    adapted = LRSRegressor.load(tmp_path / "a.npz")
    assert adapted.tasks_.shape[0] == len(set(df["task"])) + 5
    capsys.readouterr()
    assert main(["fit", str(parts), "-o", str(tmp_path / "x.npz"), *common, "--scheduler", "local:zero"]) == 2
    assert "local:N needs a number of worker processes" in capsys.readouterr().err


def test_balanced_holders_moves_few_and_evens_the_bytes():
    from lorsa.backends.dask.ingest import balanced_holders

    w = ["tcp://a", "tcp://b"]
    # the measured case: 9 and 7 of 16 equal partitions -> one partition moves, 8 and 8
    holders = [w[0]] * 9 + [w[1]] * 7
    out = balanced_holders([100] * 16, holders, w)
    assert sum(h != g for h, g in zip(holders, out, strict=True)) == 1
    assert out.count(w[0]) == out.count(w[1]) == 8
    # already balanced: nothing moves; a departed holder's partitions go to the live workers
    assert balanced_holders([100] * 4, [w[0], w[1]] * 2, w) == [w[0], w[1]] * 2
    out = balanced_holders([5, 3, 2, 2], ["tcp://gone"] * 4, w)
    loads = sorted(sum(s for s, h in zip([5, 3, 2, 2], out, strict=True) if h == x) for x in w)
    assert set(out) <= set(w) and loads == [5, 7]
    with pytest.raises(ValueError, match="no dask workers"):
        balanced_holders([1], [w[0]], [])


def test_blocks_are_balanced_over_the_workers(client, recoverable):
    """8 equal-sized partitions (one per 12-13 tasks): after ingest each worker holds about half the block bytes,
    whatever dask's work stealing did with the builds."""
    df = _table(recoverable)
    df = df.sort_values("task", kind="stable")
    ddf = dd.from_pandas(df, npartitions=8, sort=False)
    est = LRSRegressor(rank=1, sparsity=2, max_iter=3, random_state=0).fit(ddf[FEATURES], ddf["y"],
                                                                          tasks=ddf["task"])
    info = est.distributed_
    share: dict[str, int] = {}
    for h, b in zip(info["holders"], info["partition_bytes"], strict=True):
        share[h] = share.get(h, 0) + b
    assert len(share) == 2
    # the largest partition bounds how even a split can be
    assert max(share.values()) - min(share.values()) <= max(info["partition_bytes"])
