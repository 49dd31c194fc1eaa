"""``lorsa reproduce movielens``: Figure 1 of the paper on MovieLens (:mod:`lorsa.experiments.movielens`)."""

from __future__ import annotations

import argparse

from ._common import add_quiet, nonnegative_float, nonnegative_int, positive_int, say

HELP = "Figure 1: validation RMSE vs %% fine-tunable parameters on MovieLens tasks, AMHT-LRS vs baselines"
DESCRIPTION = (
    "Figure 1 of the paper (SPEC §8) on MovieLens 100K or 1M: tasks are demographic clusters (or users), 20%% of "
    "each task's movies are validation, movie vectors come from a rank-50 factorisation of the training ratings, "
    "and AMHT-LRS at several k and every baseline are compared. Hyper-parameters are chosen on a tuning split "
    "carved out of the training part, never on the validation set. Writes results.csv, tuning.csv (every "
    "candidate), summary.json, table.md and figure1.png (panels: all tasks, data-starved tasks with fewer than 100 "
    "training samples, data-surplus tasks) to the output folder."
)

_BASELINES = ("single", "prompt", "representation", "sparse_finetune", "finetune", "finetune_zero", "mixed",
              "convex")


def _spn(text: str) -> float | None:
    if text.lower() == "none":
        return None
    value = nonnegative_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'none', got {text!r}")
    return value


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", required=True, metavar="DIR",
                        help="folder with the GroupLens files of one data set, or a folder holding ml-100k/ and "
                             "ml-1m/ (e.g. ../shared/data/movielens)")
    parser.add_argument("--dataset", choices=("ml-100k", "ml-1m"), default=None,
                        help="which data set (default: detected from the files in DIR, else ml-100k/ inside it)")
    parser.add_argument("--download", action="store_true",
                        help="first fetch the official GroupLens archive of --dataset (default ml-100k) into DIR, "
                             "verify its pinned SHA-256 and extract it (needs internet; a complete DIR/<dataset> "
                             "folder is used as it is)")
    parser.add_argument("--ratings", metavar="FILE", default=None,
                        help="ratings file to read instead of u.data / ratings.dat[.gz], relative to the data set's "
                             "folder (e.g. ratings_PARTIAL_users1-2999.dat.gz); only read when named here")
    parser.add_argument("--grouping", choices=("demographic", "user"), default="demographic",
                        help="a task is a demographic cluster (gender x age group x occupation) or one user")
    parser.add_argument("--output", "--out", "-o", default="lorsa-results/movielens", metavar="DIR",
                        help="folder for the result files (created if missing; files in it are overwritten)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, metavar="N",
                        help="seed of the validation split and the factorisation (tuning split and fits derive "
                             "theirs from it)")
    parser.add_argument("--sparsities", type=nonnegative_int, nargs="+", default=[1, 2, 5, 10], metavar="K",
                        help="k of AMHT-LRS, one point of its curve each")
    parser.add_argument("--ranks", type=positive_int, nargs="+", default=[4, 8, 12, 16], metavar="R",
                        help="candidate ranks of AMHT-LRS, chosen on the tuning split")
    parser.add_argument("--lrs-ridges", type=nonnegative_float, nargs="+", default=[10.0, 100.0],
                        metavar="LAMBDA", help="candidate ridge penalties of AMHT-LRS on (w_i, b_i)")
    parser.add_argument("--offsets", nargs="+", choices=("none", "single"), default=["single"], metavar="OFFSET",
                        help="candidate offsets of AMHT-LRS: 'single' fits U w_i + b_i on top of the single model "
                             "(the ridge then shrinks a task toward it), 'none' on the raw targets")
    parser.add_argument("--samples-per-nonzero", type=_spn, nargs="+", default=[None, 25.0], metavar="S",
                        help="candidates for the per-task sparsity k_i = min(k, floor(m_i / S)); 'none': k for "
                             "every task (default: none 25)")
    parser.add_argument("--ridges", type=nonnegative_float, nargs="+", default=[0.0, 0.01, 0.1, 1.0, 10.0, 100.0,
                                                                             1e3, 1e4],
                        metavar="LAMBDA", help="candidate ridges of the single model, fine-tuning and prompt tuning")
    parser.add_argument("--representation-ranks", type=positive_int, nargs="+", default=[1, 2, 4, 8, 12, 16],
                        metavar="R", help="candidate ranks of representation learning")
    parser.add_argument("--sft-sparsities", type=positive_int, nargs="+", default=[1, 2, 5, 10, 20], metavar="K",
                        help="candidate k of sparse fine-tuning")
    parser.add_argument("--mixed-cov-scales", type=_positive, nargs="+", default=[1.0, 0.3, 0.1, 0.03, 0.01],
                        metavar="C", help="candidate prior tempering of the mixed-effects baseline: posteriors under "
                                          "C * Sigma (1: the maximum-likelihood model)")
    parser.add_argument("--convex-fractions", type=_fraction, nargs="+", default=[0.3, 0.1, 0.03], metavar="F",
                        help="candidate nuclear-norm and l1 strengths of the convex baseline, as fractions of the "
                             "smallest strength that zeroes the part (every pair is tried)")
    parser.add_argument("--baselines", nargs="*", choices=_BASELINES, default=list(_BASELINES), metavar="NAME",
                        help=f"baselines to run, among {', '.join(_BASELINES)} (none: AMHT-LRS only)")
    parser.add_argument("--no-intercept", action="store_true",
                        help="do not append a constant feature to the movie vectors (for every method)")
    parser.add_argument("--init", choices=("moments", "random"), default="moments",
                        help="initial U of AMHT-LRS and representation learning")
    parser.add_argument("--max-iter", type=positive_int, default=100, metavar="L",
                        help="cap on AMHT-LRS / AltMin outer iterations")
    parser.add_argument("--starved-below", type=positive_int, default=100, metavar="M",
                        help="a task with fewer training samples is data-starved")
    parser.add_argument("--no-plot", action="store_true", help="do not draw figure1.png (no matplotlib needed)")
    add_quiet(parser)


def _positive(text: str) -> float:
    value = nonnegative_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = nonnegative_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text!r}")
    return value


def config_from_args(args: argparse.Namespace):  # -> MovieLensConfig
    from ..experiments.movielens import MovieLensConfig

    return MovieLensConfig(
        data_dir=args.data_dir, dataset=args.dataset, ratings=args.ratings, grouping=args.grouping, seed=args.seed,
        starved_below=args.starved_below, intercept=not args.no_intercept, lrs_sparsities=tuple(args.sparsities),
        lrs_ranks=tuple(args.ranks), lrs_ridges=tuple(args.lrs_ridges), lrs_offsets=tuple(args.offsets),
        lrs_samples_per_nonzero=tuple(args.samples_per_nonzero), lrs_init=args.init, baselines=tuple(args.baselines),
        ridges=tuple(args.ridges), representation_ranks=tuple(args.representation_ranks),
        sparse_finetune_sparsities=tuple(args.sft_sparsities), mixed_cov_scales=tuple(args.mixed_cov_scales),
        convex_fractions=tuple(args.convex_fractions), max_iter=args.max_iter).validate()


def _download(args: argparse.Namespace) -> None:
    """``--download``: fetch and verify the archive, then point ``--data-dir`` at the extracted folder."""
    from ..datasets.movielens_download import MOVIELENS_ARCHIVES, download_movielens

    name = args.dataset or "ml-100k"
    say(args, f"downloading {MOVIELENS_ARCHIVES[name]['url']} into {args.data_dir} (SHA-256 checked)")
    try:
        args.data_dir = str(download_movielens(name, args.data_dir))
    except OSError as exc:  # no internet, HTTP error, unwritable folder
        raise ValueError(f"--download: could not fetch or extract {name} into {args.data_dir!r}: {exc}") from exc
    args.dataset = name


def run(args: argparse.Namespace) -> int:
    from ..experiments.movielens import format_table, run_movielens

    if args.download:
        _download(args)
    config = config_from_args(args)
    say(args, f"Figure 1 (MovieLens): data {config.data_dir} ({config.dataset or 'detected'}), ratings "
              f"{config.ratings or 'default file'}, {config.grouping} tasks, seed {config.seed}")
    result = run_movielens(config, args.output, progress=not args.quiet, plot=not args.no_plot)
    print(format_table(result.rows, result.data, config))
    say(args, f"done in {result.seconds:.1f} s; results in {args.output}/: "
              + ", ".join(p.name for p in result.files.values()))
    return 0
