"""``lorsa reproduce privacy``: utility of user-level DP AMHT-LRS against ε (:mod:`lorsa.experiments.privacy`)."""

from __future__ import annotations

import argparse

from ._common import add_quiet, nonnegative_float, nonnegative_int, positive_int, say

HELP = "privacy: test RMSE against the DP budget epsilon, synthetic users (several t) and MovieLens clusters"
DESCRIPTION = (
    "User-level differential privacy (SPEC §6): fit PrivateLRSRegressor at several epsilon (fixed delta) and, as "
    "references, the non-private LRSRegressor, the private estimator without noise (clipping only) and a random "
    "frozen U, on synthetic data for several numbers of users t (utility should improve with t at fixed epsilon) "
    "and, with --movielens, on MovieLens tasks. Writes runs.csv (one row per fit, with the epsilon spent), "
    "summary.json (mean, sd, min, max over seeds and an example privacy report), table.md and privacy.png."
)


def _positive_float(text: str) -> float:
    value = nonnegative_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _probability(text: str) -> float:
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", default="lorsa-results/privacy", metavar="DIR",
                        help="folder for the result files (created if missing; files in it are overwritten)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, metavar="N",
                        help="first seed: runs use seeds N, ..., N+n_seeds-1 (data, fits and noise)")
    parser.add_argument("--n-seeds", type=positive_int, default=3, metavar="S", help="seeds per setting")
    parser.add_argument("--epsilon", type=_positive_float, nargs="+", default=[0.5, 1.0, 2.0, 4.0, 8.0],
                        metavar="EPS", help="privacy budgets epsilon of the private fits")
    parser.add_argument("--delta", type=_probability, default=1e-6, help="delta of every private fit")
    parser.add_argument("--tasks", type=positive_int, nargs="*", default=[1000, 10000, 100000], metavar="T",
                        help="numbers of synthetic users t (none: no synthetic part)")
    parser.add_argument("--features", type=positive_int, default=10, metavar="D", help="synthetic dimension d")
    parser.add_argument("--rank", type=positive_int, default=2, metavar="R", help="synthetic rank r (also fitted)")
    parser.add_argument("--sparsity", type=nonnegative_int, default=1, metavar="K",
                        help="synthetic non-zeros k of each b_i (also fitted)")
    parser.add_argument("--samples", type=positive_int, default=20, metavar="M",
                        help="training rows per synthetic user")
    parser.add_argument("--test-samples", type=positive_int, default=20, metavar="M", help="test rows per user")
    parser.add_argument("--noise", type=nonnegative_float, default=0.5, metavar="SIGMA",
                        help="noise standard deviation of the synthetic responses")
    parser.add_argument("--max-iter", type=positive_int, default=6, metavar="L",
                        help="iterations (= noisy U releases) of every private fit")
    parser.add_argument("--movielens", metavar="DIR", default=None,
                        help="MovieLens 100K or 1M folder (GroupLens files); omitted: no MovieLens part")
    parser.add_argument("--movielens-grouping", choices=("demographic", "user"), default="demographic",
                        help="a task (the unit of privacy): a demographic cluster or one user")
    parser.add_argument("--movielens-rank", type=positive_int, default=1, metavar="R", help="rank r on MovieLens")
    parser.add_argument("--movielens-sparsities", type=nonnegative_int, nargs="+", default=[0, 5], metavar="K",
                        help="k on MovieLens, one curve each")
    parser.add_argument("--movielens-ridge", type=nonnegative_float, default=10.0, metavar="LAMBDA",
                        help="per-task ridge penalty on MovieLens")
    parser.add_argument("--movielens-max-rows", type=positive_int, default=None, metavar="M",
                        help="per-task row budget m on MovieLens (sums over up to M rows; default: normalised "
                             "per-task contributions, the library's default)")
    parser.add_argument("--no-plot", action="store_true", help="do not draw privacy.png (no matplotlib needed)")
    add_quiet(parser)


def config_from_args(args: argparse.Namespace):  # -> PrivacyConfig
    from ..experiments.privacy import PrivacyConfig

    return PrivacyConfig(
        epsilons=tuple(args.epsilon), delta=args.delta, n_tasks=tuple(args.tasks), n_features=args.features,
        rank=args.rank, sparsity=args.sparsity, n_samples=args.samples, n_test=args.test_samples, noise=args.noise,
        max_iter=args.max_iter, seeds=tuple(range(args.seed, args.seed + args.n_seeds)), movielens=args.movielens,
        movielens_grouping=args.movielens_grouping, movielens_rank=args.movielens_rank,
        movielens_sparsities=tuple(args.movielens_sparsities), movielens_ridge=args.movielens_ridge,
        movielens_max_rows=args.movielens_max_rows).validate()


def run(args: argparse.Namespace) -> int:
    from ..experiments.privacy import format_privacy_table, run_privacy

    config = config_from_args(args)
    say(args, f"privacy: epsilon {list(config.epsilons)}, delta {config.delta:g}, L={config.max_iter}; synthetic "
              f"t {list(config.n_tasks)} (d={config.n_features}, r={config.rank}, k={config.sparsity}, "
              f"m={config.n_samples}); MovieLens: {config.movielens or 'not run (give --movielens DIR)'}; "
              f"seeds {list(config.seeds)}")
    result = run_privacy(config, args.output, progress=not args.quiet, plot=not args.no_plot)
    print(format_privacy_table(result.summary, config))
    say(args, f"done in {result.seconds:.1f} s; results in {args.output}/: "
              + ", ".join(p.name for p in result.files.values()))
    return 0
