"""What a private fit releases (SPEC §6, issue 13): nothing it writes, prints or warns depends on the data unless it
is accounted. One test per leak closed: the model file (no labels, W or B by default), the CLI output, a known noise
seed, an extreme user, warnings naming users, float32 clipping, and Δ_V with k = 0; plus the bounds on ε and δ."""

from __future__ import annotations

import json
import math
import time
import warnings
import zipfile

import numpy as np
import pytest

from lorsa import PrivateLRSRegressor, make_lrs_regression
from lorsa.cli import main
from lorsa.data import RaggedTasks
from lorsa.privacy import ClippedStatistics, ClippingBounds, calibrate_noise
from lorsa.privacy.estimator import PER_USER_STATEMENT


@pytest.fixture(scope="module")
def problem():
    return make_lrs_regression(n_tasks=80, n_samples=15, n_features=6, rank=2, sparsity=1, row_sparsity=None,
                               noise=0.3, random_state=13)


def _labels(P) -> np.ndarray:
    return np.array([f"secret-user-{t:03d}" for t in P.tasks])


def _file_contents(path) -> tuple[dict, dict, bytes]:
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(np.load(zf.open("__metadata__.npy")).tobytes().decode("utf-8"))
        arrays = {n[:-4]: np.load(zf.open(n)) for n in zf.namelist() if n != "__metadata__.npy"}
    return meta, arrays, path.read_bytes()


# 1. the model file -------------------------------------------------------------------------------------------
def test_private_model_file_holds_u_and_the_report_but_no_user(problem, tmp_path) -> None:
    P = problem
    est = PrivateLRSRegressor(rank=2, sparsity=1, epsilon=2.0, max_iter=2).fit(P.X, P.y, _labels(P))
    path = tmp_path / "released.npz"
    est.save(path)
    meta, arrays, raw = _file_contents(path)
    assert arrays["tasks"].shape == (0,) and arrays["W"].shape == (0, 2) and arrays["B_data"].size == 0
    assert b"secret-user" not in raw and "secret-user" not in json.dumps(meta)
    assert meta["attributes"]["per_user_parameters"] is None
    np.testing.assert_array_equal(arrays["U"], est.U_)
    loaded = PrivateLRSRegressor.load(path)
    assert loaded.privacy_report_ == est.privacy_report_ and loaded.tasks_.shape == (0,)
    with pytest.raises(ValueError, match="U and its privacy report only"):
        loaded.predict(P.X[:3], _labels(P)[:3])
    w, b = loaded.adapt(P.X[:15], P.y[:15])  # a user computes its own (w, b) from the published U
    assert w.shape == (2,) and np.all(np.isfinite(b))


def test_per_user_export_is_explicit_and_says_it_is_outside_the_guarantee(problem, tmp_path) -> None:
    P = problem
    est = PrivateLRSRegressor(rank=2, sparsity=1, epsilon=2.0, max_iter=2).fit(P.X, P.y, _labels(P))
    path = tmp_path / "with_users.npz"
    est.save(path, include_users=True)
    meta, arrays, _ = _file_contents(path)
    assert meta["attributes"]["per_user_parameters"] == PER_USER_STATEMENT
    assert "NOT covered" in PER_USER_STATEMENT and arrays["tasks"].shape == (80,)
    loaded = PrivateLRSRegressor.load(path)
    np.testing.assert_array_equal(loaded.predict(P.X[:20], _labels(P)[:20]), est.predict(P.X[:20], _labels(P)[:20]))
    with pytest.raises(TypeError, match="include_users"):
        est.save(path, include_users="yes")


# 2. the CLI output -------------------------------------------------------------------------------------------
def _write_csv(P, path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(P.X, columns=[f"x{i}" for i in range(P.X.shape[1])])
    frame.assign(task=_labels(P), y=P.y).to_csv(path, index=False)


def test_private_cli_fit_prints_nothing_that_depends_on_the_data(tmp_path, monkeypatch, capsys) -> None:
    """Two data sets of the same schema but different row counts, task counts and values print the same text."""
    outputs = []
    for t, m, seed in ((60, 12, 0), (97, 13, 1)):
        P = make_lrs_regression(n_tasks=t, n_samples=m, n_features=5, rank=1, sparsity=1, row_sparsity=None,
                                noise=0.3, random_state=seed)
        folder = tmp_path / f"run{seed}"
        folder.mkdir()
        _write_csv(P, folder / "train.csv")
        monkeypatch.chdir(folder)
        code = main(["fit", "train.csv", "-o", "model.npz", "--task-column", "task", "--target-column", "y",
                     "--sparsity", "1", "--epsilon", "2", "--max-iter", "2"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        outputs.append(captured.out + captured.err)
    assert outputs[0] == outputs[1]
    text = outputs[0]
    assert "RMSE" not in text and " rows" not in text.split("row and task counts")[0]
    assert "User-level" in text and "U and the privacy report only" in text


def test_private_cli_model_needs_adapt_before_predict_and_include_users_keeps_them(problem, tmp_path,
                                                                                   capsys) -> None:
    P = problem
    _write_csv(P, tmp_path / "train.csv")
    base = ["fit", str(tmp_path / "train.csv"), "--task-column", "task", "--target-column", "y", "--rank", "2",
            "--epsilon", "2", "--max-iter", "2", "--quiet"]
    assert main(base + ["-o", str(tmp_path / "m.npz")]) == 0
    code = main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "train.csv"), "-o", str(tmp_path / "p.csv"),
                 "--quiet"])
    assert code == 2 and "lorsa adapt" in capsys.readouterr().err
    assert main(["adapt", str(tmp_path / "m.npz"), str(tmp_path / "train.csv"), "-o", str(tmp_path / "a.npz"),
                 "--quiet"]) == 0
    assert main(["predict", str(tmp_path / "a.npz"), str(tmp_path / "train.csv"), "-o", str(tmp_path / "p.csv"),
                 "--quiet"]) == 0
    assert main(base + ["-o", str(tmp_path / "u.npz"), "--include-users"]) == 0
    assert PrivateLRSRegressor.load(tmp_path / "u.npz").tasks_.shape == (80,)


# 3. the noise seed -------------------------------------------------------------------------------------------
def test_a_known_seed_is_refused_unless_the_run_is_declared_reproducible(problem, monkeypatch) -> None:
    P = problem
    with pytest.raises(ValueError, match="random_state=7 with a finite epsilon") as info:
        PrivateLRSRegressor(rank=2, epsilon=1.0, random_state=7).fit(P.X, P.y, P.tasks)
    assert "reproducible=True" in str(info.value)
    rep = PrivateLRSRegressor(rank=2, epsilon=1.0, max_iter=2, random_state=7, reproducible=True).fit(
        P.X, P.y, P.tasks).privacy_report_
    assert rep.noise_seed == "known_seed" and rep.guarantee.startswith("NOT PRIVATE")
    # without a seed the noise comes from the operating system (secrets): fixing secrets fixes the model
    U0 = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 2)))[0]
    fit = lambda: PrivateLRSRegressor(rank=2, epsilon=1.0, max_iter=2, init=U0).fit(P.X, P.y, P.tasks)  # noqa: E731
    a, b = fit(), fit()
    assert not np.allclose(a.U_, b.U_) and a.privacy_report_.noise_seed == "os_entropy"
    monkeypatch.setattr("lorsa.privacy.estimator.secrets.randbits", lambda bits: 12345)
    np.testing.assert_array_equal(fit().U_, fit().U_)


# 4. an extreme user ------------------------------------------------------------------------------------------
def test_a_user_whose_step_fails_contributes_nothing_and_the_fit_goes_on(problem) -> None:
    P = problem
    X = P.X.copy()
    X[P.tasks == 3] *= 1e160
    fit = lambda X_, keep: PrivateLRSRegressor(rank=2, sparsity=1, epsilon=1.0, max_iter=3,  # noqa: E731
                                               random_state=0, reproducible=True).fit(X_[keep], P.y[keep],
                                                                                      P.tasks[keep])
    est = fit(X, np.ones(P.tasks.size, dtype=bool))
    assert np.all(np.isfinite(est.U_)) and np.all(np.isfinite(est.W_))
    np.testing.assert_array_equal(est.W_[3], 0.0)
    zero = X.copy()
    zero[P.tasks == 3] = 0.0  # the same user contributing nothing
    np.testing.assert_allclose(est.U_, fit(zero, np.ones(P.tasks.size, dtype=bool)).U_, atol=1e-10)


# 5. warnings -------------------------------------------------------------------------------------------------
def test_a_private_fit_warns_about_no_user(problem) -> None:
    P = problem
    keep = (P.tasks != 5) | (np.arange(P.tasks.size) % 15 == 0)  # user 5 keeps one row (< r + k = 3)
    labels = _labels(P)[keep]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        PrivateLRSRegressor(rank=2, sparsity=1, epsilon=1.0, max_iter=2).fit(P.X[keep], P.y[keep], labels)
    assert not [w for w in caught if "secret-user" in str(w.message)]
    assert not [w for w in caught if issubclass(w.category, UserWarning)], [str(w.message) for w in caught]


# 6. float32 --------------------------------------------------------------------------------------------------
def _totals(stats, X, y, tasks, W, idx, val, keep):
    """``(S_A, S_V)`` of the kept rows from the library's block statistics."""
    data = RaggedTasks.from_arrays(X[keep], y[keep], tasks[keep], W.shape[0])
    A, V = 0.0, 0.0
    for blk in data.blocks:
        a, b = stats(blk, None, W[blk.task_ids], idx[blk.task_ids], val[blk.task_ids], None)
        A, V = A + a, V + b
    return A, V


def test_float32_data_are_clipped_within_the_sensitivities() -> None:
    """A user at every bound (m parallel rows, |y| and |x̃ᵀb| clipped, w clipped) in float32 with d up to 300:
    clipped in float32 its change exceeded Δ by up to 1.2e-8 here (1 + 3.8e-6 in the audit); in float64 it is
    within float64 rounding."""
    rng = np.random.default_rng(1)
    worst = 1.0
    for _ in range(40):
        d, m = int(rng.integers(20, 300)), 3
        bounds = ClippingBounds(A1=float(rng.uniform(0.5, 20)), A2=1.3, A3=0.7, A_w=float(rng.uniform(0.1, 3)),
                                m=float(m))
        delta_A, delta_V = bounds.sensitivities()
        v = rng.standard_normal(d) * 10 ** rng.uniform(0, 5)
        X = np.vstack([np.tile(v, (m, 1)), rng.standard_normal((4, d))]).astype(np.float32)
        y = np.concatenate([np.full(m, 1e4), rng.standard_normal(4)]).astype(np.float32)
        tasks = np.array([0] * m + [1] * 4)
        W = np.vstack([np.full((1, 2), 100.0), rng.standard_normal((1, 2))])
        idx, val = np.zeros((2, 1), dtype=np.int64), np.array([[-1e6 * np.sign(v[0])], [0.1]])
        stats = ClippedStatistics(bounds)
        (A1, V1), (A0, V0) = (_totals(stats, X, y, tasks, W, idx, val, keep)
                              for keep in (np.ones(tasks.size, dtype=bool), tasks != 0))
        worst = max(worst, np.linalg.norm(A1 - A0) / delta_A, np.linalg.norm(V1 - V0) / delta_V)
    assert worst <= 1 + 1e-12, worst  # float64 rounding; the noise is calibrated to Δ·(1 + 1e-9)


# 7. k = 0 ----------------------------------------------------------------------------------------------------
def test_without_a_sparse_part_the_v_sensitivity_has_no_a3_term(problem) -> None:
    P = problem
    rep = PrivateLRSRegressor(rank=2, sparsity=0, epsilon=1.0, max_iter=2, max_rows=15).fit(
        P.X, P.y, P.tasks).privacy_report_
    assert rep.A3 == 0.0
    assert rep.sensitivity_V == pytest.approx(15 * rep.A1 * rep.A2 * rep.A_w)


# issue 16, items 8 and 10: ε and δ -----------------------------------------------------------------------------
@pytest.mark.parametrize("epsilon", [1e3, 1e6, 1e20])
def test_a_huge_epsilon_is_refused_with_the_reason(problem, epsilon) -> None:
    with pytest.raises(ValueError, match="protects nothing") as info:
        calibrate_noise(epsilon, 1e-6, 6)
    assert "(0, 100]" in str(info.value)
    with pytest.raises(ValueError, match="epsilon=inf for a non-private fit"):
        PrivateLRSRegressor(epsilon=epsilon).fit(problem.X, problem.y, problem.tasks)


def test_the_largest_epsilon_calibrates_in_bounded_time() -> None:
    start = time.perf_counter()  # before the fix, epsilon = 100 took ~35 s and ~0.6 GB (a 1e-4 PLD grid)
    sigma = calibrate_noise(100.0, 1e-6, 6, init_share=0.1)
    assert time.perf_counter() - start < 20.0 and 0 < sigma < 0.2


def test_a_delta_that_is_not_small_is_refused_with_the_reason(problem) -> None:
    with pytest.raises(ValueError, match="fails outright") as info:
        PrivateLRSRegressor(delta=0.999999).fit(problem.X, problem.y, problem.tasks)
    assert "(0, 0.01]" in str(info.value) and "0.999999" in str(info.value)


@pytest.mark.parametrize("argv, fragment", [
    (["--epsilon", "1e6"], "--epsilon must be in (0, 100]"),
    (["--epsilon", "1", "--delta", "0.999999"], "--delta must be in (0, 0.01]"),
    (["--delta", "1e-6"], "--delta only applies to a private fit"),
    (["--max-rows", "5"], "--max-rows only applies to a private fit"),
    (["--include-users"], "--include-users only applies to a private fit"),
])
def test_cli_privacy_options_are_checked(problem, tmp_path, capsys, argv, fragment) -> None:
    _write_csv(problem, tmp_path / "train.csv")
    start = time.perf_counter()
    code = main(["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m.npz"), "--task-column", "task",
                 "--target-column", "y", "--quiet", *argv])
    assert code == 2 and fragment in capsys.readouterr().err
    assert time.perf_counter() - start < 30.0 and not (tmp_path / "m.npz").exists()
    assert math.isfinite(start)


def test_block_statistics_skip_a_user_with_a_non_finite_step() -> None:
    rng = np.random.default_rng(2)
    X, y, tasks = rng.standard_normal((12, 3)), rng.standard_normal(12), np.repeat(np.arange(3), 4)
    blk = RaggedTasks.from_arrays(X, y, tasks, 3).blocks[0]
    W = rng.standard_normal((3, 1))
    idx, val = np.zeros((3, 1), dtype=np.int64), rng.standard_normal((3, 1))
    stats = ClippedStatistics(ClippingBounds(A1=2.0, A2=2.0, A3=2.0, A_w=2.0, m=4.0))
    W_bad, val_bad = W.copy(), val.copy()
    W_bad[1], val_bad[2] = np.nan, np.inf
    A, V = stats(blk, None, W_bad, idx, val_bad, None)
    only = RaggedTasks.from_arrays(X[tasks == 0], y[tasks == 0], np.zeros(4, dtype=np.int64), 1).blocks[0]
    A0, V0 = stats(only, None, W[:1], idx[:1], val[:1], None)
    np.testing.assert_allclose(A, A0, atol=1e-12)
    np.testing.assert_allclose(V, V0, atol=1e-12)
