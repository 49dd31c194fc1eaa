"""Download of the official GroupLens MovieLens archives, with a pinned SHA-256 (split from
:mod:`lorsa.datasets.movielens`, which re-exports every public name here).

:func:`download_movielens` streams the zip to a temporary file, checks it with :func:`verify_sha256` against
:data:`MOVIELENS_ARCHIVES`, extracts it safely and renames the folder into place. It needs internet access; the
tests exercise it on a ``file://`` URL.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

__all__ = ["MOVIELENS_ARCHIVES", "download_movielens", "verify_sha256"]

#: Official GroupLens archives: URL, SHA-256 and size in bytes of the zip, files the extracted folder needs.
#: The SHA-256 values and sizes are those pinned by TensorFlow Datasets
#: (``tensorflow/datasets``, ``tensorflow_datasets/url_checksums/movielens.txt``) and quoted identically
#: by several independent projects; they could not be re-computed here (no internet). GroupLens itself
#: publishes MD5 sums (ml-100k.zip ``0e33842e24a9c977be4e0107933c0723``, ml-1m.zip
#: ``c4d9eecfca2ab87c1945afe126590906``).
MOVIELENS_ARCHIVES: dict[str, dict[str, object]] = {
    "ml-100k": {
        "url": "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        "sha256": "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        "size": 4_924_029,
        "required": ("u.data", "u.user", "u.item"),
    },
    "ml-1m": {
        "url": "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        "sha256": "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        "size": 5_917_549,
        "required": ("ratings.dat", "users.dat", "movies.dat"),
    },
}

_DATASETS = ("ml-100k", "ml-1m")


def verify_sha256(path: str | os.PathLike[str], expected: str) -> str:
    """Check a file's SHA-256 against `expected`.

    Parameters
    ----------
    path : path
        File to hash (read in 1 MiB chunks).
    expected : str
        Expected digest, 64 hexadecimal characters (case-insensitive).

    Returns
    -------
    str
        The digest (lower-case hex).

    Raises
    ------
    ValueError
        If `expected` is not a 64-character hex string, or the digest differs.
    """
    exp = str(expected).strip().lower()
    if len(exp) != 64 or any(c not in "0123456789abcdef" for c in exp):
        raise ValueError(f"expected must be a SHA-256 digest of 64 hex characters, got {expected!r}")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    got = h.hexdigest()
    if got != exp:
        raise ValueError(f"{path}: SHA-256 mismatch: expected {exp}, got {got}")
    return got


def _safe_extract(archive: Path, target: Path) -> None:
    """Extract regular files and folders of `archive` into `target`, refusing anything that would land
    outside it (absolute names, ``..``, drive letters) and skipping symbolic links."""
    root = target.resolve()
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise ValueError(f"{archive}: unsafe member name {name!r} (absolute or outside the archive root)")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                continue  # symbolic link: never created
            dest = (root / Path(*parts)).resolve() if parts else root
            if root != dest and root not in dest.parents:
                raise ValueError(f"{archive}: unsafe member name {name!r} (resolves outside {target})")
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


def download_movielens(
    name: str,
    dest_dir: str | os.PathLike[str],
    *,
    url: str | None = None,
    sha256: str | None = None,
    overwrite: bool = False,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download, verify and extract an official GroupLens MovieLens archive.

    The archive is streamed to a temporary file in `dest_dir`, its SHA-256 checked against the pinned
    value (:data:`MOVIELENS_ARCHIVES`), extracted into a temporary folder in `dest_dir` (members that
    would land outside it are refused, symbolic links skipped), and only then renamed to
    ``dest_dir/<name>``: an interrupted or failed download never leaves a half-written file or folder
    behind. Needs internet access (it cannot be exercised offline; the tests run it on a ``file://`` URL).

    Parameters
    ----------
    name : {"ml-100k", "ml-1m"}
        Which archive.
    dest_dir : path
        Folder to extract into (created if missing); the data end up in ``dest_dir/<name>/``.
    url : str, optional
        Override the GroupLens URL (any scheme urllib supports, e.g. a ``file://`` mirror).
    sha256 : str, optional
        Override the pinned SHA-256 (required together with a `url` pointing at another archive).
    overwrite : bool, default False
        Replace an existing ``dest_dir/<name>``; otherwise an existing complete folder is returned as is.
    timeout : float, default 60
        Socket timeout in seconds.
    progress : callable, optional
        Called as ``progress(bytes_done, bytes_total_or_None)`` while downloading.

    Returns
    -------
    pathlib.Path
        ``dest_dir/<name>``, ready for :func:`load_movielens`.

    Raises
    ------
    ValueError
        Unknown `name`, checksum mismatch, unsafe archive, or an archive without a ``<name>/`` folder.
    FileExistsError
        If ``dest_dir/<name>`` exists but lacks a required file and `overwrite` is False.
    urllib.error.URLError
        If the URL cannot be fetched.
    """
    if name not in MOVIELENS_ARCHIVES:
        raise ValueError(f"name must be one of {_DATASETS}, got {name!r}")
    meta = MOVIELENS_ARCHIVES[name]
    src = url if url is not None else str(meta["url"])
    expected = sha256 if sha256 is not None else str(meta["sha256"])
    dest = Path(dest_dir)
    final = dest / name
    required: tuple[str, ...] = meta["required"]  # type: ignore[assignment]
    if final.exists() and not overwrite:
        if final.is_dir() and all((final / f).is_file() for f in required):
            return final
        raise FileExistsError(
            f"{final} exists but is not a complete {name} folder (needs {', '.join(required)}); "
            "pass overwrite=True to replace it"
        )
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".zip.part", dir=dest)
    tmp_zip = Path(tmp_name)
    tmp_dir: Path | None = None
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(src, timeout=timeout) as resp:  # noqa: S310
            total = resp.headers.get("Content-Length")
            total_n = int(total) if total and total.isdigit() else None
            done = 0
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total_n)
        verify_sha256(tmp_zip, expected)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".extract", dir=dest))
        _safe_extract(tmp_zip, tmp_dir)
        extracted = tmp_dir / name
        if not extracted.is_dir():
            raise ValueError(f"{src}: the archive has no top-level folder {name}/")
        if final.exists():  # only with overwrite=True (checked above)
            old = final.with_name(f".{name}.old")
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(extracted, final)
    finally:
        tmp_zip.unlink(missing_ok=True)
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return final
