"""``lorsa reproduce privacy`` and ``lorsa fit --epsilon`` end to end on tiny settings (SPEC §6)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from lorsa import PrivateLRSRegressor, make_lrs_regression
from lorsa.cli import main
from lorsa.experiments.privacy import REFERENCES, PrivacyConfig, run_privacy

TINY = PrivacyConfig(epsilons=(1.0, 8.0), n_tasks=(300,), n_features=4, rank=1, sparsity=0, n_samples=8, n_test=4,
                     noise=0.3, max_iter=2, seeds=(0,))


def test_privacy_experiment_tiny_writes_results(tmp_path) -> None:
    result = run_privacy(TINY, tmp_path, progress=False)
    assert {p.name for p in result.files.values()} == {"runs.csv", "summary.json", "table.md", "privacy.png"}
    assert (tmp_path / "privacy.png").stat().st_size < 200_000
    with open(tmp_path / "runs.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(TINY.epsilons) + len(REFERENCES)
    assert {r["method"] for r in rows} == {"private", *REFERENCES}
    for r in rows:
        if r["method"] == "private":
            assert float(r["epsilon_spent"]) <= float(r["epsilon"])
        assert np.isfinite(float(r["test_rmse"])) and 0 <= float(r["subspace_error"]) <= 1 + 1e-9
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["example_privacy_report"]["delta"] == TINY.delta
    table = (tmp_path / "table.md").read_text(encoding="utf-8")
    assert "ε=1" in table and "non private" in table and "| synthetic | 300 |" in table


def test_random_u_reference_is_random() -> None:
    """The "random U" reference freezes a random basis, not the library's default (moments) start: it must stay
    far from the truth while the non-private fit finds it."""
    config = PrivacyConfig(epsilons=(8.0,), n_tasks=(2000,), n_features=6, rank=1, sparsity=0, n_samples=20,
                           n_test=4, noise=0.1, max_iter=4, seeds=(0,))
    rows = {row["method"]: row for row in run_privacy(config, None, progress=False).rows}
    assert rows["non_private"]["subspace_error"] < 0.05
    assert rows["random_U"]["subspace_error"] > 0.3  # a random line in R^6 is ~0.9 away (measured 0.93)


def _write_tiny_movielens(folder: Path, n_users: int = 30, n_movies: int = 40, per_user: int = 20) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    jobs = ["student", "programmer", "writer", "other"]
    users = [f"{u}|{rng.integers(15, 60)}|{'MF'[u % 2]}|{jobs[u % 4]}|{10000 + u}" for u in range(1, n_users + 1)]
    (folder / "u.user").write_text("\n".join(users) + "\n", encoding="latin-1")
    items = ["|".join([str(i), f"Movie {i} (1995)", "01-Jan-1995", "", "http://x"] + ["0"] * 19)
             for i in range(1, n_movies + 1)]
    (folder / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    taste = rng.standard_normal(n_movies)
    lines = []
    for u in range(1, n_users + 1):
        for i in rng.choice(n_movies, size=per_user, replace=False):
            rating = int(np.clip(np.round(3 + taste[i] + 0.5 * rng.standard_normal()), 1, 5))
            lines.append(f"{u}\t{i + 1}\t{rating}\t{881250949 + len(lines)}")
    (folder / "u.data").write_text("\n".join(lines) + "\n", encoding="latin-1")
    return folder


def test_reproduce_privacy_cli_with_movielens(tmp_path, capsys) -> None:
    data = _write_tiny_movielens(tmp_path / "ml-100k")
    out = tmp_path / "out"
    code = main(["reproduce", "privacy", "-o", str(out), "--n-seeds", "1", "--epsilon", "2", "--tasks", "200",
                 "--features", "4", "--rank", "1", "--sparsity", "0", "--samples", "8", "--test-samples", "4",
                 "--max-iter", "2", "--movielens", str(data), "--movielens-grouping", "user",
                 "--movielens-sparsities", "0", "--no-plot", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| synthetic | 200 |" in printed and "movielens-user k=0" in printed
    assert not (out / "privacy.png").exists()
    with open(out / "runs.csv", encoding="utf-8") as fh:
        datasets = {r["dataset"] for r in csv.DictReader(fh)}
    assert datasets == {"synthetic", "movielens-user k=0"}


def test_reproduce_privacy_refuses_bad_values(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["reproduce", "privacy", "-o", str(tmp_path), "--epsilon", "0"])
    assert "expected a finite number > 0" in capsys.readouterr().err
    code = main(["reproduce", "privacy", "-o", str(tmp_path), "--tasks", "--quiet"])
    assert code == 2 and "nothing to run" in capsys.readouterr().err


def test_fit_cli_with_epsilon_writes_a_private_model(tmp_path, capsys) -> None:
    pd = pytest.importorskip("pandas")
    P = make_lrs_regression(n_tasks=100, n_samples=12, n_features=5, rank=1, sparsity=1, row_sparsity=None,
                            noise=0.3, random_state=0)
    frame = pd.DataFrame(P.X, columns=[f"x{i}" for i in range(5)]).assign(task=[f"u{t}" for t in P.tasks], y=P.y)
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "model.npz"
    code = main(["fit", str(tmp_path / "train.csv"), "-o", str(model), "--task-column", "task", "--target-column",
                 "y", "--sparsity", "1", "--epsilon", "3", "--delta", "1e-5", "--target-scale", "1.5", "--quiet"])
    assert code == 0
    est = PrivateLRSRegressor.load(model)
    assert est.n_iter_ == 6 and est.random_state is None
    assert est.privacy_report_.epsilon <= 3.0 and est.privacy_report_.delta == 1e-5
    assert est.clipping_bounds_.A2 == pytest.approx(4.5)
    code = main(["adapt", str(model), str(tmp_path / "train.csv"), "-o", str(model), "--quiet"])
    assert code == 0
    code = main(["predict", str(model), str(tmp_path / "train.csv"), "-o", str(tmp_path / "pred.csv"), "--quiet"])
    assert code == 0
    est = PrivateLRSRegressor.load(model)
    code = main(["fit", str(tmp_path / "train.csv"), "-o", str(model), "--task-column", "task", "--target-column",
                 "y", "--epsilon", "1", "--tol", "1e-3", "--quiet"])
    assert code == 2 and "--tol cannot be used with --epsilon" in capsys.readouterr().err
    assert math.isfinite(est.predict(P.X[:3], [f"u{t}" for t in P.tasks[:3]]).sum())
