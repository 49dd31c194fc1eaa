"""``lorsa demo``: the main job for someone who just installed lorsa — a reduced Figure 2 in well under a minute."""

from __future__ import annotations

import argparse
import time

from ._common import HelpFormatter, add_quiet, add_seed, cli_errors, positive_int, say


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo", help="reduced Figure 2: AMHT-LRS vs the baselines on the paper's synthetic setting (< 1 minute)",
        description="Fit AMHT-LRS and every baseline on the paper's synthetic setting (d=150, r=1, k=10, zeta=5, "
                    "m=100, t=75; noiseless and sigma=0.1), print the comparison table and AMHT-LRS's parameter "
                    "recovery error, and write the plot and result files. A reduced version of "
                    "'lorsa reproduce synthetic' (fewer seeds, fewer k, smaller hyper-parameter grids).",
        formatter_class=HelpFormatter)
    add_seed(demo, "of the data, the test rows and the fits")
    demo.add_argument("--n-seeds", type=positive_int, default=2, metavar="S",
                      help="number of seeds (data sets) per noise level, seeds N..N+S-1; the table shows the spread "
                           "over them")
    demo.add_argument("--output", "-o", default="lorsa-results/demo", metavar="DIR",
                      help="folder for figure2.png, runs.csv, summary.json and table.md (created if missing)")
    demo.add_argument("--no-plot", action="store_true", help="do not draw figure2.png (no matplotlib needed)")
    add_quiet(demo)
    demo.set_defaults(func=cli_errors(run))


def demo_config(seed: int, n_seeds: int):  # -> Figure2Config
    """The reduced Figure 2 run by ``lorsa demo``."""
    from ..experiments.synthetic import Figure2Config

    return Figure2Config(noise_levels=(0.0, 0.1), seeds=tuple(range(seed, seed + n_seeds)), lrs_sparsities=(3, 5, 10),
                         lrs_ranks=(1,), representation_ranks=(1,), sparse_finetune_sparsities=(5, 10, 20),
                         baselines=("single", "finetune", "representation", "prompt", "sparse_finetune"))


def run(args: argparse.Namespace) -> int:
    from ..experiments.synthetic import LRS_METHOD, format_table, run_figure2

    config = demo_config(args.seed, args.n_seeds)
    say(args, "lorsa demo: the paper's synthetic setting (SPEC §8): d=150, r=1, k=10, zeta=5, m=100, t=75, "
              f"noiseless and sigma=0.1, seed(s) {list(config.seeds)}")
    say(args, "fitting AMHT-LRS (k = 3, 5, 10) and 5 baselines; hyper-parameters chosen on held-out training rows ...")
    start = time.perf_counter()
    result = run_figure2(config, args.output, progress=not args.quiet, plot=not args.no_plot)
    elapsed = time.perf_counter() - start
    print(format_table(result.summary, result.ratios))
    for row in result.rows:
        if row["method"] == LRS_METHOD and row["setting"] == "k=10" and row["noise"] == 0.0:
            print(f"AMHT-LRS (k=10, noiseless, seed {row['seed']}): relative parameter error "
                  f"||U W^T + B - Theta*||_F / ||Theta*||_F = {row['relative_parameter_error']:.3e}")
    if "plot" in result.files:
        print(f"plot: {result.files['plot']}")
    say(args, f"results: {args.output}/ ({', '.join(p.name for p in result.files.values())}); "
              f"total {elapsed:.1f} s. The full experiment: lorsa reproduce synthetic")
    return 0
