"""lorsa's model file: a versioned ``.npz`` that loads without executing code.

Layout (format version 1)
-------------------------
A zip archive written by :func:`numpy.savez` holding plain numeric or fixed-width unicode arrays only (never object
arrays, so it is read with ``allow_pickle=False``), plus one entry ``__metadata__``: a uint8 array holding UTF-8
JSON with

- ``format``: ``"lorsa-model"``; ``format_version``: ``1``; ``kind``: the estimator class (e.g. ``"LRSRegressor"``);
- ``lorsa_version``; ``params``: the constructor parameters; ``attributes``: small fitted scalars;
- ``arrays``: for every array entry its dtype, shape and SHA-256 of its bytes (C order).

Reading never trusts the file: it refuses anything but a regular file (a FIFO would block, a folder is not a
model), anything but a zip archive of ``.npy`` entries (a plain ``.npy`` renamed ``.npz`` included), metadata larger
than 64 MiB or nested deeper than 64 levels, an unknown or non-integer format version, and an array whose ``.npy``
header (dtype, shape) differs from the metadata or whose declared size does not match the archive entry (lorsa
stores entries uncompressed; a compressed entry may expand at most 200-fold, far above what real parameters
compress by and far below a decompression bomb's 1,000-fold) — all checked *before* an array's data is
read, so a small file cannot make the reader allocate more than its entries really hold. Then every listed array
must be present with its checksum, and no unlisted entry may be present. Every problem is a
:class:`ModelFileError` naming the file. Files are written once, atomically (:func:`lorsa._files.atomic_output`),
so an interrupted save never leaves a half-written model file.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_output

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ModelFileError", "write_model_file", "read_model_file",
           "read_model_metadata"]

FORMAT_NAME = "lorsa-model"
FORMAT_VERSION = 1
_META = "__metadata__"
_MAX_METADATA_BYTES = 64 * 2**20
_MAX_JSON_DEPTH = 64
_MAX_DEFLATE_RATIO = 200  # lorsa stores entries uncompressed; numeric data never deflates 200-fold
_CHUNK = 16 * 2**20


class ModelFileError(ValueError):
    """A model file is missing, truncated, tampered with, of an unknown version or of the wrong kind."""


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def write_model_file(path: str | os.PathLike, kind: str, arrays: dict[str, np.ndarray],
                     metadata: dict[str, Any]) -> Path:
    """Write ``arrays`` and JSON ``metadata`` atomically to ``path`` (the name is used as given)."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"cannot save the model to {str(path)!r}: it is a directory, give a file name")
    if not path.parent.exists():
        raise ModelFileError(f"cannot save the model to {str(path)!r}: folder {str(path.parent)!r} does not exist")
    clean: dict[str, np.ndarray] = {}
    listing: dict[str, dict[str, Any]] = {}
    for name, value in arrays.items():
        arr = np.ascontiguousarray(value)
        if arr.dtype.kind not in "biufU":
            raise TypeError(f"array {name!r} has dtype {arr.dtype}; only numeric and unicode arrays are stored")
        clean[name] = arr
        listing[name] = {"dtype": arr.dtype.str, "shape": list(arr.shape), "sha256": _digest(arr)}
    from . import __version__

    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "kind": kind, "lorsa_version": __version__,
            **metadata, "arrays": listing}
    clean[_META] = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    with atomic_output(path, "model file") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **clean)
    return path


def read_model_metadata(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """The verified metadata of a model file, without reading its arrays (same checks as
    :func:`read_model_file` on everything but the arrays' data)."""
    return _open(path, kind, with_arrays=False)[1]


def read_model_file(path: str | os.PathLike, kind: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a model file; returns ``(arrays, metadata)``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a lorsa model file (not a regular file, not a zip of ``.npy`` entries), is truncated or
        tampered with (headers, sizes or checksums that disagree with the metadata), has an unknown format version,
        or holds another ``kind`` of model than requested.
    """
    return _open(path, kind, with_arrays=True)


def _open(path: str | os.PathLike, kind: str | None, with_arrays: bool
          ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    where = f"model file {str(path)!r}"
    if not path.is_file():
        raise ModelFileError(f"{where} is not a regular file (a folder, FIFO or device); give a model file")
    try:
        with open(path, "rb") as fh:
            if not zipfile.is_zipfile(fh):
                raise ModelFileError(f"{where} is truncated, corrupted or not a lorsa model file (not a zip archive; "
                                     f"a plain .npy file is not a model file)")
            fh.seek(0)
            with zipfile.ZipFile(fh) as zf:
                return _read_archive(zf, where, kind, with_arrays)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, TypeError, zlib.error,
            NotImplementedError, RecursionError) as exc:
        raise ModelFileError(f"{where} is truncated, corrupted or not a lorsa model file ({exc})") from exc


def _read_archive(zf: zipfile.ZipFile, where: str, kind: str | None, with_arrays: bool = True
                  ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        if not info.filename.endswith(".npy") or info.is_dir():
            raise ModelFileError(f"{where} holds entry {info.filename!r}, which is not a .npy array (tampered?)")
        name = info.filename[:-4]
        if name in entries:
            raise ModelFileError(f"{where} holds entry {info.filename!r} twice (tampered?)")
        entries[name] = info
    if _META not in entries:
        raise ModelFileError(f"{where} is not a lorsa model file (no {_META} entry)")
    raw = _read_entry(zf, entries[_META], where, _META, np.dtype(np.uint8), None, _MAX_METADATA_BYTES)
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{where} has unreadable metadata ({type(exc).__name__}: {str(exc)[:200]})") from exc
    _check_depth(meta, where)
    _check_header(meta, where, kind)
    listing = meta.get("arrays")
    if not isinstance(listing, dict):
        raise ModelFileError(f"{where}: metadata has no array listing")
    extra = set(entries) - set(listing) - {_META}
    if extra:
        raise ModelFileError(f"{where} holds unexpected entries {sorted(extra)} (tampered?)")
    specs = {name: _array_spec(spec, where, name) for name, spec in listing.items()}
    for name in specs:
        if name not in entries:
            raise ModelFileError(f"{where} lacks array {name!r} (truncated or tampered)")
    arrays: dict[str, np.ndarray] = {}
    for name, (dtype, shape, digest) in specs.items() if with_arrays else ():
        arr = _read_entry(zf, entries[name], where, name, dtype, shape, None)
        if _digest(arr) != digest:
            raise ModelFileError(f"{where}: checksum of array {name!r} does not match (corrupted or tampered)")
        arrays[name] = arr
    return arrays, meta


def _array_spec(spec: Any, where: str, name: str) -> tuple[np.dtype, tuple[int, ...], str]:
    """``(dtype, shape, sha256)`` of a listed array, validated (numeric or unicode dtypes only)."""
    bad = ModelFileError(f"{where}: metadata of array {name!r} is malformed ({str(spec)[:200]})")
    if not isinstance(spec, dict) or not isinstance(spec.get("dtype"), str) or not isinstance(spec.get("sha256"), str):
        raise bad
    shape = spec.get("shape")
    if not isinstance(shape, list) or len(shape) > 8 or not all(type(n) is int and n >= 0 for n in shape):
        raise bad
    try:
        dtype = np.dtype(spec["dtype"])
    except (TypeError, ValueError) as exc:
        raise bad from exc
    if dtype.kind not in "biufU" or dtype.str != spec["dtype"]:
        raise bad
    return dtype, tuple(shape), spec["sha256"]


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, name: str, dtype: np.dtype,
                shape: tuple[int, ...] | None, max_bytes: int | None) -> np.ndarray:
    """One ``.npy`` entry, its header checked against ``dtype`` / ``shape`` (None: any 1-D shape of at most
    ``max_bytes``) and its size against the archive before any data is read."""
    if info.compress_type == zipfile.ZIP_STORED:
        plausible = info.file_size == info.compress_size
    else:
        plausible = info.file_size <= _MAX_DEFLATE_RATIO * max(info.compress_size, 1)
    if not plausible:
        raise ModelFileError(f"{where}: entry {info.filename!r} declares {info.file_size} bytes from "
                             f"{info.compress_size} stored bytes (at most {_MAX_DEFLATE_RATIO}-fold is accepted: a "
                             f"decompression bomb or a tampered file?)")
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            h_shape, fortran, h_dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            h_shape, fortran, h_dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ModelFileError(f"{where}: array {name!r} has .npy format version {version}, not 1.0 or 2.0")
        expected_shape = shape if shape is not None else (h_shape[0] if len(h_shape) == 1 else -1,)
        if h_dtype != dtype or h_dtype.str != dtype.str or tuple(h_shape) != expected_shape or fortran:
            raise ModelFileError(
                f"{where}: array {name!r} has dtype {h_dtype.str} and shape {list(h_shape)}"
                f"{' (Fortran order)' if fortran else ''}, metadata says {dtype.str} and "
                f"{list(shape) if shape is not None else 'a 1-D array'} (tampered?)")
        count = 1
        for n in h_shape:
            count *= int(n)
        nbytes = count * dtype.itemsize
        if max_bytes is not None and nbytes > max_bytes:
            raise ModelFileError(f"{where}: entry {name!r} is {nbytes} bytes, more than the {max_bytes} allowed")
        if info.file_size != fh.tell() + nbytes:
            raise ModelFileError(f"{where}: array {name!r} declares {nbytes} bytes of data but its entry holds "
                                 f"{info.file_size - fh.tell()} (truncated or tampered)")
        if dtype.itemsize == 0:
            return np.zeros(h_shape, dtype=dtype)
        buf = np.empty(nbytes, dtype=np.uint8)
        view = memoryview(buf)
        done = 0
        while done < nbytes:
            got = fh.readinto(view[done:done + _CHUNK])
            if not got:
                raise ModelFileError(f"{where}: array {name!r} ends after {done} of {nbytes} bytes (truncated)")
            done += got
    return buf.view(dtype).reshape(h_shape)


def _check_depth(meta: Any, where: str) -> None:
    """Refuse metadata nested deeper than ``_MAX_JSON_DEPTH`` (checked without recursion)."""
    stack = [(meta, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            raise ModelFileError(f"{where} has metadata nested deeper than {_MAX_JSON_DEPTH} levels (tampered?)")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def _check_header(meta: Any, where: str, kind: str | None) -> None:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{where} is not a lorsa model file (format {meta.get('format')!r})"
                             if isinstance(meta, dict) else f"{where} has malformed metadata")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ModelFileError(
            f"{where} has format_version {version!r}; this lorsa reads format_version {FORMAT_VERSION} only "
            f"(written by lorsa {meta.get('lorsa_version')!r})"
        )
    if kind is not None and meta.get("kind") != kind:
        raise ModelFileError(f"{where} holds a {meta.get('kind')!r} model, expected {kind!r}")
