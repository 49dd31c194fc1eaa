"""The command line on real tables: categorical, missing and unscaled columns, every method, ``lorsa evaluate``,
and what a new user trips over (issue 15, items 4, 4b, 5)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from lorsa import LRSRegressor, make_lrs_regression
from lorsa.baselines import load_model
from lorsa.cli import main
from lorsa.commands.evaluate import error_table
from lorsa.commands.table_model import load_model_file
from lorsa.preprocessing import TablePreprocessor


@pytest.fixture(scope="module")
def tables():
    """60 tasks; a numeric feature on a large scale with gaps, a city (categorical, with a gap) that shifts y, a zip
    code with leading zeros; task 'u059' is new (kept for adapt), with a city never seen in training."""
    rng = np.random.default_rng(0)
    n_tasks, m = 60, 25
    tasks = np.repeat(np.arange(n_tasks), m)
    n = tasks.size
    x1, x2 = rng.standard_normal(n), rng.standard_normal(n) * 50 + 200
    city = rng.choice(["oslo", "paris", "rome"], n)
    zipc = rng.choice(["007", "010", "100"], n)
    w = rng.standard_normal(n_tasks)
    y = (1 + w[tasks]) * x1 + 0.01 * x2 + np.where(city == "rome", 2.0, 0.0) + 0.05 * rng.standard_normal(n)
    df = pd.DataFrame({"user": [f"u{t:03d}" for t in tasks], "y": y, "x1": x1, "x2": x2, "city": city, "zip": zipc,
                       "row_id": np.arange(n)})
    df.loc[[3, 40], "x2"] = np.nan
    df.loc[7, "city"] = np.nan
    new = df[df.user == "u059"].copy().reset_index(drop=True)
    new.loc[0, "city"] = "lima"
    return df[df.user != "u059"].reset_index(drop=True), new


def _write(frame, path):
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return str(path)


ENCODE = ["--task-column", "user", "--target-column", "y", "--features", "x1", "x2", "city", "zip",
          "--categorical", "city", "zip", "--impute", "mean", "--standardize", "--intercept"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_with_categorical_and_missing_values(tables, tmp_path, suffix, capsys):
    train, new = tables
    data = _write(train, tmp_path / f"train{suffix}")
    model = tmp_path / "m.npz"
    assert main(["fit", data, "-o", str(model), *ENCODE, "--rank", "1", "--sparsity", "2", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "'x2': 2 missing value(s) imputed" in out and "'city' has 1 missing value(s)" in out
    est, recorded, pre, rows = load_model_file(str(model), with_task_rows=True)
    assert pre.feature_names == ["x1", "x2", "city=oslo", "city=paris", "city=rome", "zip=007", "zip=010",
                                 "zip=100", "intercept"]
    assert rows.tolist() == [25] * 59 and est.n_features_in_ == 9
    # the stored encoding, applied again, gives exactly what the model was fitted on
    X, _ = pre.transform(pd.read_parquet(data) if suffix == ".parquet" else pd.read_csv(data, dtype={"zip": str}),
                         data)
    observed = train["x2"].dropna()
    np.testing.assert_allclose(X[3, 1], 0.0, atol=1e-12)  # imputed with the mean, then standardised
    np.testing.assert_allclose(X[0, 1], (train["x2"][0] - observed.mean()) / observed.std(ddof=0), rtol=1e-12)
    assert X[7, 2:5].tolist() == [0, 0, 0] and (X[:, -1] == 1).all()
    # predict from the file (Parquet), with the recorded columns, equals the Python API on the encoded rows
    test = _write(train.iloc[::7], tmp_path / "test.parquet")
    assert main(["predict", str(model), test, "-o", str(tmp_path / "p.csv"), "--keep-columns", "row_id", "-q"]) == 0
    pred = pd.read_csv(tmp_path / "p.csv", dtype={"user": str})
    np.testing.assert_allclose(pred["prediction"], est.predict(X[::7], tasks=train["user"].iloc[::7].to_numpy()),
                               rtol=1e-12, atol=1e-12)
    assert est.score(X, train["y"], tasks=train["user"].to_numpy()) > 0.95  # needs the city offset of 2
    # adapt a new task whose first row has an unseen city: a note, not an error; the model grows by one task
    assert main(["adapt", str(model), _write(new, tmp_path / f"new{suffix}"), "-o", str(model)]) == 0
    assert "not seen in training (first: row 1, 'lima')" in capsys.readouterr().out
    est2, _, _, rows2 = load_model_file(str(model), with_task_rows=True)
    assert est2.tasks_[-1] == "u059" and rows2[-1] == 25 and rows2.size == 60
    # evaluate: text and JSON agree with a direct computation
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(model), data, "--json", str(report)]) == 0
    text = capsys.readouterr().out
    assert "overall" in text and "20-99 rows" in text and "training rows per task" in text
    figures = json.loads(report.read_text())
    p = est.predict(X, tasks=train["user"].to_numpy())
    e = p - train["y"].to_numpy()
    assert figures["overall"]["rmse"] == pytest.approx(np.sqrt(np.mean(e ** 2)), rel=1e-10)
    assert figures["overall"]["mae"] == pytest.approx(np.mean(np.abs(e)), rel=1e-10)
    assert figures["overall"]["rows"] == len(train) and figures["by_task_size"][0]["task_rows"] == "20-99"


def test_missing_values_without_impute_name_file_column_and_row(tables, tmp_path, capsys):
    train, _ = tables
    data = _write(train, tmp_path / "train.csv")
    base = ["--task-column", "user", "--target-column", "y", "-o", str(tmp_path / "m.npz")]
    assert main(["fit", data, *base, "--features", "x1", "x2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lorsa fit: error:") and "train.csv" in err and "'x2'" in err and "row 4" in err
    assert main(["fit", data, *base, "--features", "x1", "city", "--categorical", "city"]) == 2
    err = capsys.readouterr().err
    assert "categorical column 'city'" in err and "row 8" in err and "--impute mean" in err
    assert main(["fit", data, *base, "--features", "x1", "--categorical", "city"]) == 2
    assert "not among the feature columns" in capsys.readouterr().err


def test_zip_codes_stay_text_and_unseen_categories_are_zero():
    frame = pd.DataFrame({"zip": ["007", "010", "007"], "x": [1.0, 2.0, 3.0]})
    pre = TablePreprocessor.fit(frame, "t.csv", ["zip", "x"], categorical=["zip"])
    assert pre.feature_names == ["zip=007", "zip=010", "x"]
    X, notes = pre.transform(pd.DataFrame({"zip": ["010", "999"], "x": [0.0, 1.0]}), "u.csv")
    assert X.tolist() == [[0, 1, 0], [0, 0, 1]] and "'999'" in notes[0]
    again = TablePreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())), "file")
    assert again == pre
    with pytest.raises(ValueError, match="malformed"):
        TablePreprocessor.from_dict({**pre.to_dict(), "scales": {"x": -1.0}}, "file")


@pytest.mark.parametrize("method", ["single-model", "fine-tuning", "representation-learning", "prompt-tuning",
                                    "sparse-fine-tuning", "tuned-lrs"])
def test_every_baseline_from_the_command_line(method, tables, tmp_path, capsys):
    train, new = tables
    data = _write(train, tmp_path / "train.csv")
    model = tmp_path / "b.npz"
    assert main(["fit", data, "-o", str(model), *ENCODE, "--method", method, "-q"]) == 0
    est = load_model(model)
    assert type(est).__name__.lower() == method.replace("-", "")
    assert main(["evaluate", str(model), data, "--json", "-"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["kind"] == type(est).__name__ and np.isfinite(figures["overall"]["rmse"])
    assert main(["adapt", str(model), _write(new, tmp_path / "new.csv"), "-o", str(tmp_path / "a.npz")]) == 2
    assert "no shared basis U" in capsys.readouterr().err


def test_options_that_do_not_apply_or_exceed_d_name_the_option(tables, tmp_path, capsys):
    train, _ = tables
    data = _write(train, tmp_path / "train.csv")
    model = str(tmp_path / "m.npz")
    assert main(["fit", data, "-o", model, *ENCODE, "--method", "single-model", "--rank", "2"]) == 2
    assert "--rank does not apply to --method single-model" in capsys.readouterr().err
    assert main(["fit", data, "-o", model, *ENCODE, "--rank", "40"]) == 2
    assert "--rank must be in [1, 8], got 40 (the data have d = 9 features)" in capsys.readouterr().err
    assert main(["fit", data, "-o", model, *ENCODE, "--method", "nope"]) == 2
    assert "--method must be one of ['lrs', 'single-model'" in capsys.readouterr().err


def test_model_output_must_be_npz(tables, tmp_path, capsys):
    data = _write(tables[0], tmp_path / "train.csv")
    assert main(["fit", data, "-o", str(tmp_path / "model.csv"), *ENCODE]) == 2
    assert "a name ending in .npz" in capsys.readouterr().err
    assert not (tmp_path / "model.csv").exists()


def test_warnings_are_one_line_and_quiet_hides_them(tables, tmp_path, capsys):
    train, _ = tables
    data = _write(train, tmp_path / "train.csv")
    args = ["fit", data, "-o", str(tmp_path / "m.npz"), *ENCODE, "--rank", "2", "--sparsity", "30",
            "--max-iter", "2"]
    with pytest.raises(SystemExit):  # k > d is refused before the fit
        main([*args[:-2], "--sparsity", "-1"])
    capsys.readouterr()
    assert main([*args[:-4], "--sparsity", "3", "--max-iter", "1"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert lines and all(line.startswith("lorsa fit: warning: ") for line in lines)
    assert any("did not converge" in line and "--max-iter" in line for line in lines)
    assert "warnings.warn" not in err and "UserWarning" not in err  # no Python warning format, no source line
    assert main([*args[:-4], "--sparsity", "3", "--max-iter", "1", "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_adapt_help_is_its_own(capsys):
    with pytest.raises(SystemExit):
        main(["adapt", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "predict: optional" not in text and "the new tasks are fitted to it" in text


def test_convergence_warning_and_small_problems_in_python(small_problem):
    P = make_lrs_regression(n_tasks=3, n_samples=20, n_features=10, rank=1, sparsity=2, random_state=0)
    assert P.X.shape == (60, 10)  # row_sparsity=5 > n_tasks is no limit, not an error
    noisy = make_lrs_regression(n_tasks=30, n_samples=20, n_features=10, rank=2, sparsity=2, row_sparsity=None,
                                noise=1.0, random_state=0)
    with pytest.warns(ConvergenceWarning, match="did not converge: it stopped at max_iter=2"):
        LRSRegressor(rank=2, sparsity=2, max_iter=2, random_state=0).fit(noisy.X, noisy.y, tasks=noisy.tasks)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a converged fit says nothing
        S = small_problem
        assert LRSRegressor(rank=2, sparsity=2, random_state=0).fit(S.X, S.y, tasks=S.tasks).converged_


def test_error_table_buckets():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.5, 2.0, 3.0, 5.0])
    out = error_table(y, pred, np.array([0, 0, 1, 1]), np.array([3, 50]))
    assert [b["task_rows"] for b in out["by_task_size"]] == ["1-4", "20-99"]
    assert out["by_task_size"][1]["mae"] == pytest.approx(0.5) and out["overall"]["tasks"] == 2
