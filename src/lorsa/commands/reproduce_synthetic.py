"""``lorsa reproduce synthetic``: Figure 2 of the paper (:mod:`lorsa.experiments.synthetic`)."""

from __future__ import annotations

import argparse

from ._common import add_quiet, fraction, nonnegative_float, nonnegative_int, positive_int, say

HELP = "Figure 2: test RMSE vs %% fine-tunable parameters on synthetic data, AMHT-LRS vs baselines"
DESCRIPTION = (
    "Figure 2 of the paper (SPEC §8): generate the synthetic low-rank + sparse tasks, fit AMHT-LRS at several k and "
    "every baseline (single model, full fine-tuning, representation learning, prompt tuning, sparse fine-tuning; "
    "hyper-parameters chosen on rows held out from training), and score them on fresh test rows of the same tasks. "
    "Runs every noise level for several seeds and writes runs.csv (one row per fit), summary.json (mean, sd, min, "
    "max over seeds and the RMSE ratios), table.md and figure2.png to the output folder."
)

_BASELINES = ("single", "finetune", "representation", "prompt", "sparse_finetune", "mixed", "convex")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", default="lorsa-results/synthetic", metavar="DIR",
                        help="folder for the result files (created if missing; files in it are overwritten)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, metavar="N",
                        help="first seed: runs use seeds N, N+1, ..., N+n_seeds-1 (data, test rows, fits)")
    parser.add_argument("--n-seeds", type=positive_int, default=3, metavar="S",
                        help="number of seeds (independent data sets) per noise level; the spread over them is "
                             "reported")
    parser.add_argument("--noise", type=nonnegative_float, nargs="+", default=[0.0, 0.1], metavar="SIGMA",
                        help="noise standard deviations to run (0 = noiseless)")
    parser.add_argument("--sparsities", type=nonnegative_int, nargs="+", default=[1, 3, 5, 10, 15], metavar="K",
                        help="k of AMHT-LRS, one point of its curve each")
    parser.add_argument("--ranks", type=positive_int, nargs="+", default=[1, 2], metavar="R",
                        help="candidate ranks of AMHT-LRS, chosen on held-out training rows")
    parser.add_argument("--baselines", nargs="*", choices=_BASELINES, default=list(_BASELINES), metavar="NAME",
                        help=f"baselines to run, among {', '.join(_BASELINES)} (none: AMHT-LRS only)")
    parser.add_argument("--features", type=positive_int, default=150, metavar="D", help="dimension d of x")
    parser.add_argument("--true-rank", type=positive_int, default=1, metavar="R",
                        help="rank r of the generated shared part U")
    parser.add_argument("--true-sparsity", type=nonnegative_int, default=10, metavar="K",
                        help="non-zeros k of each generated b_i (the AMHT-LRS point compared in the ratios)")
    parser.add_argument("--row-sparsity", type=positive_int, default=5, metavar="ZETA",
                        help="tasks personalising one coordinate at most (zeta); needs tasks * k <= d * zeta")
    parser.add_argument("--tasks", type=positive_int, default=75, metavar="T", help="number of tasks t")
    parser.add_argument("--samples", type=positive_int, default=100, metavar="M", help="training rows per task m")
    parser.add_argument("--test-samples", type=positive_int, default=100, metavar="M",
                        help="fresh test rows per task")
    parser.add_argument("--validation-fraction", type=fraction, default=0.2, metavar="F",
                        help="fraction of each task's training rows held out to choose hyper-parameters")
    parser.add_argument("--max-iter", type=positive_int, default=100, metavar="L",
                        help="cap on AMHT-LRS / AltMin outer iterations")
    parser.add_argument("--no-plot", action="store_true", help="do not draw figure2.png (no matplotlib needed)")
    add_quiet(parser)


def config_from_args(args: argparse.Namespace):  # -> Figure2Config
    from ..experiments.synthetic import Figure2Config

    return Figure2Config(
        n_features=args.features, rank=args.true_rank, sparsity=args.true_sparsity, row_sparsity=args.row_sparsity,
        n_tasks=args.tasks, n_samples=args.samples, n_test=args.test_samples, noise_levels=tuple(args.noise),
        seeds=tuple(range(args.seed, args.seed + args.n_seeds)), lrs_sparsities=tuple(args.sparsities),
        lrs_ranks=tuple(args.ranks), baselines=tuple(args.baselines), validation_fraction=args.validation_fraction,
        max_iter=args.max_iter).validate()


def run(args: argparse.Namespace) -> int:
    from ..experiments.synthetic import format_table, run_figure2

    config = config_from_args(args)
    say(args, f"Figure 2 (synthetic): d={config.n_features}, r={config.rank}, k={config.sparsity}, "
              f"zeta={config.row_sparsity}, t={config.n_tasks}, m={config.n_samples}; noise {list(config.noise_levels)}"
              f", seeds {list(config.seeds)}")
    result = run_figure2(config, args.output, progress=not args.quiet, plot=not args.no_plot)
    print(format_table(result.summary, result.ratios))
    say(args, f"done in {result.seconds:.1f} s; results in {args.output}/: "
              + ", ".join(p.name for p in result.files.values()))
    return 0
