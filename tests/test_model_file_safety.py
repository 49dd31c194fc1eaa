"""The model loader never trusts the file (issue 16, item 5): headers and sizes are checked before any data is read,
and every malformed file — hostile or accidental — is a ModelFileError naming the file, never a raw exception, a
huge allocation or a hang."""

from __future__ import annotations

import io
import json
import os
import threading
import time
import zipfile

import numpy as np
import pytest

from lorsa import LRSRegressor, ModelFileError
from lorsa.commands.data_io import read_columns, save_with_columns
from lorsa.io import read_model_file, write_model_file


@pytest.fixture(scope="module")
def fitted(small_problem):
    P = small_problem
    return LRSRegressor(rank=2, sparsity=2, max_iter=5, random_state=0).fit(P.X, P.y, tasks=P.tasks)


def _npy(array, header_shape=None):
    """``.npy`` bytes of ``array``; ``header_shape`` replaces the shape its header declares."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(array.dtype),
                                               "fortran_order": False,
                                               "shape": array.shape if header_shape is None else header_shape})
    buf.write(np.ascontiguousarray(array).tobytes())
    return buf.getvalue()


def _meta_entry(meta):
    return _npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


def _archive(path, entries, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, raw in entries.items():
            zf.writestr(name, raw)
    return path


def _base_meta(listing):
    return {"format": "lorsa-model", "format_version": 1, "kind": "LRSRegressor", "arrays": listing}


def test_header_declaring_a_huge_array_is_refused_before_reading(tmp_path):
    """A 3 KB file whose metadata and .npy header both declare 10^11 float64 (745 GiB) is refused at once."""
    listing = {"U": {"dtype": "<f8", "shape": [10**11], "sha256": "0" * 64}}
    path = _archive(tmp_path / "huge.npz", {"__metadata__.npy": _meta_entry(_base_meta(listing)),
                                            "U.npy": _npy(np.zeros(300), header_shape=(10**11,))})
    assert path.stat().st_size < 4000
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"huge.npz.*array 'U' declares 800000000000 bytes of data but its "
                                             r"entry holds 2400"):
        read_model_file(path)
    assert time.perf_counter() - start < 1.0


def test_header_disagreeing_with_metadata_is_refused(tmp_path):
    listing = {"U": {"dtype": "<f8", "shape": [3], "sha256": "0" * 64}}
    path = _archive(tmp_path / "m.npz", {"__metadata__.npy": _meta_entry(_base_meta(listing)),
                                         "U.npy": _npy(np.zeros(4, dtype=np.float32))})
    with pytest.raises(ModelFileError, match=r"array 'U' has dtype <f4 and shape \[4\], metadata says <f8 and \[3\]"):
        read_model_file(path)


def test_compressed_metadata_bomb_is_refused_before_inflating(tmp_path):
    """A deflated metadata entry that would expand to 100 MB (from about 100 KB) is refused from its header."""
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("__metadata__.npy", "w", force_zip64=True) as fh:
            n = 100 * 2**20
            fh.write(_npy(np.zeros(0, np.uint8), header_shape=(n,)))
            block = b"\0" * 2**22
            for _ in range(n // len(block)):
                fh.write(block)
    assert path.stat().st_size < 2**20
    with pytest.raises(ModelFileError, match=r"entry '__metadata__.npy' declares \d+ bytes from \d+ stored bytes"):
        read_model_file(path)
    stored = tmp_path / "big.npz"  # stored, not compressed: refused by the 64 MiB cap on metadata, from its header
    with zipfile.ZipFile(stored, "w") as zf:
        zf.writestr("__metadata__.npy", _npy(np.zeros(65 * 2**20, np.uint8)))
    with pytest.raises(ModelFileError, match=r"entry '__metadata__' is 68157440 bytes, more than the 67108864"):
        read_model_file(stored)


def test_compressed_array_bomb_is_refused_before_inflating(tmp_path):
    """An array entry of 100 MB of zeros deflated to about 100 KB, with metadata that agrees (shape, dtype and even
    the checksum), is refused from the sizes in the archive's directory, before anything is inflated."""
    import hashlib

    n = 100 * 2**20 // 8
    digest = hashlib.sha256()
    block = b"\0" * 2**22
    for _ in range(n * 8 // len(block)):
        digest.update(block)
    listing = {"U": {"dtype": "<f8", "shape": [n], "sha256": digest.hexdigest()}}
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("__metadata__.npy", _meta_entry(_base_meta(listing)))
        with zf.open("U.npy", "w", force_zip64=True) as fh:
            fh.write(_npy(np.zeros(0), header_shape=(n,)))
            for _ in range(n * 8 // len(block)):
                fh.write(block)
    assert path.stat().st_size < 2**20
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"entry 'U.npy' declares \d+ bytes from \d+ stored bytes \(at most "
                                             r"200-fold"):
        read_model_file(path)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("case", ["non-npy entry", "deep json", "very deep json", "missing array", "plain npy",
                                  "folder", "version true", "version float", "pickled dtype"])
def test_malformed_files_are_model_file_errors(tmp_path, fitted, case):
    path = tmp_path / "m.npz"
    fitted.save(path)
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    meta = json.loads(np.load(io.BytesIO(entries["__metadata__.npy"])).tobytes())
    if case == "non-npy entry":
        entries["notes.txt"] = b"hello"
        match = "entry 'notes.txt', which is not a .npy array"
    elif case in ("deep json", "very deep json"):
        depth = 100 if case == "deep json" else 100_000
        entries["__metadata__.npy"] = _npy(np.frombuffer(("[" * depth + "]" * depth).encode(), np.uint8))
        match = "nested deeper than 64 levels" if case == "deep json" else "unreadable metadata"
    elif case == "missing array":
        del entries["W.npy"]
        match = "lacks array 'W'"
    elif case == "plain npy":
        path.write_bytes(_npy(np.arange(5.0)))
        entries = None
        match = "not a zip archive"
    elif case == "folder":
        path.unlink()
        path.mkdir()
        entries = None
        match = "not a regular file"
    elif case.startswith("version"):
        meta["format_version"] = True if case == "version true" else 1.0
        entries["__metadata__.npy"] = _meta_entry(meta)
        match = "format_version (True|1.0); this lorsa reads format_version 1 only"
    else:
        meta["arrays"]["U"]["dtype"] = "|O"
        entries["__metadata__.npy"] = _meta_entry(meta)
        match = "metadata of array 'U' is malformed"
    if entries is not None:
        path.unlink()
        _archive(path, entries)
    with pytest.raises(ModelFileError, match=match) as info:
        LRSRegressor.load(path)
    assert "m.npz" in str(info.value)


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(pytest.raises(ModelFileError, LRSRegressor.load, fifo)),
                              daemon=True)
    reader.start()
    reader.join(5.0)
    if reader.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("loading a FIFO blocked")
    assert outcome and "not a regular file" in str(outcome[0].value)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["params"].update(rank=0), r"rank must be in \[1, 19\], got 0"),
    (lambda m: m["params"].update(rank=3), "params say rank 3 but U has 2 columns"),
    (lambda m: m["params"].update(ridge=-1.0), "ridge must be in"),
    (lambda m: m["params"].update(colour="red"), "colour"),
    (lambda m: m["attributes"].update(n_iter="5"), "n_iter / converged are malformed"),
    (lambda m: m["attributes"].update(u_solver="magic"), "u_solver must be one of"),
])
def test_metadata_goes_through_the_constructor_checks(tmp_path, fitted, edit, match):
    kind, arrays, meta = fitted._model_file_contents()
    edit(meta)
    write_model_file(tmp_path / "m.npz", kind, arrays, meta)
    with pytest.raises(ModelFileError, match=match):
        LRSRegressor.load(tmp_path / "m.npz")


def test_unsorted_tasks_and_non_finite_arrays_are_refused(tmp_path, fitted):
    kind, arrays, meta = fitted._model_file_contents()
    write_model_file(tmp_path / "a.npz", kind, {**arrays, "tasks": arrays["tasks"][::-1].copy()}, meta)
    with pytest.raises(ModelFileError, match="tasks must be sorted and distinct"):
        LRSRegressor.load(tmp_path / "a.npz")
    W = arrays["W"].copy()
    W[0, 0] = np.nan
    write_model_file(tmp_path / "b.npz", kind, {**arrays, "W": W}, meta)
    with pytest.raises(ModelFileError, match="array 'W' holds NaN or inf"):
        LRSRegressor.load(tmp_path / "b.npz")


@pytest.mark.parametrize("columns, match", [
    ({"task_column": "t", "target_column": "y", "feature_columns": ["a", "b"]}, "2 feature columns recorded for a "
                                                                                "model of 20 features"),
    ({"task_column": "t", "target_column": "y", "feature_columns": ["a"] * 20}, "must be distinct"),
    ({"task_column": 3, "target_column": "y"}, "task_column must be a column name"),
    ({"task_column": "t", "target_column": "y", "feature_columns": ["y", *[f"f{j}" for j in range(19)]]},
     r"\['y'\] recorded as a feature and as the task or target column"),
])
def test_recorded_columns_must_match_the_model(tmp_path, fitted, columns, match):
    from lorsa.commands.data_io import _load

    save_with_columns(fitted, tmp_path / "m.npz", columns)
    with pytest.raises(ModelFileError, match=match):
        _load(str(tmp_path / "m.npz"))
    if "feature_columns" not in columns or len(columns["feature_columns"]) != 20:
        with pytest.raises(ModelFileError, match="data_columns are malformed"):
            read_columns(tmp_path / "m.npz", n_features=20)
