"""The robustness experiment's bookkeeping (issue 12): per-variation caches that let pieces resume, the summary
(lorsa minus the best baseline), the diagnosis by task size and the written outputs. Seconds, no MovieLens."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from lorsa.experiments import movielens_robustness as mr


def _fake_problem(seed: int) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    n, nv, t = 30, 12, 4
    return SimpleNamespace(X_train=rng.normal(size=(n, 3)), y_train=rng.normal(size=n),
                           tasks_train=np.array([f"F|{i % t}|x" for i in range(n)], dtype=object),
                           X_val=rng.normal(size=(nv, 3)), y_val=rng.normal(size=nv),
                           tasks_val=np.array([f"F|{i % t}|x" for i in range(nv)], dtype=object),
                           train_counts=np.array([8, 8, 7, 7]), task_index_val=np.arange(nv) % t)


def test_cached_problems_build_once_then_read_back_without_pickle(tmp_path, monkeypatch):
    calls = []

    def build(v, data_dir):
        calls.append(v.name)
        return _fake_problem(0), _fake_problem(1)

    monkeypatch.setattr(mr, "_problems", build)
    v = mr.Variation(dataset="ml-100k", seed=2)
    final, tune, _ = mr.cached_problems(v, "unused", str(tmp_path))
    again, again_tune, _ = mr.cached_problems(v, "unused", str(tmp_path))
    assert calls == [v.name]  # the second call read the cache
    for name in mr._PROBLEM_FIELDS:
        a, b = np.asarray(getattr(final, name)), getattr(again, name)
        if name.startswith("tasks"):
            assert b.dtype.kind == "U" and list(b) == [str(x) for x in a]  # labels survive as strings
        else:
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again_tune.y_val, tune.y_val)
    assert again.n_tasks == 4


def _row(name: str, lorsa: tuple[float, float], others: dict[str, tuple[float, float]]) -> dict:
    per_task = {"sq": [1.0, 2.0, 3.0, 4.0], "count": [1, 1, 1, 1], "train_counts": [20, 80, 300, 2000]}
    methods = {"lorsa_cv": {"rmse": lorsa[0], "rmse_starved": lorsa[1], "cost_ratio": 5.0, "n_fits": 9,
                            "params": {"rank": 2, "sparsity": 1, "ridge": 3.0, "offset": "none", "shrinkage": "eb"},
                            "per_task_sq_error": per_task}}
    for k, (a, b) in others.items():
        methods[k] = {"rmse": a, "rmse_starved": b, "per_task_sq_error": {**per_task, "sq": [2.0, 2.0, 2.0, 2.0]}}
    return {"variation": name, "methods": methods}


def test_summary_takes_the_best_baseline_per_column():
    rows = [_row("a", (0.90, 1.05), {"convex": (0.88, 1.06), "finetune": (0.89, 1.04)})]
    s = mr.summarise(rows)[0]
    assert s["rmse_best_baseline"] == "convex" and s["rmse_diff"] == pytest.approx(0.02)
    assert s["rmse_starved_best_baseline"] == "finetune" and s["rmse_starved_diff"] == pytest.approx(0.01)
    assert "| a | 0.9000 | 0.8800 (convex) | +0.0200 |" in mr.format_table(rows)


def test_by_task_size_bins_and_shares():
    rows = [_row("a", (0.9, 1.0), {"convex": (0.9, 1.0), "finetune": (0.9, 1.0)})]
    bins = mr.by_task_size(rows)
    assert [b["train_samples"] for b in bins] == ["[0, 50)", "[50, 100)", "[200, 500)", "[1000, 1000000000)"]
    assert bins[0]["rmse_lorsa_cv"] == pytest.approx(1.0) and bins[3]["rmse_lorsa_cv"] == pytest.approx(2.0)
    assert sum(b["sq_share_lorsa_cv"] for b in bins) == pytest.approx(1.0)
    assert bins[0]["sq_share_convex"] == pytest.approx(0.25)


def test_write_outputs_drops_per_task_errors(tmp_path):
    rows = [_row("a", (0.9, 1.0), {"convex": (0.88, 1.01), "finetune": (0.89, 1.02)})]
    mr.write_outputs(rows, str(tmp_path))
    written = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert "per_task_sq_error" not in written[0]["methods"]["lorsa_cv"]
    assert (tmp_path / "summary.csv").read_text().splitlines()[0].startswith("variation,")
    assert (tmp_path / "by_task_size.csv").exists() and (tmp_path / "table.md").exists()
