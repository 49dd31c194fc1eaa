"""save/load: exact round trip, refusal of tampered, truncated and unknown-version files (lorsa.io)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from lorsa import LRSRegressor, ModelFileError
from lorsa.io import read_model_file, write_model_file


@pytest.fixture(scope="module")
def fitted(small_problem):
    P = small_problem
    labels = np.array([f"t{i:02d}" for i in P.tasks])
    return LRSRegressor(rank=2, sparsity=2, random_state=0).fit(P.X, P.y, tasks=labels), P, labels


def test_round_trip_is_exact(fitted, tmp_path):
    est, P, labels = fitted
    path = tmp_path / "model.lorsa"
    est.save(path)
    assert path.exists() and not list(tmp_path.glob(".*tmp"))
    est2 = LRSRegressor.load(path)
    assert np.array_equal(est2.U_, est.U_) and np.array_equal(est2.W_, est.W_)
    assert (est2.B_ != est.B_).nnz == 0 and np.array_equal(est2.tasks_, est.tasks_)
    assert np.array_equal(est2.loss_history_, est.loss_history_) and est2.n_iter_ == est.n_iter_
    assert est2.get_params() == est.get_params()
    assert np.array_equal(est2.predict(P.X, labels), est.predict(P.X, labels))


def _rewrite(path, out, mutate):
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, mutate(item.filename, src.read(item.filename)))


def test_tampered_array_is_refused(fitted, tmp_path):
    est, _, _ = fitted
    est.save(tmp_path / "m.npz")

    def flip(name, raw):
        if name == "W.npy":
            raw = bytearray(raw)
            raw[-3] ^= 0xFF
            raw = bytes(raw)
        return raw

    _rewrite(tmp_path / "m.npz", tmp_path / "bad.npz", flip)
    with pytest.raises(ModelFileError, match=r"checksum of array 'W' does not match"):
        LRSRegressor.load(tmp_path / "bad.npz")


def test_truncated_file_is_refused(fitted, tmp_path):
    est, _, _ = fitted
    est.save(tmp_path / "m.npz")
    raw = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError, match="truncated, corrupted or not a lorsa model file"):
        LRSRegressor.load(tmp_path / "cut.npz")


def test_unknown_version_is_refused(tmp_path):
    write_model_file(tmp_path / "m.npz", "LRSRegressor", {"U": np.eye(2)}, {})
    arrays, meta = read_model_file(tmp_path / "m.npz")
    meta["format_version"] = 99

    def bump(name, raw):
        if name == "__metadata__.npy":
            import io

            buf = io.BytesIO()
            np.save(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
            return buf.getvalue()
        return raw

    _rewrite(tmp_path / "m.npz", tmp_path / "v99.npz", bump)
    with pytest.raises(ModelFileError, match=r"format_version 99; this lorsa reads format_version 1"):
        read_model_file(tmp_path / "v99.npz")


def test_not_a_model_file(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.arange(3))
    with pytest.raises(ModelFileError, match="not a lorsa model file"):
        LRSRegressor.load(tmp_path / "plain.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ModelFileError):
        LRSRegressor.load(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LRSRegressor.load(tmp_path / "missing.npz")


def test_object_arrays_never_loaded(tmp_path):
    """A file carrying a pickled object array is refused by numpy's allow_pickle=False, never executed."""
    write_model_file(tmp_path / "m.npz", "LRSRegressor", {"U": np.eye(2)}, {})
    with zipfile.ZipFile(tmp_path / "m.npz", "a") as zf:
        import io

        buf = io.BytesIO()
        np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
        zf.writestr("evil.npy", buf.getvalue())
    with pytest.raises(ModelFileError):
        read_model_file(tmp_path / "m.npz")


def test_wrong_kind_refused(tmp_path):
    write_model_file(tmp_path / "m.npz", "SomethingElse", {"U": np.eye(2)}, {})
    with pytest.raises(ModelFileError, match="holds a 'SomethingElse' model, expected 'LRSRegressor'"):
        LRSRegressor.load(tmp_path / "m.npz")


def test_save_to_missing_folder(fitted, tmp_path):
    est, _, _ = fitted
    with pytest.raises(ModelFileError, match="does not exist"):
        est.save(tmp_path / "nope" / "m.npz")
