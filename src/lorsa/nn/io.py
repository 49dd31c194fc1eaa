"""The personalised-network model file: safetensors tensors + JSON metadata, no pickle (SPEC §9).

Layout (format version 1): one ``.safetensors`` file. Its tensors are the model's arrays (``theta0``, the shared
tensors ``shared.<name>``, the per-task tensors ``task.<name>``, ``b_idx`` / ``b_val`` and the module's fixed
parameters and buffers ``module.<name>``). Its header's metadata holds one entry ``lorsa``: UTF-8 JSON with
``format: "lorsa-nn-model"``, ``format_version``, ``kind`` (the estimator class), ``lorsa_version``, ``params``,
``attributes`` and, for every tensor, its dtype, shape and SHA-256. Reading refuses, with
:class:`lorsa.ModelFileError` naming the file, anything safetensors cannot parse (truncation, a bad header), an
unknown format or version, a model of another kind, and a missing, extra or changed tensor. The architecture is
not stored as code: :meth:`load` takes a module of the same architecture, whose parameter names and shapes must
match the file's. Saving writes a temporary file in the target folder and renames it into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..io import ModelFileError
from ._torch import require_torch

__all__ = ["NN_FORMAT_NAME", "NN_FORMAT_VERSION", "write_network_file", "read_network_file"]

NN_FORMAT_NAME = "lorsa-nn-model"
NN_FORMAT_VERSION = 1


def _digest(tensor: Any) -> str:
    torch = require_torch()
    raw = tensor.detach().contiguous().reshape(-1).view(torch.uint8)
    return hashlib.sha256(raw.numpy().tobytes()).hexdigest()


def write_network_file(path: str | os.PathLike, kind: str, tensors: dict[str, Any], metadata: dict[str, Any]) -> Path:
    """Write ``tensors`` (name -> CPU tensor) and JSON ``metadata`` atomically to ``path``."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"cannot save the model to {str(path)!r}: it is a directory, give a file name")
    if not path.parent.exists():
        raise ModelFileError(f"cannot save the model to {str(path)!r}: folder {str(path.parent)!r} does not exist")
    clean = {name: t.detach().contiguous().clone() for name, t in tensors.items()}
    listing = {name: {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape), "sha256": _digest(t)}
               for name, t in clean.items()}
    from .. import __version__

    meta = {"format": NN_FORMAT_NAME, "format_version": NN_FORMAT_VERSION, "kind": kind, "lorsa_version": __version__,
            **metadata, "tensors": listing}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(clean, tmp, metadata={"lorsa": json.dumps(meta, sort_keys=True)})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_network_file(path: str | os.PathLike, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read and verify a file written by :func:`write_network_file`; returns ``(tensors, metadata)``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    lorsa.ModelFileError
        Naming the file and the problem (see the module docstring).
    """
    require_torch()
    from safetensors import safe_open

    path = Path(path)
    where = f"model file {str(path)!r}"
    if not path.is_file():
        raise FileNotFoundError(f"{where} does not exist")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except Exception as exc:  # safetensors raises its own SafetensorError and OSError variants
        raise ModelFileError(f"{where} is not a readable safetensors file (truncated or corrupted?): {exc}") from exc
    try:
        meta = json.loads(header["lorsa"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{where} has no lorsa metadata; it was not written by lorsa.nn") from exc
    if meta.get("format") != NN_FORMAT_NAME:
        raise ModelFileError(f"{where} has format {meta.get('format')!r}, expected {NN_FORMAT_NAME!r}")
    if meta.get("format_version") != NN_FORMAT_VERSION:
        raise ModelFileError(f"{where} has format version {meta.get('format_version')!r}; this lorsa reads version "
                             f"{NN_FORMAT_VERSION} only")
    if meta.get("kind") != kind:
        raise ModelFileError(f"{where} holds a {meta.get('kind')!r} model, not a {kind!r}; load it with that class")
    listing = meta.get("tensors", {})
    if set(listing) != set(tensors):
        missing, extra = sorted(set(listing) - set(tensors)), sorted(set(tensors) - set(listing))
        raise ModelFileError(f"{where} is inconsistent: missing tensors {missing}, unexpected tensors {extra}")
    for name, info in listing.items():
        t = tensors[name]
        if list(t.shape) != info["shape"] or str(t.dtype).removeprefix("torch.") != info["dtype"]:
            raise ModelFileError(f"{where}: tensor {name!r} has dtype {t.dtype} and shape {list(t.shape)}, the "
                                 f"metadata says {info['dtype']} {info['shape']}")
        if _digest(t) != info["sha256"]:
            raise ModelFileError(f"{where}: tensor {name!r} does not match its checksum (the file was changed)")
    return tensors, meta
