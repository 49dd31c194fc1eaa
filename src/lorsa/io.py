"""lorsa's model file: a versioned ``.npz`` that loads without executing code.

Layout (format version 1)
-------------------------
A zip archive written by :func:`numpy.savez` holding plain numeric or fixed-width unicode arrays only (never object
arrays, so it is read with ``allow_pickle=False``), plus one entry ``__metadata__``: a uint8 array holding UTF-8
JSON with

- ``format``: ``"lorsa-model"``; ``format_version``: ``1``; ``kind``: the estimator class (e.g. ``"LRSRegressor"``);
- ``lorsa_version``; ``params``: the constructor parameters; ``attributes``: small fitted scalars;
- ``arrays``: for every array entry its dtype, shape and SHA-256 of its bytes (C order).

Reading checks the format name, the version (an unknown version is refused, never guessed), that every listed
array is present with the recorded dtype, shape and checksum, and that no unlisted entry is present. A truncated
or tampered file therefore fails with :class:`ModelFileError` naming the file and the problem. Files are written
to a temporary name in the target folder and renamed into place, so an interrupted save never leaves a
half-written model file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ModelFileError", "write_model_file", "read_model_file"]

FORMAT_NAME = "lorsa-model"
FORMAT_VERSION = 1
_META = "__metadata__"


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **clean)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_model_file(path: str | os.PathLike, kind: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a model file; returns ``(arrays, metadata)``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a lorsa model file, is truncated or tampered with, has an unknown format version, or
        holds another ``kind`` of model than requested.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    where = f"model file {str(path)!r}"
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            if _META not in names:
                raise ModelFileError(f"{where} is not a lorsa model file (no {_META} entry)")
            raw = npz[_META]
            try:
                meta = json.loads(raw.tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ModelFileError(f"{where} has unreadable metadata ({exc})") from exc
            _check_header(meta, where, kind)
            listing = meta.get("arrays")
            if not isinstance(listing, dict):
                raise ModelFileError(f"{where}: metadata has no array listing")
            extra = names - set(listing) - {_META}
            if extra:
                raise ModelFileError(f"{where} holds unexpected entries {sorted(extra)} (tampered?)")
            arrays = {}
            for name, spec in listing.items():
                if name not in names:
                    raise ModelFileError(f"{where} lacks array {name!r} (truncated or tampered)")
                arr = npz[name]
                if arr.dtype.str != spec.get("dtype") or list(arr.shape) != spec.get("shape"):
                    raise ModelFileError(
                        f"{where}: array {name!r} has dtype {arr.dtype.str} and shape {list(arr.shape)}, "
                        f"metadata says {spec.get('dtype')} and {spec.get('shape')} (tampered?)"
                    )
                if _digest(arr) != spec.get("sha256"):
                    raise ModelFileError(f"{where}: checksum of array {name!r} does not match (corrupted or tampered)")
                arrays[name] = arr
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ModelFileError(f"{where} is truncated, corrupted or not a lorsa model file ({exc})") from exc
    return arrays, meta


def _check_header(meta: Any, where: str, kind: str | None) -> None:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{where} is not a lorsa model file (format {meta.get('format')!r})"
                             if isinstance(meta, dict) else f"{where} has malformed metadata")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{where} has format_version {version!r}; this lorsa reads format_version {FORMAT_VERSION} only "
            f"(written by lorsa {meta.get('lorsa_version')!r})"
        )
    if kind is not None and meta.get("kind") != kind:
        raise ModelFileError(f"{where} holds a {meta.get('kind')!r} model, expected {kind!r}")
