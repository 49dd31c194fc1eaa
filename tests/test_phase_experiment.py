"""``lorsa reproduce phase`` end to end on a tiny grid (issue 14), and the boundary rule."""

from __future__ import annotations

import json

from lorsa.cli import main
from lorsa.experiments.phase import PhaseConfig, boundaries


def test_reproduce_phase_cli_tiny(tmp_path, capsys):
    """Two m values (one too few rows, one plenty) x two t, two k, all three solvers, one seed: files, table, and
    the default solver recovering where rows are plenty."""
    code = main(["reproduce", "phase", "-o", str(tmp_path), "--n-seeds", "1", "--features", "10", "--rank", "1",
                 "--sparsity", "1", "--tasks", "60", "--samples", "3", "40", "--task-grid", "30", "60",
                 "--sparsity-grid", "1", "2", "--max-iter", "30", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "95 % boundary m" in printed and "parameter count" in printed
    for name in ("runs.csv", "summary.json", "table.md", "phase_mt.png", "phase_mk.png"):
        assert (tmp_path / name).exists(), name
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    cells = {(s["grid"], s["solver"], s["m"], s["t"], s["k"]): s for s in summary["summary"]}
    assert len(cells) == 2 * 3 * 2 * 2  # grids x solvers x m x (t or k)
    assert cells[("mt", "sp", 40, 60, 1)]["success_rate"] == 1.0  # 40 rows for r + k = 2 unknowns
    assert cells[("mt", "sp", 3, 30, 1)]["success_rate"] == 0.0  # 3 rows cannot pin r + k = 2 and a support
    bound = {(b["grid"], b["solver"], b["t"], b["k"]): b for b in summary["boundaries"]}
    assert bound[("mt", "sp", 60, 1)]["boundary_m"] == 40


def test_boundary_is_smallest_m_from_which_every_larger_m_succeeds():
    config = PhaseConfig(samples=(5, 10, 20, 40), task_grid=(100,), grids=("mt",), solvers=("sp",), seeds=(0,))
    rates = {5: 1.0, 10: 0.0, 20: 1.0, 40: 1.0}  # a lucky success below a failure does not count
    summary = [{"grid": "mt", "solver": "sp", "m": m, "t": 100, "k": 2, "success_rate": s, "reliable": s >= 0.95}
               for m, s in rates.items()]
    (b,) = boundaries(summary, config)
    assert b["boundary_m"] == 20
    assert b["counting_bound_m"] == 2 + 2 + 2 * 18 / 100
    assert b["theorem_m_C1"] == max(2, 8, 2 * 20 * 16 / 100)
