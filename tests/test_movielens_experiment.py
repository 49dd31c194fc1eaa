"""The MovieLens experiment (Figure 1, SPEC §8) and ``lorsa reproduce movielens``.

The end-to-end runs read MovieLens 100K from ``../shared/data/movielens/ml-100k`` (relative to the repository root;
CI has it) and are skipped with the reason when it is absent: the MovieLens licence forbids committing the files.
They run the full protocol with small candidate grids (the protocol is the same, only fewer hyper-parameters).
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lorsa.cli import main
from lorsa.experiments import movielens as exp
from lorsa.experiments import movielens_data
from lorsa.experiments.movielens import MovieLensConfig, resolve_data_dir, run_movielens

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "movielens"
ML100K = DATA / "ml-100k"
needs_100k = pytest.mark.skipif(not (ML100K / "u.data").is_file(),
                                reason=f"MovieLens 100K not found at {ML100K} (not redistributable; CI has it)")

@needs_100k
def test_end_to_end_ml100k_via_cli(tmp_path, capsys):
    out = tmp_path / "fig1"
    """The whole protocol and every method, with one or two hyper-parameter candidates each."""
    argv = ["reproduce", "movielens", "--data-dir", str(DATA), "--dataset", "ml-100k", "--out", str(out),
            "--seed", "0", "--sparsities", "1", "5", "--ranks", "3", "--lrs-ridges", "10", "--max-iter", "15",
            "--quiet"]
    argv += ["--offsets", "single", "--samples-per-nonzero", "25", "--ridges", "100", "1000",
             "--representation-ranks", "2", "--sft-sparsities", "5", "--mixed-cov-scales", "0.1",
             "--convex-fractions", "0.1"]
    code = main(argv)
    assert code == 0
    printed = capsys.readouterr().out
    assert "ml-100k" in printed and "AMHT-LRS (k=5)" in printed and "Full fine-tuning" in printed
    assert {p.name for p in out.iterdir()} == {"results.csv", "tuning.csv", "summary.json", "table.md",
                                               "figure1.png"}
    png = (out / "figure1.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 200_000
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    data, rows = summary["data"], summary["results"]
    assert data["dataset"] == "ml-100k" and data["n_ratings"] == 100_000 and data["n_features_model"] == 51
    assert data["n_starved_tasks"] + data["n_surplus_tasks"] == data["n_tasks"] > 100
    labels = {(r["label"], r["setting"]) for r in rows}
    assert labels == {("AMHT-LRS", "k=1"), ("AMHT-LRS", "k=5"), ("AMHT-LRS", "r, k tuned"), ("Single model", ""),
                      ("Prompt tuning", ""), ("Representation learning", ""), ("Sparse fine-tuning", ""),
                      ("Full fine-tuning", ""), ("Full fine-tuning (toward 0)", ""),
                      ("Mixed effects (random slopes)", ""), ("Convex low-rank + sparse", "")}
    n_s, n_p = data["n_val_samples_starved"], data["n_val_samples_surplus"]
    assert n_s + n_p == data["n_val_samples"]
    for r in rows:
        # the overall RMSE is the pooled RMSE of the two groups
        pooled = np.sqrt((n_s * r["rmse_starved"] ** 2 + n_p * r["rmse_surplus"] ** 2) / (n_s + n_p))
        assert np.isclose(r["rmse"], pooled), r
        assert 0.7 < r["rmse"] < 1.1 and r["rmse_starved"] > r["rmse_surplus"]
        assert np.isclose(r["pct_params"], 100 * r["params_per_task"] / 51)
    by = {(r["label"], r["setting"]): r for r in rows}
    single, finetune = by[("Single model", "")], by[("Full fine-tuning", "")]
    assert finetune["params_per_task"] == 51 and single["params_per_task"] == 0
    assert finetune["rmse"] < single["rmse"] and by[("AMHT-LRS", "k=5")]["rmse"] < single["rmse"]
    # adapted sparsity: a k=5 task stores r + (mean non-zeros allowed) < r + k numbers
    assert 3 < by[("AMHT-LRS", "k=5")]["params_per_task"] < 8
    with open(out / "tuning.csv", encoding="utf-8") as fh:
        tuning = list(csv.DictReader(fh))
    assert len(tuning) == sum(r["n_candidates"] for r in rows if r["setting"] != "r, k tuned")
    assert (out / "table.md").read_text(encoding="utf-8").count("\n| ") >= len(rows)


@needs_100k
def test_choices_never_see_the_validation_targets(monkeypatch):
    """Shuffling the validation targets changes the reported RMSE but no hyper-parameter choice: candidates are
    scored on the tuning split only. And the tuning problem holds no validation (task, movie) pair."""
    config = MovieLensConfig(str(ML100K), lrs_sparsities=(2,), lrs_ranks=(2, 4), lrs_ridges=(1.0, 100.0),
                             lrs_offsets=("none", "single"), lrs_samples_per_nonzero=(None,),
                             baselines=("single", "prompt", "finetune"), ridges=(1.0, 100.0, 1e4), max_iter=10)
    real = movielens_data.load_problems
    seen = {}

    def shuffled(c):
        final, tune, info = real(c)
        seen["final"], seen["tune"] = final, tune
        y = np.random.default_rng(5).permutation(final.y_val)
        return replace(final, y_val=y), tune, info

    a = run_movielens(config, progress=False)
    monkeypatch.setattr(exp, "load_problems", shuffled)
    b = run_movielens(config, progress=False)
    assert [r["chosen"] for r in a.rows] == [r["chosen"] for r in b.rows]
    assert [r["tuning_rmse"] for r in a.rows] == [r["tuning_rmse"] for r in b.rows]
    assert all(rb["rmse"] > ra["rmse"] for ra, rb in zip(a.rows, b.rows, strict=True))
    final, tune = seen["final"], seen["tune"]
    val_pairs = set(zip(final.task_index_val.tolist(), final.movies_val.tolist(), strict=True))
    tune_pairs = set(zip(tune.task_index_train.tolist(), tune.movies_train.tolist(), strict=True)) | set(
        zip(tune.task_index_val.tolist(), tune.movies_val.tolist(), strict=True))
    assert not val_pairs & tune_pairs
    assert np.all(final.X_train[:, -1] == 1.0) and np.all(tune.X_val[:, -1] == 1.0)  # the intercept feature


def test_resolve_data_dir(tmp_path):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-1m").mkdir()
    assert resolve_data_dir(tmp_path) == (tmp_path / "ml-100k", "ml-100k")
    assert resolve_data_dir(tmp_path, "ml-1m") == (tmp_path / "ml-1m", "ml-1m")
    (tmp_path / "ml-1m" / "users.dat").write_text("1::F::1::10::48067\n", encoding="latin-1")
    assert resolve_data_dir(tmp_path / "ml-1m") == (tmp_path / "ml-1m", "ml-1m")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_data_dir(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"holds no MovieLens data set: expected u.user"):
        resolve_data_dir(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"dataset must be one of \('ml-100k', 'ml-1m'\), got 'ml-20m'"):
        resolve_data_dir(tmp_path, "ml-20m")


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"grouping must be one of"):
        MovieLensConfig("x", grouping="age").validate()
    with pytest.raises(ValueError, match=r"baselines must be among .*got \['lora'\]"):
        MovieLensConfig("x", baselines=("lora",)).validate()
    with pytest.raises(ValueError, match=r"lrs_offsets\[...\] must be one of"):
        MovieLensConfig("x", lrs_offsets=("mean",)).validate()
    with pytest.raises(ValueError, match=r"sparsities\[...\] must be in \[0, 51\], got 52"):
        MovieLensConfig("x", lrs_sparsities=(52,)).validate()
    with pytest.raises(ValueError, match=r"lrs_ranks must not be empty"):
        MovieLensConfig("x", lrs_ranks=()).validate()


def test_cli_missing_data_dir_is_one_line_error(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    code = main(["reproduce", "movielens", "--data-dir", str(missing), "-o", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("lorsa reproduce movielens: error:") and str(missing) in err and "does not exist" in err


def test_cli_missing_files_are_named(tmp_path, capsys):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "users.dat").write_text("1::F::1::10::48067\n", encoding="latin-1")
    (folder / "movies.dat").write_text("1::Toy Story (1995)::Animation\n", encoding="latin-1")
    code = main(["reproduce", "movielens", "--data-dir", str(tmp_path), "--dataset", "ml-1m", "-o",
                 str(tmp_path / "o"), "--quiet"])
    assert code == 2
    assert "ratings.dat" in capsys.readouterr().err
    code = main(["reproduce", "movielens", "--data-dir", str(folder), "--ratings", "ratings_PARTIAL.dat.gz", "-o",
                 str(tmp_path / "o"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "ratings_PARTIAL.dat.gz" in err and "not found" in err


def test_cli_bad_choices_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "movielens", "--data-dir", "x", "--grouping", "age"])
    assert exc.value.code == 2
    assert "invalid choice: 'age'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["reproduce", "movielens"])
    assert "--data-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "movielens", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--ratings" in text and "--grouping" in text and "--seed" in text and "--quiet" in text


def test_sparsity_adapted_to_sample_count(small_problem):
    """``samples_per_nonzero = s``: task i keeps at most floor(m_i / s) non-zeros (method option for MovieLens)."""
    from lorsa import LRSRegressor

    P = small_problem
    keep = np.concatenate([np.flatnonzero(P.tasks == t)[: 8 + 2 * t] for t in range(40)])  # m_i = 8 .. 30 rows
    X, y, tasks = P.X[keep], P.y[keep], P.tasks[keep]
    est = LRSRegressor(rank=2, sparsity=2, samples_per_nonzero=12.0, ridge=0.1, random_state=0).fit(X, y, tasks)
    m = np.bincount(tasks, minlength=40)
    nnz = np.diff(est.B_.tocsc().indptr)
    assert np.all(nnz <= np.minimum(2, m // 12)) and nnz[m >= 24].max() == 2 and nnz[m < 12].max() == 0
    with pytest.raises(ValueError, match=r"samples_per_nonzero must be in \(0, inf\)|samples_per_nonzero must be"):
        LRSRegressor(samples_per_nonzero=0.0).fit(X, y, tasks)


def test_tuned_lrs_offset_and_round_trip(small_problem, tmp_path):
    from lorsa.baselines import SingleModel, TunedLRS, load_model

    P = small_problem
    est = TunedLRS(rank=2, sparsity=2, ridge=1.0, offset="single", samples_per_nonzero=10.0, shared_ridge=1.0,
                   random_state=0).fit(P.X, P.y, P.tasks)
    theta0 = SingleModel(1.0).fit(P.X, P.y, P.tasks).coef_
    assert np.allclose(est.offset_coef_, theta0)
    assert est.params_per_task == 2 + 2  # m_i = 30 >= 2 * 10 for every task
    pred = est.predict(P.X[:50], P.tasks[:50])
    coef = est.task_coefficients()
    assert np.allclose(pred, np.einsum("nd,nd->n", P.X[:50], coef.T[P.tasks[:50]]))
    est.save(tmp_path / "m.npz")
    assert np.allclose(load_model(tmp_path / "m.npz").predict(P.X[:50], P.tasks[:50]), pred)
    plain = TunedLRS(rank=2, sparsity=2, random_state=0).fit(P.X, P.y, P.tasks)
    assert np.all(plain.offset_coef_ == 0) and plain.params_per_task == 4


@needs_100k
def test_user_grouping_runs(tmp_path):
    """``grouping="user"``: every user is a task (the most data-starved setting)."""
    config = MovieLensConfig(str(DATA), grouping="user", lrs_sparsities=(1,), lrs_ranks=(2,), lrs_ridges=(10.0,),
                             lrs_samples_per_nonzero=(25.0,), baselines=("single", "finetune"), ridges=(100.0,),
                             max_iter=5)
    result = run_movielens(config, tmp_path, progress=False, plot=False)
    assert result.data["n_tasks"] == 943 and result.data["n_starved_tasks"] > 400
    assert "figure1.png" not in {p.name for p in result.files.values()}
    assert [r["label"] for r in result.rows] == ["AMHT-LRS", "Single model", "Full fine-tuning"]
    assert all(0.8 < r["rmse"] < 1.2 for r in result.rows)


def test_cli_download_fetches_verifies_and_uses_the_folder(tmp_path, monkeypatch, capsys):
    """``--download`` on a ``file://`` archive (no internet here): checksum verified, then the run reads the
    extracted folder; a wrong checksum is a one-line error."""
    import hashlib
    import zipfile

    from lorsa.datasets import movielens_download
    from test_movielens import write_100k

    src = write_100k(tmp_path / "src" / "ml-100k")
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(src.iterdir()):
            zf.write(p, f"ml-100k/{p.name}")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    entry = {**movielens_download.MOVIELENS_ARCHIVES["ml-100k"], "url": archive.as_uri(), "sha256": digest}
    monkeypatch.setitem(movielens_download.MOVIELENS_ARCHIVES, "ml-100k", entry)
    seen = {}

    def fake_run(config, output, progress=True, plot=True):
        seen["config"] = config
        return exp.MovieLensResult(config=config, rows=[], tuning=[], data={"dataset": "ml-100k", "partial": False,
                                                                            "ratings_file": "default", "n_tasks": 0,
                                                                            "n_starved_tasks": 0})

    monkeypatch.setattr(exp, "run_movielens", fake_run)
    dest = tmp_path / "data"
    assert main(["reproduce", "movielens", "--data-dir", str(dest), "--download", "-o", str(tmp_path / "o"),
                 "--quiet"]) == 0
    assert seen["config"].data_dir == str(dest / "ml-100k") and seen["config"].dataset == "ml-100k"
    assert (dest / "ml-100k" / "u.data").is_file()
    monkeypatch.setitem(movielens_download.MOVIELENS_ARCHIVES, "ml-100k", {**entry, "sha256": "0" * 64})
    assert main(["reproduce", "movielens", "--data-dir", str(tmp_path / "other"), "--download", "-o",
                 str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lorsa reproduce movielens: error:") and "SHA-256 mismatch" in err
    assert not (tmp_path / "other" / "ml-100k").exists()
