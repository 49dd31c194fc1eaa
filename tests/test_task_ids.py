"""Task ids (issue 16, items 2, 6 and the table checks of 8): never merged, never wrapped, read as the same text
from every format, costing memory per distinct id; columns of dates and duplicate headers refused."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from lorsa import LRSRegressor
from lorsa._validation import check_task_labels
from lorsa.cli import main
from lorsa.tables import TableError, read_table, select_columns
from lorsa.task_labels import MAX_TASK_ID_LENGTH, TaskCodes


def _frame(ids, n_features=3, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.standard_normal((len(ids), n_features)), columns=[f"x_{j}" for j in range(n_features)])
    df.insert(0, "user", ids)
    df["rating"] = rng.standard_normal(len(ids))
    return df


FIT = ["--task-column", "user", "--target-column", "rating", "--feature-prefix", "x_", "--rank", "1",
       "--max-iter", "3", "--quiet"]


# ---------------------------------------------------------------------- the Python API
def test_one_and_string_one_are_never_merged():
    X, y = np.ones((4, 3)), np.ones(4)
    with pytest.raises(TypeError, match=r"1 and '1' are different tasks.*mix of \['int', 'str'\]"):
        LRSRegressor().fit(X, y, tasks=[1, "1", 2, "2"])
    with pytest.raises(TypeError, match="mix of"):
        check_task_labels((1, "1"), 2)
    assert check_task_labels(["1", "2"], 2).dtype.kind == "U"  # only strings: fine


def test_ids_beyond_int64_are_refused_not_wrapped():
    big = np.array([2**63, 2**63 + 1], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"unsigned ids up to 9223372036854775809, beyond the int64 range"):
        check_task_labels(big, 2)
    with pytest.raises(ValueError, match="beyond the int64 range"):
        check_task_labels(np.array([2**70, 1], dtype=object), 2)
    with pytest.raises(ValueError, match="float ids up to 1e\\+20"):
        check_task_labels(np.array([1e20, 1.0]), 2)
    ok = check_task_labels(np.array([2**63 - 1, 0], dtype=np.uint64), 2)
    assert ok.dtype == np.int64 and ok[0] == 2**63 - 1


def test_absurdly_long_ids_are_refused_with_the_limit():
    labels = np.array(["a", "b" * 100_000])
    with pytest.raises(ValueError, match=rf"an id of 100,000 characters \(index 1: .*limited to "
                                         rf"{MAX_TASK_ID_LENGTH} characters"):
        check_task_labels(labels, 2)
    assert check_task_labels(np.array(["a" * MAX_TASK_ID_LENGTH]), 1).shape == (1,)


def test_task_codes_fit_and_predict_like_labels(small_problem):
    P = small_problem
    names = np.array([f"user-{t:03d}" for t in P.tasks])
    direct = LRSRegressor(rank=2, sparsity=2, max_iter=5, random_state=0).fit(P.X, P.y, tasks=names)
    codes, uniques = pd.factorize(names)
    tc = TaskCodes.create(codes, uniques.astype(str))
    assert np.all(tc.labels[tc.codes] == names)
    coded = LRSRegressor(rank=2, sparsity=2, max_iter=5, random_state=0).fit(P.X, P.y, tasks=tc)
    assert np.array_equal(coded.tasks_, direct.tasks_) and np.array_equal(coded.U_, direct.U_)
    np.testing.assert_array_equal(coded.predict(P.X, tasks=tc), direct.predict(P.X, tasks=names))


# ---------------------------------------------------------------------- tables: ids as text, every format alike
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_na_like_ids_are_ids_in_every_format(tmp_path, suffix):
    ids = ["NA", "None", "null", "nan", "N/A", "007"] * 5
    df = _frame(ids)
    path = tmp_path / f"d{suffix}"
    df.to_parquet(path, index=False) if suffix == ".parquet" else df.to_csv(path, index=False)
    table = select_columns(read_table(path, "user"), path, "user", "rating", feature_prefix="x_")
    assert sorted(table.tasks.labels.tolist()) == sorted(set(ids))
    assert np.all(table.tasks.labels[table.tasks.codes] == np.array(ids))
    assert main(["fit", str(path), "-o", str(tmp_path / "m.npz"), *FIT]) == 0
    assert set(LRSRegressor.load(tmp_path / "m.npz").tasks_.tolist()) == set(ids)


def test_csv_and_parquet_give_the_same_model(tmp_path):
    df = _frame(["NA", "null", "7", "007", "x"] * 8)
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet", index=False)
    for suffix in (".csv", ".parquet"):
        assert main(["fit", str(tmp_path / f"d{suffix}"), "-o", str(tmp_path / f"m{suffix}.npz"), *FIT]) == 0
    a, b = LRSRegressor.load(tmp_path / "m.csv.npz"), LRSRegressor.load(tmp_path / "m.parquet.npz")
    assert np.array_equal(a.tasks_, b.tasks_) and np.array_equal(a.U_, b.U_)


def test_numeric_parquet_ids_read_as_their_digits(tmp_path):
    ints = _frame(np.repeat(np.arange(4), 5))
    floats = ints.assign(user=ints["user"].astype(np.float64))  # what a column of integers with gaps becomes
    for name, frame in (("i", ints), ("f", floats)):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
        table = select_columns(read_table(tmp_path / f"{name}.parquet", "user"), "x", "user", "rating",
                               feature_prefix="x_")
        assert table.tasks.labels.tolist() == ["0", "1", "2", "3"]
    floats.loc[3, "user"] = 1.5
    floats.to_parquet(tmp_path / "g.parquet", index=False)
    with pytest.raises(TableError, match=r"non-integer numbers \(row 4: 1.5\)"):
        select_columns(read_table(tmp_path / "g.parquet", "user"), "g", "user", "rating", feature_prefix="x_")


@pytest.mark.parametrize("suffix, value, match", [(".csv", "", "blank id"), (".parquet", "", "blank id"),
                                                  (".parquet", None, "missing value")])
def test_blank_or_missing_ids_are_refused(tmp_path, capsys, suffix, value, match):
    df = _frame(["a", "b", "c", "d"])
    df["user"] = df["user"].astype(object)
    df.loc[2, "user"] = value
    path = tmp_path / f"d{suffix}"
    df.to_parquet(path, index=False) if suffix == ".parquet" else df.to_csv(path, index=False)
    assert main(["fit", str(path), "-o", str(tmp_path / "m.npz"), *FIT]) == 2
    err = capsys.readouterr().err
    assert match in err and "row 3" in err


def test_one_huge_id_is_an_error_in_bounded_memory(tmp_path, capsys):
    """6,000 rows and one 100,000-character id: once 400 KB a row (2.4 GB); now a clear error and a few MB."""
    ids = [f"u{i % 300}" for i in range(6000)]
    ids[4321] = "z" * 100_000
    _frame(ids).to_csv(tmp_path / "d.csv", index=False)
    tracemalloc.start()
    try:
        code = main(["fit", str(tmp_path / "d.csv"), "-o", str(tmp_path / "m.npz"), *FIT])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert code == 2 and "(100,000 characters) in 1 row(s) (first: row 4322)" in err
    assert peak < 50 * 2**20


def test_labels_cost_memory_per_distinct_id(tmp_path):
    ids = [("long-id-" + "x" * 190 + str(i % 3)) for i in range(6000)]
    _frame(ids).to_csv(tmp_path / "d.csv", index=False)
    table = select_columns(read_table(tmp_path / "d.csv", "user"), "d", "user", "rating", feature_prefix="x_")
    assert table.tasks.codes.nbytes == 6000 * 8
    assert table.tasks.labels.nbytes == 3 * 199 * 4  # one table entry per distinct id, not one per row


# ---------------------------------------------------------------------- tables: dates and duplicate headers
@pytest.mark.parametrize("column", [pd.date_range("2024-01-01", periods=20, freq="D"),
                                    pd.to_timedelta(np.arange(20), unit="s")])
def test_date_and_duration_columns_are_refused(tmp_path, capsys, column):
    df = _frame([f"u{i % 4}" for i in range(20)])
    df["x_when"] = column
    df.to_parquet(tmp_path / "d.parquet", index=False)
    assert main(["fit", str(tmp_path / "d.parquet"), "-o", str(tmp_path / "m.npz"), *FIT]) == 2
    assert "feature column 'x_when' holds dates or durations" in capsys.readouterr().err


def test_duplicate_csv_headers_are_refused(tmp_path, capsys):
    text = "user,rating,x_0,x_1,x_0\n" + "".join(f"u{i % 3},{i},1,2,{i}\n" for i in range(12))
    (tmp_path / "d.csv").write_text(text)
    assert main(["fit", str(tmp_path / "d.csv"), "-o", str(tmp_path / "m.npz"), *FIT]) == 2
    assert "names column(s) ['x_0'] more than once" in capsys.readouterr().err
