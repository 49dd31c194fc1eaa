"""Reading a table in chunks straight into X (lorsa.table_stream; issue 16's CLI memory): the same arrays and the
same errors, rows counted in the whole file, as reading the table whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lorsa.table_stream import read_task_table
from lorsa.tables import TableError, read_table, select_columns


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((53, 4)), columns=["x_0", "x_1", "x_2", "other"])
    df.insert(1, "user", [f"u{i}" for i in rng.integers(0, 9, size=53)])
    df["user"] = df["user"].where(np.arange(53) != 11, "NA")  # an id that CSV readers take for missing
    df["rating"] = rng.standard_normal(53)
    return df


def _write(frame, path):
    frame.to_parquet(path, index=False) if path.suffix == ".parquet" else frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".tsv"])
@pytest.mark.parametrize("chunk_rows", [7, 53, 1000])
def test_chunks_give_the_whole_table_arrays(frame, tmp_path, suffix, chunk_rows):
    path = tmp_path / f"d{suffix}"
    if suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    else:
        _write(frame, path)
    whole = select_columns(read_table(path, "user"), path, "user", "rating", feature_prefix="x_")
    streamed = read_task_table(path, "user", "rating", feature_prefix="x_", chunk_rows=chunk_rows)
    assert streamed.feature_columns == whole.feature_columns == ["x_0", "x_1", "x_2"]
    np.testing.assert_array_equal(streamed.X, whole.X)
    np.testing.assert_array_equal(streamed.y, whole.y)
    assert np.array_equal(streamed.tasks.labels, whole.tasks.labels)
    np.testing.assert_array_equal(streamed.tasks.codes, whole.tasks.codes)
    assert streamed.X.flags.c_contiguous and streamed.frame is None


def test_float32_and_a_single_task(frame, tmp_path):
    path = _write(frame.drop(columns=["user"]), tmp_path / "d.csv")
    table = read_task_table(path, None, "rating", ["x_2", "x_0"], task_name="bob", dtype=np.float32, chunk_rows=10)
    assert table.X.dtype == np.float32 and table.X.shape == (53, 2)
    np.testing.assert_array_equal(table.X[:, 0], frame["x_2"].to_numpy(np.float32))
    assert table.tasks.labels.tolist() == ["bob"] and np.all(table.tasks.codes == 0)


def test_errors_name_the_row_in_the_whole_file(frame, tmp_path):
    bad = frame.astype({"x_1": object})
    bad.loc[40, "x_1"] = "oops"
    path = _write(bad, tmp_path / "d.csv")
    with pytest.raises(TableError, match=r"feature column 'x_1' is not numeric \(row 41: 'oops'\)"):
        read_task_table(path, "user", "rating", feature_prefix="x_", chunk_rows=8)
    with pytest.raises(TableError, match="target column 'score' not found"):
        read_task_table(path, "user", "score", feature_prefix="x_")
    (tmp_path / "h.csv").write_text("user,rating,x_0\n")
    with pytest.raises(TableError, match="has a header but no data rows"):
        read_task_table(tmp_path / "h.csv", "user", "rating")


def test_quoted_line_breaks_and_blank_lines(tmp_path):
    text = 'user,rating,x_0\n"a\nb",1,2\n\nc,3,4\n"d",5,6'  # an id with a line break, a blank line, no final \n
    (tmp_path / "q.csv").write_text(text)
    table = read_task_table(tmp_path / "q.csv", "user", "rating", chunk_rows=1)
    assert table.X.ravel().tolist() == [2.0, 4.0, 6.0]
    assert table.tasks.labels[table.tasks.codes].tolist() == ["a\nb", "c", "d"]
