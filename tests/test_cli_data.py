"""``lorsa fit`` / ``predict`` / ``adapt`` on CSV and Parquet files: round trips and every error case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lorsa import LRSRegressor, make_lrs_regression
from lorsa.cli import main
from lorsa.commands.data_io import read_columns


@pytest.fixture(scope="module")
def frames():
    """Tasks named by strings with leading zeros, features x_0..x_11, a target and a row id; task 'u039' is new."""
    P = make_lrs_regression(n_tasks=40, n_samples=30, n_features=12, rank=2, sparsity=2, row_sparsity=None,
                            noise=0.0, random_state=0)
    df = pd.DataFrame(P.X, columns=[f"x_{j}" for j in range(12)])
    df.insert(0, "user", [f"u{t:03d}" for t in P.tasks])
    df["rating"] = P.y
    df["row_id"] = np.arange(len(df))
    return df[df.user != "u039"].reset_index(drop=True), df[df.user == "u039"].reset_index(drop=True)


def _write(frame, path):
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return str(path)


def _read(path):
    return pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_csv(path, dtype={"user": str})


FIT = ["--task-column", "user", "--target-column", "rating", "--feature-prefix", "x_", "--rank", "2",
       "--sparsity", "2", "--seed", "3", "--quiet"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_fit_save_predict_round_trip(frames, tmp_path, suffix, capsys):
    train, _ = frames
    data = _write(train, tmp_path / f"train{suffix}")
    model = tmp_path / "model.npz"
    assert main(["fit", data, "-o", str(model), *FIT]) == 0
    recorded = read_columns(model)
    assert recorded == {"task_column": "user", "target_column": "rating",
                        "feature_columns": [f"x_{j}" for j in range(12)]}
    est = LRSRegressor.load(model)  # a normal model file: the Python API reads it
    assert est.tasks_[0] == "u000" and est.U_.shape == (12, 2)
    out = tmp_path / f"pred{suffix}"
    # Columns come from the model file; the target column is found too, so the RMSE is reported.
    assert main(["predict", str(model), data, "-o", str(out), "--keep-columns", "row_id"]) == 0
    assert "RMSE against column 'rating'" in capsys.readouterr().out
    pred = _read(out)
    assert list(pred.columns) == ["row_id", "user", "prediction"]
    np.testing.assert_array_equal(pred["row_id"].to_numpy(), train["row_id"].to_numpy())
    np.testing.assert_array_equal(pred["user"].astype(str).to_numpy(), train["user"].to_numpy())
    direct = est.predict(train[[f"x_{j}" for j in range(12)]].to_numpy(), tasks=train["user"].to_numpy())
    np.testing.assert_allclose(pred["prediction"].to_numpy(), direct, rtol=1e-12, atol=1e-12)


def test_fit_shows_progress_unless_quiet(frames, tmp_path, capsys):
    data = _write(frames[0], tmp_path / "train.csv")
    args = ["fit", data, "-o", str(tmp_path / "m.npz"), "--task-column", "user", "--target-column", "rating",
            "--feature-prefix", "x_", "--max-iter", "3"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "AMHT-LRS" in captured.err and "iter" in captured.err  # the tqdm bar, on stderr
    assert "model written to" in captured.out
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


def test_fit_callback_sees_every_iteration(small_problem):
    seen = []
    est = LRSRegressor(rank=2, sparsity=2, max_iter=4, tol=0.0).fit(
        small_problem.X, small_problem.y, tasks=small_problem.tasks, callback=lambda *a: seen.append(a))
    assert [a[0] for a in seen] == list(range(1, est.n_iter_ + 1))
    np.testing.assert_allclose([a[1] for a in seen], est.loss_history_)


def test_same_seed_same_model_and_explicit_feature_list(frames, tmp_path):
    train, _ = frames
    data = _write(train, tmp_path / "train.csv")
    features = ["--features", *[f"x_{j}" for j in range(12)]]
    base = ["--task-column", "user", "--target-column", "rating", "--rank", "2", "--sparsity", "2", "--quiet"]
    for name in ("a.npz", "b.npz"):
        assert main(["fit", data, "-o", str(tmp_path / name), *base, *features, "--seed", "7"]) == 0
    a, b = LRSRegressor.load(tmp_path / "a.npz"), LRSRegressor.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(a.U_, b.U_)
    # Default features: every column but task and target -- here that includes row_id, so 13 features.
    assert main(["fit", data, "-o", str(tmp_path / "c.npz"), *base]) == 0
    assert read_columns(tmp_path / "c.npz")["feature_columns"][-1] == "row_id"


def test_adapt_new_task_then_predict(frames, tmp_path, capsys):
    train, new = frames
    model = tmp_path / "model.npz"
    assert main(["fit", _write(train, tmp_path / "train.csv"), "-o", str(model), *FIT]) == 0
    new_csv = _write(new, tmp_path / "new.csv")
    assert main(["predict", str(model), new_csv, "-o", str(tmp_path / "p.csv"), "-q"]) == 2
    assert "'u039'" in capsys.readouterr().err
    model2 = tmp_path / "model2.npz"
    assert main(["adapt", str(model), new_csv, "-o", str(model2)]) == 0
    out = capsys.readouterr().out
    assert "task 'u039': 30 rows" in out and "40 tasks (1 new)" in out
    assert main(["predict", str(model2), new_csv, "-o", str(tmp_path / "p.csv"), "-q"]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    old, updated = LRSRegressor.load(model), LRSRegressor.load(model2)
    np.testing.assert_array_equal(old.U_, updated.U_)  # U is held fixed
    np.testing.assert_array_equal(updated.W_[:39], old.W_)
    X_new = new[[f"x_{j}" for j in range(12)]].to_numpy()
    w, b = old.adapt(X_new, new["rating"].to_numpy())  # the Python API gives the same new task
    np.testing.assert_allclose(updated.W_[39], w, atol=1e-10)
    np.testing.assert_allclose(updated.B_[:, 39].toarray().ravel(), b, atol=1e-10)
    np.testing.assert_allclose(pred["prediction"].to_numpy(), X_new @ (old.U_ @ w + b), atol=1e-10)
    # A single task without a task column: --task-name; adapting a task that exists is refused.
    single = _write(new.drop(columns=["user"]), tmp_path / "single.parquet")
    assert main(["adapt", str(model), single, "-o", str(tmp_path / "m3.npz"), "--task-name", "zoe", "-q"]) == 0
    assert "zoe" in LRSRegressor.load(tmp_path / "m3.npz").tasks_
    assert main(["adapt", str(model2), new_csv, "-o", str(tmp_path / "m4.npz"), "-q"]) == 2
    assert "already in the model" in capsys.readouterr().err


def test_model_fitted_in_python_with_integer_tasks(tmp_path, small_problem):
    P = small_problem
    est = LRSRegressor(rank=2, sparsity=2).fit(P.X, P.y, tasks=P.tasks)
    est.save(tmp_path / "m.npz")
    df = pd.DataFrame(P.X[:50], columns=[f"f{j}" for j in range(20)])
    df["task"] = P.tasks[:50]
    data = _write(df, tmp_path / "d.csv")
    assert main(["predict", str(tmp_path / "m.npz"), data, "-o", str(tmp_path / "p.csv"), "--task-column", "task",
                 "--feature-prefix", "f", "-q"]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(pred["prediction"], est.predict(P.X[:50], tasks=P.tasks[:50]))


# ---------------------------------------------------------------------- errors name the file and the column
def _fit_error(tmp_path, capsys, frame_or_text, name, extra=()):
    path = tmp_path / name
    if isinstance(frame_or_text, str):
        path.write_text(frame_or_text, encoding="utf-8")
    else:
        _write(frame_or_text, path)
    code = main(["fit", str(path), "-o", str(tmp_path / "m.npz"), *(extra or FIT)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lorsa fit: error:") and "Traceback" not in err
    assert str(path) in err or "feature" in err
    return err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_missing_column(frames, tmp_path, capsys, suffix):
    train, _ = frames
    err = _fit_error(tmp_path, capsys, train.drop(columns=["rating"]), f"t{suffix}")
    assert "target column 'rating' not found" in err and "'x_0'" in err
    err = _fit_error(tmp_path, capsys, train, f"u{suffix}", ["--task-column", "usr", "--target-column", "rating"])
    assert "task column 'usr' not found" in err
    err = _fit_error(tmp_path, capsys, train, f"v{suffix}", ["--task-column", "user", "--target-column", "rating",
                                                            "--features", "x_0", "x_99"])
    assert "feature column 'x_99' not found" in err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_non_numeric_feature(frames, tmp_path, capsys, suffix):
    bad = frames[0].copy()
    bad["x_3"] = bad["x_3"].astype(str)
    bad.loc[4, "x_3"] = "n/a?"
    err = _fit_error(tmp_path, capsys, bad, f"bad{suffix}")
    assert f"bad{suffix}" in err and "feature column 'x_3' is not numeric (row 5: 'n/a?')" in err


def test_missing_value_and_unsupported_type(frames, tmp_path, capsys):
    bad = frames[0].copy()
    bad.loc[2, "rating"] = np.nan
    err = _fit_error(tmp_path, capsys, bad, "nan.csv")
    assert "target column 'rating' has 1 missing or infinite value(s) (first: row 3 is missing)" in err
    err = _fit_error(tmp_path, capsys, "a,b\n1,2\n", "data.xlsx")
    assert "unsupported file type '.xlsx'" in err


@pytest.mark.parametrize("text, message", [("", "is empty (no header, no rows)"),
                                           ("user,rating,x_0\n", "has a header but no data rows")])
def test_empty_file(tmp_path, capsys, text, message):
    err = _fit_error(tmp_path, capsys, text, "empty.csv")
    assert "empty.csv" in err and message in err


def test_empty_parquet_file(frames, tmp_path, capsys):
    err = _fit_error(tmp_path, capsys, frames[0].iloc[:0], "empty.parquet")
    assert "empty.parquet' has a header but no data rows" in err


def test_unknown_task_and_missing_file_at_predict(frames, tmp_path, capsys):
    train, new = frames
    model = tmp_path / "model.npz"
    assert main(["fit", _write(train, tmp_path / "train.csv"), "-o", str(model), *FIT]) == 0
    mixed = _write(pd.concat([train.iloc[:5], new.iloc[:2]]), tmp_path / "mixed.parquet")
    assert main(["predict", str(model), mixed, "-o", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "mixed.parquet" in err and "task column 'user'" in err and "'u039'" in err and "lorsa adapt" in err
    assert main(["predict", str(model), str(tmp_path / "nope.csv"), "-o", str(tmp_path / "p.csv")]) == 2
    assert "data file" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nope.npz"), mixed, "-o", str(tmp_path / "p.csv")]) == 2
    assert "model file" in capsys.readouterr().err
    few = _write(train[["user", "x_0", "x_1"]], tmp_path / "few.csv")
    assert main(["predict", str(model), few, "-o", str(tmp_path / "p.csv"), "--feature-prefix", "x_"]) == 2
    assert "2 feature columns selected" in capsys.readouterr().err


def test_bad_option_values_are_refused_by_argparse(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "x.csv", "-o", "m.npz", "--task-column", "t", "--target-column", "y", "--rank", "0"])
    assert "expected an integer >= 1, got '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit", "x.csv", "-o", "m.npz", "--task-column", "t", "--target-column", "y", "--features", "a",
              "--feature-prefix", "x"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_fit_defaults_to_the_library_start(frames, tmp_path):
    """Without --init the CLI fits what LRSRegressor fits by default (the moments start, SPEC §4)."""
    train, _ = frames
    data = _write(train, tmp_path / "train.csv")
    assert main(["fit", data, "-o", str(tmp_path / "m.npz"), *FIT]) == 0
    cols = [f"x_{j}" for j in range(12)]
    est = LRSRegressor(rank=2, sparsity=2, random_state=3).fit(train[cols].to_numpy(), train["rating"].to_numpy(),
                                                               tasks=train["user"].to_numpy())
    np.testing.assert_allclose(LRSRegressor.load(tmp_path / "m.npz").U_, est.U_, atol=1e-12)
