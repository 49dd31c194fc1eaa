"""Loaders for the MovieLens 100K and 1M data sets in GroupLens's original formats.

The files are read from a local folder; nothing is bundled with lorsa (the MovieLens licence forbids
redistribution). :func:`download_movielens` (in :mod:`lorsa.datasets.movielens_download`, importable from
here too) fetches the official GroupLens archive, verifies its pinned SHA-256 and extracts it, for machines that
can reach the internet.

Formats (all latin-1, one record per line):

========  ==============================  ===========================================================
data set  file                            fields
========  ==============================  ===========================================================
ml-100k   ``u.data``                      ``user \\t item \\t rating \\t timestamp``
ml-100k   ``u.user``                      ``id|age|gender|occupation|zip`` (age in years, occupation a word)
ml-100k   ``u.item``                      ``id|title|release date|video date|IMDb URL|19 genre flags``
ml-1m     ``ratings.dat[.gz]``            ``UserID::MovieID::Rating::Timestamp``
ml-1m     ``users.dat``                   ``UserID::Gender::Age::Occupation::Zip`` (age group, code 0-20)
ml-1m     ``movies.dat``                  ``MovieID::Title::Genres``
========  ==============================  ===========================================================

Both data sets are returned in one shape, :class:`MovieLensData`: 100K's ages in years are mapped onto
ML-1M's seven age groups (:data:`AGE_GROUPS`) and ML-1M's occupation codes onto the names of its README
(:data:`ML1M_OCCUPATIONS`), so a demographic label such as ``"F|25|programmer"`` means the same kind of
thing for both.

Every parse error names the file, the 1-based line number and what was wrong; a missing file names the
file and what the folder must contain.
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lorsa.datasets.movielens_download import MOVIELENS_ARCHIVES, download_movielens, verify_sha256

__all__ = [
    "AGE_GROUPS",
    "ML1M_OCCUPATIONS",
    "MOVIELENS_ARCHIVES",
    "MovieLensData",
    "age_to_group",
    "download_movielens",
    "load_movielens",
    "load_movielens_100k",
    "load_movielens_1m",
    "verify_sha256",
]

#: ML-1M's seven age-group codes: Under 18 -> 1, 18-24 -> 18, 25-34 -> 25, 35-44 -> 35, 45-49 -> 45,
#: 50-55 -> 50, 56+ -> 56 (each code is the lower end of its group, 1 standing for "under 18").
AGE_GROUPS: tuple[int, ...] = (1, 18, 25, 35, 45, 50, 56)

#: ML-1M occupation codes 0-20, named as in the ML-1M README (code 0 is '"other" or not specified').
ML1M_OCCUPATIONS: tuple[str, ...] = tuple(
    "other|academic/educator|artist|clerical/admin|college/grad student|customer service|doctor/health care|"
    "executive/managerial|farmer|homemaker|K-12 student|lawyer|programmer|retired|sales/marketing|scientist|"
    "self-employed|technician/engineer|tradesman/craftsman|unemployed|writer".split("|")
)

_DATASETS = ("ml-100k", "ml-1m")
_100K_FILES = "u.data (ratings), u.user (users) and u.item (movies)"
_1M_FILES = "ratings.dat or ratings.dat.gz (ratings), users.dat (users) and movies.dat (movies)"


@dataclass(frozen=True)
class MovieLensData:
    """Ratings, users and movies of one MovieLens data set, as numpy arrays.

    Attributes
    ----------
    name : str
        ``"ml-100k"`` or ``"ml-1m"``.
    user, item, rating, timestamp : numpy.ndarray
        One entry per rating (int64 each): user id, movie id, rating in 1-5, Unix timestamp, in file order.
    user_ids : numpy.ndarray
        Ids of the users file (int64), in file order.
    gender : numpy.ndarray
        ``"M"`` or ``"F"`` per user (str).
    age_group : numpy.ndarray
        ML-1M age-group code per user (int64, one of :data:`AGE_GROUPS`); 100K ages are mapped onto them.
    occupation : numpy.ndarray
        Occupation name per user (str): 100K's word, or ML-1M's code mapped by :data:`ML1M_OCCUPATIONS`.
    movie_ids : numpy.ndarray
        Ids of the movies file (int64), in file order.
    titles : numpy.ndarray
        Movie title per movie id (str, decoded from latin-1).
    source : str
        The folder the data were read from.
    """

    name: str
    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    user_ids: np.ndarray
    gender: np.ndarray
    age_group: np.ndarray
    occupation: np.ndarray
    movie_ids: np.ndarray
    titles: np.ndarray
    source: str = ""

    @property
    def n_ratings(self) -> int:
        """Number of ratings."""
        return int(self.rating.shape[0])

    @property
    def n_users(self) -> int:
        """Number of users in the users file."""
        return int(self.user_ids.shape[0])

    @property
    def n_movies(self) -> int:
        """Number of movies in the movies file."""
        return int(self.movie_ids.shape[0])


def age_to_group(age: np.ndarray | int) -> np.ndarray:
    """Map ages in years onto ML-1M's seven age-group codes.

    Parameters
    ----------
    age : array_like of int
        Ages in years (non-negative).

    Returns
    -------
    numpy.ndarray
        int64 codes: under 18 -> 1, 18-24 -> 18, 25-34 -> 25, 35-44 -> 35, 45-49 -> 45, 50-55 -> 50,
        56 and over -> 56.
    """
    a = np.asarray(age, dtype=np.int64)
    if np.any(a < 0):
        raise ValueError(f"age must be >= 0 years, got minimum {int(a.min())}")
    bounds = np.array([18, 25, 35, 45, 50, 56])
    return np.asarray(AGE_GROUPS, dtype=np.int64)[np.searchsorted(bounds, a, side="right")]


def _read_text(path: Path) -> str:
    """Whole file as latin-1 text, gunzipped when it starts with the gzip magic bytes."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable gzip file ({exc})") from exc
    return data.decode("latin-1")


def _lines(text: str):
    """(1-based line number, line) for non-blank lines; splits on ``\\n`` only (latin-1 text may hold
    bytes that ``str.splitlines`` would also treat as line breaks)."""
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            yield number, line


def _split(path: Path, number: int, line: str, sep: str, n_fields: int, layout: str) -> list[str]:
    fields = line.split(sep)
    if len(fields) != n_fields:
        raise ValueError(
            f"{path}: line {number}: expected {n_fields} fields separated by {sep!r} ({layout}), "
            f"got {len(fields)}: {line[:120]!r}"
        )
    return fields


def _int(path: Path, number: int, field: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"{path}: line {number}: {field} must be an integer, got {value!r}") from None


def _require(path: Path, what: str, contents: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found; the folder must contain {contents}")
    return path


def _check_unique(path: Path, ids: list[int], numbers: list[int], what: str) -> None:
    seen: dict[int, int] = {}
    for i, n in zip(ids, numbers, strict=True):
        if i in seen:
            raise ValueError(f"{path}: line {n}: duplicate {what} id {i} (first on line {seen[i]})")
        seen[i] = n


def _gender(path: Path, number: int, value: str) -> str:
    g = value.strip().upper()
    if g not in ("M", "F"):
        raise ValueError(f"{path}: line {number}: gender must be 'M' or 'F', got {value!r}")
    return g


def _read_users_100k(path: Path):
    ids, ages, genders, occupations, numbers = [], [], [], [], []
    for n, line in _lines(_read_text(path)):
        f = _split(path, n, line, "|", 5, "id|age|gender|occupation|zip")
        ids.append(_int(path, n, "user id", f[0]))
        age = _int(path, n, "age", f[1])
        if age < 0:
            raise ValueError(f"{path}: line {n}: age must be >= 0 years, got {age}")
        ages.append(age)
        genders.append(_gender(path, n, f[2]))
        occ = f[3].strip()
        if not occ:
            raise ValueError(f"{path}: line {n}: occupation is empty")
        occupations.append(occ)
        numbers.append(n)
    _check_unique(path, ids, numbers, "user")
    return np.array(ids, np.int64), np.array(genders, str), age_to_group(ages), np.array(occupations, str)


def _read_users_1m(path: Path):
    ids, ages, genders, occupations, numbers = [], [], [], [], []
    for n, line in _lines(_read_text(path)):
        f = _split(path, n, line, "::", 5, "UserID::Gender::Age::Occupation::Zip-code")
        ids.append(_int(path, n, "UserID", f[0]))
        genders.append(_gender(path, n, f[1]))
        age = _int(path, n, "Age", f[2])
        if age not in AGE_GROUPS:
            raise ValueError(f"{path}: line {n}: Age must be one of the age-group codes {AGE_GROUPS}, got {age}")
        ages.append(age)
        occ = _int(path, n, "Occupation", f[3])
        if not 0 <= occ < len(ML1M_OCCUPATIONS):
            raise ValueError(f"{path}: line {n}: Occupation must be a code 0-20, got {occ}")
        occupations.append(ML1M_OCCUPATIONS[occ])
        numbers.append(n)
    _check_unique(path, ids, numbers, "user")
    return (
        np.array(ids, np.int64),
        np.array(genders, str),
        np.array(ages, np.int64),
        np.array(occupations, str),
    )


def _read_movies(path: Path, sep: str, n_fields: int, layout: str):
    ids, titles, numbers = [], [], []
    for n, line in _lines(_read_text(path)):
        f = _split(path, n, line, sep, n_fields, layout)
        ids.append(_int(path, n, "movie id", f[0]))
        titles.append(f[1])
        numbers.append(n)
    _check_unique(path, ids, numbers, "movie")
    return np.array(ids, np.int64), np.array(titles, str)


def _scan_ratings(text: str, path: Path, sep: str, users: set[int], movies: set[int], ctx: tuple[str, str]):
    """Line-by-line parse; raises on the first bad line. Used only when the fast path finds a problem."""
    layout = f"user{sep}item{sep}rating{sep}timestamp"
    rows = []
    for n, line in _lines(text):
        f = _split(path, n, line, sep, 4, layout)
        u = _int(path, n, "user id", f[0])
        i = _int(path, n, "movie id", f[1])
        r = _int(path, n, "rating", f[2])
        t = _int(path, n, "timestamp", f[3])
        if not 1 <= r <= 5:
            raise ValueError(f"{path}: line {n}: rating must be an integer 1-5, got {r}")
        if u not in users:
            raise ValueError(f"{path}: line {n}: user {u} is not in the users file {ctx[0]}")
        if i not in movies:
            raise ValueError(f"{path}: line {n}: movie {i} is not in the movies file {ctx[1]}")
        rows.append((u, i, r, t))
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def _read_ratings(path: Path, sep: str, user_ids: np.ndarray, movie_ids: np.ndarray, ctx: tuple[str, str]):
    text = _read_text(path)
    arr = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.loadtxt(
                io.StringIO(text.replace(sep, "\t") if sep != "\t" else text),
                delimiter="\t",
                dtype=np.int64,
                ndmin=2,
                comments=None,
            )
    except ValueError:
        arr = None
    ok = (
        arr is not None
        and arr.shape[0] > 0
        and arr.shape[1] == 4
        and bool(np.all((arr[:, 2] >= 1) & (arr[:, 2] <= 5)))
        and bool(np.all(np.isin(arr[:, 0], user_ids)))
        and bool(np.all(np.isin(arr[:, 1], movie_ids)))
    )
    if not ok:  # find and report the first bad line (or accept what the strict fast path refused)
        arr = _scan_ratings(text, path, sep, set(user_ids.tolist()), set(movie_ids.tolist()), ctx)
    if arr.shape[0] == 0:
        raise ValueError(f"{path}: contains no ratings")
    return arr


def load_movielens_100k(
    folder: str | os.PathLike[str], *, ratings: str | os.PathLike[str] | None = None
) -> MovieLensData:
    """Load MovieLens 100K from ``u.data``, ``u.user`` and ``u.item`` in `folder`.

    Parameters
    ----------
    folder : path
        Folder holding the GroupLens files (e.g. the extracted ``ml-100k/``).
    ratings : path, optional
        Ratings file to read instead of ``u.data`` (e.g. ``u1.base``); a relative path is taken relative
        to `folder`.

    Returns
    -------
    MovieLensData
        With ages mapped onto ML-1M's age groups by :func:`age_to_group`.

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        On a malformed line (the message names the file and the 1-based line number).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"MovieLens 100K folder {root} does not exist; it must contain {_100K_FILES}")
    what = f"ratings file named by ratings={str(ratings)!r}" if ratings is not None else "ratings file"
    ratings_path = _require(root / (ratings if ratings is not None else "u.data"), what, _100K_FILES)
    users_path = _require(root / "u.user", "users file", _100K_FILES)
    items_path = _require(root / "u.item", "movies file", _100K_FILES)
    user_ids, gender, age_group, occupation = _read_users_100k(users_path)
    movie_ids, titles = _read_movies(items_path, "|", 24, "id|title|release date|video date|URL|19 genres")
    r = _read_ratings(ratings_path, "\t", user_ids, movie_ids, (users_path.name, items_path.name))
    return _data("ml-100k", r, (user_ids, gender, age_group, occupation), (movie_ids, titles), root)


def load_movielens_1m(
    folder: str | os.PathLike[str], *, ratings: str | os.PathLike[str] | None = None
) -> MovieLensData:
    """Load MovieLens 1M from ``ratings.dat`` (or ``ratings.dat.gz``), ``users.dat`` and ``movies.dat``.

    Parameters
    ----------
    folder : path
        Folder holding the GroupLens files (e.g. the extracted ``ml-1m/``).
    ratings : path, optional
        Ratings file to read instead of the default ``ratings.dat`` / ``ratings.dat.gz``; a relative
        path is taken relative to `folder`. Other files (such as a partial
        ``ratings_PARTIAL_users1-2999.dat.gz``) are only ever read when named here. Gzip is detected from
        the file's content, not its name.

    Returns
    -------
    MovieLensData
        Occupation codes are mapped to the names in :data:`ML1M_OCCUPATIONS`.

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        On a malformed line (the message names the file and the 1-based line number).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"MovieLens 1M folder {root} does not exist; it must contain {_1M_FILES}")
    if ratings is not None:
        ratings_path = _require(root / ratings, f"ratings file named by ratings={str(ratings)!r}", _1M_FILES)
    else:
        candidates = [root / "ratings.dat", root / "ratings.dat.gz"]
        found = [p for p in candidates if p.is_file()]
        if not found:
            others = sorted(p.name for p in root.glob("ratings*") if p.is_file())
            hint = f"; found {others}, pass ratings=<name> to read one explicitly" if others else ""
            raise FileNotFoundError(
                f"{candidates[0]}: ratings file not found; the folder must contain {_1M_FILES}{hint}"
            )
        ratings_path = found[0]
    users_path = _require(root / "users.dat", "users file", _1M_FILES)
    movies_path = _require(root / "movies.dat", "movies file", _1M_FILES)
    user_ids, gender, age_group, occupation = _read_users_1m(users_path)
    movie_ids, titles = _read_movies(movies_path, "::", 3, "MovieID::Title::Genres")
    r = _read_ratings(ratings_path, "::", user_ids, movie_ids, (users_path.name, movies_path.name))
    return _data("ml-1m", r, (user_ids, gender, age_group, occupation), (movie_ids, titles), root)


def _data(name: str, ratings: np.ndarray, users: tuple, movies: tuple, root: Path) -> MovieLensData:
    """Assemble :class:`MovieLensData` from the parsed ratings (user, item, rating, timestamp columns)."""
    return MovieLensData(name, ratings[:, 0], ratings[:, 1], ratings[:, 2], ratings[:, 3], *users, *movies, str(root))


def load_movielens(
    folder: str | os.PathLike[str],
    dataset: str | None = None,
    *,
    ratings: str | os.PathLike[str] | None = None,
) -> MovieLensData:
    """Load MovieLens 100K or 1M from `folder`, detecting which from the files present.

    Parameters
    ----------
    folder : path
        Folder with the GroupLens files.
    dataset : {"ml-100k", "ml-1m"}, optional
        Which data set; by default ``"ml-100k"`` if ``u.user`` is present, else ``"ml-1m"`` if
        ``users.dat`` is present.
    ratings : path, optional
        Explicit ratings file (see :func:`load_movielens_1m`).

    Returns
    -------
    MovieLensData
    """
    root = Path(folder)
    if dataset is None:
        if (root / "u.user").is_file():
            dataset = "ml-100k"
        elif (root / "users.dat").is_file():
            dataset = "ml-1m"
        else:
            raise FileNotFoundError(
                f"{root}: no MovieLens users file (u.user or users.dat) found; an ml-100k folder must "
                f"contain {_100K_FILES}, an ml-1m folder {_1M_FILES}"
            )
    if dataset == "ml-100k":
        return load_movielens_100k(root, ratings=ratings)
    if dataset == "ml-1m":
        return load_movielens_1m(root, ratings=ratings)
    raise ValueError(f"dataset must be one of {_DATASETS}, got {dataset!r}")
