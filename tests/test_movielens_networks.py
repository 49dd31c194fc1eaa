"""Personalised networks on MovieLens (``lorsa reproduce nn --movielens``) on a tiny subset of MovieLens 100K.

Reads ``../shared/data/movielens/ml-100k`` (relative to the repository root; CI has it) and is skipped with the
reason when it is absent: the MovieLens licence forbids committing the files.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from lorsa.cli import main  # noqa: E402
from lorsa.experiments import movielens_networks as exp  # noqa: E402
from lorsa.experiments.movielens_networks import MovieLensNetworkConfig, run_movielens_networks  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "movielens"
ML100K = DATA / "ml-100k"
needs_100k = pytest.mark.skipif(not (ML100K / "u.data").is_file(),
                                reason=f"MovieLens 100K not found at {ML100K} (not redistributable; CI has it)")


@pytest.fixture(scope="module")
def problems():
    """The ML-100K problem built once for the module (its factorisation is the slow part, ~6 s)."""
    return exp.load_problems(MovieLensNetworkConfig(str(DATA), dataset="ml-100k").problem_config())


@pytest.fixture
def built_once(problems, monkeypatch):
    monkeypatch.setattr(exp, "load_problems", lambda c: (problems[0], problems[1], dict(problems[2])))
    return problems


@needs_100k
def test_cli_tiny_subset_writes_files_and_caches_per_method(tmp_path, capsys, built_once):
    out = tmp_path / "nn-ml"
    argv = ["reproduce", "nn", "--movielens", "ml-100k", "--data-dir", str(DATA), "--quick", "--max-tasks", "3",
            "--epochs", "1", "--patience", "1", "--methods", "lrs", "single", "--output", str(out), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "LRS network (r, k)" in printed and "Single network" in printed
    for name in ("results.csv", "tuning.csv", "summary.json", "table.md", "movielens_networks.png",
                 "cache/lrs.json", "cache/single.json"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    lrs = next(r for r in rows if r["method"] == "lrs")
    assert (int(lrs["params_per_task"]), int(lrs["indices_per_task"]), int(lrs["bytes_per_task"])) == (10, 8, 72)
    assert all(np.isfinite(float(r["rmse"])) for r in rows)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["data"]["n_tasks_used"] == 3
    # a second run reads every method from the cache (same configuration): same numbers, no refit
    (out / "results.csv").unlink()
    assert main(argv) == 0
    again = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    assert again == rows


@needs_100k
def test_choices_never_see_the_validation_targets(tmp_path, monkeypatch, built_once):
    """Shuffling the validation targets changes the reported RMSE but not the epochs or setting chosen: they come
    from the tuning problem's held-out samples only."""
    config = MovieLensNetworkConfig(str(DATA), dataset="ml-100k", max_tasks=3, n_epochs=2, pretrain_epochs=1,
                                    patience=1, lrs_settings=((1, 2), (1, 0)), ridges=(0.0, 0.3),
                                    methods=("lrs",))
    problems = built_once
    a = run_movielens_networks(config, tmp_path / "a", progress=False, plot=False, cache=False)

    def shuffled(c):
        final, tune, info = problems
        return replace(final, y_val=np.random.default_rng(5).permutation(final.y_val)), tune, dict(info)

    monkeypatch.setattr(exp, "load_problems", shuffled)
    b = run_movielens_networks(config, tmp_path / "b", progress=False, plot=False, cache=False)
    assert [(r["setting"], r["epochs"], r["tuning_rmse"]) for r in a.rows] == \
        [(r["setting"], r["epochs"], r["tuning_rmse"]) for r in b.rows]
    assert a.rows[0]["rmse"] != b.rows[0]["rmse"]


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="methods must be"):
        MovieLensNetworkConfig("x", methods=("lora", "nope")).validate()
    with pytest.raises(ValueError, match="patience"):
        MovieLensNetworkConfig("x", patience=0).validate()
