"""The command line never loses the user's data (issue 16, items 1, 3, 8): an output is never an input, never a
read-only file, always written atomically with the usual permissions; interruptions and system errors are one line."""

from __future__ import annotations

import errno
import os
import signal
import stat

import numpy as np
import pandas as pd
import pytest

from lorsa import LRSRegressor, make_lrs_regression
from lorsa.cli import main

FIT = ["--task-column", "user", "--target-column", "rating", "--feature-prefix", "x_", "--rank", "2",
       "--sparsity", "1", "--max-iter", "5", "--quiet"]


@pytest.fixture(scope="module")
def frame():
    P = make_lrs_regression(n_tasks=12, n_samples=20, n_features=6, rank=2, sparsity=1, row_sparsity=None,
                            noise=0.0, random_state=0)
    df = pd.DataFrame(P.X, columns=[f"x_{j}" for j in range(6)])
    df.insert(0, "user", [f"u{t:02d}" for t in P.tasks])
    df["rating"] = P.y
    return df


@pytest.fixture()
def files(frame, tmp_path):
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    model = tmp_path / "model.npz"
    assert main(["fit", str(data), "-o", str(model), *FIT]) == 0
    return data, model


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def _one_line_error(capsys, start):
    err = capsys.readouterr().err
    assert err.startswith(start) and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------------- item 1: an output is never an input
def test_fit_refuses_to_overwrite_its_data(files, capsys):
    data, _ = files
    before = data.read_bytes()
    spelled = os.path.join(str(data.parent), ".", data.name)  # another spelling of the same file
    for out in (str(data), spelled):
        assert main(["fit", str(data), "-o", out, *FIT]) == 2
        err = _one_line_error(capsys, "lorsa fit: error: --output")
        assert "is the data file" in err
    assert data.read_bytes() == before


def test_predict_and_adapt_refuse_to_overwrite_an_input(files, capsys, tmp_path):
    data, model = files
    before_data, before_model = data.read_bytes(), model.read_bytes()
    assert main(["predict", str(model), str(data), "-o", str(data), "-q"]) == 2
    assert "is the data file" in _one_line_error(capsys, "lorsa predict: error:")
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    assert main(["predict", str(model), str(data), "-o", str(link), "-q"]) == 2  # a symlink to the input
    assert "is the data file" in _one_line_error(capsys, "lorsa predict: error:")
    renamed = tmp_path / "model.csv"  # predictions over the model file (with a table suffix, via a hard link)
    os.link(model, renamed)
    assert main(["predict", str(renamed), str(data), "-o", str(renamed), "-q"]) == 2
    assert "is the model file" in _one_line_error(capsys, "lorsa predict: error:")
    renamed.unlink()
    assert main(["adapt", str(model), str(data), "-o", str(data), "-q"]) == 2
    assert "is the data file" in _one_line_error(capsys, "lorsa adapt: error:")
    assert data.read_bytes() == before_data and model.read_bytes() == before_model


def test_read_only_output_is_refused_not_replaced(files, capsys, tmp_path):
    data, model = files
    out = tmp_path / "locked.csv"
    out.write_text("keep me\n")
    out.chmod(0o444)
    assert main(["predict", str(model), str(data), "-o", str(out), "-q"]) == 2
    assert "read-only" in _one_line_error(capsys, "lorsa predict: error:")
    locked_model = tmp_path / "locked.npz"
    locked_model.write_text("keep me too\n")
    locked_model.chmod(0o444)
    assert main(["fit", str(data), "-o", str(locked_model), *FIT]) == 2
    assert "read-only" in _one_line_error(capsys, "lorsa fit: error:")
    with pytest.raises(PermissionError, match="read-only"):
        LRSRegressor.load(model).save(locked_model)
    assert out.read_text() == "keep me\n" and locked_model.read_text() == "keep me too\n"


# ---------------------------------------------------------------------- item 3: atomic outputs, modes, signals
@pytest.mark.parametrize("interruption, code, start", [
    (KeyboardInterrupt, 130, "lorsa predict: interrupted (Ctrl-C)"),
    (OSError(errno.ENOSPC, "No space left on device"), 2, "lorsa predict: error: cannot read or write"),
    ("SIGTERM", 143, "lorsa predict: terminated (SIGTERM)"),
])
def test_interrupted_predict_leaves_the_old_file_and_no_temporary(files, capsys, tmp_path, monkeypatch,
                                                                  interruption, code, start):
    data, model = files
    out = tmp_path / "pred.csv"
    out.write_text("old predictions\n")
    real = pd.DataFrame.to_csv

    def half_then_fail(self, path, *args, **kwargs):
        real(self.iloc[: len(self) // 2], path, *args, **kwargs)  # half of the rows reach the disk
        if interruption == "SIGTERM":
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            raise interruption

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    assert main(["predict", str(model), str(data), "-o", str(out), "-q"]) == code
    _one_line_error(capsys, start)
    assert out.read_text() == "old predictions\n" and _leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the command's handler is removed again


def test_fit_writes_the_model_once(files, tmp_path, monkeypatch):
    import lorsa.io

    data, _ = files
    calls = []
    real = lorsa.io.np.savez
    monkeypatch.setattr(lorsa.io.np, "savez", lambda *a, **k: (calls.append(1), real(*a, **k)))
    assert main(["fit", str(data), "-o", str(tmp_path / "once.npz"), *FIT]) == 0
    assert len(calls) == 1  # the column names are in the first and only write
    assert main(["adapt", str(tmp_path / "once.npz"), str(data), "--task-name", "new", "-o",
                 str(tmp_path / "once.npz"), "-q"]) == 0  # adapt in place is allowed and also writes once
    assert len(calls) == 2 and "new" in LRSRegressor.load(tmp_path / "once.npz").tasks_


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_outputs_get_the_umask_mode(files, tmp_path, mask):
    data, model = files
    old = os.umask(mask)
    try:
        assert main(["fit", str(data), "-o", str(tmp_path / "m.npz"), *FIT]) == 0
        assert main(["predict", str(model), str(data), "-o", str(tmp_path / "p.parquet"), "-q"]) == 0
    finally:
        os.umask(old)
    for name in ("m.npz", "p.parquet"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask
    (tmp_path / "p.parquet").chmod(0o640)  # replacing a file keeps its mode
    assert main(["predict", str(model), str(data), "-o", str(tmp_path / "p.parquet"), "-q"]) == 0
    assert stat.S_IMODE((tmp_path / "p.parquet").stat().st_mode) == 0o640


# ---------------------------------------------------------------------- item 8: one line for system errors
@pytest.mark.parametrize("error, text", [
    (MemoryError("Unable to allocate 745. GiB for an array"), "out of memory (Unable to allocate 745. GiB"),
    (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
    (OverflowError("int too large to convert"), "int too large"),
    (OSError(errno.EIO, "Input/output error", "data.csv"), "cannot read or write 'data.csv': Input/output error"),
    (KeyboardInterrupt(), "interrupted (Ctrl-C)"),
])
def test_system_errors_are_one_line(files, capsys, monkeypatch, error, text):
    import lorsa.table_stream

    data, _ = files

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(lorsa.table_stream, "read_task_table", fail)
    code = main(["fit", str(data), "-o", str(data.parent / "m2.npz"), *FIT])
    assert code == (130 if isinstance(error, KeyboardInterrupt) else 2)
    assert text in _one_line_error(capsys, "lorsa fit: ")


# ---------------------------------------------------------------------- item 9
def test_adapt_before_fit_is_the_not_fitted_error():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted yet"):
        LRSRegressor(rank=1).adapt(np.ones((3, 4)), np.ones(3))


# ---------------------------------------------------------------------- item 8: predict's columns
def test_predict_with_blank_targets_reports_the_rmse_on_the_rows_that_have_one(files, frame, capsys, tmp_path):
    _, model = files
    partial = frame.copy()
    partial.loc[[0, 5, 7], "rating"] = np.nan  # blank cells in the optional target column
    data = tmp_path / "partial.csv"
    partial.to_csv(data, index=False)
    assert main(["predict", str(model), str(data), "-o", str(tmp_path / "p.csv")]) == 0
    out = capsys.readouterr().out
    assert f"RMSE against column 'rating' on the {len(frame) - 3} of {len(frame)} rows that have one" in out
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(frame)  # every row is predicted
    partial["rating"] = np.nan
    partial.to_csv(data, index=False)
    assert main(["predict", str(model), str(data), "-o", str(tmp_path / "p.csv")]) == 0
    assert "blank in every row: no RMSE" in capsys.readouterr().out
    partial["rating"] = "n/a?"
    partial.to_csv(data, index=False)
    assert main(["predict", str(model), str(data), "-o", str(tmp_path / "p.csv"), "-q"]) == 2
    assert "target column 'rating' is not numeric (row 1" in _one_line_error(capsys, "lorsa predict: error:")


@pytest.mark.parametrize("name, role", [("user", "the task column"), ("row_id", "a --keep-columns column")])
def test_prediction_column_may_not_clash(files, frame, capsys, tmp_path, name, role):
    _, model = files
    data = tmp_path / "ids.csv"
    frame.assign(row_id=np.arange(len(frame))).to_csv(data, index=False)
    assert main(["predict", str(model), str(data), "-o", str(tmp_path / "p.csv"), "--keep-columns", "row_id",
                 "--prediction-column", name, "-q"]) == 2
    assert f"--prediction-column {name!r} is also {role}" in _one_line_error(capsys, "lorsa predict: error:")
    assert not (tmp_path / "p.csv").exists()
