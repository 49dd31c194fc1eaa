"""MovieLens loaders, download/checksum path and the paper's task protocol (SPEC §8)."""

from __future__ import annotations

import gzip
import hashlib
import os
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lorsa.datasets import movielens_tasks as mt
from lorsa.datasets.movielens import (
    AGE_GROUPS,
    ML1M_OCCUPATIONS,
    MovieLensData,
    age_to_group,
    download_movielens,
    load_movielens,
    load_movielens_1m,
    load_movielens_100k,
    verify_sha256,
)
from lorsa.datasets.movielens_tasks import (
    assign_tasks,
    fit_movie_vectors,
    movielens_tasks,
    movielens_tuning_tasks,
    split_task_movies,
)

# ----------------------------------------------------------------------------------------------------
# tiny files in GroupLens's formats
# ----------------------------------------------------------------------------------------------------

USERS_100K = [
    "1|10|M|student|11111",
    "2|18|F|programmer|22222",
    "3|30|M|programmer|33333",
    "4|40|F|writer|44444",
    "5|47|M|other|55555",
    "6|52|F|other|66666",
    "7|60|M|retired|77777",
]
TITLES = ["Café au Lait (1993)", "Misérables, Les (1995)", "Toy Story (1995)"]
RATINGS = [
    (1, 1, 5, 881250949),
    (1, 2, 3, 881250950),
    (2, 3, 1, 881250951),
    (3, 1, 4, 881250952),
    (7, 2, 2, 1),
]


def _item_line(i: int, title: str) -> str:
    return "|".join([str(i), title, "01-Jan-1995", "", "http://x"] + ["0"] * 19)


def write_100k(folder: Path, ratings: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.user").write_bytes(("\n".join(USERS_100K) + "\n").encode("latin-1"))
    items = [_item_line(i + 1, t) for i, t in enumerate(TITLES)]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    lines = ratings if ratings is not None else ["\t".join(map(str, r)) for r in RATINGS]
    (folder / "u.data").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return folder


USERS_1M = ["1::F::1::10::48067", "2::M::56::16::70072", "3::M::25::15::55117"]


def write_1m(folder: Path, ratings: list[str] | None = None, name: str = "ratings.dat.gz") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "users.dat").write_bytes(("\n".join(USERS_1M) + "\n").encode("latin-1"))
    movies = [f"{i + 1}::{t}::Comedy|Drama" for i, t in enumerate(TITLES)]
    (folder / "movies.dat").write_bytes(("\n".join(movies) + "\n").encode("latin-1"))
    lines = ratings if ratings is not None else ["1::1::5::978300760", "2::3::3::978302109", "3::2::4::9"]
    raw = ("\n".join(lines) + "\n").encode("latin-1")
    (folder / name).write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    return folder


# ----------------------------------------------------------------------------------------------------
# loaders
# ----------------------------------------------------------------------------------------------------


def test_age_to_group_maps_onto_ml1m_groups():
    ages = [0, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 90]
    assert age_to_group(ages).tolist() == [1, 1, 18, 18, 25, 25, 35, 35, 45, 45, 50, 50, 56, 56]
    with pytest.raises(ValueError, match="age"):
        age_to_group([-1])


def test_load_100k_tiny(tmp_path):
    d = load_movielens_100k(write_100k(tmp_path / "ml-100k"))
    assert d.name == "ml-100k" and d.n_ratings == 5 and d.n_users == 7 and d.n_movies == 3
    assert d.user.tolist() == [1, 1, 2, 3, 7] and d.item.tolist() == [1, 2, 3, 1, 2]
    assert d.rating.tolist() == [5, 3, 1, 4, 2] and d.timestamp[0] == 881250949
    assert d.age_group.tolist() == [1, 18, 25, 35, 45, 50, 56]
    assert set(d.age_group.tolist()) <= set(AGE_GROUPS)
    assert d.gender.tolist() == ["M", "F", "M", "F", "M", "F", "M"]
    assert d.occupation[1] == "programmer"
    assert d.titles.tolist() == TITLES  # latin-1 accents decoded


def test_load_1m_tiny_gz_and_plain(tmp_path):
    d = load_movielens_1m(write_1m(tmp_path / "gz"))
    assert d.name == "ml-1m" and d.n_ratings == 3
    assert d.age_group.tolist() == [1, 56, 25] and d.gender.tolist() == ["F", "M", "M"]
    assert d.occupation.tolist() == [ML1M_OCCUPATIONS[10], ML1M_OCCUPATIONS[16], ML1M_OCCUPATIONS[15]]
    assert d.occupation[0] == "K-12 student"
    assert d.titles.tolist() == TITLES
    plain = load_movielens(write_1m(tmp_path / "plain", name="ratings.dat"))
    assert plain.name == "ml-1m" and np.array_equal(plain.rating, d.rating)


def test_1m_other_ratings_file_only_when_named(tmp_path):
    folder = write_1m(tmp_path / "ml-1m", name="ratings_PARTIAL_users1-2999.dat.gz")
    with pytest.raises(FileNotFoundError, match=r"ratings\.dat.*ratings_PARTIAL_users1-2999\.dat\.gz"):
        load_movielens_1m(folder)
    d = load_movielens(folder, "ml-1m", ratings="ratings_PARTIAL_users1-2999.dat.gz")
    assert d.n_ratings == 3
    with pytest.raises(FileNotFoundError, match="nope.dat"):
        load_movielens_1m(folder, ratings="nope.dat")


def test_crlf_and_blank_lines_accepted(tmp_path):
    folder = write_100k(tmp_path / "a", ratings=["1\t1\t5\t1\r", "", "2\t3\t4\t2\r"])
    d = load_movielens_100k(folder)
    assert d.rating.tolist() == [5, 4]


@pytest.mark.parametrize(
    ("missing", "writer"),
    [("u.data", write_100k), ("u.user", write_100k), ("u.item", write_100k)]
    + [("ratings.dat.gz", write_1m), ("users.dat", write_1m), ("movies.dat", write_1m)],
)
def test_missing_file_names_file_and_contents(tmp_path, missing, writer):
    folder = writer(tmp_path / "d")
    (folder / missing).unlink()
    loader = load_movielens_100k if writer is write_100k else load_movielens_1m
    stem = missing.removesuffix(".gz")
    with pytest.raises(FileNotFoundError, match=rf"{stem}.*must contain"):
        loader(folder)


def test_missing_folder_and_unknown_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="must contain"):
        load_movielens_100k(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="u.user or users.dat"):
        load_movielens(tmp_path)
    with pytest.raises(ValueError, match=r"dataset must be one of .*'ml-10m'"):
        load_movielens(write_100k(tmp_path / "x"), "ml-10m")


BAD_100K = [
    (["1\t1\t5\t1", "1\t2\t5"], 2, "expected 4 fields"),
    (["1\t1\t5\t1", "1\tx\t5\t1"], 2, "movie id must be an integer"),
    (["1\t1\t5\t1", "", "1\t2\t3.5\t1"], 3, "rating must be an integer"),
    (["1\t1\t6\t1"], 1, "rating must be an integer 1-5, got 6"),
    (["1\t1\t0\t1"], 1, "rating must be an integer 1-5, got 0"),
    (["1\t1\t5\t1", "99\t1\t5\t1"], 2, "user 99 is not in the users file u.user"),
    (["1\t42\t5\t1"], 1, "movie 42 is not in the movies file u.item"),
]


@pytest.mark.parametrize(("lines", "lineno", "what"), BAD_100K)
def test_malformed_100k_ratings_name_file_and_line(tmp_path, lines, lineno, what):
    folder = write_100k(tmp_path / "d", ratings=lines)
    with pytest.raises(ValueError, match=rf"u\.data: line {lineno}: .*") as err:
        load_movielens_100k(folder)
    assert what in str(err.value)


@pytest.mark.parametrize(
    ("lines", "lineno", "what"),
    [
        (["1::1::5::1", "2::3::7::1"], 2, "rating must be an integer 1-5, got 7"),
        (["1::1::5::1", "1::1::5"], 2, "expected 4 fields"),
        (["1::1::5::1", "1::1::5::1::9"], 2, "expected 4 fields"),
        (["4::1::5::1"], 1, "user 4 is not in the users file users.dat"),
    ],
)
def test_malformed_1m_ratings_name_file_and_line(tmp_path, lines, lineno, what):
    folder = write_1m(tmp_path / "d", ratings=lines)
    with pytest.raises(ValueError, match=rf"ratings\.dat\.gz: line {lineno}: ") as err:
        load_movielens_1m(folder)
    assert what in str(err.value)


def test_malformed_users_and_movies_files(tmp_path):
    folder = write_1m(tmp_path / "a")
    (folder / "users.dat").write_text("1::F::1::10::1\n2::M::30::16::2\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"users\.dat: line 2: Age must be one of .*got 30"):
        load_movielens_1m(folder)
    (folder / "users.dat").write_text("1::F::1::21::1\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"users\.dat: line 1: Occupation must be a code 0-20, got 21"):
        load_movielens_1m(folder)
    (folder / "users.dat").write_text("1::X::1::1::1\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"users\.dat: line 1: gender must be 'M' or 'F', got 'X'"):
        load_movielens_1m(folder)
    folder = write_100k(tmp_path / "b")
    (folder / "u.item").write_text(_item_line(1, "A") + "\n2|B\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"u\.item: line 2: expected 24 fields"):
        load_movielens_100k(folder)
    (folder / "u.user").write_text("1|20|M|x|1\n1|30|F|y|2\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"u\.user: line 2: duplicate user id 1 \(first on line 1\)"):
        load_movielens_100k(folder)


# ----------------------------------------------------------------------------------------------------
# checksum and download (file:// URLs: no internet needed)
# ----------------------------------------------------------------------------------------------------


def test_verify_sha256(tmp_path):
    f = tmp_path / "blob"
    f.write_bytes(b"lorsa")
    digest = hashlib.sha256(b"lorsa").hexdigest()
    assert verify_sha256(f, digest.upper()) == digest
    with pytest.raises(ValueError, match=f"SHA-256 mismatch: expected {'0' * 64}, got {digest}"):
        verify_sha256(f, "0" * 64)
    with pytest.raises(ValueError, match="64 hex"):
        verify_sha256(f, "abc")


def _zip_100k(tmp_path: Path, extra: dict[str, bytes] | None = None) -> tuple[Path, str]:
    src = write_100k(tmp_path / "src" / "ml-100k")
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(src.iterdir()):
            zf.write(p, f"ml-100k/{p.name}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_download_file_url_end_to_end(tmp_path):
    archive, digest = _zip_100k(tmp_path)
    dest = tmp_path / "dest"
    seen = []
    out = download_movielens(
        "ml-100k", dest, url=archive.as_uri(), sha256=digest, progress=lambda n, t: seen.append(n)
    )
    assert out == dest / "ml-100k" and sorted(p.name for p in dest.iterdir()) == ["ml-100k"]
    assert load_movielens(out).n_ratings == 5 and seen[-1] == archive.stat().st_size
    # a complete folder is kept as is (no fetch: the URL is not even opened)
    assert download_movielens("ml-100k", dest, url="file:///nonexistent.zip", sha256=digest) == out


def test_download_incomplete_folder_needs_overwrite(tmp_path):
    archive, digest = _zip_100k(tmp_path)
    dest = tmp_path / "dest"
    (dest / "ml-100k").mkdir(parents=True)
    (dest / "ml-100k" / "u.data").write_text("stale")
    with pytest.raises(FileExistsError, match="not a complete ml-100k folder.*overwrite=True"):
        download_movielens("ml-100k", dest, url=archive.as_uri(), sha256=digest)
    out = download_movielens("ml-100k", dest, url=archive.as_uri(), sha256=digest, overwrite=True)
    assert load_movielens(out).n_ratings == 5 and sorted(p.name for p in dest.iterdir()) == ["ml-100k"]


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    archive, _ = _zip_100k(tmp_path)
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        download_movielens("ml-100k", dest, url=archive.as_uri(), sha256="f" * 64)
    assert list(dest.iterdir()) == []


def test_download_refuses_path_traversal(tmp_path):
    archive, digest = _zip_100k(tmp_path, {"../evil.txt": b"x"})
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match="unsafe member name"):
        download_movielens("ml-100k", dest, url=archive.as_uri(), sha256=digest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_download_rejects_unknown_name(tmp_path):
    with pytest.raises(ValueError, match=r"name must be one of \('ml-100k', 'ml-1m'\), got 'ml-20m'"):
        download_movielens("ml-20m", tmp_path)


# ----------------------------------------------------------------------------------------------------
# protocol on synthetic ratings
# ----------------------------------------------------------------------------------------------------


def synthetic(n_users: int = 60, n_movies: int = 90, per_user: int = 30, seed: int = 0) -> MovieLensData:
    rng = np.random.default_rng(seed)
    users = np.arange(1, n_users + 1)
    u = np.repeat(users, per_user)
    i = np.concatenate([rng.choice(np.arange(1, n_movies + 1), per_user, replace=False) for _ in users])
    low = rng.normal(size=(n_users, 2)) @ rng.normal(size=(2, n_movies))
    r = np.clip(np.round(3 + low[u - 1, i - 1]), 1, 5).astype(np.int64)
    return MovieLensData(
        name="synthetic",
        user=u,
        item=i,
        rating=r,
        timestamp=np.arange(len(u)),
        user_ids=users,
        gender=rng.choice(np.array(["M", "F"]), n_users),
        age_group=rng.choice(np.array(AGE_GROUPS[:3]), n_users),
        occupation=rng.choice(np.array(["artist", "writer"]), n_users),
        movie_ids=np.arange(1, n_movies + 1),
        titles=np.array([f"m{j}" for j in range(n_movies)]),
    )


FAST = {"rank": 5, "n_iter": 5}


def test_assign_tasks():
    d = synthetic()
    task, labels = assign_tasks(d, "demographic")
    assert len(labels) <= 2 * 3 * 2 and all(lab.count("|") == 2 for lab in labels)
    row = d.user - 1
    expect = [
        f"{g}|{a}|{o}" for g, a, o in zip(d.gender[row], d.age_group[row], d.occupation[row], strict=True)
    ]
    assert labels[task].tolist() == expect
    task, labels = assign_tasks(d, "user")
    assert labels[task].tolist() == [str(x) for x in d.user]
    with pytest.raises(ValueError, match=r"grouping must be one of \('demographic', 'user'\), got 'age'"):
        assign_tasks(d, "age")


def test_split_fraction_whole_movies_and_seed():
    d = synthetic()
    task, _ = assign_tasks(d, "demographic")
    held = split_task_movies(task, d.item, fraction=0.2, seed=3)
    for t in np.unique(task):
        movies = np.unique(d.item[task == t])
        held_movies = np.unique(d.item[(task == t) & held])
        assert len(held_movies) == min(int(np.floor(0.2 * len(movies) + 0.5)), len(movies) - 1)
        # all the task's ratings of a held-out movie are held out
        assert not np.isin(d.item[(task == t) & ~held], held_movies).any()
    assert np.array_equal(held, split_task_movies(task, d.item, fraction=0.2, seed=3))
    assert not np.array_equal(held, split_task_movies(task, d.item, fraction=0.2, seed=4))
    perm = np.random.default_rng(1).permutation(len(task))  # order of the ratings does not matter
    assert np.array_equal(split_task_movies(task[perm], d.item[perm], seed=3), held[perm])
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\), got 1.5"):
        split_task_movies(task, d.item, fraction=1.5)


def test_split_eligible_only_holds_out_eligible():
    d = synthetic()
    task, _ = assign_tasks(d, "user")
    val = split_task_movies(task, d.item, seed=0)
    tune = split_task_movies(task, d.item, seed=[0, 1], eligible=~val)
    assert not (tune & val).any() and tune.sum() > 0


def _pairs(u: np.ndarray, i: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(u.tolist(), i.tolist(), strict=True))


def test_no_leakage_factorisation_sees_training_ratings_only(monkeypatch):
    d = synthetic()
    calls = []
    real = mt.fit_movie_vectors

    def spy(user, item, rating, **kw):
        calls.append((np.array(user), np.array(item)))
        return real(user, item, rating, **kw)

    monkeypatch.setattr(mt, "fit_movie_vectors", spy)
    p = movielens_tasks(d, seed=5, **FAST)
    task, labels = assign_tasks(d, "demographic")
    held = split_task_movies(task, d.item, seed=5)
    ((u_fit, i_fit),) = calls
    assert _pairs(u_fit, i_fit) == _pairs(d.user[~held], d.item[~held])
    assert not _pairs(u_fit, i_fit) & _pairs(d.user[held], d.item[held])
    # no validation movie of a task among its training samples
    for t in range(p.n_tasks):
        assert not np.isin(p.movies_val[p.task_index_val == t], p.movies_train[p.task_index_train == t]).any()
    assert np.array_equal(p.tasks_train, labels[p.task_index_train])


def test_no_leakage_changing_validation_ratings_keeps_vectors():
    d = synthetic()
    p = movielens_tasks(d, seed=2, **FAST)
    task, _ = assign_tasks(d, "demographic")
    held = split_task_movies(task, d.item, seed=2)
    changed = replace(d, rating=np.where(held, 6 - d.rating, d.rating))
    q = movielens_tasks(changed, seed=2, **FAST)
    assert np.array_equal(p.factors.movie_vectors, q.factors.movie_vectors)
    assert np.array_equal(p.X_train, q.X_train) and np.array_equal(p.y_train, q.y_train)
    assert not np.array_equal(p.y_val, q.y_val)


def test_samples_are_task_mean_ratings_and_counts_add_up():
    d = synthetic()
    p = movielens_tasks(d, grouping="user", seed=1, **FAST)
    task, labels = assign_tasks(d, "user")
    held = split_task_movies(task, d.item, seed=1)
    j = 7
    t, m = p.task_index_train[j], p.movies_train[j]
    sel = (task == t) & (d.item == m) & ~held
    assert p.y_train[j] == pytest.approx(d.rating[sel].mean()) and p.n_ratings_train[j] == sel.sum()
    assert np.array_equal(p.X_train[j], p.factors.movie_vectors[np.searchsorted(p.factors.movie_ids, m)])
    assert p.X_train.shape == (len(p.y_train), 5) and p.X_val.shape == (len(p.y_val), 5)
    meta = p.metadata
    assert p.train_counts.sum() == meta["n_samples_train"] == len(p.y_train)
    assert p.val_counts.sum() == meta["n_samples_val"] == len(p.y_val)
    assert p.n_ratings_train.sum() == meta["n_ratings_train"]
    assert p.n_ratings_val.sum() + meta["n_val_ratings_dropped"] == meta["n_ratings_heldout"]
    assert meta["n_tasks"] == len(labels) == d.n_users


def test_validation_movie_without_training_rating_is_dropped_and_counted():
    d = synthetic(n_users=4, n_movies=12, per_user=10)
    d = replace(d, gender=np.array(["M"] * 4), age_group=np.array([1] * 4), occupation=np.array(["x"] * 4))
    p = movielens_tasks(d, seed=0, **FAST)  # one task: its validation movies have no training rating
    assert p.n_tasks == 1 and len(p.y_val) == 0
    assert p.metadata["n_val_samples_dropped"] > 0 and p.metadata["n_val_ratings_dropped"] > 0


def test_tuning_problem_never_touches_validation(monkeypatch):
    d = synthetic()
    calls = []
    real = mt.fit_movie_vectors
    monkeypatch.setattr(
        mt, "fit_movie_vectors", lambda u, i, r, **kw: calls.append((u, i)) or real(u, i, r, **kw)
    )
    tp = movielens_tuning_tasks(d, seed=5, **FAST)
    task, _ = assign_tasks(d, "demographic")
    val = split_task_movies(task, d.item, seed=5)
    val_pairs = _pairs(d.user[val], d.item[val])
    assert not _pairs(*calls[0]) & val_pairs
    assert tp.metadata["heldout"] == "tuning" and tp.metadata["n_ratings_validation_unused"] == val.sum()
    assert tp.metadata["n_ratings_train"] + tp.metadata["n_ratings_heldout"] == (~val).sum()
    for t in range(tp.n_tasks):  # tuning movies of a task: from its training movies, not its validation ones
        tmov = tp.movies_val[tp.task_index_val == t]
        assert not np.isin(tmov, d.item[(task == t) & val]).any()
        assert not np.isin(tmov, tp.movies_train[tp.task_index_train == t]).any()


def test_fit_movie_vectors_recovers_low_rank_and_is_canonical():
    rng = np.random.default_rng(0)
    P, Q = rng.normal(size=(40, 3)), rng.normal(size=(30, 3))
    u, i = np.nonzero(rng.random((40, 30)) < 0.6)
    r = 3.0 + np.einsum("ij,ij->i", P[u], Q[i])
    f = fit_movie_vectors(u, i, r, rank=4, reg=1e-4, n_iter=100, tol=1e-9, seed=0)
    assert f.train_rmse < 1e-2
    assert np.all(np.diff(f.singular_values) <= 0) and np.all(f.movie_vectors.sum(axis=0) >= 0)
    g = fit_movie_vectors(u, i, r, rank=4, reg=1e-4, n_iter=100, tol=1e-9, seed=0)
    assert np.array_equal(f.movie_vectors, g.movie_vectors)
    with pytest.raises(ValueError, match="rank must be a positive integer, got 0"):
        fit_movie_vectors(u, i, r, rank=0)
    with pytest.raises(ValueError, match="reg must be > 0"):
        fit_movie_vectors(u, i, r, reg=0.0)


# ----------------------------------------------------------------------------------------------------
# real data (shared/data/movielens beside the repository, or $LORSA_MOVIELENS_DIR)
# ----------------------------------------------------------------------------------------------------


def _real(name: str, marker: str) -> Path:
    candidates = []
    if os.environ.get("LORSA_MOVIELENS_DIR"):
        env = Path(os.environ["LORSA_MOVIELENS_DIR"])
        candidates += [env / name, env]
    candidates.append(Path(__file__).resolve().parents[2] / "shared/data/movielens" / name)
    for c in candidates:
        if (c / marker).is_file():
            return c
    pytest.skip(
        f"MovieLens {name} not found (looked for {marker} in {', '.join(map(str, candidates))}); "
        "set LORSA_MOVIELENS_DIR or put shared/data/movielens beside the repository"
    )


def test_real_ml100k_protocol():
    folder = _real("ml-100k", "u.data")
    t0 = time.perf_counter()
    d = load_movielens(folder)
    assert (d.n_ratings, d.n_users, d.n_movies) == (100_000, 943, 1682)
    p = movielens_tasks(d, grouping="demographic", seed=0)
    elapsed = time.perf_counter() - t0
    meta = p.metadata
    assert p.X_train.shape[1] == 50 and meta["n_tasks"] == p.n_tasks > 100
    assert meta["n_ratings_train"] + meta["n_ratings_heldout"] == 100_000
    assert 0.15 < meta["n_samples_val"] / (meta["n_samples_val"] + meta["n_samples_train"]) < 0.25
    assert meta["n_val_samples_dropped"] < 0.01 * meta["n_samples_val"]
    for t in range(p.n_tasks):
        assert not np.isin(p.movies_val[p.task_index_val == t], p.movies_train[p.task_index_train == t]).any()
    assert np.isfinite(p.X_train).all() and 1 <= p.y_train.min() and p.y_train.max() <= 5
    assert elapsed < 60, f"protocol on ML-100K took {elapsed:.1f} s"


def test_real_ml1m_partial_loads_only_when_named():
    folder = _real("ml-1m", "users.dat")
    name = "ratings_PARTIAL_users1-2999.dat.gz"
    if not (folder / name).is_file():
        pytest.skip(f"{folder / name} not present")
    if not (folder / "ratings.dat").is_file() and not (folder / "ratings.dat.gz").is_file():
        with pytest.raises(FileNotFoundError, match="ratings_PARTIAL"):
            load_movielens_1m(folder)
    d = load_movielens_1m(folder, ratings=name)
    assert (d.n_ratings, d.n_users, d.n_movies) == (487_650, 6040, 3883)
    assert int(d.user.max()) == 2999 and set(np.unique(d.age_group).tolist()) == set(AGE_GROUPS)
