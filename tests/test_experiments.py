"""Figure 2, the new-task experiment, ``lorsa reproduce`` and ``lorsa demo``, end to end on tiny settings."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from lorsa.cli import build_parser, main
from lorsa.commands.reproduce import REPRODUCE_TARGETS
from lorsa.experiments.generalization import GeneralizationConfig, run_generalization
from lorsa.experiments.synthetic import Figure2Config, format_table, run_figure2

# The paper's proportions, scaled down: t = d zeta / k, m = d (recovery is reliable here; much smaller settings
# occasionally need another random start).
TINY = Figure2Config(n_features=40, rank=1, sparsity=4, row_sparsity=5, n_tasks=50, n_samples=40, n_test=10,
                     noise_levels=(0.0, 0.1), seeds=(0, 1), lrs_sparsities=(2, 4), lrs_ranks=(1,),
                     representation_ranks=(1, 2), sparse_finetune_sparsities=(2, 4))


def test_figure2_tiny_writes_results(tmp_path):
    result = run_figure2(TINY, tmp_path / "out", progress=False)
    names = {p.name for p in result.files.values()}
    assert names == {"runs.csv", "summary.json", "table.md", "figure2.png"}
    with open(tmp_path / "out" / "runs.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    n_methods = len(TINY.lrs_sparsities) + len(TINY.baselines)
    assert len(rows) == 2 * 2 * n_methods  # noise levels x seeds x methods
    assert {r["method"] for r in rows} == {"amht_lrs", "single", "finetune", "representation", "prompt",
                                           "sparse_finetune", "mixed", "convex"}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["config"]["seeds"] == [0, 1]
    assert all(s["test_rmse"]["n"] == 2 for s in summary["summary"])
    lrs = {(s["noise"], s["setting"]): s for s in summary["summary"] if s["method"] == "amht_lrs"}
    # Noiseless, k = true k: exact recovery, far below every baseline (the shape of Figure 2).
    assert lrs[(0.0, "k=4")]["test_rmse"]["max"] < 1e-6
    ratio = summary["ratios"][0]
    assert ratio["noise"] == 0.0 and ratio["test_rmse"]["orders"] > 4
    # Noisy: RMSE at least the noise level, and AMHT-LRS still the best.
    assert lrs[(0.1, "k=4")]["test_rmse"]["mean"] >= 0.09
    assert summary["ratios"][1]["test_rmse"]["ratio"] > 1
    png = (tmp_path / "out" / "figure2.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 200_000
    assert "Sparse fine-tuning" in format_table(result.summary, result.ratios)
    table = (tmp_path / "out" / "table.md").read_text(encoding="utf-8")
    assert table.startswith("| σ | method |") and "orders" not in table


def test_figure2_is_reproducible_and_validates():
    a = run_figure2(Figure2Config(**{**TINY.__dict__, "noise_levels": (0.0,), "seeds": (3,), "baselines": ()}),
                    progress=False, plot=False)
    b = run_figure2(Figure2Config(**{**TINY.__dict__, "noise_levels": (0.0,), "seeds": (3,), "baselines": ()}),
                    progress=False, plot=False)
    assert [r["test_rmse"] for r in a.rows] == [r["test_rmse"] for r in b.rows]
    assert a.files == {} and a.ratios == []
    with pytest.raises(ValueError, match=r"baselines must be among"):
        Figure2Config(baselines=("lora",)).validate()
    with pytest.raises(ValueError, match=r"exceeds n_features \* row_sparsity"):
        Figure2Config(n_tasks=80).validate()
    with pytest.raises(ValueError, match=r"lrs_sparsities\[...\] must be in \[0, 150\], got 151"):
        Figure2Config(lrs_sparsities=(151,)).validate()


def test_generalization_tiny(tmp_path):
    config = GeneralizationConfig(n_features=12, rank=1, sparsity=2, n_train_tasks=150, n_train_samples=20,
                                  n_new_tasks=30, new_samples=(6, 40, 200), noise=0.5, seeds=(0, 1))
    result = run_generalization(config, tmp_path, progress=False)
    assert {p.name for p in result.files.values()} == {"runs.csv", "summary.json", "table.md", "generalization.png"}
    by = {(s["method"], s["m"]): s for s in result.summary}
    # Excess risk falls with m, and with enough rows adapt beats per-task least squares (r + k = 3 vs d = 12).
    assert by[("adapt", 200)]["excess_risk"]["mean"] < by[("adapt", 6)]["excess_risk"]["mean"]
    assert by[("adapt", 200)]["excess_risk"]["mean"] < by[("least_squares", 200)]["excess_risk"]["mean"]
    assert by[("adapt", 200)]["ratio_to_rate_r_plus_k"] < 5
    assert np.isclose(by[("adapt", 40)]["rate_d"], 0.25 * 12 / 40)


def test_reproduce_synthetic_cli_tiny(tmp_path, capsys):
    out = tmp_path / "fig2"
    code = main(["reproduce", "synthetic", "--output", str(out), "--seed", "4", "--n-seeds", "2", "--noise", "0",
                 "--features", "24", "--true-sparsity", "2", "--row-sparsity", "3", "--tasks", "36", "--samples",
                 "30", "--test-samples", "8", "--sparsities", "2", "--ranks", "1", "--baselines", "single", "prompt",
                 "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "AMHT-LRS (k=2)" in printed and "Prompt tuning" in printed and "orders of magnitude" in printed
    assert (out / "figure2.png").exists()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["config"]["seeds"] == [4, 5]


def test_reproduce_generalization_cli_tiny(tmp_path, capsys):
    code = main(["reproduce", "generalization", "-o", str(tmp_path), "--n-seeds", "1", "--samples", "10", "50",
                 "--features", "10", "--rank", "1", "--sparsity", "1", "--train-tasks", "60", "--train-samples",
                 "20", "--new-tasks", "10", "--no-plot", "--quiet"])
    assert code == 0
    assert "least squares" in capsys.readouterr().out
    assert not (tmp_path / "generalization.png").exists()


def test_reproduce_bad_values_are_one_line_errors(tmp_path, capsys):
    code = main(["reproduce", "synthetic", "-o", str(tmp_path), "--tasks", "200", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("lorsa reproduce synthetic: error:") and "row_sparsity" in err
    with pytest.raises(SystemExit):
        main(["reproduce", "generalization", "--noise", "0"])
    assert "expected a number > 0" in capsys.readouterr().err


def test_demo_end_to_end(tmp_path, capsys):
    """The README's first command: the paper's setting, reduced; prints the table, the error and the plot path."""
    code = main(["demo", "--output", str(tmp_path / "demo"), "--n-seeds", "1", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Full fine-tuning" in out and "Representation learning" in out and "Sparse fine-tuning" in out
    line = next(x for x in out.splitlines() if x.startswith("AMHT-LRS (k=10, noiseless"))
    assert float(line.rsplit("=", 1)[1]) < 1e-6
    assert f"plot: {tmp_path / 'demo' / 'figure2.png'}" in out
    assert (tmp_path / "demo" / "figure2.png").exists()


def _actions(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for sub in action.choices.values():
                yield from _actions(sub)
        else:
            yield parser.prog, action


def test_every_option_of_every_command_is_explained():
    progs = set()
    for prog, action in _actions(build_parser()):
        progs.add(prog)
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 10, f"{prog} {action.option_strings} has no help"
        if action.option_strings and action.dest not in ("help",):
            pass
    for name in ("lorsa demo", "lorsa fit", "lorsa predict", "lorsa adapt"):
        assert name in progs
    for target in REPRODUCE_TARGETS:
        assert f"lorsa reproduce {target}" in progs


def test_every_command_takes_a_seed_and_quiet():
    leaves = {}
    for prog, action in _actions(build_parser()):
        leaves.setdefault(prog, set()).update(action.option_strings)
    commands = [p for p in leaves if p not in ("lorsa", "lorsa reproduce")]
    assert len(commands) >= 4 + len(REPRODUCE_TARGETS)
    for prog in commands:
        assert "--seed" in leaves[prog] and "--quiet" in leaves[prog], prog


@pytest.mark.parametrize("argv", [["demo", "--help"], ["reproduce", "synthetic", "--help"], ["fit", "--help"]])
def test_help_runs(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "--seed" in capsys.readouterr().out
